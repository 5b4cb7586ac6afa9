//! Stream-table and stream-global-table joins: each event of an agent's stream with the
//! table's value for its key (or for the key an extractor takes from it) as the table is when
//! the event is handled. The agent builder's `join`, `inner_join`, `join_global` and
//! `inner_join_global` make the lookups here; [`JoinedStream`] runs them.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::record::Event;
use crate::stream::AgentStream;
use crate::table::Table;

/// What an event joins with: `Ok(Some(j))` joined, `Ok(None)` dropped (an inner join without
/// a match), `Err` a bad event ([`Error::JoinKey`], [`Error::JoinDecode`]: the decode-error
/// policy) or a failure that stops the agent (any other error).
pub(crate) type Lookup<K, V, J> = Arc<dyn Fn(&Event<K, V>) -> Result<Option<J>> + Send + Sync>;

/// A table value that does not decode, as the join's error naming both sides.
fn read<K, V, Q, W>(table: &Table<Q, W>, event: &Event<K, V>, key: &Q) -> Result<Option<W>>
where
    Q: Serialize + DeserializeOwned + 'static,
    W: Serialize + DeserializeOwned + 'static,
{
    table.get(key).map_err(|e| match e {
        Error::TableDecode { reason, part, .. } => Error::JoinDecode {
            stream: event.topic.to_string(),
            partition: event.partition,
            offset: event.offset,
            table: table.name().to_owned(),
            reason: format!("{part}: {reason}"),
        },
        other => other,
    })
}

/// The lookup of a stream-table join by the event's key: `inner` drops events without a
/// value (and without a key, as Kafka Streams does); otherwise they join with `None`.
pub(crate) fn table_lookup<K, V, W, J>(
    table: Table<K, W>,
    shape: fn(Option<W>) -> Option<J>,
) -> Lookup<K, V, J>
where
    K: Serialize + DeserializeOwned + 'static,
    V: 'static,
    W: Serialize + DeserializeOwned + Send + Sync + 'static,
    J: 'static,
{
    Arc::new(move |event| {
        let found = match &event.key {
            Some(key) => read(&table, event, key)?,
            None => None,
        };
        Ok(shape(found))
    })
}

/// The lookup of a stream-global-table join by the key `extract` takes from the value; no
/// key is a bad event ([`Error::JoinKey`]).
pub(crate) fn global_lookup<K, V, Q, W, J>(
    table: Table<Q, W>,
    extract: impl Fn(&V) -> Option<Q> + Send + Sync + 'static,
    shape: fn(Option<W>) -> Option<J>,
) -> Lookup<K, V, J>
where
    K: 'static,
    V: 'static,
    Q: Serialize + DeserializeOwned + 'static,
    W: Serialize + DeserializeOwned + Send + Sync + 'static,
    J: 'static,
{
    Arc::new(move |event| {
        let Some(key) = extract(&event.value) else {
            return Err(Error::JoinKey {
                stream: event.topic.to_string(),
                partition: event.partition,
                offset: event.offset,
                table: table.name().to_owned(),
            });
        };
        Ok(shape(read(&table, event, &key)?))
    })
}

/// An agent's stream joined with a table: a `futures::Stream` of [`Event`]s whose value is
/// `(value, table value)` (`Option` of it in a left join), keeping the event's key, position
/// and commit hold. An event that finds nothing in an inner join is done at once (as a
/// filtered one); a bad event goes through the decode-error policy.
pub struct JoinedStream<K, V, J> {
    events: AgentStream<K, V>,
    lookup: Lookup<K, V, J>,
}

impl<K, V, J> JoinedStream<K, V, J>
where
    K: Serialize + DeserializeOwned + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    pub(crate) fn new(events: AgentStream<K, V>, lookup: Lookup<K, V, J>) -> Self {
        JoinedStream { events, lookup }
    }

    /// The agent's name.
    pub fn agent_name(&self) -> &str {
        self.events.agent_name()
    }
}

impl<K, V, J> Stream for JoinedStream<K, V, J>
where
    K: Serialize + DeserializeOwned + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    type Item = Event<K, (V, J)>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let Some(event) = futures::ready!(Pin::new(&mut self.events).poll_next(cx)) else {
                return Poll::Ready(None);
            };
            match (self.lookup)(&event) {
                Ok(Some(other)) => return Poll::Ready(Some(event.map(|v| (v, other)))),
                Ok(None) => drop(event), // done: an inner join without a match
                Err(e @ (Error::JoinKey { .. } | Error::JoinDecode { .. })) => {
                    self.events.reject(event, &e)
                }
                Err(e) => self.events.stop_on(event, &e),
            }
        }
    }
}

impl<K, V, J> Unpin for JoinedStream<K, V, J> {}
