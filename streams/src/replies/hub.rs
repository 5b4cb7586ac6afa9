//! The asking side of a worker (Faust's `reply_to`): one reply topic, `<app id>-reply-<random>`
//! with one partition, created on the first ask; one task reading it with a plain consumer
//! (no group: the topic is this worker's alone) and routing each reply by correlation id to
//! the asker waiting for it. On a clean shutdown the topic is deleted; a crashed worker's
//! topic expires with its retention (one day) but stays listed until deleted.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use kafka_client::admin::{Admin, CreateTopicsOptions, NewTopic};
use kafka_client::consumer::{Consumer, ConsumerConfig, ConsumerRecord, IsolationLevel, Offset};
use kafka_client::{ClientConfig, TopicPartition};
use tokio::sync::{oneshot, OnceCell};
use tokio::task::JoinHandle;

use super::request::{ReplyTo, FAILED};
use crate::error::{Error, Result};

/// How long replies are kept in a reply topic nobody deleted (a crashed worker's).
const RETENTION_MS: &str = "86400000";

/// What an agent answered.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Its result, as JSON.
    Value(Option<Bytes>),
    /// It failed on the request, for this reason.
    Failed(String),
}

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Reply>>>>;

/// The worker's reply topic and its waiting askers. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Replies(Arc<Inner>);

struct Inner {
    app_id: String,
    replication: i16,
    /// Random per worker: the reply topic's suffix and the prefix of correlation ids.
    tag: String,
    next_id: AtomicU64,
    conn: OnceLock<(ClientConfig, Admin)>,
    topic: OnceCell<String>,
    reader: Mutex<Option<JoinHandle<()>>>,
    waiters: Waiters,
}

/// A registered asker: takes its reply out of the map when dropped (answered, timed out or
/// cancelled), so that nothing is left behind.
pub(crate) struct Waiter {
    pub id: String,
    pub reply: oneshot::Receiver<Reply>,
    waiters: Waiters,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        lock(&self.waiters).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// 64 random bits in hex (std's randomly keyed hasher over the time: no crate needed).
fn random_hex() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", h.finish())
}

impl Replies {
    pub(crate) fn new(app_id: &str, replication: i16) -> Self {
        Replies(Arc::new(Inner {
            app_id: app_id.to_owned(),
            replication,
            tag: random_hex(),
            next_id: AtomicU64::new(0),
            conn: OnceLock::new(),
            topic: OnceCell::new(),
            reader: Mutex::default(),
            waiters: Arc::default(),
        }))
    }

    /// Makes asking possible: called when the app connects.
    pub(crate) fn connect(&self, client: ClientConfig, admin: Admin) {
        let _ = self.0.conn.set((client, admin));
    }

    /// The reply topic, once the first ask created it.
    pub(crate) fn topic(&self) -> Option<&str> {
        self.0.topic.get().map(String::as_str)
    }

    /// A new request: where its reply goes, and the waiter that receives it. Creates the
    /// reply topic and starts its reader on the first call; [`Error::NotStarted`] before the
    /// app connected.
    pub(crate) async fn request(&self) -> Result<(ReplyTo, Waiter)> {
        let topic = self.0.topic.get_or_try_init(|| self.open()).await?.clone();
        let n = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", self.0.tag);
        let (tx, reply) = oneshot::channel();
        lock(&self.0.waiters).insert(id.clone(), tx);
        let waiter = Waiter {
            id: id.clone(),
            reply,
            waiters: self.0.waiters.clone(),
        };
        let to = ReplyTo {
            topic,
            correlation_id: id,
        };
        Ok((to, waiter))
    }

