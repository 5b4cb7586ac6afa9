// ProduceTransactional.java — three transactions with the Java transactional producer.
//
// Run (no build step; Java's single-file source launcher):
//   java -cp "$(scripts/kafka classpath)" scripts/java/ProduceTransactional.java BOOTSTRAP TOPIC TXN_ID N
//
// With transactional.id TXN_ID it writes, all to partition 0 of TOPIC, in this order:
//   1. a committed transaction of N records "c1-<i>"      (key = value)
//   2. an aborted transaction of N records "aborted-<i>"  (flushed before the abort, so
//      they are in the log)
//   3. a committed transaction of N records "c2-<i>"
// so a read_committed reader sees c1-0 .. c1-(N-1), c2-0 .. c2-(N-1) and nothing else.
// Prints "done" when all three transactions ended; exit status non-zero on any error.
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class ProduceTransactional {
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: ProduceTransactional.java BOOTSTRAP TOPIC TXN_ID N");
            System.exit(2);
        }
        String bootstrap = args[0], topic = args[1], txnId = args[2];
        int n = Integer.parseInt(args[3]);
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "produce-transactional");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            producer.initTransactions();
            String[][] rounds = {{"c1", "commit"}, {"aborted", "abort"}, {"c2", "commit"}};
            for (String[] round : rounds) {
                producer.beginTransaction();
                for (int i = 0; i < n; i++) {
                    String v = round[0] + "-" + i;
                    producer.send(new ProducerRecord<>(topic, 0, v, v));
                }
                producer.flush();
                if (round[1].equals("commit")) producer.commitTransaction();
                else producer.abortTransaction();
            }
        }
        System.out.println("done");
    }
}
