// Transactions.java — Kafka's Java transactional producer and read_committed consumer, for
// checking a broker's transaction coordinator (testkit/tests/transactions.rs runs it against
// the Rust mock, and against the mock and real Kafka to compare what each committed).
//
// Run (no build step; Java's single-file source launcher):
//   java -cp "$(scripts/kafka classpath)" scripts/java/Transactions.java MODE BOOTSTRAP TOPIC [ARGS]
//
// Modes:
//   produce BOOTSTRAP TOPIC TXID N GROUP
//       N transactions with transactional.id TXID; transaction i sends the records
//       "t<i>-r<j>" = "v<i>-<j>" (j = 0..2, keyed, so they spread over the partitions) and
//       commits the offset i+1 of TOPIC partition 0 for GROUP (sendOffsetsToTransaction);
//       even i commit, odd i abort. Prints "COMMITTED <TAB> KEY <TAB> VALUE" for each record
//       of a committed transaction, after its commit returned.
//   fence BOOTSTRAP TOPIC TXID
//       producer A begins a transaction and sends "zombie"; producer B (same TXID) initializes,
//       which fences A and aborts its transaction; A's commit must fail: prints
//       "FENCED <TAB> EXCEPTION CLASS". Then B commits "survivor": "COMMITTED <TAB> survivor <TAB> b".
//   timeout BOOTSTRAP TOPIC TXID
//       transaction.timeout.ms=1000: begins a transaction, sends "late" and flushes, prints
//       "SENT", then waits for a line on stdin (the caller sends it once the broker aborted the
//       transaction) and commits: prints "COMMIT FAILED <TAB> EXCEPTION CLASS" or "COMMITTED".
//   consume BOOTSTRAP TOPIC
//       an isolation.level=read_committed consumer reads every partition from the beginning to
//       its end offset (the last stable offset) and prints "KEY <TAB> VALUE" per record.
// Exit status is non-zero on an unexpected error.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class Transactions {
    static KafkaProducer<String, String> producer(String bootstrap, String txid, int timeoutMs) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txid);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, timeoutMs);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30000);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        return new KafkaProducer<>(p);
    }

    static void produce(String bootstrap, String topic, String txid, int n, String group) {
        try (KafkaProducer<String, String> producer = producer(bootstrap, txid, 60000)) {
            producer.initTransactions();
            for (int i = 0; i < n; i++) {
                producer.beginTransaction();
                List<String[]> sent = new ArrayList<>();
                for (int j = 0; j < 3; j++) {
                    String key = "t" + i + "-r" + j;
                    String value = "v" + i + "-" + j;
                    producer.send(new ProducerRecord<>(topic, key, value));
                    sent.add(new String[] {key, value});
                }
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                offsets.put(new TopicPartition(topic, 0), new OffsetAndMetadata(i + 1));
                producer.sendOffsetsToTransaction(offsets, new ConsumerGroupMetadata(group));
                if (i % 2 == 0) {
                    producer.commitTransaction();
                    for (String[] r : sent) {
                        System.out.println("COMMITTED\t" + r[0] + "\t" + r[1]);
                    }
                } else {
                    producer.abortTransaction();
                }
            }
        }
    }

    static void fence(String bootstrap, String topic, String txid) throws Exception {
        KafkaProducer<String, String> a = producer(bootstrap, txid, 60000);
        a.initTransactions();
        a.beginTransaction();
        a.send(new ProducerRecord<>(topic, "zombie", "a")).get();
        try (KafkaProducer<String, String> b = producer(bootstrap, txid, 60000)) {
            b.initTransactions();
            try {
                a.commitTransaction();
                System.out.println("NOT FENCED");
            } catch (Exception e) {
                System.out.println("FENCED\t" + e.getClass().getSimpleName());
            }
            a.close(Duration.ZERO);
            b.beginTransaction();
            b.send(new ProducerRecord<>(topic, "survivor", "b"));
            b.commitTransaction();
            System.out.println("COMMITTED\tsurvivor\tb");
        }
    }

    static void timeout(String bootstrap, String topic, String txid) throws Exception {
        try (KafkaProducer<String, String> producer = producer(bootstrap, txid, 1000)) {
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, "late", "x"));
            producer.flush();
            System.out.println("SENT");
            System.out.flush();
            new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
            try {
                producer.commitTransaction();
                System.out.println("COMMITTED");
            } catch (Exception e) {
                System.out.println("COMMIT FAILED\t" + e.getClass().getSimpleName());
            }
        }
    }

    static void consume(String bootstrap, String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo info : consumer.partitionsFor(topic, Duration.ofSeconds(30))) {
                parts.add(new TopicPartition(topic, info.partition()));
            }
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            Map<TopicPartition, Long> end = consumer.endOffsets(parts, Duration.ofSeconds(30));
            long deadline = System.currentTimeMillis() + 60000;
            while (true) {
                boolean done = true;
                for (TopicPartition tp : parts) {
                    if (consumer.position(tp, Duration.ofSeconds(30)) < end.get(tp)) {
                        done = false;
                    }
                }
                if (done) {
                    break;
                }
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("not at the end offsets " + end + " after 60 s");
                }
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    System.out.println(r.key() + "\t" + r.value());
                }
            }
        }
    }

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "produce" -> produce(args[1], args[2], args[3], Integer.parseInt(args[4]), args[5]);
            case "fence" -> fence(args[1], args[2], args[3]);
            case "timeout" -> timeout(args[1], args[2], args[3]);
            case "consume" -> consume(args[1], args[2]);
            default -> throw new IllegalArgumentException("unknown mode " + args[0]);
        }
    }
}
