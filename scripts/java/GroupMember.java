// A Java consumer-group member for mixed-group tests with our client.
//
// Usage: java -cp "$(scripts/kafka classpath)" scripts/java/GroupMember.java \
//            BOOTSTRAP TOPIC GROUP STRATEGY [SECONDS]
//
// STRATEGY is a comma-separated list of assignor names, most preferred first: range,
// roundrobin, cooperative-sticky (partition.assignment.strategy). Subscribes to TOPIC in
// GROUP (session.timeout.ms=6000, heartbeat.interval.ms=500, auto.offset.reset=earliest)
// and polls until a line "stop" arrives on stdin, stdin closes, or SECONDS (default 60)
// pass. Prints to stdout, one line each, flushed:
//   ASSIGNED <generation> <p,p,...>   after every rebalance: the whole current assignment
//                                     (partition numbers, sorted; empty after the space if none)
//   RECORDS <n>                       every second while records arrive: total received
//   CLOSED                            after consumer.close() (which sends LeaveGroup)
import java.time.Duration;
import java.util.*;
import java.util.stream.Collectors;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class GroupMember {
    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            System.err.println("usage: GroupMember BOOTSTRAP TOPIC GROUP STRATEGY [SECONDS]");
            System.exit(2);
        }
        String bootstrap = args[0], topic = args[1], group = args[2];
        long seconds = args.length > 4 ? Long.parseLong(args[4]) : 60;
        List<String> classes = new ArrayList<>();
        for (String name : args[3].split(",")) {
            switch (name.trim()) {
                case "range": classes.add(RangeAssignor.class.getName()); break;
                case "roundrobin": classes.add(RoundRobinAssignor.class.getName()); break;
                case "cooperative-sticky": classes.add(CooperativeStickyAssignor.class.getName()); break;
                default: System.err.println("unknown assignor " + name); System.exit(2);
            }
        }
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "java-group-member");
        props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, String.join(",", classes));
        props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
        props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());

        final boolean[] stop = {false};
        Thread stdin = new Thread(() -> {
            try (Scanner in = new Scanner(System.in)) {
                while (in.hasNextLine()) {
                    if (in.nextLine().trim().equals("stop")) break;
                }
            }
            synchronized (stop) { stop[0] = true; }
        });
        stdin.setDaemon(true);
        stdin.start();

        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                public void onPartitionsRevoked(Collection<TopicPartition> parts) {}
                public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                    String list = consumer.assignment().stream()
                        .map(TopicPartition::partition).sorted()
                        .map(String::valueOf).collect(Collectors.joining(","));
                    System.out.println("ASSIGNED " + consumer.groupMetadata().generationId() + " " + list);
                    System.out.flush();
                }
            });
            long deadline = System.currentTimeMillis() + seconds * 1000;
            long total = 0, lastReport = 0;
            while (System.currentTimeMillis() < deadline) {
                synchronized (stop) { if (stop[0]) break; }
                total += consumer.poll(Duration.ofMillis(100)).count();
                if (total != lastReport && System.currentTimeMillis() / 1000 != lastReport / 1000) {
                    System.out.println("RECORDS " + total);
                    System.out.flush();
                    lastReport = total;
                }
            }
        }
        System.out.println("CLOSED");
        System.out.flush();
    }
}
