//! Typed topics: a name, codecs for key and value, what to do with records that do not decode,
//! and sending.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};

use kafka_client::consumer::ConsumerRecord;
use kafka_client::producer::{ProducerRecord, RecordMetadata, RecordRef};
use prometheus_client::metrics::counter::Counter;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{CodecRegistry, DecodeFailure, Serializer};
use crate::error::{Error, Result};
use crate::outbox::Outbox;
use crate::record::{Event, Validate};
use crate::timestamp::Timestamp;

/// What an agent does with a record that does not decode or validate. Whatever the choice,
/// the record is never lost silently and never retried in a loop.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OnDecodeError {
    /// Log a warning naming topic, partition, offset and field, and go on (Faust's behaviour).
    #[default]
    Skip,
    /// Copy the record as it is (key, value, headers, plus `x-error-*` headers saying where it
    /// came from and why) to this topic, and go on once it is written.
    DeadLetter(String),
    /// Stop the agent. The record's offset is never committed, so a fixed worker re-reads it.
    Stop,
}

/// A topic as declared: shared by every `Topic` handle of that name.
#[derive(Debug, Clone)]
pub(crate) struct TopicSpec {
    pub name: String,
    pub partitions: Option<i32>,
    pub configs: Vec<(String, String)>,
    pub key_serializer: Result<Serializer, Arc<Error>>,
    pub value_serializer: Result<Serializer, Arc<Error>>,
    pub on_decode_error: OnDecodeError,
    /// Created by the app for its own use (repartition topics).
    pub internal: bool,
    /// Whether bytes decode as the declared key and value types (the CLI's `send` checks).
    pub types: TypeCheck,
}

/// Whether encoded bytes decode (through a serializer) as a declared Rust type, and pass its
/// validation rules when the topic is [`validated`](Topic::validated).
type Check = Arc<dyn Fn(&Serializer, &[u8]) -> Result<(), DecodeFailure> + Send + Sync>;

/// A topic's declared key and value types, erased: the spec is shared by handles of any
/// types, and the CLI knows topics only by name. Captured by the first declaration of a name.
#[derive(Clone)]
pub(crate) struct TypeCheck {
    pub key: Check,
    pub value: Check,
}

impl TypeCheck {
    fn of<K: DeserializeOwned + 'static, V: DeserializeOwned + 'static>() -> Self {
        TypeCheck {
            key: Arc::new(|ser, bytes| ser.decode::<K>(bytes).map(drop)),
            value: Arc::new(|ser, bytes| ser.decode::<V>(bytes).map(drop)),
        }
    }
}

impl fmt::Debug for TypeCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TypeCheck")
    }
}

/// A [`Validate`] failure as the decode failure agents and the CLI report.
fn validation_failure(e: Error) -> DecodeFailure {
    let (field, reason) = match e {
        Error::Validation { field, reason } => (Some(field), reason),
        other => (None, other.to_string()),
    };
    DecodeFailure {
        field,
        reason: format!("validation failed: {reason}"),
    }
}

impl TopicSpec {
    pub(crate) fn key_ser(&self) -> Result<&Serializer> {
        self.key_serializer
            .as_ref()
            .map_err(|e| Error::TopicSerializer {
                topic: self.name.clone(),
                part: "key",
                source: e.clone(),
            })
    }
    pub(crate) fn value_ser(&self) -> Result<&Serializer> {
        self.value_serializer
            .as_ref()
            .map_err(|e| Error::TopicSerializer {
                topic: self.name.clone(),
                part: "value",
                source: e.clone(),
            })
    }
}

/// Every topic an app declared, by name, and the codecs their serializers may name.
#[derive(Debug)]
pub(crate) struct TopicCatalog {
    registry: CodecRegistry,
    topics: Mutex<BTreeMap<String, Arc<TopicSpec>>>,
}

impl TopicCatalog {
    /// The codecs serializer chains are made of.
    pub(crate) fn registry(&self) -> &CodecRegistry {
        &self.registry
    }

