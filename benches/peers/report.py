"""Reads a results file of benches/peers/run.sh (TSV: section, case, system, metric, value) and
prints the comparison table, draws the plots, or prints the BENCHMARKS.md section.

    python3 report.py table RESULTS.tsv              the table with ratios (stdlib only)
    python3 report.py markdown RESULTS.tsv           the same as Markdown tables
    python3 report.py plots RESULTS.tsv OUTDIR       SVG charts (needs matplotlib: the venv of
                                                     benches/peers/requirements.txt)

Ratios are always ours over the peer for rates (higher is better for us) and the peer over ours
for CPU per record and latency (again: above 1 means we are ahead).
"""

import csv
import math
import sys
from collections import defaultdict

STREAMS_TARGET = {"kstreams": 2.0}


def load(path):
    data = defaultdict(dict)  # (section, case, system) -> {metric: value}
    meta = {}
    order = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["section"] == "meta":
                meta[row["metric"]] = row["value"]
                continue
            key = (row["section"], row["case"], row["system"])
            if key not in data:
                order.append(key)
            data[key][row["metric"]] = row["value"]
    return meta, data, order


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def fmt(v, digits=0):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if any(math.isnan(x) for x in (a, b)) or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def cases(order, section):
    seen = []
    for s, c, _ in order:
        if s == section and c not in seen:
            seen.append(c)
    return seen


def systems(order, section, case):
    return [y for s, c, y in order if s == section and c == case]


def rows_streams(data, order, section):
    out = []
    for case in cases(order, section):
        ours = data.get((section, case, "ours"), {})
        for system in systems(order, section, case):
            d = data[(section, case, system)]
            if d.get("missing"):
                out.append([case, system, "not written yet", "", "", "", ""])
                continue
            if d.get("error"):  # a peer that did not build or run (run.sh's SOFT_SIDES)
                out.append([case, system, "did not run: " + d["error"], "", "", "", ""])
                continue
            if system.startswith("ours-"):
                # Another form of ours (state's `ours-table`): its ratio over Kafka Streams.
                ks = data.get((section, case, "kstreams"), {})
                r = "" if not ks or ks.get("error") else ratio(
                    num(d.get("ev_per_cpu_s")), num(ks.get("ev_per_cpu_s"))) + " (it over kstreams)"
            else:
                r = "" if system == "ours" or ours.get("missing") or not ours else ratio(
                    num(ours.get("ev_per_cpu_s")), num(d.get("ev_per_cpu_s")))
            out.append([case, system, fmt(num(d.get("events"))), fmt(num(d.get("cpu_s")), 2),
                        fmt(num(d.get("ev_per_cpu_s"))), fmt(num(d.get("ev_per_wall_s"))), r])
    return ["case", "system", "events", "cpu_s", "events/CPU s", "events/s", "ours over it (per CPU s)"], out


def rows_latency(data, order):
    out = []
    for case in cases(order, "latency"):
        ours = data.get(("latency", case, "ours"), {})
        for system in systems(order, "latency", case):
            d = data[("latency", case, system)]
            if d.get("skipped"):
                out.append([case, system, "skipped: the agent fell behind at a lower rate", "", "", "", "", "", ""])
                continue
            r = "" if system == "ours" else ratio(num(d.get("p99_ms")), num(ours.get("p99_ms")))
            out.append([case, system, fmt(num(d.get("send_rate"))),
                        f"{fmt(num(d.get('received')))}/{fmt(num(d.get('sent')))}",
                        fmt(num(d.get("p50_ms")), 2), fmt(num(d.get("p99_ms")), 2),
                        fmt(num(d.get("p999_ms")), 2), fmt(num(d.get("max_ms")), 2), r])
    return ["rate (events/s)", "system", "sent/s", "received", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
            "its p99 over ours"], out


# The client section's two librdkafka columns: librdkafka-c is librdkafka itself (kcat, C),
# librdkafka is librdkafka through confluent-kafka's per-record Python loop.
CLIENT_LABELS = {"librdkafka-c": "librdkafka-c (kcat)", "librdkafka": "librdkafka (Python)"}


