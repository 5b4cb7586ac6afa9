// StreamsCount.java — a Kafka Streams word count per key with processing.guarantee=exactly_once_v2,
// for checking a broker's transactions with Kafka Streams (testkit/tests/transactions.rs runs
// it against the Rust mock, and against the mock and real Kafka to compare what each committed).
//
// Run (no build step; Java's single-file source launcher; the Kafka Streams jars of the
// broker's version):
//   java -cp "$(scripts/kafka classpath-of benches/peers/kstreams/pom.xml)" \
//       scripts/java/StreamsCount.java BOOTSTRAP INPUT OUTPUT APPLICATION_ID
//
// Topology: INPUT (String keys and values) -> groupByKey -> count (in-memory store, so the
// changelog is the only durable state) -> OUTPUT (key, count as a decimal string), with
// commit.interval.ms=100 and the record cache off, so every update is sent in the
// transaction of its input. Runs until a line arrives on stdin (or stdin closes), then closes
// the KafkaStreams instance gracefully. Prints "RUNNING" once the instance is running and
// "CLOSED" at the end; exit status 1 if the instance went to ERROR.
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
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.Stores;

public class StreamsCount {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], input = args[1], output = args[2], appId = args[3];
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        p.put(StreamsConfig.STATE_DIR_CONFIG, Files.createTempDirectory("streams-count").toString());
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
            .groupByKey()
            .count(Materialized.<String, Long>as(Stores.inMemoryKeyValueStore("counts"))
                .withKeySerde(Serdes.String())
                .withValueSerde(Serdes.Long()))
            .toStream()
            .mapValues(v -> Long.toString(v))
            .to(output, Produced.with(Serdes.String(), Serdes.String()));

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
            new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
            streams.close(Duration.ofSeconds(30));
        }
        System.out.println("CLOSED");
        System.exit(failed.get() ? 1 : 0);
    }
}
