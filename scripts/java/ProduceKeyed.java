// ProduceKeyed.java — write keyed records with headers with the Java producer.
//
// Run (no build step; Java's single-file source launcher):
//   java -cp "$(scripts/kafka classpath)" scripts/java/ProduceKeyed.java BOOTSTRAP TOPIC N [options]
//   java -cp "$(scripts/kafka classpath)" scripts/java/ProduceKeyed.java BOOTSTRAP TOPIC --stdin [options] < records
//
//   N                    generate N records, i = 0 .. N-1:
//                          key    "key-<i>"
//                          value  "value-<i>"
//                          headers, in this order: "seq=<i>", "dup=first", "dup=second"
//                        (a duplicate header key on purpose: order and duplicates must survive)
//   --stdin              instead, read records from stdin, one per line, TAB-separated:
//                          KEY <TAB> VALUE [<TAB> HKEY=HVALUE]...
//                        escaped exactly like DumpTopic.java's output (\N = null, \\ \t \n \r,
//                        \xHH = one byte; "=" in a header key as \x3d). E.g. the line
//                          k1<TAB>hello<TAB>a=1<TAB>a=2
//   --partitions P       create TOPIC with P partitions (replication 1) if it does not exist
//                        (otherwise a missing topic is auto-created with the broker default)
//   --compression C      none (default), gzip, snappy, lz4, zstd
//   --linger-ms MS       producer linger.ms (default 5; records are batched per partition)
//   --acks A             0, 1 or all (default all)
//   --idempotence B      true/false (default: the producer default, true)
//   --partition P        send every record to partition P instead of using the key hash
//
// The partition of a keyed record is chosen by the Java default partitioner
// (murmur2 of the key bytes, see Partitions.java). Keys and values are the UTF-8
// bytes of the generated text, or the decoded bytes of the stdin fields.
//
// Output (stdout): after every record was acknowledged, one line per record in the
// order sent, in DumpTopic.java's format (without timestamps):
//   PARTITION <TAB> OFFSET <TAB> KEY <TAB> VALUE [<TAB> HKEY=HVALUE]...
// so `DumpTopic.java BOOTSTRAP TOPIC N | sort -n -k1,1 -k2,2` of a fresh topic prints the
// same lines as `ProduceKeyed.java ... | sort -n -k1,1 -k2,2`. Exit status is non-zero if
// any send failed.
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class ProduceKeyed {
    public static void main(String[] args) throws Exception {
        if (args.length < 3) usage("BOOTSTRAP, TOPIC and N (or --stdin) are required");
        String bootstrap = args[0], topic = args[1];
        boolean fromStdin = args[2].equals("--stdin");
        long n = 0;
        if (!fromStdin) {
            try {
                n = Long.parseLong(args[2]);
            } catch (NumberFormatException e) {
                usage("N must be a number (or use --stdin): " + args[2]);
            }
        }
        Integer partitions = null, fixedPartition = null;
        String compression = "none", acks = "all", idempotence = null;
        int lingerMs = 5;
        for (int i = 3; i < args.length; i++) {
            switch (args[i]) {
                case "--partitions": partitions = Integer.parseInt(need(args, ++i)); break;
                case "--compression": compression = need(args, ++i); break;
                case "--linger-ms": lingerMs = Integer.parseInt(need(args, ++i)); break;
                case "--acks": acks = need(args, ++i); break;
                case "--idempotence": idempotence = need(args, ++i); break;
                case "--partition": fixedPartition = Integer.parseInt(need(args, ++i)); break;
                default: usage("unknown option " + args[i]);
            }
        }

        if (partitions != null) createTopic(bootstrap, topic, partitions);

        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        if (fromStdin) {
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            int lineNo = 0;
            while ((line = in.readLine()) != null) {
                lineNo++;
                String[] f = line.split("\t", -1);
                if (f.length < 2) throw new IllegalArgumentException("stdin line " + lineNo + ": need KEY<TAB>VALUE[<TAB>HKEY=HVALUE]...: " + line);
                List<Header> hs = new ArrayList<>();
                for (int j = 2; j < f.length; j++) {
                    int eq = f[j].indexOf('=');
                    if (eq < 0) throw new IllegalArgumentException("stdin line " + lineNo + ": header field without '=': " + f[j]);
                    byte[] hk = unescape(f[j].substring(0, eq));
                    if (hk == null) throw new IllegalArgumentException("stdin line " + lineNo + ": a header key cannot be null");
                    hs.add(new RecordHeader(new String(hk, StandardCharsets.UTF_8), unescape(f[j].substring(eq + 1))));
                }
                records.add(new ProducerRecord<>(topic, fixedPartition, unescape(f[0]), unescape(f[1]), hs));
            }
        } else {
            for (long i = 0; i < n; i++) {
                List<Header> hs = new ArrayList<>();
                hs.add(new RecordHeader("seq", utf8(Long.toString(i))));
                hs.add(new RecordHeader("dup", utf8("first")));
                hs.add(new RecordHeader("dup", utf8("second")));
                records.add(new ProducerRecord<>(topic, fixedPartition, utf8("key-" + i), utf8("value-" + i), hs));
            }
        }

        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        props.put(ProducerConfig.LINGER_MS_CONFIG, Integer.toString(lingerMs));
        props.put(ProducerConfig.ACKS_CONFIG, acks);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "produce-keyed");
        if (idempotence != null) props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, idempotence);

        List<Future<RecordMetadata>> futures = new ArrayList<>(records.size());
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            for (ProducerRecord<byte[], byte[]> r : records) futures.add(producer.send(r));
            producer.flush();
        }

        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        int failed = 0;
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < records.size(); i++) {
            RecordMetadata md;
            try {
                md = futures.get(i).get();
            } catch (Exception e) {
                failed++;
                System.err.println("ProduceKeyed: record " + i + " failed: " + e.getCause());
                continue;
            }
            ProducerRecord<byte[], byte[]> r = records.get(i);
            sb.setLength(0);
            sb.append(md.partition()).append('\t').append(md.offset());
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
        if (failed > 0) {
            System.err.println("ProduceKeyed: " + failed + " of " + records.size() + " records failed");
            System.exit(1);
        }
    }

    static void createTopic(String bootstrap, String topic, int partitions) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(p)) {
            try {
                admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
            } catch (java.util.concurrent.ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) throw e;
            }
        }
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Inverse of escape(): "\N" is null; see the format at the top of the file. */
    static byte[] unescape(String s) {
        if (s.equals("\\N")) return null;
        ByteArrayOutputStream b = new ByteArrayOutputStream(s.length());
        int i = 0;
        while (i < s.length()) {
            char c = s.charAt(i);
            if (c != '\\') {
                int j = i;
                while (j < s.length() && s.charAt(j) != '\\') j++;
                b.writeBytes(s.substring(i, j).getBytes(StandardCharsets.UTF_8));
                i = j;
                continue;
            }
            if (i + 1 >= s.length()) throw new IllegalArgumentException("dangling backslash in: " + s);
            char e = s.charAt(i + 1);
            switch (e) {
                case '\\': b.write('\\'); i += 2; break;
                case 't': b.write('\t'); i += 2; break;
                case 'n': b.write('\n'); i += 2; break;
                case 'r': b.write('\r'); i += 2; break;
                case 'x':
                    if (i + 4 > s.length()) throw new IllegalArgumentException("short \\x escape in: " + s);
                    b.write(Integer.parseInt(s.substring(i + 2, i + 4), 16));
                    i += 4;
                    break;
                default: throw new IllegalArgumentException("unknown escape \\" + e + " in: " + s);
            }
        }
        return b.toByteArray();
    }

    /** Same escaping as DumpTopic.java. */
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
            for (int i = 0; i < s.length(); i++) appendChar(sb, s.charAt(i), headerKey);
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
        System.err.println("ProduceKeyed: " + why);
        System.err.println("usage: java -cp \"$(scripts/kafka classpath)\" scripts/java/ProduceKeyed.java BOOTSTRAP TOPIC N|--stdin "
                + "[--partitions P] [--compression C] [--linger-ms MS] [--acks A] [--idempotence B] [--partition P]");
        System.exit(2);
    }
}
