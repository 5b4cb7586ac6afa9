import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.Stores;

/**
 * The Kafka Streams side of benches/peers (see benches/peers/README.md): the same topologies as
 * our side, on the Kafka Streams jars of the broker's version, all settings at their defaults
 * except application.id, bootstrap.servers, auto.offset.reset=earliest and a temporary state.dir
 * (and the producer's linger.ms with --linger-ms; Kafka Streams' own default is 100).
 *
 * <pre>
 * java -cp CLASSES:$(scripts/kafka classpath-of benches/peers/kstreams/pom.xml) PeerStreams \
 *     TOPOLOGY BOOTSTRAP INPUT OUTPUT N [--app-id ID] [--linger-ms MS]
 * </pre>
 *
 * TOPOLOGY is one of
 *   stateless      benches/streams-vs-faust's pipeline: JSON purchases, keep amount >= 10, map to
 *                  {username, currency, amount_cents}, produce keyed by username (JSON)
 *   count-rocksdb  groupByKey().count() with the default (RocksDB) store
 *   count-memory   the same with Materialized.as(Stores.inMemoryKeyValueStore(..))
 *   window-hopping groupByKey().windowedBy(5 min windows advancing by 1 min, 1 min grace).count(),
 *                  on the records' own timestamps
 *
 * Runs from the earliest offsets until it has seen N input events, then closes the KafkaStreams
 * instance (graceful: flushes stores and the producer, commits, leaves the group) and prints
 * {@code kstreams-TOPOLOGY events=N outputs=K secs=.. ev_per_s=.. first_event_s=.. last_event_s=..},
 * timed from JVM start like our streams_bench. outputs counts the records handed to the output
 * topic's sink (for the counts: the updates the record cache let through).
 */
public final class PeerStreams {
  /** An input record, as benches/src/bin/streams_bench.rs's Purchase. */
  public static final class Purchase {
    public String username;
    public String currency;
    public long amount;
    public String note;
  }

  /** An output record of the stateless pipeline. */
  public static final class Priced {
    public String username;
    public String currency;
    public long amount_cents;

    Priced(String username, String currency, long amountCents) {
      this.username = username;
      this.currency = currency;
      this.amount_cents = amountCents;
    }
  }

  static final ObjectMapper JSON =
      new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

  /** JSON through Jackson, as a Kafka Streams user would write it; a bad record fails loudly. */
  static <T> Serde<T> json(Class<T> type) {
    Serializer<T> ser =
        (topic, value) -> {
          try {
            return value == null ? null : JSON.writeValueAsBytes(value);
          } catch (Exception e) {
            throw new IllegalStateException("cannot encode " + type.getSimpleName(), e);
          }
        };
    Deserializer<T> de =
        (topic, bytes) -> {
          try {
            return bytes == null ? null : JSON.readValue(bytes, type);
          } catch (Exception e) {
            throw new IllegalStateException("cannot decode " + type.getSimpleName() + " from " + topic, e);
          }
        };
    return Serdes.serdeFrom(ser, de);
  }

  public static void main(String[] args) throws Exception {
    long startedNs = System.nanoTime();
    if (args.length < 5) {
      System.err.println(
          "usage: PeerStreams stateless|count-rocksdb|count-memory|window-hopping BOOTSTRAP INPUT OUTPUT N [--app-id ID] [--linger-ms MS]");
      System.exit(2);
    }
    String topology = args[0];
    String bootstrap = args[1];
    String input = args[2];
    String output = args[3];
    long n = Long.parseLong(args[4]);
    String appId = "kstreams-bench";
    String lingerMs = null;
    for (int i = 5; i + 1 < args.length; i += 2) {
      if (args[i].equals("--app-id")) {
        appId = args[i + 1];
      } else if (args[i].equals("--linger-ms")) {
        lingerMs = args[i + 1];
      } else {
        System.err.println("PeerStreams: unknown option " + args[i]);
        System.exit(2);
      }
    }

    AtomicLong events = new AtomicLong();
    AtomicLong outputs = new AtomicLong();
    AtomicLong firstNs = new AtomicLong();
    AtomicLong lastNs = new AtomicLong();
    CountDownLatch done = new CountDownLatch(1);

    StreamsBuilder builder = new StreamsBuilder();
    KStream<String, Purchase> purchases =
        builder.stream(input, Consumed.with(Serdes.String(), json(Purchase.class)))
            .peek(
                (k, v) -> {
                  long count = events.incrementAndGet();
                  if (count == 1) firstNs.set(System.nanoTime() - startedNs);
                  if (count == n) {
                    lastNs.set(System.nanoTime() - startedNs);
                    done.countDown();
                  }
                });
    Grouped<String, Purchase> grouped = Grouped.with(Serdes.String(), json(Purchase.class));
    switch (topology) {
      case "stateless" ->
          purchases
              .filter((k, p) -> p.amount >= 10)
              .mapValues(p -> new Priced(p.username, p.currency, p.amount * 100))
              .peek((k, v) -> outputs.incrementAndGet())
              .to(output, Produced.with(Serdes.String(), json(Priced.class)));
      case "count-rocksdb" ->
          purchases.groupByKey(grouped).count().toStream()
              .peek((k, v) -> outputs.incrementAndGet())
              .to(output, Produced.with(Serdes.String(), Serdes.Long()));
      case "count-memory" ->
          purchases.groupByKey(grouped)
              .count(
                  Materialized.<String, Long>as(Stores.inMemoryKeyValueStore("counts"))
                      .withKeySerde(Serdes.String())
                      .withValueSerde(Serdes.Long()))
              .toStream()
              .peek((k, v) -> outputs.incrementAndGet())
              .to(output, Produced.with(Serdes.String(), Serdes.Long()));
      case "window-hopping" ->
          purchases.groupByKey(grouped)
              .windowedBy(
                  TimeWindows.ofSizeAndGrace(Duration.ofMinutes(5), Duration.ofMinutes(1))
                      .advanceBy(Duration.ofMinutes(1)))
              .count()
              .toStream()
              .map((w, c) -> KeyValue.pair(w.key() + "@" + w.window().start(), c))
              .peek((k, v) -> outputs.incrementAndGet())
              .to(output, Produced.with(Serdes.String(), Serdes.Long()));
      default -> {
        System.err.println("PeerStreams: unknown topology " + topology);
        System.exit(2);
      }
    }

    Path stateDir = Files.createTempDirectory("peer-kstreams-");
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
    props.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
    if (lingerMs != null) props.put(StreamsConfig.producerPrefix("linger.ms"), lingerMs);

    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    AtomicLong failed = new AtomicLong();
    streams.setUncaughtExceptionHandler(
        e -> {
          System.err.println("PeerStreams: stream thread failed: " + e);
          failed.incrementAndGet();
          done.countDown();
          return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
              .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
    streams.start();
    done.await();
    streams.close(Duration.ofSeconds(60));
    try (var paths = Files.walk(stateDir)) {
      paths.sorted(Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
    }
    double secs = (System.nanoTime() - startedNs) / 1e9;
    if (failed.get() > 0 || events.get() < n) {
      System.err.printf("PeerStreams: stopped after %d of %d input events%n", events.get(), n);
      System.exit(1);
    }
    System.out.printf(
        "kstreams-%s events=%d outputs=%d secs=%.3f ev_per_s=%.1f first_event_s=%.3f last_event_s=%.3f%n",
        topology, events.get(), outputs.get(), secs, events.get() / secs,
        firstNs.get() / 1e9, lastNs.get() / 1e9);
    System.out.flush();
    System.exit(0);
  }
}
