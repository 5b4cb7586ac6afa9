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
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.Stores;

/**
 * The Kafka Streams side of benches/peers (see benches/peers/README.md): the same topologies as
 * our side, on the Kafka Streams jars of the broker's version, all settings at their defaults
 * except application.id, bootstrap.servers, auto.offset.reset=earliest and a temporary state.dir
 * (and the producer's linger.ms with --linger-ms, Kafka Streams' own default being 100;
 * processing.guarantee with --guarantee exactly_once_v2|at_least_once; commit.interval.ms with
 * --commit-interval-ms, whose default is 30 s under at_least_once and 100 ms under exactly-once;
 * a fixed state.dir, kept, with --state-dir; group.instance.id, static membership, with
 * --instance-id).
 *
 * <pre>
 * java -cp CLASSES:$(scripts/kafka classpath-of benches/peers/kstreams/pom.xml) PeerStreams \
 *     TOPOLOGY BOOTSTRAP INPUT OUTPUT N [--app-id ID] [--linger-ms MS] [--guarantee G]
 *     [--commit-interval-ms MS] [--state-dir DIR] [--instance-id NAME]
 *     [--profiles TOPIC]
 * </pre>
 *
 * TOPOLOGY is one of
 *   stateless      benches/streams-vs-faust's pipeline: JSON purchases, keep amount >= 10, map to
 *                  {username, currency, amount_cents}, produce keyed by username (JSON)
 *   count-rocksdb  groupByKey().count() with the default (RocksDB) store
 *   count-memory   the same with Materialized.as(Stores.inMemoryKeyValueStore(..))
 *   window-hopping groupByKey().windowedBy(5 min windows advancing by 1 min, 1 min grace).count(),
 *                  on the records' own timestamps
 *   window-tumbling the same over 5 min tumbling windows (1 min grace)
 *   join           the stream-table join: builder.table(--profiles TOPIC) (JSON profiles
 *                  {username, level, country}, the default RocksDB store) inner-joined by
 *                  stream.join(table, joiner) with INPUT's purchases, each match to OUTPUT as
 *                  {username, currency, amount, level, country} keyed by username (our side:
 *                  table_bench join)
 *   first-event    the restart benchmark (benches/tables/recovery.sh; table_bench first-event):
 *                  sends one record (key user-first) to INPUT, then counts INPUT by key in a
 *                  RocksDB store "counts" (changelog ID-counts-changelog; OUTPUT unused); prints
 *                  {@code first-event ms=.. restored=R restore_ms=..} when the first event is
 *                  processed (ms from JVM start; R records restored from the changelog before
 *                  it), waits for N events (or --until N), then for two commit intervals (at least 1 s), prints
 *                  {@code ready: kill me} and waits to be killed
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

  /** A table record of the join: a user's profile, keyed by username. */
  public static final class Profile {
    public String username;
    public String level;
    public String country;
  }

  /** An output record of the join: the purchase with its user's profile. */
  public static final class Enriched {
    public String username;
    public String currency;
    public long amount;
    public String level;
    public String country;

    Enriched(Purchase p, Profile profile) {
      this.username = p.username;
      this.currency = p.currency;
      this.amount = p.amount;
      this.level = profile.level;
      this.country = profile.country;
    }
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
    // Positional arguments and --options, in any order (benches/peers/run.sh puts a side's
    // options before BOOTSTRAP INPUT OUTPUT N).
    java.util.List<String> positional = new java.util.ArrayList<>();
    java.util.Map<String, String> options = new java.util.HashMap<>();
    for (int i = 0; i < args.length; i++) {
      if (args[i].startsWith("--") && i + 1 < args.length) {
        options.put(args[i], args[++i]);
      } else {
        positional.add(args[i]);
      }
    }
    java.util.Set<String> known =
        java.util.Set.of("--app-id", "--linger-ms", "--guarantee", "--commit-interval-ms",
            "--state-dir", "--instance-id", "--until", "--profiles");
    for (String option : options.keySet()) {
      if (!known.contains(option)) {
        System.err.println("PeerStreams: unknown option " + option);
        System.exit(2);
      }
    }
    if (positional.size() != 5) {
      System.err.println(
          "usage: PeerStreams stateless|count-rocksdb|count-memory|window-hopping|window-tumbling|join|first-event BOOTSTRAP INPUT OUTPUT N [--app-id ID] [--profiles TOPIC] [--linger-ms MS] [--guarantee G] [--commit-interval-ms MS] [--state-dir DIR] [--instance-id NAME] [--until N]");
      System.exit(2);
    }
    String topology = positional.get(0);
    String bootstrap = positional.get(1);
    String input = positional.get(2);
    String output = positional.get(3);
    // N, also as an option (benches/tables/recovery.sh appends --until N)
    long nArg = Long.parseLong(options.getOrDefault("--until", positional.get(4)));
    String appId = options.getOrDefault("--app-id", "kstreams-bench");
    String lingerMs = options.get("--linger-ms");
    String guarantee = options.get("--guarantee");
    String commitIntervalMs = options.get("--commit-interval-ms");
    String fixedStateDir = options.get("--state-dir");
    String instanceId = options.get("--instance-id");
    String profilesTopic = options.get("--profiles");

    long n = nArg;
    AtomicLong events = new AtomicLong();
    AtomicLong outputs = new AtomicLong();
    AtomicLong firstNs = new AtomicLong();
    AtomicLong lastNs = new AtomicLong();
    CountDownLatch done = new CountDownLatch(1);

    if (topology.equals("first-event")) {
      firstEvent(startedNs, bootstrap, input, n, appId, guarantee, commitIntervalMs, fixedStateDir, instanceId);
      return;
    }

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
      case "window-hopping", "window-tumbling" ->
          purchases.groupByKey(grouped)
              .windowedBy(
                  TimeWindows.ofSizeAndGrace(Duration.ofMinutes(5), Duration.ofMinutes(1))
                      .advanceBy(Duration.ofMinutes(topology.equals("window-hopping") ? 1 : 5)))
              .count()
              .toStream()
              .map((w, c) -> KeyValue.pair(w.key() + "@" + w.window().start(), c))
              .peek((k, v) -> outputs.incrementAndGet())
              .to(output, Produced.with(Serdes.String(), Serdes.Long()));
      case "join" -> {
        if (profilesTopic == null) {
          System.err.println("PeerStreams: join needs --profiles TOPIC");
          System.exit(2);
        }
        KTable<String, Profile> profiles =
            builder.table(profilesTopic, Consumed.with(Serdes.String(), json(Profile.class)));
        purchases
            .join(profiles, Enriched::new)
            .peek((k, v) -> outputs.incrementAndGet())
            .to(output, Produced.with(Serdes.String(), json(Enriched.class)));
      }
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
    if (guarantee != null) props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
    if (commitIntervalMs != null) props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, commitIntervalMs);

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

  /** The first-event topology (see the class comment); never returns normally. */
  static void firstEvent(
      long startedNs, String bootstrap, String input, long n, String appId, String guarantee,
      String commitIntervalMs, String stateDir, String instanceId) throws Exception {
    Properties pp = new Properties();
    pp.put("bootstrap.servers", bootstrap);
    try (var producer =
        new org.apache.kafka.clients.producer.KafkaProducer<String, String>(
            pp, Serdes.String().serializer(), Serdes.String().serializer())) {
      producer.send(new org.apache.kafka.clients.producer.ProducerRecord<>(input, "user-first", "1")).get();
    }

    AtomicLong events = new AtomicLong();
    CountDownLatch first = new CountDownLatch(1);
    CountDownLatch all = new CountDownLatch(1);
    AtomicLong firstNs = new AtomicLong();
    AtomicLong allNs = new AtomicLong();
    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
        .peek(
            (k, v) -> {
              long count = events.incrementAndGet();
              if (count == 1) {
                firstNs.set(System.nanoTime() - startedNs);
                first.countDown();
              }
              if (count == n) {
                allNs.set(System.nanoTime() - startedNs);
                all.countDown();
              }
            })
        .groupByKey(Grouped.with(Serdes.String(), Serdes.String()))
        .count(Materialized.as("counts"));

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(StreamsConfig.STATE_DIR_CONFIG,
        stateDir != null ? stateDir : Files.createTempDirectory("peer-kstreams-").toString());
    props.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
    if (guarantee != null) props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
    if (commitIntervalMs != null) props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, commitIntervalMs);
    if (instanceId != null) props.put(StreamsConfig.consumerPrefix("group.instance.id"), instanceId);

    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    AtomicLong restored = new AtomicLong();
    AtomicLong restoreStartNs = new AtomicLong();
    AtomicLong restoreEndNs = new AtomicLong();
    streams.setGlobalStateRestoreListener(
        new org.apache.kafka.streams.processor.StateRestoreListener() {
          @Override
          public void onRestoreStart(
              org.apache.kafka.common.TopicPartition tp, String store, long start, long end) {
            restoreStartNs.compareAndSet(0, System.nanoTime());
          }

          @Override
          public void onBatchRestored(
              org.apache.kafka.common.TopicPartition tp, String store, long end, long batch) {
            restored.addAndGet(batch);
          }

          @Override
          public void onRestoreEnd(
              org.apache.kafka.common.TopicPartition tp, String store, long total) {
            restoreEndNs.set(System.nanoTime());
          }
        });
    streams.setUncaughtExceptionHandler(
        e -> {
          System.err.println("PeerStreams: stream thread failed: " + e);
          System.exit(1);
          return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
              .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
    streams.start();
    first.await();
    long restoreNs = restoreEndNs.get() - restoreStartNs.get();
    System.out.printf(
        "first-event ms=%.1f restored=%d restore_ms=%.1f%n",
        firstNs.get() / 1e6, restored.get(), restoreStartNs.get() == 0 ? 0.0 : restoreNs / 1e6);
    System.out.flush();
    all.await();
    if (n > 1) System.out.printf("built events=%d secs=%.3f%n", n, allNs.get() / 1e9);
    long interval = commitIntervalMs != null ? Long.parseLong(commitIntervalMs)
        : ("at_least_once".equals(guarantee) || guarantee == null ? 30000 : 100);
    Thread.sleep(Math.max(1000, 2 * interval));
    System.out.println("ready: kill me");
    System.out.flush();
    Thread.sleep(Long.MAX_VALUE);
  }
}
