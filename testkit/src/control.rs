//! Fault injection for tests: intercept rules and the request log.

use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;

/// What to do with an intercepted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer without executing the request, with this error code in every error field of the
    /// response (top level, per topic, per partition, as the API has them).
    Error(ResponseError),
    /// Wait this long, then serve the request normally.
    Delay(Duration),
    /// Close the client's connection without answering.
    DropConnection,
    /// Never answer (the connection stays open and keeps serving later requests).
    NoResponse,
    /// Serve a Fetch normally, then damage one record batch of each partition in the
    /// response that carries records (only the filtered partition with
    /// [`Intercept::for_partition`]): the batch holding offset `at`, if the response has it,
    /// or with `None` the first batch. Its stored CRC is flipped, so a client's CRC-32C
    /// check fails. The log itself is untouched: a fetch the rule does not damage reads
    /// clean data.
    CorruptRecords {
        /// The offset whose batch to damage; `None`: the first batch.
        at: Option<i64>,
    },
}

/// An error code an [`Intercept`] can answer with.
pub trait ErrorCode {
    /// The numeric code as it travels on the wire.
    fn wire_code(self) -> i16;
}

impl ErrorCode for kafka_client::KafkaCode {
    fn wire_code(self) -> i16 {
        self.code()
    }
}

impl ErrorCode for ResponseError {
    fn wire_code(self) -> i16 {
        self.code()
    }
}

/// A rule for [`MockCluster::intercept`](crate::MockCluster::intercept): an action, how many
/// matching requests it applies to, and optional filters.
///
/// ```
/// use std::time::Duration;
/// use testkit::{Intercept, KafkaCode};
/// let _ = Intercept::error(KafkaCode::NotLeaderOrFollower).times(2).on_broker(1);
/// let _ = Intercept::delay(Duration::from_millis(200)).for_partition("orders", 0);
/// let _ = Intercept::drop_connection();
/// let _ = Intercept::no_response().always();
/// let _ = Intercept::corrupt_records().for_partition("orders", 0).times(2);
/// let _ = Intercept::corrupt_records_at(42).for_partition("orders", 0).always();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intercept {
    pub(crate) action: Action,
    pub(crate) times: Option<usize>,
    pub(crate) broker: Option<i32>,
    pub(crate) partition: Option<(String, i32)>,
}

impl Intercept {
    fn new(action: Action) -> Self {
        Intercept {
            action,
            times: Some(1),
            broker: None,
            partition: None,
        }
    }
    /// Answer with an error code (the request is not executed): a [`KafkaCode`](crate::KafkaCode)
    /// or the protocol crate's `ResponseError`.
    pub fn error(code: impl ErrorCode) -> Self {
        let code = code.wire_code();
        Self::new(Action::Error(
            ResponseError::try_from_code(code).unwrap_or(ResponseError::Unknown(code)),
        ))
    }
    /// Delay the request, then serve it.
    pub fn delay(by: Duration) -> Self {
        Self::new(Action::Delay(by))
    }
    /// Close the connection instead of answering.
    pub fn drop_connection() -> Self {
        Self::new(Action::DropConnection)
    }
    /// Swallow the request: no answer ever.
    pub fn no_response() -> Self {
        Self::new(Action::NoResponse)
    }
    /// Serve a Fetch, then corrupt the first batch of each partition's records in the
    /// response (see [`Action::CorruptRecords`]). Only responses that had a batch damaged
    /// count towards [`times`](Self::times) (an empty long poll does not). Only meaningful
    /// for `ApiKey::Fetch`; other APIs are served untouched.
    pub fn corrupt_records() -> Self {
        Self::new(Action::CorruptRecords { at: None })
    }
    /// As [`corrupt_records`](Self::corrupt_records), but damage only the batch holding
    /// `offset`, wherever it is in a response (a prefetch from an earlier offset included).
    pub fn corrupt_records_at(offset: i64) -> Self {
        Self::new(Action::CorruptRecords { at: Some(offset) })
    }
    /// Apply to the next `n` matching requests (the default is 1).
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }
    /// Apply to every matching request until [`MockCluster::clear_intercepts`](crate::MockCluster::clear_intercepts).
    pub fn always(mut self) -> Self {
        self.times = None;
        self
    }
    /// Only requests received by this broker.
    pub fn on_broker(mut self, id: i32) -> Self {
        self.broker = Some(id);
        self
    }
    /// Only requests that name this topic-partition (Produce, Fetch, ListOffsets,
    /// OffsetCommit, OffsetFetch, AddPartitionsToTxn, TxnOffsetCommit; Metadata, CreatePartitions and DeleteTopics match on the topic).
    /// The whole request gets the action.
    pub fn for_partition(mut self, topic: impl Into<String>, partition: i32) -> Self {
        self.partition = Some((topic.into(), partition));
        self
    }
    /// The action this rule takes.
    pub fn action(&self) -> &Action {
        &self.action
    }
}

/// An installed rule.
#[derive(Debug, Clone)]
pub(crate) struct InterceptRule {
    pub api_key: ApiKey,
    pub intercept: Intercept,
    /// Identifies the rule for [`use_once`](crate::interception::use_once) (rules before it may
    /// be removed meanwhile).
    pub id: u64,
}

impl InterceptRule {
    pub(crate) fn new(api_key: ApiKey, intercept: Intercept) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InterceptRule {
            api_key,
            intercept,
            id,
        }
    }
}

/// One request as the cluster received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// The broker that received it.
    pub broker: i32,
    /// Its API.
    pub api_key: ApiKey,
    /// Its version.
    pub version: i16,
    /// The client id from its header.
    pub client_id: Option<String>,
}