    pub(crate) fn new(registry: CodecRegistry) -> Self {
        TopicCatalog {
            registry,
            topics: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Arc<TopicSpec>>> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn parse_serializer(&self, spec: &str) -> Result<Serializer, Arc<Error>> {
        Serializer::parse(spec, &self.registry).map_err(Arc::new)
    }

    /// Declares (or re-declares, replacing) a topic.
    pub(crate) fn register(&self, spec: TopicSpec) -> Arc<TopicSpec> {
        let spec = Arc::new(spec);
        self.lock().insert(spec.name.clone(), spec.clone());
        spec
    }

    /// The spec of a declared topic.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<TopicSpec>> {
        self.lock().get(name).cloned()
    }

    /// Every declared topic, by name.
    pub(crate) fn all(&self) -> Vec<Arc<TopicSpec>> {
        self.lock().values().cloned().collect()
    }
}

/// Largest capacity a send's encoding buffer keeps between records.
const SEND_SCRATCH_MAX: usize = 64 * 1024;

thread_local! {
    /// A send's key and value, encoded (see `Topic::send_now`).
    static SEND_SCRATCH: std::cell::RefCell<(Vec<u8>, Vec<u8>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

type Validator<V> = Arc<dyn Fn(&V) -> Result<()> + Send + Sync>;

/// A Kafka topic with key type `K` and value type `V`, both serde types. Cheap to clone.
///
/// Keys default to the `raw` codec and values to `json`, as in Faust.
///
/// ```
/// # fn main() -> streams::Result<()> {
/// use streams::{App, OnDecodeError};
/// #[derive(serde::Serialize, serde::Deserialize, Clone)]
/// struct Purchase { username: String, currency: String, amount: u32 }
///
/// let app = App::builder("demo-app").build()?;
/// let purchases = app
///     .topic::<String, Purchase>("purchases")
///     .value_serializer("binary|json")
///     .partitions(4)
///     .on_decode_error(OnDecodeError::DeadLetter("purchases-dead".into()));
/// assert_eq!(purchases.name(), "purchases");
/// # Ok(()) }
/// ```
pub struct Topic<K, V> {
    catalog: Arc<TopicCatalog>,
    outbox: Outbox,
    pub(crate) spec: Arc<TopicSpec>,
    validator: Option<Validator<V>>,
    /// `streams_records_sent_total` of this topic, resolved once.
    sent: Counter,
    _types: PhantomData<fn() -> K>,
}

impl<K, V> Clone for Topic<K, V> {
    fn clone(&self) -> Self {
        Topic {
            catalog: self.catalog.clone(),
            outbox: self.outbox.clone(),
            spec: self.spec.clone(),
            validator: self.validator.clone(),
            sent: self.sent.clone(),
            _types: PhantomData,
        }
    }
}

impl<K, V> fmt::Debug for Topic<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.spec.name)
            .field("key_serializer", &self.spec.key_serializer)
            .field("value_serializer", &self.spec.value_serializer)
            .finish()
    }
}

