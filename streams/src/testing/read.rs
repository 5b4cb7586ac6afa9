//! Reading what the app did, from the cluster's log (not from a worker, so that it holds
//! whichever worker wrote it and whether that worker still runs): the records sent to a
//! topic, a table's contents from its changelog, the group's committed offsets.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_client::consumer::ConsumerRecord;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::app::App;
use crate::error::Result;
use crate::record::Event;
use crate::table::Table;
use crate::topic::Topic;

use super::Harness;

impl<W: AsRef<App>> Harness<W> {
    /// Every record in `topic` that a `read_committed` consumer sees (aborted transactions
    /// left out), decoded with the topic's codecs: partition by partition, in offset order.
    /// The events carry no hold: dropping them commits nothing.
    pub fn sent<K, V>(&self, topic: &Topic<K, V>) -> Result<Vec<Event<K, V>>>
    where
        K: Serialize + DeserializeOwned + Send + 'static,
        V: Serialize + DeserializeOwned + Send + 'static,
    {
        let name: Arc<str> = topic.name().into();
        let mut events = Vec::new();
        for partition in 0..self.partitions(topic.name()) {
            for r in self.cluster.committed_log(topic.name(), partition) {
                let record = ConsumerRecord {
                    topic: name.clone(),
                    partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                };
                events.push(topic.decode(&record)?);
            }
        }
        Ok(events)
    }

    /// What `table` holds, read from its changelog (committed records only, the latest per
    /// key, deletes applied) and decoded with the table's codecs: every partition, whichever
    /// worker owns it. After [`settle`](Self::settle) this is what every worker agrees on,
    /// and what a worker recovering now would load. (A windowed table's changelog holds
    /// windows, not values: read its closed windows with [`sent`](Self::sent) on its
    /// `emit_final_to` topic.)
    pub fn table<K, V>(&self, table: &Table<K, V>) -> Result<BTreeMap<K, V>>
    where
        K: Serialize + DeserializeOwned + Ord + 'static,
        V: Serialize + DeserializeOwned + 'static,
    {
        let changelog = table.spec().changelog_topic();
        let mut latest = BTreeMap::new();
        for partition in 0..table.spec().partition_count() {
            for r in self.cluster.committed_log(&changelog, partition) {
                if let Some(key) = r.key {
                    latest.insert((partition, key), r.value);
                }
            }
        }
        let mut contents = BTreeMap::new();
        for ((partition, key), value) in latest {
            if let Some(value) = value {
                contents.insert(
                    table.decode_key_in(partition, &key)?,
                    table.decode_value_in(partition, &value)?,
                );
            }
        }
        Ok(contents)
    }

    /// The offset the app's group committed for `topic`'s `partition` (`None` before the
    /// first commit): every event below it had all its effects acknowledged.
    pub fn committed(&self, topic: &str, partition: i32) -> Option<i64> {
        let group = self.workers.first()?.worker.as_ref().id().to_owned();
        self.cluster.committed_offset(&group, topic, partition)
    }

    /// The number of partitions of `topic` in the cluster (0 if it does not exist).
    pub fn partitions(&self, topic: &str) -> i32 {
        let mut n = 0;
        while self.cluster.high_watermark(topic, n).is_some() {
            n += 1;
        }
        n
    }
}
