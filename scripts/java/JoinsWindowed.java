// JoinsWindowed.java — Kafka Streams' windowed KStream-KStream joins (inner, left, outer), for
// comparing ours with them (streams/tests/stream_join_kstreams.rs, through the runner in
// streams/tests/common/kstreams.rs).
//
// Run (no build step; Java's single-file source launcher; the Kafka Streams jars of the
// broker's version):
//   java -cp "$(scripts/kafka classpath-of benches/peers/kstreams/pom.xml)" \
//       scripts/java/JoinsWindowed.java BOOTSTRAP APPLICATION_ID MODE WITHIN_MS GRACE_MS LEFT RIGHT OUTPUT
//
// MODE: inner (LEFT.join(RIGHT)), left (LEFT.leftJoin(RIGHT)), outer (LEFT.outerJoin(RIGHT)),
// all with JoinWindows.ofTimeDifferenceAndGrace(WITHIN_MS, GRACE_MS). Keys and values are
// Strings; the joiner writes "LEFT+RIGHT" ("-" for a missing side) to OUTPUT, keyed by the
// join key.
//
// Processing: at least once, commit.interval.ms=100, record cache off. The emit interval of
// unmatched (left/outer) results, which Kafka Streams throttles by the wall clock (1 s by
// default, an internal setting), is 0 here, so that they depend on the records only.
//
// Protocol (the runner's, shared by scripts/java/Joins*.java): prints "RUNNING" once the
// instance runs ("FAILED" if it went to ERROR first). Then reads commands, one a line, from
// stdin, answering each with one line: `get KEY` → "-" (this app has no queryable store);
// `stop` (or the end of stdin) closes the instance and prints "CLOSED". Exit status 1 if the
// instance went to ERROR.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.ValueJoiner;

public class JoinsWindowed {
    public static void main(String[] args) throws Exception {
        if (args.length != 8) {
            System.err.println("usage: JoinsWindowed BOOTSTRAP APPLICATION_ID MODE WITHIN_MS GRACE_MS LEFT RIGHT OUTPUT");
            System.exit(2);
        }
        String bootstrap = args[0], appId = args[1], mode = args[2];
        long within = Long.parseLong(args[3]), grace = Long.parseLong(args[4]);
        String leftTopic = args[5], rightTopic = args[6], output = args[7];
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        p.put(StreamsConfig.STATE_DIR_CONFIG, Files.createTempDirectory("joins-windowed").toString());
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        p.put("__emit.interval.ms.kstreams.outer.join.spurious.results.fix__", 0L);

        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, String> left =
            builder.stream(leftTopic, Consumed.with(Serdes.String(), Serdes.String()));
        KStream<String, String> right =
            builder.stream(rightTopic, Consumed.with(Serdes.String(), Serdes.String()));
        ValueJoiner<String, String, String> joiner =
            (l, r) -> (l == null ? "-" : l) + "+" + (r == null ? "-" : r);
        JoinWindows windows =
            JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(within), Duration.ofMillis(grace));
        StreamJoined<String, String, String> serdes =
            StreamJoined.with(Serdes.String(), Serdes.String(), Serdes.String());
        KStream<String, String> joined;
        switch (mode) {
            case "inner": joined = left.join(right, joiner, windows, serdes); break;
            case "left": joined = left.leftJoin(right, joiner, windows, serdes); break;
            case "outer": joined = left.outerJoin(right, joiner, windows, serdes); break;
            default:
                System.err.println("unknown MODE " + mode + " (inner, left, outer)");
                System.exit(2);
                return;
        }
        joined.to(output, Produced.with(Serdes.String(), Serdes.String()));

        AtomicBoolean failed = new AtomicBoolean(false);
        CountDownLatch running = new CountDownLatch(1);
        try (KafkaStreams streams = new KafkaStreams(builder.build(), p)) {
            streams.setStateListener((now, before) -> {
                if (now == KafkaStreams.State.RUNNING) {
                    running.countDown();
                }
                if (now == KafkaStreams.State.ERROR) {
                    failed.set(true);
                    running.countDown();
                }
            });
            streams.setUncaughtExceptionHandler(e -> {
                e.printStackTrace();
                failed.set(true);
                return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
                    .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
            });
            streams.start();
            running.await();
            System.out.println(failed.get() ? "FAILED" : "RUNNING");
            System.out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null && !line.equals("stop")) {
                System.out.println(line.startsWith("get ") ? "-" : "? unknown command: " + line);
                System.out.flush();
            }
            streams.close(Duration.ofSeconds(30));
        }
        System.out.println("CLOSED");
        System.exit(failed.get() ? 1 : 0);
    }
}