impl<K, V> Topic<K, V>
where
    K: Serialize + DeserializeOwned + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    /// Declares `name` with the default codecs (keys `raw`, values `json`), or takes the
    /// settings it was declared with before (perhaps with other types).
    pub(crate) fn declare(catalog: &Arc<TopicCatalog>, outbox: &Outbox, name: &str) -> Self {
        let spec = catalog.get(name).unwrap_or_else(|| {
            catalog.register(TopicSpec {
                name: name.to_owned(),
                partitions: None,
                configs: Vec::new(),
                key_serializer: catalog.parse_serializer("raw"),
                value_serializer: catalog.parse_serializer("json"),
                on_decode_error: OnDecodeError::default(),
                internal: false,
                types: TypeCheck::of::<K, V>(),
            })
        });
        Topic {
            catalog: catalog.clone(),
            outbox: outbox.clone(),
            sent: outbox.metrics().records_sent(name),
            spec,
            validator: None,
            _types: PhantomData,
        }
    }

    /// The same topic with changed settings, declared for everyone.
    pub(crate) fn redeclare(mut self, change: impl FnOnce(&mut TopicSpec)) -> Self {
        let mut spec = (*self.spec).clone();
        change(&mut spec);
        self.spec = self.catalog.register(spec);
        self
    }

    /// Where this topic's records go.
    pub(crate) fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Codec chain of keys, such as `raw` (the default) or `json`.
    pub fn key_serializer(self, spec: &str) -> Self {
        let parsed = self.catalog.parse_serializer(spec);
        self.redeclare(|s| s.key_serializer = parsed)
    }

    /// Codec chain of values, such as `json` (the default) or `binary|json`.
    pub fn value_serializer(self, spec: &str) -> Self {
        let parsed = self.catalog.parse_serializer(spec);
        self.redeclare(|s| s.value_serializer = parsed)
    }

    /// Partitions when the app creates the topic (default: the app's `topic_partitions`).
    pub fn partitions(self, n: i32) -> Self {
        self.redeclare(|s| s.partitions = Some(n))
    }

    /// A topic config for creation, such as `("cleanup.policy", "compact")`.
    pub fn config(self, key: &str, value: &str) -> Self {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.redeclare(|s| s.configs.push((key, value)))
    }

    /// What agents do with records of this topic that do not decode or validate.
    pub fn on_decode_error(self, policy: OnDecodeError) -> Self {
        self.redeclare(|s| s.on_decode_error = policy)
    }

    /// Checks every decoded value with its [`Validate`] rules (Faust's `validation=True`);
    /// failures go through [`on_decode_error`](Self::on_decode_error) like decode errors.
    pub fn validated(self) -> Self
    where
        V: Validate,
    {
        let check: Check = Arc::new(|ser, bytes| {
            ser.decode::<V>(bytes)?
                .validate()
                .map_err(validation_failure)
        });
        let mut topic = self.redeclare(|s| s.types.value = check);
        topic.validator = Some(Arc::new(|v: &V| v.validate()));
        topic
    }

    /// Encodes a key and a value into a record for this topic.
    pub fn record(&self, key: Option<&K>, value: &V) -> Result<ProducerRecord> {
        let mut record = ProducerRecord::new(self.spec.name.clone());
        if let Some(key) = key {
            record = record.key(self.encode(self.spec.key_ser()?, "key", key)?);
        }
        Ok(record.value(self.encode(self.spec.value_ser()?, "value", value)?))
    }

    /// Encodes the key or value (`part`), naming the topic and part if it fails. (A serializer
    /// that did not parse is a configuration error: the caller passes it on as it is.)
    fn encode<T: Serialize + ?Sized>(
        &self,
        ser: &Serializer,
        part: &'static str,
        value: &T,
    ) -> Result<Vec<u8>> {
        ser.encode(value).map_err(|e| Error::Encode {
            topic: self.spec.name.clone(),
            part,
            reason: e.to_string(),
        })
    }

    /// Sends a keyed value. Returns once the producer has accepted it. Inside an agent, await
    /// it before releasing the event: the app commits an event's offset only after flushing
    /// what was accepted before the event was released, and stops if a record was not
    /// delivered. Takes values or references.
    ///
    /// Faust: `await topic.send(key=k, value=v)`.
    pub async fn send(&self, key: impl Borrow<K>, value: impl Borrow<V>) -> Result<()> {
        let (key, value) = (key.borrow(), value.borrow());
        if self.send_now(Some(key), value, None)? {
            return Ok(());
        }
        let record = self.record(Some(key), value)?;
        self.outbox.send_counted(record, &self.sent).await
    }

    /// Sends a keyed value with an explicit record timestamp (a [`Timestamp`], or a
    /// `SystemTime`; windowed tables take event time from it). Faust: `topic.send(key=k,
    /// value=v, timestamp=t)`.
    pub async fn send_at(
        &self,
        key: impl Borrow<K>,
        value: impl Borrow<V>,
        at: impl Into<Timestamp>,
    ) -> Result<()> {
        let (key, value) = (key.borrow(), value.borrow());
        let millis = at.into().as_millis();
        if self.send_now(Some(key), value, Some(millis))? {
            return Ok(());
        }
        let record = self.record(Some(key), value)?.timestamp(millis);
        self.outbox.send_counted(record, &self.sent).await
    }

    /// Sends a value with no key (the producer spreads such records over partitions).
    pub async fn send_value(&self, value: impl Borrow<V>) -> Result<()> {
        let value = value.borrow();
        if self.send_now(None, value, None)? {
            return Ok(());
        }
        let record = self.record(None, value)?;
        self.outbox.send_counted(record, &self.sent).await
    }

    /// A send's usual case without allocating: encodes key and value into this thread's
    /// buffers and hands the record to the producer if it can take it without waiting (see
    /// [`Producer::try_send`](kafka_client::producer::Producer::try_send)). `false`: it
    /// would have to wait, or the buffers are in use; the caller sends it the general way.
    fn send_now(&self, key: Option<&K>, value: &V, timestamp: Option<i64>) -> Result<bool> {
        let producer = self.outbox.producer()?;
        let accepted = SEND_SCRATCH.with(|scratch| {
            // Busy only if a value's `Serialize` sends itself: no fast path then.
            let Ok(mut scratch) = scratch.try_borrow_mut() else {
                return Ok(false);
            };
            let (key_buf, value_buf) = &mut *scratch;
            key_buf.clear();
            value_buf.clear();
            if let Some(key) = key {
                self.encode_into(self.spec.key_ser()?, "key", key, key_buf)?;
            }
            self.encode_into(self.spec.value_ser()?, "value", value, value_buf)?;
            let record = RecordRef {
                key: key.map(|_| &key_buf[..]),
                value: Some(&value_buf[..]),
                timestamp,
                ..RecordRef::new(&self.spec.name)
            };
            // No delivery future: the committer checks every record's delivery after its
            // flush (`flush_checked`), so a failed one still stops the commit.
            let accepted = producer.try_send_detached(record)?;
            for buf in [key_buf, value_buf] {
                if buf.capacity() > SEND_SCRATCH_MAX {
                    *buf = Vec::new(); // one large record does not pin its size per thread
                }
            }
            Ok::<bool, Error>(accepted)
        })?;
        if accepted {
            self.sent.inc();
        }
        Ok(accepted)
    }

    /// [`encode`](Self::encode) appending to `out`.
    fn encode_into<T: Serialize + ?Sized>(
        &self,
        ser: &Serializer,
        part: &'static str,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        ser.encode_into(value, out).map_err(|e| Error::Encode {
            topic: self.spec.name.clone(),
            part,
            reason: e.to_string(),
        })
    }

    /// Sends a record built with [`record`](Self::record) (to pick a partition, say).
    pub async fn send_record(&self, record: ProducerRecord) -> Result<()> {
        self.outbox.send(record).await
    }

    /// Sends and waits for the broker's acknowledgement.
    pub async fn send_and_wait(
        &self,
        key: Option<&K>,
        value: impl Borrow<V>,
    ) -> Result<RecordMetadata> {
        let record = self.record(key, value.borrow())?;
        self.outbox.send_and_wait(record).await
    }

    /// Decodes a consumed record into an event, checking validation rules.
    pub(crate) fn decode(&self, record: &ConsumerRecord) -> Result<Event<K, V>> {
        let (key, value) = self.decode_parts(record)?;
        Ok(Event {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp,
            key,
            value,
            headers: record.headers.clone(),
            hold: None,
        })
    }

    /// The key and value of a consumed record (what [`decode`](Self::decode) puts in the
    /// event), checking validation rules.
    pub(crate) fn decode_parts(&self, record: &ConsumerRecord) -> Result<(Option<K>, V)> {
        let fail = |part: &'static str, f: DecodeFailure| Error::Decode {
            topic: record.topic.to_string(),
            partition: record.partition,
            offset: record.offset,
            part,
            field: f.field,
            reason: f.reason,
        };
        let key = match &record.key {
            None => None,
            Some(bytes) => Some(
                self.spec
                    .key_ser()?
                    .decode::<K>(bytes)
                    .map_err(|f| fail("key", f))?,
            ),
        };
        let value = match &record.value {
            Some(bytes) => self
                .spec
                .value_ser()?
                .decode::<V>(bytes)
                .map_err(|f| fail("value", f))?,
            None => serde_json::from_value(serde_json::Value::Null).map_err(|_| {
                fail(
                    "value",
                    DecodeFailure {
                        field: None,
                        reason: "null value (tombstone) but the value type is not an Option".into(),
                    },
                )
            })?,
        };
        if let Some(validate) = &self.validator {
            if let Err(e) = validate(&value) {
                return Err(fail("value", validation_failure(e)));
            }
        }
        Ok((key, value))
    }
}
