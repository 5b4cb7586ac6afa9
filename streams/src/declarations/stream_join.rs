//! Declaring windowed stream-stream joins: `app.stream_join(..)`, [`StreamJoinBuilder`] and
//! the [`StreamJoin`] handle. A join is a table holding both sides' buffers (changelogged,
//! recovered like any table) and one agent per side that files its events into it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::agent::AgentBuilder;
use super::table::TableBuilder;
use super::Shared;
use crate::error::{Error, Result};
use crate::join::{buffer_render, record_check, JoinCore, JoinKind, Joiner, Side, OUT_TAG};
use crate::table::Table;
use crate::topic::{OnDecodeError, Topic};

/// Configures a windowed stream-stream join of two topics keyed alike (Kafka Streams'
/// `left.join(right, joiner, JoinWindows.ofTimeDifferenceAndGrace(within, grace))`): give
/// [`within`](Self::within) (and a [`grace`](Self::grace)), pick
/// [`inner`](Self::inner), [`left`](Self::left) or [`outer`](Self::outer), and finish with
/// the kind's `sink(topic, joiner)`.
///
/// # Semantics
///
/// By event time (the records' timestamps), per partition, as Kafka Streams' KStream-KStream
/// join:
///
/// - A left event at `t` joins every right event of the same key at `t'` with
///   `|t - t'| <= within`, whichever came first; each pair is sent once, with the later of the
///   two timestamps.
/// - Stream time is the largest timestamp seen on either side (of the partition). An event
///   older than `stream time - (within + grace)` is late: dropped, counted
///   ([`StreamJoin::late_events`]) and logged (the first, then one in 1,000).
/// - A left join sends each left event that found no partner as `(left, None)`, an outer join
///   each event of either side that found none, once its window closed: when stream time
///   passed `t + within + grace` (as Kafka Streams does since 3.1: no early unmatched
///   result for an event whose partner is still to come within the window). An event that
///   is not late yet arrives after a window closed can still pair with that window's event
///   (its own window reaches back to it), so the event may then be sent twice, unmatched and
///   paired, as in Kafka Streams.
/// - The two topics are read side by side, not merged by timestamp as Kafka Streams does
///   (`max.task.idle.ms`): when the reading of one runs ahead of the other's, stream time
///   moves with the one ahead, and the other's events count as late once they are more than
///   `within + grace` behind it. Give a grace that covers how far one topic may run ahead
///   (a backlog in one of them, a restart that reads both from their commits).
/// - Events without a key or a timestamp are skipped ([`StreamJoin::skipped_events`]).
/// - Buffered events are deleted once stream time passed `t + 2 * within + grace` (no event
///   that is not late can pair with them any more): the store stays flat.
///
/// Where this differs from Kafka Streams, on purpose: Kafka Streams sends a late left
/// (left join) or late event of either side (outer join) at once as unmatched, and still
/// joins events up to `2 * within + grace` old; here a late event is dropped whole, as a
/// windowed table drops it, because its partners may have expired already (an unmatched
/// result for it could be false). Kafka Streams also sends an out-of-order event that is
/// unmatched when it arrives and whose `t + within` is already behind stream time at once;
/// here it waits for its close like any other, so a partner arriving within grace pairs with
/// it instead.
///
/// # Commit protocol
///
/// Both sides' events of one partition are filed under that partition's lock, so that
/// insert-and-probe is atomic: a left and a right event arriving at the same time make their
/// pair exactly once. Results (pairs and unmatched ones) are written with the buffers as the
/// table's outbound records: they are sent at the next commit, acknowledged before the
/// buffers' changelog records, and the events that made them commit only after both. After
/// a crash, replayed events make their results again (at-least-once; once under
/// `processing_guarantee("exactly_once")`); after a restart or a rebalance the buffers are
/// recovered from their changelog before events flow. Decode errors of either topic follow
/// its [`OnDecodeError`] policy (or the one given to [`on_decode_error`](Self::on_decode_error)).
///
/// ```
/// use std::time::Duration;
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let cluster = testkit::MockCluster::builder().build().await?;
/// let app = streams::App::builder("shop")
///     .broker(&format!("kafka://{}", cluster.bootstrap()))
///     .build()?;
/// let orders = app.topic::<String, u32>("orders");
/// let payments = app.topic::<String, u32>("payments");
/// let paid = app.topic::<String, String>("paid-orders");
/// let join = app
///     .stream_join("paid", &orders, &payments)
///     .within(Duration::from_secs(60))
///     .grace(Duration::from_secs(10))
///     .inner()
///     .sink(&paid, |order, payment| format!("order {order} paid {payment}"))?;
/// assert_eq!(join.name(), "paid");
/// # Ok(()) }
/// ```
#[must_use = "finish with inner(), left() or outer() and their sink()"]
pub struct StreamJoinBuilder<K, L, R> {
    decls: Shared,
    name: String,
    left: Topic<K, L>,
    right: Topic<K, R>,
    within: Option<Duration>,
    grace: Duration,
    partitions: Option<i32>,
    on_decode_error: Option<OnDecodeError>,
}

