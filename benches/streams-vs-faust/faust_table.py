"""The Faust half of the stateful count (see benches/tables/run.sh and ../STREAMS.md).

Same work as `table_bench count` (benches/src/bin/table_bench.rs): consume the purchases of
`streams_bench prefill`, count them per key in a Table (`counts`, default int, memory store,
changelog topic as Faust makes it) and send each new count to OUTPUT keyed by the same key.

    python faust_table.py BOOTSTRAP INPUT OUTPUT N [--app-id ID]

Runs a Faust worker (app ID; default `faust-table-bench`) from the earliest offsets until it
has consumed N input events, then stops it gracefully with SIGTERM (the table's changelog is
flushed, offsets committed, the group left) and prints
`faust-table events=N outputs=K secs=.. ev_per_s=..`, timed from process start.

Settings are Faust's defaults except: topic_partitions=3 (the input's), the memory store,
consumer_auto_offset_reset='earliest', and no web server.
"""

import time

STARTED = time.monotonic()

import argparse  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import faust  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("n", type=int)
    parser.add_argument("--app-id", default="faust-table-bench")
    args = parser.parse_args()

    app = faust.App(
        args.app_id,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        topic_partitions=3,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
    )
    purchases = app.topic(args.input, key_type=str, value_serializer="raw")
    out = app.topic(args.output, key_type=str, value_type=int)
    counts_table = app.Table("counts", default=int, partitions=3)
    state = {"events": 0, "outputs": 0, "done": False}

    @app.agent(purchases)
    async def count(stream):
        async for key, _value in stream.items():
            counts_table[key] += 1
            await out.send(key=key, value=counts_table[key])
            state["outputs"] += 1
            state["events"] += 1
            if state["events"] == args.n and not state["done"]:
                state["done"] = True
                os.kill(os.getpid(), signal.SIGTERM)

    worker = faust.Worker(app, loglevel="WARN", quiet=True, stdout=sys.stderr)
    try:
        worker.execute_from_commandline()
    except SystemExit:
        pass
    secs = time.monotonic() - STARTED
    if state["events"] < args.n:
        print(f"faust-table: stopped after {state['events']} of {args.n} input events", file=sys.stderr)
        return 1
    print(
        f"faust-table events={state['events']} outputs={state['outputs']} "
        f"secs={secs:.3f} ev_per_s={state['events'] / secs:.1f}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