    /// Creates the reply topic and starts the task that reads it, from its start (it is new,
    /// so that is its end: no reply can be missed).
    async fn open(&self) -> Result<String> {
        let (client, admin) = self.0.conn.get().ok_or(Error::NotStarted)?;
        let name = format!("{}-reply-{}", self.0.app_id, self.0.tag);
        let topic = NewTopic::new(name.clone(), 1, self.0.replication)
            .with_config("retention.ms", RETENTION_MS);
        let options = CreateTopicsOptions {
            ignore_existing: true,
            ..Default::default()
        };
        admin.create_topics_with(vec![topic], options).await?;
        wait_for_leader(admin, &name).await?;
        // Under exactly-once a reply becomes visible when its agent's transaction commits.
        let config = ConsumerConfig::default()
            .with_isolation_level(IsolationLevel::ReadCommitted)
            .with_fetch_max_wait(Duration::from_millis(100));
        let mut consumer = Consumer::new(client.clone(), config).await?;
        let tp = TopicPartition::new(name.as_str(), 0);
        consumer.incremental_assign(vec![(tp.clone(), Some(Offset::At(0)))]);
        let reader = tokio::spawn(read(consumer, tp, self.0.waiters.clone()));
        *lock(&self.0.reader) = Some(reader);
        tracing::info!(reply_topic = %name, "reading replies");
        Ok(name)
    }

    /// Stops reading replies (waiting askers get [`Error::WorkerStopped`]) and deletes the
    /// reply topic, within `timeout`.
    pub(crate) async fn close(&self, timeout: Duration) {
        if let Some(reader) = lock(&self.0.reader).take() {
            reader.abort();
        }
        lock(&self.0.waiters).clear();
        let (Some(topic), Some((_, admin))) = (self.0.topic.get(), self.0.conn.get()) else {
            return;
        };
        match tokio::time::timeout(timeout, admin.delete_topics(vec![topic.clone()])).await {
            Ok(Ok(())) => tracing::debug!(reply_topic = %topic, "deleted the reply topic"),
            Ok(Err(e)) => {
                tracing::warn!(reply_topic = %topic, error = %e, "could not delete the reply topic; delete it by hand")
            }
            Err(_) => {
                tracing::warn!(reply_topic = %topic, "deleting the reply topic took too long; delete it by hand")
            }
        }
    }
}

/// Waits (10 s at most) until the new topic has a leader, so that the first reply is not
/// refused.
async fn wait_for_leader(admin: &Admin, topic: &str) -> Result<()> {
    let limit = Duration::from_secs(10);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match admin.describe_topic(topic).await {
            Ok(info) if info.partitions.iter().any(|p| p.leader >= 0) => return Ok(()),
            Ok(_) => {}
            Err(e) if !e.is_retriable() && e.code().is_none() => return Err(e.into()),
            Err(e) => tracing::debug!(topic, error = %e, "waiting for the reply topic"),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("waiting for a leader of the reply topic {topic}"),
                after: limit,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads the reply topic for good (until aborted), handing each reply to its asker.
async fn read(mut consumer: Consumer, tp: TopicPartition, waiters: Waiters) {
    loop {
        match consumer.recv().await {
            Ok(record) => route(record, &waiters),
            Err(kafka_client::Error::Closed) => return,
            Err(e) => {
                // Network trouble is retried inside the consumer; this stopped the partition
                // (a position gone from the log, a corrupt batch): go on from its end.
                tracing::warn!(error = %e, "reading replies failed; going on from the end of the reply topic");
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Err(e) = consumer.seek(&tp, Offset::Latest).await {
                    tracing::warn!(error = %e, "cannot move to the end of the reply topic");
                }
            }
        }
    }
}

/// Hands a reply to its asker; a reply nobody waits for (late, or a second result of one
/// request) is dropped.
fn route(record: ConsumerRecord, waiters: &Waiters) {
    let Some(id) = record
        .key
        .as_deref()
        .and_then(|k| std::str::from_utf8(k).ok())
    else {
        tracing::debug!(
            offset = record.offset,
            "a reply without correlation id: dropped"
        );
        return;
    };
    let Some(asker) = lock(waiters).remove(id) else {
        tracing::debug!(correlation_id = id, "a reply nobody waits for: dropped");
        return;
    };
    let failed = record
        .headers
        .iter()
        .find(|h| h.key.as_ref() == FAILED.as_bytes());
    let reply = match failed {
        Some(h) => Reply::Failed(
            String::from_utf8_lossy(h.value.as_deref().unwrap_or_default()).into_owned(),
        ),
        None => Reply::Value(record.value),
    };
    let _ = asker.send(reply);
}
