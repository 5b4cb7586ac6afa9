// Partitions.java — Kafka's own default partitioner, as a reference for ours.
//
// Run (no build step; Java's single-file source launcher):
//   java -cp "$(scripts/kafka classpath)" scripts/java/Partitions.java NUM_PARTITIONS [--hex] [--hash] < keys.txt
//
// Input (stdin): one key per line. By default a line's text is the key, taken as
// its UTF-8 bytes (the line terminator "\n" or "\r\n" is not part of the key; an
// empty line is the empty key, 0 bytes). With --hex each line is the key's bytes
// in hexadecimal (e.g. "00ff10"; an empty line is the empty key).
//
// Output (stdout): one line per input line, in input order:
//   KEY<TAB>PARTITION                 (KEY echoed exactly as read)
//   KEY<TAB>PARTITION<TAB>MURMUR2     (with --hash: Utils.murmur2(keyBytes), a signed 32-bit int)
//
// PARTITION is what the Java producer picks for a record with this key and no
// explicit partition: BuiltInPartitioner.partitionForKey(keyBytes, n), which is
// Utils.toPositive(Utils.murmur2(keyBytes)) % n. Both are computed and must agree
// (the program fails otherwise). Records with a null key are not hashed (the
// producer uses sticky partitioning for them), so they have no line here.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.utils.Utils;

public class Partitions {
    public static void main(String[] args) throws Exception {
        Integer n = null;
        boolean hex = false, hash = false;
        for (String a : args) {
            switch (a) {
                case "--hex": hex = true; break;
                case "--hash": hash = true; break;
                default:
                    try {
                        n = Integer.parseInt(a);
                    } catch (NumberFormatException e) {
                        usage("not a partition count or option: " + a);
                    }
            }
        }
        if (n == null || n <= 0) usage("NUM_PARTITIONS (a positive integer) is required");

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        String line;
        while ((line = in.readLine()) != null) {
            byte[] key = hex ? fromHex(line) : line.getBytes(StandardCharsets.UTF_8);
            int murmur = Utils.murmur2(key);
            int p = Utils.toPositive(murmur) % n;
            int producer = BuiltInPartitioner.partitionForKey(key, n);
            if (p != producer) {
                throw new IllegalStateException("Utils formula (" + p + ") and BuiltInPartitioner ("
                        + producer + ") disagree for key " + line);
            }
            out.print(line);
            out.print('\t');
            out.print(p);
            if (hash) {
                out.print('\t');
                out.print(murmur);
            }
            out.print('\n');
        }
        out.flush();
    }

    static byte[] fromHex(String s) {
        s = s.trim();
        if (s.length() % 2 != 0) throw new IllegalArgumentException("odd-length hex key: " + s);
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        }
        return b;
    }

    static void usage(String why) {
        System.err.println("Partitions: " + why);
        System.err.println("usage: java -cp \"$(scripts/kafka classpath)\" scripts/java/Partitions.java NUM_PARTITIONS [--hex] [--hash] < keys");
        System.exit(2);
    }
}
