// JoinsTableTable.java — Kafka Streams' KTable-KTable joins (inner, left, outer) and foreign-key
// KTable-KTable joins (inner, left), for comparing ours with them on the final contents of the
// result tables (streams/tests/table_joins_kstreams.rs, through the runner in
// streams/tests/common/kstreams.rs).
//
// Run (no build step; Java's single-file source launcher; the Kafka Streams jars of the
// broker's version):
//   java -cp "$(scripts/kafka classpath-of benches/peers/kstreams/pom.xml)" \
//       scripts/java/JoinsTableTable.java BOOTSTRAP APPLICATION_ID LEFT RIGHT ORDERS CUSTOMERS OUT
//
// Keys and values are Strings; a null value is a delete (tombstone).
//   table(LEFT).join(table(RIGHT))        "l|r"                     -> OUT-inner
//   table(LEFT).leftJoin(table(RIGHT))    "l|r", "null" for no r    -> OUT-left
//   table(LEFT).outerJoin(table(RIGHT))   "l|r", "null" for none    -> OUT-outer
//   table(ORDERS).join(table(CUSTOMERS), order -> its text before ':')       "o|c"  -> OUT-fk-inner
//   table(ORDERS).leftJoin(table(CUSTOMERS), order -> its text before ':')   "o|c"  -> OUT-fk-left
// Each result table's changes go to its topic (toStream: updates, and tombstones when a key's
// result is deleted); the last record per key is the table's content. The inner join result
// is materialized in memory as "table-store" (queryable).
//
// Processing: at least once, commit.interval.ms=100, record cache off.
//
// Protocol (the runner's, shared by scripts/java/Joins*.java): prints "RUNNING" once the
// instance runs ("FAILED" if it went to ERROR first). Then reads commands, one a line, from
// stdin, answering each with one line on stdout:
//   get KEY   "=VALUE" when table-store holds KEY, "-" when it does not
//   stop      closes the instance (so does the end of stdin), then prints "CLOSED"
// Exit status 1 if the instance went to ERROR.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.Stores;

public class JoinsTableTable {
    static final String STORE = "table-store";

    static String text(String v) {
        return v == null ? "null" : v;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 7) {
            System.err.println("usage: JoinsTableTable BOOTSTRAP APPLICATION_ID LEFT RIGHT ORDERS CUSTOMERS OUT");
            System.exit(2);
        }
        String bootstrap = args[0], appId = args[1];
        String leftTopic = args[2], rightTopic = args[3], ordersTopic = args[4], customersTopic = args[5];
        String out = args[6];
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        p.put(StreamsConfig.STATE_DIR_CONFIG, Files.createTempDirectory("joins-table-table").toString());
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");

        StreamsBuilder builder = new StreamsBuilder();
        Consumed<String, String> strings = Consumed.with(Serdes.String(), Serdes.String());
        Produced<String, String> produced = Produced.with(Serdes.String(), Serdes.String());
        KTable<String, String> left = builder.table(leftTopic, strings);
        KTable<String, String> right = builder.table(rightTopic, strings);
        KTable<String, String> orders = builder.table(ordersTopic, strings);
        KTable<String, String> customers = builder.table(customersTopic, strings);

        Materialized<String, String, KeyValueStore<Bytes, byte[]>> store =
            Materialized.<String, String>as(Stores.inMemoryKeyValueStore(STORE))
                .withKeySerde(Serdes.String())
                .withValueSerde(Serdes.String());
        left.join(right, (l, r) -> l + "|" + r, store).toStream().to(out + "-inner", produced);
        left.leftJoin(right, (l, r) -> l + "|" + text(r)).toStream().to(out + "-left", produced);
        left.outerJoin(right, (l, r) -> text(l) + "|" + text(r)).toStream().to(out + "-outer", produced);
        Function<String, String> customerOf = o -> o.substring(0, o.indexOf(':'));
        orders.join(customers, customerOf, (o, c) -> o + "|" + c)
            .toStream().to(out + "-fk-inner", produced);
        orders.leftJoin(customers, customerOf, (o, c) -> o + "|" + text(c))
            .toStream().to(out + "-fk-left", produced);

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
                if (line.startsWith("get ")) {
                    System.out.println(get(streams, line.substring(4)));
                } else {
                    System.out.println("? unknown command: " + line);
                }
                System.out.flush();
            }
            streams.close(Duration.ofSeconds(30));
        }
        System.out.println("CLOSED");
        System.exit(failed.get() ? 1 : 0);
    }

    /** "=VALUE" or "-"; "-" too while the store is not queryable yet (a rebalance). */
    static String get(KafkaStreams streams, String key) {
        try {
            ReadOnlyKeyValueStore<String, String> view = streams.store(
                StoreQueryParameters.fromNameAndType(STORE, QueryableStoreTypes.keyValueStore()));
            String value = view.get(key);
            return value == null ? "-" : "=" + value;
        } catch (org.apache.kafka.streams.errors.InvalidStateStoreException e) {
            return "-";
        }
    }
}