def rows_client(data, order):
    out = []
    for case in cases(order, "client"):
        ours = data.get(("client", case, "ours"), {})
        for system in systems(order, "client", case):
            d = data[("client", case, system)]
            rate, cpu = num(d.get("rec_per_s")), num(d.get("cpu_us_per_rec"))
            r1 = "" if system == "ours" else ratio(num(ours.get("rec_per_s")), rate)
            r2 = "" if system == "ours" else ratio(cpu, num(ours.get("cpu_us_per_rec")))
            out.append([case, CLIENT_LABELS.get(system, system), fmt(num(d.get("records"))), fmt(rate),
                        fmt(cpu, 3), r1, r2])
    return ["case", "system", "records", "records/s", "CPU µs/record", "ours over it (rate)",
            "its CPU over ours"], out


def rows_client_librdkafka(data, order):
    """Per case: librdkafka in C (kcat) next to librdkafka through Python, and ours over each."""
    out = []
    for case in cases(order, "client"):
        get = lambda y, m: num(data.get(("client", case, y), {}).get(m))  # noqa: E731
        if math.isnan(get("librdkafka-c", "rec_per_s")):
            continue
        out.append([case,
                    fmt(get("librdkafka-c", "rec_per_s")), fmt(get("librdkafka", "rec_per_s")),
                    ratio(get("librdkafka-c", "rec_per_s"), get("librdkafka", "rec_per_s")),
                    fmt(get("librdkafka-c", "cpu_us_per_rec"), 3), fmt(get("librdkafka", "cpu_us_per_rec"), 3),
                    ratio(get("librdkafka", "cpu_us_per_rec"), get("librdkafka-c", "cpu_us_per_rec")),
                    ratio(get("ours", "rec_per_s"), get("librdkafka-c", "rec_per_s")),
                    ratio(get("librdkafka-c", "cpu_us_per_rec"), get("ours", "cpu_us_per_rec"))])
    return ["case", "C records/s", "Python records/s", "C over Python (rate)", "C CPU µs/record",
            "Python CPU µs/record", "Python CPU over C", "ours over C (rate)", "C CPU over ours"], out


def rows_eos(data, order):
    """Per side of each eos case: the rates and the transaction markers in its output."""
    out = []
    for case in cases(order, "eos"):
        for system in systems(order, "eos", case):
            d = data[("eos", case, system)]
            out.append([case, system, fmt(num(d.get("events"))), fmt(num(d.get("cpu_s")), 2),
                        fmt(num(d.get("ev_per_cpu_s"))), fmt(num(d.get("ev_per_wall_s"))),
                        fmt(num(d.get("txn_markers")))])
    return ["case", "system", "events", "cpu_s", "events/CPU s", "events/s",
            "txn markers in output"], out


def overhead(alo, eos):
    """EOS's extra cost over ALO: CPU per event (or time per event) EOS / ALO - 1."""
    if any(math.isnan(x) for x in (alo, eos)) or eos == 0:
        return "-"
    return f"{(alo / eos - 1) * 100:+.1f} %"


def rows_eos_ratios(data, order):
    out = []
    for case in cases(order, "eos"):
        get = lambda y, m: num(data.get(("eos", case, y), {}).get(m))  # noqa: E731
        out.append([case,
                    ratio(get("ours-eos", "ev_per_cpu_s"), get("kstreams-eos", "ev_per_cpu_s")),
                    ratio(get("ours-alo", "ev_per_cpu_s"), get("kstreams-alo", "ev_per_cpu_s")),
                    overhead(get("ours-alo", "ev_per_cpu_s"), get("ours-eos", "ev_per_cpu_s")),
                    overhead(get("ours-alo", "ev_per_wall_s"), get("ours-eos", "ev_per_wall_s")),
                    overhead(get("kstreams-alo", "ev_per_cpu_s"), get("kstreams-eos", "ev_per_cpu_s"))])
    # Over the rounds of a case (CASE-rN): the range of each figure.
    groups = {}
    for row in out:
        base = row[0].rsplit("-r", 1)[0] if "-r" in row[0] else row[0]
        groups.setdefault(base, []).append(row)
    for base, rows in groups.items():
        if len(rows) < 2:
            continue
        summary = [f"{base}, {len(rows)} rounds"]
        for col in range(1, len(rows[0])):
            vals = [float(r[col].rstrip("x%").strip()) for r in rows if r[col] != "-"]
            unit = "x" if rows[0][col].endswith("x") else " %"
            sign = "+" if unit == " %" else ""
            summary.append(f"{min(vals):{sign}.{2 if unit == 'x' else 1}f}{unit} .. "
                           f"{max(vals):{sign}.{2 if unit == 'x' else 1}f}{unit}" if vals else "-")
        out.append(summary)
    return ["case", "ours EOS / Kafka Streams EOS (per CPU s)", "ours ALO / Kafka Streams ALO",
            "our EOS overhead, CPU per event", "our EOS overhead, wall time",
            "Kafka Streams' EOS overhead, CPU per event"], out


