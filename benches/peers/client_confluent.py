"""librdkafka's producer and consumer throughput through confluent-kafka (its wheel bundles
librdkafka), the librdkafka column of benches/peers/client.sh.

    python client_confluent.py produce BOOTSTRAP TOPIC [--records N] [--record-size B] [--compression C]
    python client_confluent.py consume BOOTSTRAP TOPIC [--records N] [--record-size B]

Settings as client_perf and ProducerPerformance: acks=1, linger.ms=5, batch.size=65536, the
given compression.type, no keys, the same value bytes for every record, partition 0 of a
one-partition topic. The producer counts every delivery report (like the others' callbacks
and delivery futures) and fails on any error. The consumer assigns partition 0 from the
earliest offset (no group join, like client_perf). Prints `librdkafka-producer records=..
record_size=.. secs=.. rec_per_s=.. mb_per_s=..` (or librdkafka-consumer), timed from the
first send / first poll to the last delivery report / record.
"""

import argparse
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition


def summary(kind, args, records, nbytes, secs):
    print(
        f"{kind} records={records} record_size={args.record_size} secs={secs:.3f} "
        f"rec_per_s={records / secs:.1f} mb_per_s={nbytes / secs / (1024 * 1024):.2f}",
        flush=True,
    )


def produce(args):
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "1",
        "linger.ms": 5,
        "batch.size": 65536,
        "compression.type": args.compression,
        "enable.idempotence": False,
        "queue.buffering.max.messages": 1_000_000,
    })
    payload = bytes(ord("a") + i % 26 for i in range(args.record_size))
    delivered = 0
    errors = []

    def on_delivery(err, _msg):
        nonlocal delivered
        if err is not None:
            errors.append(err)
        delivered += 1

    started = time.monotonic()
    for _ in range(args.records):
        while True:
            try:
                producer.produce(args.topic, value=payload, partition=0, on_delivery=on_delivery)
                break
            except BufferError:  # the local queue is full: serve delivery reports, retry
                producer.poll(0.001)
        producer.poll(0)
    remaining = producer.flush(60)
    secs = time.monotonic() - started
    if remaining or errors or delivered != args.records:
        print(f"client_confluent: {delivered} delivered, {remaining} left, errors: {errors[:3]}", file=sys.stderr)
        return 1
    summary("librdkafka-producer", args, args.records, args.records * args.record_size, secs)
    return 0


def consume(args):
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "client-confluent-unused",  # required by the API; no subscribe, no commits
        "enable.auto.commit": False,
    })
    consumer.assign([TopicPartition(args.topic, 0, OFFSET_BEGINNING)])
    count = nbytes = 0
    started = time.monotonic()
    deadline = started + 120
    while count < args.records:
        if time.monotonic() > deadline:
            print(f"client_confluent: read {count} of {args.records} records in 120 s", file=sys.stderr)
            return 1
        for msg in consumer.consume(num_messages=10_000, timeout=1.0):
            if msg.error():
                raise KafkaException(msg.error())
            count += 1
            nbytes += len(msg.value() or b"")
    secs = time.monotonic() - started
    consumer.close()
    summary("librdkafka-consumer", args, count, nbytes, secs)
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["produce", "consume"])
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--record-size", type=int, default=100)
    parser.add_argument("--compression", default="none")
    args = parser.parse_args()
    return produce(args) if args.mode == "produce" else consume(args)


if __name__ == "__main__":
    sys.exit(main())
