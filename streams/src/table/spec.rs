//! What a table is, as declared: no I/O, no types (the runtime keeps the specs of every table
//! in one list; the typed parts, such as the default value, live on [`Table`](super::Table)).

use kafka_client::NewTopic;
use stores::StoreUrl;

use crate::error::{Error, Result};
use crate::settings::Settings;

/// A table's declaration: name, partitions, codecs, standbys, store and changelog topic.
///
/// Keys default to the `raw` codec and values to `json`, as topics do. Keys must be encoded
/// exactly as the stream that updates the table encodes its record keys: the partition of a key
/// is Kafka's default partitioner over those bytes, so the same bytes put the table's key in the
/// same partition as the event (what `group_by` relies on). A `json` key would be `"EUR"` with
/// quotes where the topic's `raw` key is `EUR`, and land elsewhere.
///
/// ```
/// use streams::TableSpec;
/// let spec = TableSpec::new("shop", "totals").partitions(4).standby_replicas(1);
/// assert_eq!(spec.changelog_topic(), "shop-totals-changelog");
/// assert_eq!(spec.key_serializer(), "raw");
/// assert_eq!(spec.value_serializer(), "json");
/// let topic = spec.changelog_new_topic(1);
/// assert_eq!(topic.partitions, 4);
/// assert_eq!(topic.configs, vec![("cleanup.policy".to_string(), "compact".to_string())]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    app_id: String,
    name: String,
    partitions: i32,
    key_serializer: String,
    value_serializer: String,
    standby_replicas: u32,
    store: Option<StoreUrl>,
    global: bool,
    /// The topic the table is kept from (`TableBuilder::from_topic`).
    source_topic: Option<String>,
}

impl TableSpec {
    /// Table `name` of app `app_id`, with the app's default partition count (8), `raw` keys,
    /// `json` values, no standby and the app's store.
    pub fn new(app_id: impl Into<String>, name: impl Into<String>) -> Self {
        TableSpec {
            app_id: app_id.into(),
            name: name.into(),
            partitions: Settings::default().topic_partitions,
            key_serializer: "raw".into(),
            value_serializer: "json".into(),
            standby_replicas: 0,
            store: None,
            global: false,
            source_topic: None,
        }
    }

    /// Partitions of the table and of its changelog; must equal the source topic's.
    pub fn partitions(mut self, partitions: i32) -> Self {
        self.partitions = partitions;
        self
    }

    /// The key codec chain (`raw` by default; see the type's docs before changing it).
    pub fn key_serializer(&self) -> &str {
        &self.key_serializer
    }

    /// Sets the key codec chain, such as `json`.
    pub fn with_key_serializer(mut self, spec: impl Into<String>) -> Self {
        self.key_serializer = spec.into();
        self
    }

    /// The value codec chain (`json` by default).
    pub fn value_serializer(&self) -> &str {
        &self.value_serializer
    }

    /// Sets the value codec chain, such as `binary|json`.
    pub fn with_value_serializer(mut self, spec: impl Into<String>) -> Self {
        self.value_serializer = spec.into();
        self
    }

    /// Workers that keep a warm copy of each partition (Faust's `table_standby_replicas`).
    pub fn standby_replicas(mut self, replicas: u32) -> Self {
        self.standby_replicas = replicas;
        self
    }

    /// Keeps this table in `url` instead of the app's store.
    pub fn store(mut self, url: StoreUrl) -> Self {
        self.store = Some(url);
        self
    }

    /// Marks the table as kept from `topic`'s records (`TableBuilder::from_topic`).
    pub(crate) fn kept_from(mut self, topic: &str) -> Self {
        self.source_topic = Some(topic.to_owned());
        self
    }

    /// The topic the table is kept from, for a table built with
    /// `TableBuilder::from_topic`.
    pub fn source_topic(&self) -> Option<&str> {
        self.source_topic.as_deref()
    }

    /// A global table: every worker holds every partition (Faust's `GlobalTable`).
    pub fn global(mut self) -> Self {
        self.global = true;
        self
    }

    /// The app the table belongs to.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The partition count.
    pub fn partition_count(&self) -> i32 {
        self.partitions
    }

    /// The standby replica count.
    pub fn standbys(&self) -> u32 {
        self.standby_replicas
    }

    /// The store URL override, if any.
    pub fn store_url(&self) -> Option<&StoreUrl> {
        self.store.as_ref()
    }

    /// Whether every worker holds every partition.
    pub fn is_global(&self) -> bool {
        self.global
    }

    /// `<app>-<table>-changelog`.
    pub fn changelog_topic(&self) -> String {
        format!("{}-{}-changelog", self.app_id, self.name)
    }

    /// The changelog topic to create: compacted, one partition per table partition.
    pub fn changelog_new_topic(&self, replication_factor: i16) -> NewTopic {
        NewTopic::new(self.changelog_topic(), self.partitions, replication_factor)
            .with_config("cleanup.policy", "compact")
    }

    /// The partitions a worker holds given the partitions of the source topic it was assigned:
    /// those, or all of them for a global table.
    pub fn partitions_to_hold(&self, assigned: &[i32]) -> Vec<i32> {
        if self.global {
            (0..self.partitions).collect()
        } else {
            let mut held: Vec<i32> = assigned
                .iter()
                .copied()
                .filter(|p| (0..self.partitions).contains(p))
                .collect();
            held.sort_unstable();
            held.dedup();
            held
        }
    }

    /// Checks what can be checked without I/O.
    pub fn validate(&self) -> Result<()> {
        let bad = |setting: &'static str, reason: String| {
            Err(Error::TableSetting {
                table: self.name.clone(),
                setting,
                reason,
            })
        };
        if self.partitions < 1 {
            return bad(
                "partitions",
                format!(
                    "{} partitions: a table needs at least one (use the source topic's count)",
                    self.partitions
                ),
            );
        }
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return bad(
                "name",
                "a table name is made of ASCII letters, digits, '-', '_' and '.' (it names a file and a topic)"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_tables_hold_every_partition_others_their_assignment() {
        let spec = TableSpec::new("a", "t").partitions(3);
        assert_eq!(spec.partitions_to_hold(&[2, 0, 2, 7]), vec![0, 2]);
        assert_eq!(spec.global().partitions_to_hold(&[1]), vec![0, 1, 2]);
    }

    #[test]
    fn validation_names_the_table_and_what_to_do() {
        let err = TableSpec::new("a", "t")
            .partitions(0)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("table t: 0 partitions"), "{err}");
        let err = TableSpec::new("a", "a/b").validate().unwrap_err();
        assert!(err.to_string().contains("ASCII letters"), "{err}");
        TableSpec::new("a", "totals_v2").validate().unwrap();
    }
}