/// An inner windowed join: finish with [`sink`](Self::sink).
#[must_use = "finish with sink()"]
pub struct InnerJoin<K, L, R>(StreamJoinBuilder<K, L, R>);

/// A left windowed join: finish with [`sink`](Self::sink).
#[must_use = "finish with sink()"]
pub struct LeftJoin<K, L, R>(StreamJoinBuilder<K, L, R>);

/// An outer windowed join: finish with [`sink`](Self::sink).
#[must_use = "finish with sink()"]
pub struct OuterJoin<K, L, R>(StreamJoinBuilder<K, L, R>);

impl<K, L, R> StreamJoinBuilder<K, L, R>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    L: Serialize + DeserializeOwned + Send + Sync + 'static,
    R: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    pub(crate) fn new(decls: &Shared, name: &str, left: &Topic<K, L>, right: &Topic<K, R>) -> Self {
        StreamJoinBuilder {
            decls: decls.clone(),
            name: name.to_owned(),
            left: left.clone(),
            right: right.clone(),
            within: None,
            grace: Duration::ZERO,
            partitions: None,
            on_decode_error: None,
        }
    }

    /// The largest time difference between two events that join (required; Kafka Streams'
    /// `JoinWindows.ofTimeDifference*`). Zero joins events of equal timestamps only.
    pub fn within(mut self, within: Duration) -> Self {
        self.within = Some(within);
        self
    }

    /// How long after an event's window ends (by stream time) a partner is still accepted
    /// (default 0: Kafka Streams' `ofTimeDifferenceWithNoGrace`).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Partitions of the buffers' table and changelog (default: the left topic's declared
    /// partition count, else the right's, else the app's `topic_partitions`): both topics
    /// must have it.
    pub fn partitions(mut self, partitions: i32) -> Self {
        self.partitions = Some(partitions);
        self
    }

    /// Overrides both topics' [`OnDecodeError`] policies for this join.
    pub fn on_decode_error(mut self, policy: OnDecodeError) -> Self {
        self.on_decode_error = Some(policy);
        self
    }

    /// Only pairs: `sink(topic, |l: &L, r: &R| ..)`.
    pub fn inner(self) -> InnerJoin<K, L, R> {
        InnerJoin(self)
    }

    /// Pairs, and each left event that found no partner once its window closed:
    /// `sink(topic, |l: &L, r: Option<&R>| ..)`.
    pub fn left(self) -> LeftJoin<K, L, R> {
        LeftJoin(self)
    }

    /// Pairs, and each event of either side that found no partner once its window closed:
    /// `sink(topic, |l: Option<&L>, r: Option<&R>| ..)`.
    pub fn outer(self) -> OuterJoin<K, L, R> {
        OuterJoin(self)
    }

    fn millis(&self, setting: &'static str, d: Duration) -> Result<i64> {
        i64::try_from(d.as_millis())
            .map_err(|_| self.setting(setting, "too long: give at most i64::MAX milliseconds"))
    }

    fn setting(&self, setting: &'static str, reason: &str) -> Error {
        Error::JoinSetting {
            join: self.name.clone(),
            setting,
            reason: reason.to_owned(),
        }
    }

    /// Registers the join: its buffers' table and one agent per side.
    fn register<O>(
        self,
        kind: JoinKind,
        out: &Topic<K, O>,
        joiner: impl Fn(&K, Option<&L>, Option<&R>) -> Option<O> + Send + Sync + 'static,
    ) -> Result<StreamJoin>
    where
        O: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let within = match self.within {
            Some(w) => self.millis("within", w)?,
            None => {
                return Err(self.setting(
                    "within",
                    "not given: say how far apart two events may be, with .within(Duration)",
                ))
            }
        };
        let grace = self.millis("grace", self.grace)?;
        let mut table = TableBuilder::<serde_json::Value, serde_json::Value>::new(
            &self.decls,
            &format!("{}-buffers", self.name),
        );
        let partitions = self
            .partitions
            .or(self.left.spec.partitions)
            .or(self.right.spec.partitions);
        if let Some(n) = partitions {
            table = table.partitions(n);
        }
        let table = table.build()?;
        let core = table.core().clone();
        core.set_record_check(record_check::<K, L, R>());
        core.set_render(buffer_render());
        core.set_outbound(OUT_TAG, out.name())?;
        let out = out.clone();
        let join_name = self.name.clone();
        let joiner: Joiner<K, L, R> = Arc::new(move |key, l, r| {
            let Some(value) = joiner(key, l, r) else {
                return Err(Error::JoinSetting {
                    join: join_name.clone(),
                    setting: "kind",
                    reason: "a result lacks a value its kind always has (a bug of the join: \
                             please report it)"
                        .into(),
                });
            };
            let record = out.record(Some(key), &value)?;
            Ok((record.key, record.value.unwrap_or_default()))
        });
        let join = Arc::new(JoinCore::new(&self.name, core, kind, within, grace, joiner));
        // Weak: the join holds the table's core, which holds this.
        let counted = Arc::downgrade(&join);
        table.core().set_late_events(Arc::new(move || {
            counted.upgrade().map_or(0, |join| join.late_events())
        }));
        self.decls
            .add_stream_join(&self.name, self.left.name(), self.right.name());
        side_agent(&self, &table, &join, Side::Left, &self.left);
        side_agent(&self, &table, &join, Side::Right, &self.right);
        let handle_join = join.clone();
        Ok(StreamJoin {
            name: self.name,
            table,
            counts: Arc::new(move || {
                (
                    handle_join.late_events(),
                    handle_join.skipped_events(),
                    handle_join.filed_events(),
                )
            }),
        })
    }
}

