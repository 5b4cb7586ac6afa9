#!/usr/bin/env python3
"""External-client check: kafka-python against the mock-broker binary.

Starts its own mock-broker, prints "N passed, M failed", exits non-zero on any failure.
Needs kafka-python (pip install kafka-python). MOCK_BROKER may name a prebuilt binary.
"""
import os
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TOPIC = "py-topic"
PARTITIONS = 4


def start_broker():
    binary = os.environ.get("MOCK_BROKER")
    if not binary:
        subprocess.run(["cargo", "build", "-q", "-p", "testkit", "--bin", "mock-broker"], cwd=REPO, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
        binary = os.path.join(target, "debug", "mock-broker")
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "mock-broker-kafka-python.log"), "w")
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--brokers", "2", "--partitions", str(PARTITIONS)],
        stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline().strip()
    if not line:
        raise RuntimeError("mock-broker printed no bootstrap address; see " + log.name)
    return proc, line


def main():
    try:
        import kafka  # noqa: F401
    except ImportError:
        print("kafka-python not installed (pip install kafka-python)")
        print("0 passed, 1 failed")
        return 1
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

    proc, bootstrap = start_broker()
    print("mock-broker at", bootstrap, "| kafka-python", kafka.__version__)
    passed = failed = 0
    state = {}

    def check(name, fn):
        nonlocal passed, failed
        try:
            fn()
            passed += 1
            print("ok  ", name)
        except Exception:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print("FAIL", name)
            print("     " + traceback.format_exc().replace("\n", "\n     "))

    servers = bootstrap.split(",")

    def admin_creates_topic():
        admin = KafkaAdminClient(bootstrap_servers=servers, client_id="py-admin")
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1, topic_configs={"retention.ms": "3600000"})])
        assert TOPIC in admin.list_topics()
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, TOPIC)])
        assert "3600000" in repr(configs), configs
        admin.close()

    def produce_keyed():
        producer = KafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5, client_id="py-producer")
        futures = [producer.send(TOPIC, key=b"key-%d" % i, value=b"value-%d" % i) for i in range(400)]
        producer.flush()
        metas = [f.get(timeout=10) for f in futures]
        assert len({m.partition for m in metas}) == PARTITIONS, "keys spread over every partition"
        producer.close()

    def idempotent_producer():
        producer = KafkaProducer(bootstrap_servers=servers, enable_idempotence=True, acks="all", client_id="py-idem")
        for i in range(20):
            producer.send("py-idem", key=b"k%d" % i, value=b"v")
        producer.flush()
        producer.close()

    def group_of_two_splits_partitions():
        import threading
        seen = {}
        assignments = {}
        committed = {}
        lock = threading.Lock()
        stop = threading.Event()
        errors = []

        def member(name):
            try:
                c = KafkaConsumer(
                    TOPIC, bootstrap_servers=servers, group_id="py-group", client_id=name,
                    enable_auto_commit=False, auto_offset_reset="earliest")
                while not stop.is_set():
                    for tp, records in c.poll(timeout_ms=200).items():
                        with lock:
                            for r in records:
                                seen[(tp.partition, r.offset)] = r.key
                    with lock:
                        assignments[name] = {tp.partition for tp in c.assignment()}
                c.commit()
                with lock:
                    for tp in c.assignment():
                        committed[tp.partition] = c.committed(tp)
                c.close()
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=member, args=(n,)) for n in ("py-a", "py-b")]
        for th in threads:
            th.start()
        deadline = time.time() + 60
        while time.time() < deadline:
            with lock:
                pa, pb = assignments.get("py-a", set()), assignments.get("py-b", set())
                if len(seen) >= 400 and pa and pb and not (pa & pb) and (pa | pb) == set(range(PARTITIONS)):
                    break
            time.sleep(0.1)
        stop.set()
        for th in threads:
            th.join(30)
        assert not errors, errors
        pa, pb = assignments.get("py-a", set()), assignments.get("py-b", set())
        assert pa and pb, "both members got partitions: %s / %s" % (pa, pb)
        assert not (pa & pb) and (pa | pb) == set(range(PARTITIONS)), (pa, pb)
        assert len(set(seen.values())) == 400, "read %d distinct keys" % len(set(seen.values()))
        assert sum(committed.values()) == 400, committed

    def restart_resumes_after_commit():
        producer = KafkaProducer(bootstrap_servers=servers, acks="all")
        for i in range(100):
            producer.send(TOPIC, key=b"new-%d" % i, value=b"after-restart")
        producer.flush()
        producer.close()
        c = KafkaConsumer(TOPIC, bootstrap_servers=servers, group_id="py-group",
                          enable_auto_commit=False, auto_offset_reset="earliest")
        got = []
        deadline = time.time() + 30
        while time.time() < deadline and len(got) < 100:
            for records in c.poll(timeout_ms=200).values():
                got.extend(records)
        assert len(got) == 100, "read %d" % len(got)
        assert all(r.value == b"after-restart" for r in got), "only records after the commit"
        c.commit()
        c.close()

    def admin_groups_and_delete():
        admin = KafkaAdminClient(bootstrap_servers=servers)
        # kafka-python 3.x renamed list_consumer_groups / list_consumer_group_offsets.
        list_groups = getattr(admin, "list_groups", None) or admin.list_consumer_groups
        list_offsets = getattr(admin, "list_group_offsets", None) or admin.list_consumer_group_offsets
        listed = list_groups()
        assert "py-group" in repr(listed), listed
        offsets = list_offsets("py-group")
        if offsets and all(isinstance(v, dict) for v in offsets.values()):
            offsets = {tp: o for per_group in offsets.values() for tp, o in per_group.items()}
        assert sum(getattr(o, "offset", o) for o in offsets.values()) == 500, offsets
        admin.delete_topics(["py-idem"])
        assert "py-idem" not in admin.list_topics()
        admin.close()

    try:
        check("admin creates a topic and describes its configs", admin_creates_topic)
        check("producer sends 400 keyed messages (acks=all)", produce_keyed)
        check("idempotent producer", idempotent_producer)
        check("a group of two consumers splits the partitions and commits", group_of_two_splits_partitions)
        check("a restarted consumer resumes after the commit", restart_resumes_after_commit)
        check("admin lists groups, their offsets, deletes a topic", admin_groups_and_delete)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    if proc.returncode not in (0, -15):
        failed += 1
        print("FAIL mock-broker exited with", proc.returncode)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
