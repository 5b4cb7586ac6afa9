// DumpTopic.java — read a topic back with the Java consumer, in a parseable form.
//
// Run (no build step; Java's single-file source launcher):
//   java -cp "$(scripts/kafka classpath)" scripts/java/DumpTopic.java BOOTSTRAP TOPIC COUNT [options]
//
//   COUNT               stop after this many records; "all" = every record below the
//                       end offsets as they were when the dump started (waits for the
//                       topic to exist first)
//   --timeout-ms MS     give up after MS milliseconds (default 30000); exit status 1 if
//                       fewer than COUNT records were read by then (those read are printed)
//   --read-committed    isolation.level=read_committed (default read_uncommitted)
//   --timestamps        add a TIMESTAMP column (see below)
//   --group ID          consume through the consumer group ID (subscribe) instead of
//                       assigning all partitions directly (the default, no group)
//
// It starts at the beginning of every partition of TOPIC, and prints the records
// sorted by (partition, offset), one line per record, fields separated by TAB:
//
//   PARTITION <TAB> OFFSET <TAB> KEY <TAB> VALUE [<TAB> HEADER]...
//   (with --timestamps: PARTITION <TAB> OFFSET <TAB> TIMESTAMP <TAB> KEY <TAB> VALUE [<TAB> HEADER]...)
//
// PARTITION and OFFSET are decimal. TIMESTAMP is "CreateTime:MS" or "LogAppendTime:MS".
// Every header of the record is one more field, in record order, duplicates kept:
//   HKEY=HVALUE     (an empty value gives "HKEY="; a null value gives "HKEY=\N")
// so a record without headers has exactly 4 fields (5 with --timestamps).
//
// KEY, VALUE, HKEY and HVALUE are byte strings written with this escaping:
//   \N          null (the whole field; distinct from the empty string, which is empty)
//   \\          a backslash
//   \t \n \r    TAB, LF, CR
//   \xHH        the single byte 0xHH (two lowercase hex digits). Used for other control
//               bytes (< 0x20, 0x7f), for "=" inside HKEY, and for every byte >= 0x80
//               when the bytes are not valid UTF-8
//   anything else stands for its own UTF-8 bytes (valid UTF-8 text is printed as is)
// Decoding: split the line on TAB, then undo the escapes left to right.
//
// Diagnostics go to stderr; on timeout it says how many records it got.
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class DumpTopic {
    public static void main(String[] args) throws Exception {
        if (args.length < 3) usage("BOOTSTRAP, TOPIC and COUNT are required");
        String bootstrap = args[0], topic = args[1];
        long count = -1; // -1 = all
        if (!args[2].equals("all")) {
            try {
                count = Long.parseLong(args[2]);
            } catch (NumberFormatException e) {
                usage("COUNT must be a number or \"all\": " + args[2]);
            }
        }
        long timeoutMs = 30000;
        boolean readCommitted = false, timestamps = false;
        String group = null;
        for (int i = 3; i < args.length; i++) {
            switch (args[i]) {
                case "--timeout-ms": timeoutMs = Long.parseLong(need(args, ++i)); break;
                case "--read-committed": readCommitted = true; break;
                case "--timestamps": timestamps = true; break;
                case "--group": group = need(args, ++i); break;
                default: usage("unknown option " + args[i]);
            }
        }

        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, readCommitted ? "read_committed" : "read_uncommitted");
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "dump-topic");
        if (group != null) props.put(ConsumerConfig.GROUP_ID_CONFIG, group);

        long deadline = System.currentTimeMillis() + timeoutMs;
        List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
        boolean complete = false;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            // Wait for the topic's metadata.
            List<TopicPartition> tps = new ArrayList<>();
            while (true) {
                List<PartitionInfo> infos = null;
                try {
                    infos = consumer.partitionsFor(topic, Duration.ofMillis(Math.max(1, Math.min(2000, deadline - System.currentTimeMillis()))));
                } catch (org.apache.kafka.common.errors.TimeoutException e) {
                    // retry below
                }
                if (infos != null && !infos.isEmpty()) {
                    for (PartitionInfo pi : infos) tps.add(new TopicPartition(topic, pi.partition()));
                    break;
                }
                if (System.currentTimeMillis() >= deadline) {
                    System.err.println("DumpTopic: topic " + topic + " not found at " + bootstrap + " within " + timeoutMs + " ms");
                    System.exit(1);
                }
                Thread.sleep(200);
            }
            tps.sort(Comparator.comparingInt(TopicPartition::partition));

            Map<TopicPartition, Long> end = null;
            if (count < 0) {
                end = new HashMap<>(consumer.endOffsets(tps, Duration.ofMillis(Math.max(1, deadline - System.currentTimeMillis()))));
            }
            if (group != null) {
                consumer.subscribe(List.of(topic));
            } else {
                consumer.assign(tps);
                consumer.seekToBeginning(tps);
            }
            Map<TopicPartition, Long> pos = new HashMap<>();
            while (true) {
                if (count >= 0 && got.size() >= count) { complete = true; break; }
                if (count < 0 && reachedEnd(consumer, end, pos, group != null)) { complete = true; break; }
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) break;
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(Math.min(left, 500)))) {
                    if (count < 0 && r.offset() >= end.getOrDefault(new TopicPartition(r.topic(), r.partition()), 0L)) continue;
                    if (count >= 0 && got.size() >= count) continue;
                    got.add(r);
                }
                if (count < 0) {
                    for (TopicPartition tp : consumer.assignment()) pos.put(tp, consumer.position(tp));
                }
            }
        }

        got.sort(Comparator.<ConsumerRecord<byte[], byte[]>>comparingInt(ConsumerRecord::partition)
                .thenComparingLong(ConsumerRecord::offset));
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        StringBuilder sb = new StringBuilder();
        for (ConsumerRecord<byte[], byte[]> r : got) {
            sb.setLength(0);
            sb.append(r.partition()).append('\t').append(r.offset());
            if (timestamps) sb.append('\t').append(r.timestampType().name).append(':').append(r.timestamp());
            sb.append('\t').append(escape(r.key(), false));
            sb.append('\t').append(escape(r.value(), false));
            for (Header h : r.headers()) {
                sb.append('\t').append(escape(h.key().getBytes(StandardCharsets.UTF_8), true));
                sb.append('=').append(escape(h.value(), false));
            }
            sb.append('\n');
            out.print(sb);
        }
        out.flush();
        if (!complete) {
            System.err.println("DumpTopic: timed out after " + timeoutMs + " ms with " + got.size() + " of "
                    + (count < 0 ? "all" : Long.toString(count)) + " records from " + topic);
            System.exit(1);
        }
    }

    static boolean reachedEnd(KafkaConsumer<?, ?> c, Map<TopicPartition, Long> end, Map<TopicPartition, Long> pos, boolean grouped) {
        for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
            if (e.getValue() == 0) continue;
            Long p = pos.get(e.getKey());
            if (p == null || p < e.getValue()) return false;
        }
        return true;
    }

    /** Escape bytes as documented at the top of this file. */
    static String escape(byte[] b, boolean headerKey) {
        if (b == null) return "\\N";
        boolean utf8 = true;
        try {
            StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(b));
        } catch (CharacterCodingException e) {
            utf8 = false;
        }
        StringBuilder sb = new StringBuilder(b.length + 8);
        if (utf8) {
            String s = new String(b, StandardCharsets.UTF_8);
            for (int i = 0; i < s.length(); i++) {
                char ch = s.charAt(i);
                appendChar(sb, ch, headerKey);
            }
        } else {
            for (byte x : b) {
                int v = x & 0xff;
                if (v >= 0x80) hex(sb, v);
                else appendChar(sb, (char) v, headerKey);
            }
        }
        return sb.toString();
    }

    static void appendChar(StringBuilder sb, char ch, boolean headerKey) {
        switch (ch) {
            case '\\': sb.append("\\\\"); return;
            case '\t': sb.append("\\t"); return;
            case '\n': sb.append("\\n"); return;
            case '\r': sb.append("\\r"); return;
            default:
        }
        if (ch < 0x20 || ch == 0x7f || (headerKey && ch == '=')) hex(sb, ch);
        else sb.append(ch);
    }

    static void hex(StringBuilder sb, int v) {
        sb.append("\\x").append(Character.forDigit(v >> 4, 16)).append(Character.forDigit(v & 0xf, 16));
    }

    static String need(String[] a, int i) {
        if (i >= a.length) usage("option " + a[i - 1] + " needs a value");
        return a[i];
    }

    static void usage(String why) {
        System.err.println("DumpTopic: " + why);
        System.err.println("usage: java -cp \"$(scripts/kafka classpath)\" scripts/java/DumpTopic.java BOOTSTRAP TOPIC COUNT|all "
                + "[--timeout-ms MS] [--read-committed] [--timestamps] [--group ID]");
        System.exit(2);
    }
}
