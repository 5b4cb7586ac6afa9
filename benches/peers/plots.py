"""SVG charts of a benches/peers results file; called by `report.py plots RESULTS.tsv OUTDIR` in
the harness venv (matplotlib). One chart per section: streams.svg (events per CPU second, with the join),
latency.svg (p50/p99/p99.9 per rate), client-rate.svg (records/s), client-cpu.svg (CPU µs per
record). Log scales: the systems differ by orders of magnitude."""

import math
import os

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

# Text stays text (small files), and the ids are stable across runs (small diffs).
matplotlib.rcParams["svg.fonttype"] = "none"
matplotlib.rcParams["svg.hashsalt"] = "benches-peers"

COLORS = {"ours": "#d95f02", "kstreams": "#1b9e77", "faust": "#7570b3", "java": "#1b9e77",
          "librdkafka": "#7570b3", "rskafka": "#e7298a"}
COLORS["librdkafka-c"] = "#66a61e"  # librdkafka itself (kcat), next to librdkafka through Python
COLORS["crabka"] = "#e6ab02"  # crabka-client-streams (streams and state sections)
COLORS["ours-table"] = "#fc8d62"  # ours, the table alone (state section's count cases)


def value(data, key, metric):
    try:
        return float(data.get(key, {}).get(metric, "nan"))
    except ValueError:
        return math.nan


def grouped_bars(ax, groups, series, values, ylabel):
    """groups along x; one bar per series in each group; values[(group, series)]."""
    width = 0.8 / max(len(series), 1)
    for i, s in enumerate(series):
        xs, ys = [], []
        for g, _ in enumerate(groups):
            v = values.get((groups[g], s), math.nan)
            if not math.isnan(v) and v > 0:
                xs.append(g + (i - (len(series) - 1) / 2) * width)
                ys.append(v)
        ax.bar(xs, ys, width, label=s, color=COLORS.get(s.split(" ")[0]))
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=20, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize="small")


def cases_of(order, section):
    out = []
    for s, c, _ in order:
        if s == section and c not in out:
            out.append(c)
    return out


def systems_of(order, sections):
    out = []
    for s, _, y in order:
        if s in sections and y not in out:
            out.append(y)
    return out


def draw(data, order, outdir):
    os.makedirs(outdir, exist_ok=True)
    written = []

    groups = cases_of(order, "streams") + cases_of(order, "state") + cases_of(order, "join")
    if groups:
        series = systems_of(order, ("streams", "state", "join"))
        values = {}
        for s, c, y in order:
            if s in ("streams", "state", "join"):
                values[(c, y)] = value(data, (s, c, y), "ev_per_cpu_s")
        fig, ax = plt.subplots(figsize=(8, 4.5))
        grouped_bars(ax, groups, series, values, "events per CPU second (whole process)")
        ax.set_title("Stream processing: events per CPU second, same input, same broker")
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "streams.svg"))
        plt.close(fig)
        written.append("streams.svg")

    rates = cases_of(order, "latency")
    if rates:
        systems = systems_of(order, ("latency",))
        series, values = [], {}
        for y in systems:
            for metric, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
                name = f"{y} {label}"
                series.append(name)
                for r in rates:
                    values[(r, name)] = value(data, ("latency", r, y), metric)
        fig, ax = plt.subplots(figsize=(9, 4.5))
        width = 0.8 / len(series)
        shades = {"p50": 1.0, "p99": 0.7, "p99.9": 0.45}
        for i, name in enumerate(series):
            system, label = name.rsplit(" ", 1)
            xs, ys = [], []
            for g, r in enumerate(rates):
                v = values.get((r, name), math.nan)
                if not math.isnan(v) and v > 0:
                    xs.append(g + (i - (len(series) - 1) / 2) * width)
                    ys.append(v)
            ax.bar(xs, ys, width, label=name, color=COLORS.get(system), alpha=shades[label])
        ax.set_xticks(range(len(rates)))
        ax.set_xticklabels([f"{r} events/s" if r.isdigit() else f"1 event after {r[4:]} idle" for r in rates])
        ax.set_yscale("log")
        ax.set_ylabel("produce → agent → consume, ms")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize="x-small", ncol=len(systems))
        ax.set_title("End-to-end latency through a stateless agent (p50, p99, p99.9)")
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "latency.svg"))
        plt.close(fig)
        written.append("latency.svg")

    groups = cases_of(order, "client")
    if groups:
        series = systems_of(order, ("client",))
        for metric, name, ylabel, title in (
            ("rec_per_s", "client-rate.svg", "records per second", "Client throughput (higher is better)"),
            ("cpu_us_per_rec", "client-cpu.svg", "CPU µs per record", "Client CPU per record (lower is better)"),
        ):
            values = {(c, y): value(data, ("client", c, y), metric) for s, c, y in order if s == "client"}
            fig, ax = plt.subplots(figsize=(10, 4.5))
            grouped_bars(ax, groups, series, values, ylabel)
            ax.set_title(title)
            fig.tight_layout()
            fig.savefig(os.path.join(outdir, name))
            plt.close(fig)
            written.append(name)
    for name in written:
        print(os.path.join(outdir, name))