def rows_join_summary(data, order):
    """Ours over Kafka Streams per CPU second over the join's rounds: the lowest (the figure
    quoted: the one that favours Kafka Streams) and the highest."""
    ratios = []
    for case in cases(order, "join"):
        ours = num(data.get(("join", case, "ours"), {}).get("ev_per_cpu_s"))
        ks = num(data.get(("join", case, "kstreams"), {}).get("ev_per_cpu_s"))
        if not any(math.isnan(x) for x in (ours, ks)) and ks > 0:
            ratios.append(ours / ks)
    if not ratios:
        return ["rounds", "lowest", "highest", "target"], []
    return (["rounds", "ours over Kafka Streams per CPU s, lowest (quoted)", "highest", "target"],
            [[len(ratios), f"{min(ratios):.2f}x", f"{max(ratios):.2f}x", f"{STREAMS_TARGET['kstreams']:.0f}x"]])


def render_text(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)] if rows else [len(h) for h in head]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def render_md(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


def tables(data, order):
    sections = []
    for section, title in (("streams", "Stateless pipeline, events per CPU second (whole process)"),
                           ("state", "Stateful topologies, events per CPU second (whole process)")):
        if cases(order, section):
            sections.append((title, *rows_streams(data, order, section)))
    if cases(order, "join"):
        sections.append(("Stream-table join (inner, JSON; redb / RocksDB), events per CPU second (whole process)",
                         *rows_streams(data, order, "join")))
        sections.append(("Stream-table join: ratio over the rounds", *rows_join_summary(data, order)))
    if cases(order, "eos"):
        sections.append(("Exactly-once vs at-least-once, count by key (redb / RocksDB), whole process",
                         *rows_eos(data, order)))
        sections.append(("Exactly-once: ratios", *rows_eos_ratios(data, order)))
    if cases(order, "latency"):
        sections.append(("End-to-end latency through the stateless agent", *rows_latency(data, order)))
    if cases(order, "client"):
        sections.append(("Client, records/s and CPU per record", *rows_client(data, order)))
        head, rows = rows_client_librdkafka(data, order)
        if rows:
            sections.append(("Client: librdkafka in C (kcat) and through Python (confluent-kafka)", head, rows))
    return sections


def main(argv):
    if len(argv) < 3 or argv[1] not in ("table", "markdown", "plots"):
        print(__doc__, file=sys.stderr)
        return 2
    meta, data, order = load(argv[2])
    if argv[1] == "plots":
        if len(argv) < 4:
            print(__doc__, file=sys.stderr)
            return 2
        import plots  # only this mode needs matplotlib

        plots.draw(data, order, argv[3])
        return 0
    render = render_text if argv[1] == "table" else render_md
    lead = "# " if argv[1] == "table" else ""
    print(f"{lead}benches/peers/run.sh --{meta.get('mode', '?')} at {meta.get('date', '?')}, commit "
          f"{meta.get('commit', '?')}, load average {meta.get('load_avg_start', '?')} -> "
          f"{meta.get('load_avg_end', '?')}"
          + (f" (after the join section: {meta['load_avg_after_join']})" if "load_avg_after_join" in meta else ""))
    if "kcat_librdkafka" in meta:
        if not lead:
            print()
        print(f"{lead}librdkafka-c: kcat on librdkafka {meta['kcat_librdkafka']}; librdkafka (Python): "
              f"confluent-kafka on librdkafka {meta.get('confluent_kafka_librdkafka', '?')}. kcat's rates are "
              "records / wall time of the whole process (start-up and exit included)")
    if "client_rerun" in meta:
        if not lead:
            print()  # its own paragraph in Markdown
        print(f"{lead}{meta['client_rerun']}")
    for title, head, rows in tables(data, order):
        print()
        print(("### " if argv[1] == "markdown" else "== ") + title)
        print()
        print(render(head, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
