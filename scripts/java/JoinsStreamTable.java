// JoinsStreamTable.java — Kafka Streams' stream-table and stream-global-table joins, for comparing
// ours with them record for record (streams/tests/joins_kstreams.rs, through the runner in
// streams/tests/common/kstreams.rs).
//
// Run (no build step; Java's single-file source launcher; the Kafka Streams jars of the
// broker's version):
//   java -cp "$(scripts/kafka classpath-of benches/peers/kstreams/pom.xml)" \
//       scripts/java/JoinsStreamTable.java BOOTSTRAP APPLICATION_ID MODE TABLE STREAM OUTPUT
//
// MODE:
//   inner         STREAM.join(table(TABLE))        KStream-KTable inner join
//   left          STREAM.leftJoin(table(TABLE))    KStream-KTable left join
//   global        STREAM.join(globalTable(TABLE), extractor)      KStream-GlobalKTable inner join
//   global-left   STREAM.leftJoin(globalTable(TABLE), extractor)  KStream-GlobalKTable left join
// Keys and values are Strings. The joiner writes "STREAM_VALUE|TABLE_VALUE" ("null" for no
// table value in a left join) with the stream record's key to OUTPUT. The global modes' key
// extractor takes the stream value's text before its first ':' (the table key); a value with
// no ':' maps to a null key, which Kafka Streams drops with a warning.
//
// The table is materialized in memory as "table-store" (queryable). Processing: at least once,
// commit.interval.ms=100, record cache off, so every input is joined and committed promptly.
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

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.GlobalKTable;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.KeyValueMapper;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.ValueJoiner;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.Stores;

public class JoinsStreamTable {
    static final String STORE = "table-store";

    public static void main(String[] args) throws Exception {
        if (args.length != 6) {
            System.err.println("usage: JoinsStreamTable BOOTSTRAP APPLICATION_ID MODE TABLE STREAM OUTPUT");
            System.exit(2);
        }
        String bootstrap = args[0], appId = args[1], mode = args[2];
        String tableTopic = args[3], streamTopic = args[4], output = args[5];
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        p.put(StreamsConfig.STATE_DIR_CONFIG, Files.createTempDirectory("joins-stream-table").toString());
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");

        Materialized<String, String, KeyValueStore<Bytes, byte[]>> store =
            Materialized.<String, String>as(Stores.inMemoryKeyValueStore(STORE))
                .withKeySerde(Serdes.String())
                .withValueSerde(Serdes.String());
        ValueJoiner<String, String, String> joiner = (v, t) -> v + "|" + (t == null ? "null" : t);
        KeyValueMapper<String, String, String> extractor = (k, v) -> {
            int colon = v.indexOf(':');
            return colon < 0 ? null : v.substring(0, colon);
        };

        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, String> stream =
            builder.stream(streamTopic, Consumed.with(Serdes.String(), Serdes.String()));
        KStream<String, String> joined;
        switch (mode) {
            case "inner":
            case "left": {
                KTable<String, String> table =
                    builder.table(tableTopic, Consumed.with(Serdes.String(), Serdes.String()), store);
                joined = mode.equals("inner") ? stream.join(table, joiner) : stream.leftJoin(table, joiner);
                break;
            }
            case "global":
            case "global-left": {
                GlobalKTable<String, String> table =
                    builder.globalTable(tableTopic, Consumed.with(Serdes.String(), Serdes.String()), store);
                joined = mode.equals("global")
                    ? stream.join(table, extractor, joiner)
                    : stream.leftJoin(table, extractor, joiner);
                break;
            }
            default:
                System.err.println("unknown MODE " + mode + " (inner, left, global, global-left)");
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