/// Registers the agent of one side: it files each event into the join.
fn side_agent<K, L, R, V>(
    builder: &StreamJoinBuilder<K, L, R>,
    table: &Table<serde_json::Value, serde_json::Value>,
    join: &Arc<JoinCore<K, L, R>>,
    side: Side,
    topic: &Topic<K, V>,
) where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    L: Serialize + DeserializeOwned + Send + Sync + 'static,
    R: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let name = match side {
        Side::Left => format!("{}.left", builder.name),
        Side::Right => format!("{}.right", builder.name),
    };
    let mut agent = AgentBuilder::<K, V, V>::new(&builder.decls, &name, topic).table(table);
    if let Some(policy) = &builder.on_decode_error {
        agent = agent.on_decode_error(policy.clone());
    }
    let join = join.clone();
    agent.run(move |mut events| {
        let join = join.clone();
        async move {
            while let Some(event) = events.next().await {
                join.file_event(side, &event)?;
            }
            Ok::<(), Error>(())
        }
    });
}

impl<K, L, R> InnerJoin<K, L, R>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    L: Serialize + DeserializeOwned + Send + Sync + 'static,
    R: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Sends `joiner(left, right)` for each pair to `topic`, keyed by the join key.
    /// Errors ([`Error::JoinSetting`], [`Error::DuplicateTable`]): no `within`, a duration
    /// beyond `i64::MAX` milliseconds, a join name taken.
    pub fn sink<O>(
        self,
        topic: &Topic<K, O>,
        joiner: impl Fn(&L, &R) -> O + Send + Sync + 'static,
    ) -> Result<StreamJoin>
    where
        O: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.0
            .register(JoinKind::Inner, topic, move |_, l, r| Some(joiner(l?, r?)))
    }
}

impl<K, L, R> LeftJoin<K, L, R>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    L: Serialize + DeserializeOwned + Send + Sync + 'static,
    R: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Sends `joiner(left, right)` for each pair, and `joiner(left, None)` for each left
    /// event unmatched when its window closed, to `topic`, keyed by the join key. Errors as
    /// [`InnerJoin::sink`].
    pub fn sink<O>(
        self,
        topic: &Topic<K, O>,
        joiner: impl Fn(&L, Option<&R>) -> O + Send + Sync + 'static,
    ) -> Result<StreamJoin>
    where
        O: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.0
            .register(JoinKind::Left, topic, move |_, l, r| Some(joiner(l?, r)))
    }
}

impl<K, L, R> OuterJoin<K, L, R>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    L: Serialize + DeserializeOwned + Send + Sync + 'static,
    R: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Sends `joiner(left, right)` for each pair, and `joiner(Some(l), None)` or
    /// `joiner(None, Some(r))` for each event unmatched when its window closed, to `topic`,
    /// keyed by the join key. Errors as [`InnerJoin::sink`].
    pub fn sink<O>(
        self,
        topic: &Topic<K, O>,
        joiner: impl Fn(Option<&L>, Option<&R>) -> O + Send + Sync + 'static,
    ) -> Result<StreamJoin>
    where
        O: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.0
            .register(JoinKind::Outer, topic, move |_, l, r| Some(joiner(l, r)))
    }
}

/// A registered windowed stream-stream join.
#[derive(Clone)]
pub struct StreamJoin {
    name: String,
    table: Table<serde_json::Value, serde_json::Value>,
    /// Late, skipped and filed events.
    counts: Arc<dyn Fn() -> (u64, u64, u64) + Send + Sync>,
}

impl fmt::Debug for StreamJoin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamJoin")
            .field("name", &self.name)
            .field("table", &self.table.name())
            .finish_non_exhaustive()
    }
}

impl StreamJoin {
    /// The join's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table holding both sides' buffers, `<join>-buffers` (changelog
    /// `<app>-<join>-buffers-changelog`).
    pub fn table_name(&self) -> &str {
        self.table.name()
    }

    /// Events dropped on this worker for being later than the grace period.
    pub fn late_events(&self) -> u64 {
        (self.counts)().0
    }

    /// Events skipped on this worker for having no key or no timestamp.
    pub fn skipped_events(&self) -> u64 {
        (self.counts)().1
    }

    /// Events of either side this worker filed into the join (joined, late or skipped):
    /// a test's sign that an event was processed.
    pub fn filed_events(&self) -> u64 {
        (self.counts)().2
    }

    /// Entries in the buffers' partitions this worker owns (buffered events, their due
    /// entries, one clock per partition, results not yet sent): what a long run must keep
    /// flat.
    pub fn stored_entries(&self) -> Result<u64> {
        self.table.len()
    }
}
