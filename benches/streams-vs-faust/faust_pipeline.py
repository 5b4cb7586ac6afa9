"""The Faust half of the streams-vs-Faust comparison (see ../STREAMS.md).

Same pipeline as benches/src/bin/streams_bench.rs: consume JSON purchases, keep those with
amount >= 10, map them to {username, currency, amount_cents}, produce them keyed by username.

    python faust_pipeline.py BOOTSTRAP INPUT OUTPUT N [--app-id ID]

Runs a Faust worker (app ID, its consumer group; default `faust-bench`) from the earliest
offsets until it has consumed N input events, then stops it gracefully with SIGTERM (as an
operator would: in-flight events finish, offsets are committed, the group is left) and prints
`faust events=N outputs=K secs=.. ev_per_s=.. first_event_s=.. last_event_s=..`, all timed
from process start (first/last: when the agent saw the first and the Nth input event).

Settings are Faust's defaults except: topic_partitions=3 (the input's), the memory store,
consumer_auto_offset_reset='earliest', and no web server (it would only listen on a port).
The output record has include_metadata=False so that both sides write the same bytes (Faust
would otherwise add a "__faust" field to every output).
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
    parser.add_argument("--app-id", default="faust-bench")
    args = parser.parse_args()

    app = faust.App(
        args.app_id,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        topic_partitions=3,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
    )

    class Purchase(faust.Record, serializer="json"):
        username: str
        currency: str
        amount: int
        note: str

    class Priced(faust.Record, serializer="json", include_metadata=False):
        username: str
        currency: str
        amount_cents: int

    purchases = app.topic(args.input, key_type=str, value_type=Purchase)
    priced = app.topic(args.output, key_type=str, value_type=Priced)
    counts = {"events": 0, "outputs": 0, "done": False, "first_s": 0.0, "last_s": 0.0}

    @app.agent(purchases)
    async def pipeline(stream):
        async for key, purchase in stream.items():
            counts["events"] += 1
            if counts["events"] == 1:
                counts["first_s"] = time.monotonic() - STARTED
            if purchase.amount >= 10:
                out = Priced(
                    username=purchase.username,
                    currency=purchase.currency,
                    amount_cents=purchase.amount * 100,
                )
                await priced.send(key=key, value=out)
                counts["outputs"] += 1
            if counts["events"] == args.n and not counts["done"]:
                counts["done"] = True
                counts["last_s"] = time.monotonic() - STARTED
                # A graceful stop, like Ctrl-C: the worker finishes, flushes, commits, leaves.
                os.kill(os.getpid(), signal.SIGTERM)

    # stdout carries only the summary line (the startup spinner goes to stderr).
    worker = faust.Worker(app, loglevel="WARN", quiet=True, stdout=sys.stderr)
    try:
        worker.execute_from_commandline()
    except SystemExit:
        pass
    secs = time.monotonic() - STARTED
    if counts["events"] < args.n:
        print(f"faust: stopped after {counts['events']} of {args.n} input events", file=sys.stderr)
        return 1
    print(
        f"faust events={counts['events']} outputs={counts['outputs']} "
        f"secs={secs:.3f} ev_per_s={counts['events'] / secs:.1f} "
        f"first_event_s={counts['first_s']:.3f} last_event_s={counts['last_s']:.3f}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
