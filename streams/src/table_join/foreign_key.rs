//! Foreign-key table-table joins (Kafka Streams' KIP-213): a table keyed by order id joined
//! with a table keyed by customer id through a field of the order.
//!
//! The two tables are partitioned differently, so the join goes through two internal topics,
//! as in Kafka Streams:
//!
//! - a write of an order (the left side, partition `p`) sends a *subscription* to
//!   `<app>-<name>-subscription`, keyed by the customer id (the right table's partitioning):
//!   the order's key and a hash of its value; when the order's customer id changed, an
//!   *unsubscription* from the old one; a deleted order unsubscribes and removes its result at
//!   once;
//! - an agent on the customers' side keeps the subscriptions in the changelogged table
//!   `<name>-subscriptions` (customer id, order id -> hash) and answers each subscription with
//!   a *response* to `<app>-<name>-response`, keyed by the order id (the left partitioning):
//!   the hash it was given and the customer's current value (or none);
//! - a write of a customer sends a response to every order subscribed to it (fan-out);
//! - an agent on the orders' side takes a response only if the hash matches the order's
//!   current value (a stale response, for a value the order no longer has, is dropped), and
//!   writes the result table.
//!
//! Every send is an effect of the change that made it: records are written as outbound
//! entries of an internal table partition (`table::partitions::flush`), produced by the
//! commit that flushes that partition before its changelog, so the event (or the
//! subscription, or response) that caused them is committed only after they are
//! acknowledged (exactly-once: in its transaction). The orders' side sends through the table
//! `<name>-subscription-sender`, whose changelog stays empty.
//!
//! Internal records carry keys and values as base64 in JSON; the internal topics' record
//! keys are the raw key bytes (for partitioning), which must be UTF-8 text (every built-in
//! key codec writes text).

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::result::{self, ResultSpec};
use crate::declarations::{AgentBuilder, Declarations};
use crate::error::{Error, Result};
use crate::table::{outbound_record, Part, Table, TableCore, WriteHook, Written};
use crate::topic::Topic;

/// Subscription entries (`0x00 | fk length (u32 BE) | fk | pk` -> hash) and outbound records
/// (`0x01 | sequence`) of the internal tables.
const SUB_TAG: u8 = 0x00;
const OUT_TAG: u8 = 0x01;

/// The result of an order from its value and its customer's (`None`: no result).
type Combine<L, R, V> = Arc<dyn Fn(&L, Option<&R>) -> Option<V> + Send + Sync>;
type Wire<K, V> = Box<dyn FnOnce(&Arc<Declarations>, &Table<K, V>, &str) -> Result<()> + Send>;

/// A subscription of an order to a customer, or its end.
#[derive(Debug, Serialize, Deserialize)]
struct Subscription {
    /// The customer's key bytes, base64.
    fk: String,
    /// The order's key bytes, base64.
    pk: String,
    /// The hash of the order's value bytes the response must carry back.
    hash: u64,
    subscribe: bool,
}

/// A customer's value for a subscribed order.
#[derive(Debug, Serialize, Deserialize)]
struct Response {
    pk: String,
    hash: u64,
    /// The customer's value bytes, base64 (`None`: no such customer).
    value: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(join: &str, text: &str) -> Result<Bytes> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map(Bytes::from)
        .map_err(|e| Error::TableJoinSetting {
            join: join.to_owned(),
            left: String::new(),
            right: String::new(),
            reason: format!(
                "an internal record is not base64 ({e}): was the topic written by another program?"
            ),
        })
}

/// FNV-1a over the order's value bytes: a response is taken only for the value it answers.
fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `0x00 | fk length | fk`: every subscription to `fk` starts with it.
fn sub_prefix(fk: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(5 + fk.len());
    buf.put_u8(SUB_TAG);
    buf.put_u32(fk.len() as u32);
    buf.put_slice(fk);
    buf.freeze()
}

fn sub_key(fk: &[u8], pk: &[u8]) -> Bytes {
    let mut buf = BytesMut::from(&sub_prefix(fk)[..]);
    buf.put_slice(pk);
    buf.freeze()
}

/// The first key after every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Keys of outbound entries, in the order they were made.
#[derive(Default)]
struct Sequence(AtomicU64);

impl Sequence {
    fn next_key(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(9);
        buf.put_u8(OUT_TAG);
        buf.put_u64(self.0.fetch_add(1, Ordering::Relaxed));
        buf.freeze()
    }
}

fn framed(key: &[u8], value: &impl Serialize) -> Result<Bytes> {
    let value = serde_json::to_vec(value).map_err(|e| Error::TableJoinSetting {
        join: String::new(),
        left: String::new(),
        right: String::new(),
        reason: e.to_string(),
    })?;
    outbound_record(Some(key), &value).ok_or_else(|| Error::TableJoinSetting {
        join: String::new(),
        left: String::new(),
        right: String::new(),
        reason: "a key longer than 4 GiB".into(),
    })
}

/// A foreign-key join being declared: name the result table, then [`build`](Self::build) it.
/// Made by [`Table::join_on`] and [`Table::left_join_on`].
#[must_use = "finish with build()"]
pub struct ForeignKeyJoinBuilder<K, V> {
    name: String,
    left: Arc<TableCore>,
    right: Arc<TableCore>,
    value_serializer: Option<String>,
    store: Option<String>,
    wire: Wire<K, V>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, L> Table<K, L>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    L: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Inner join with `other` through a foreign key (Kafka Streams' foreign-key
    /// `KTable#join`): for every key of this table (an order) whose `foreign_key` (its
    /// customer id) has a value in `other` (a customer), the result `f(order, customer)`,
    /// updated when the order or its customer changes, removed when either is deleted or the
    /// order moves to a customer that does not exist.
    ///
    /// The result table (named `<left>-join-on-<right>` unless
    /// [`named`](ForeignKeyJoinBuilder::named)) is partitioned like this table, with its own
    /// changelog, and reads like any table. The two tables need not be co-partitioned: the
    /// join goes through the internal topics `<app>-<name>-subscription` (keyed by the
    /// foreign key, partitioned like `other`) and `<app>-<name>-response` (keyed by this
    /// table's key), two internal agents and two internal tables (`<name>-subscriptions`, the
    /// orders subscribed to each customer, and `<name>-subscription-sender`), as Kafka
    /// Streams does; see the module docs of `table_join::foreign_key` in the sources. So a result
    /// appears after a round trip through both topics (within a commit interval or two), not
    /// in the write's own change. Both tables must be of one app (not detached, not global).
    ///
    /// ```
    /// # fn main() -> streams::Result<()> {
    /// use serde::{Deserialize, Serialize};
    /// #[derive(Serialize, Deserialize)]
    /// struct Order { customer: String, amount: u32 }
    /// let app = streams::App::builder("shop").build()?;
    /// let orders = app.table::<String, Order>("orders")?;
    /// let customers = app.table::<String, String>("customers")?;
    /// let enriched = orders
    ///     .join_on(&customers, |o| o.customer.clone(), |o, name| format!("{name}: {}", o.amount))
    ///     .build()?;
    /// assert_eq!(enriched.spec().changelog_topic(), "shop-orders-join-on-customers-changelog");
    /// # Ok(()) }
    /// ```
    pub fn join_on<F, R, V>(
        &self,
        other: &Table<F, R>,
        foreign_key: impl Fn(&L) -> F + Send + Sync + 'static,
        f: impl Fn(&L, &R) -> V + Send + Sync + 'static,
    ) -> ForeignKeyJoinBuilder<K, V>
    where
        F: Serialize + DeserializeOwned + Send + Sync + 'static,
        R: Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let combine: Combine<L, R, V> = Arc::new(move |l, r| r.map(|r| f(l, r)));
        ForeignKeyJoinBuilder::new(self, other, "join-on", foreign_key, combine)
    }

    /// Left join with `other` through a foreign key (Kafka Streams' foreign-key
    /// `KTable#leftJoin`): for every key of this table, `f(order, its customer or None)`.
    /// See [`join_on`](Self::join_on) (the default name is `<left>-left-join-on-<right>`).
    pub fn left_join_on<F, R, V>(
        &self,
        other: &Table<F, R>,
        foreign_key: impl Fn(&L) -> F + Send + Sync + 'static,
        f: impl Fn(&L, Option<&R>) -> V + Send + Sync + 'static,
    ) -> ForeignKeyJoinBuilder<K, V>
    where
        F: Serialize + DeserializeOwned + Send + Sync + 'static,
        R: Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let combine: Combine<L, R, V> = Arc::new(move |l, r| Some(f(l, r)));
        ForeignKeyJoinBuilder::new(self, other, "left-join-on", foreign_key, combine)
    }
}

impl<K, V> ForeignKeyJoinBuilder<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn new<L, F, R>(
        left: &Table<K, L>,
        right: &Table<F, R>,
        kind: &str,
        foreign_key: impl Fn(&L) -> F + Send + Sync + 'static,
        combine: Combine<L, R, V>,
    ) -> Self
    where
        L: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Serialize + DeserializeOwned + Send + Sync + 'static,
        R: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let (l, r) = (left.clone(), right.clone());
        let wire: Wire<K, V> = Box::new(move |decls, out, name| {
            wire(decls, out, name, l, r, Arc::new(foreign_key), combine)
        });
        ForeignKeyJoinBuilder {
            name: format!("{}-{kind}-{}", left.name(), right.name()),
            left: left.core().clone(),
            right: right.core().clone(),
            value_serializer: None,
            store: None,
            wire,
            _types: PhantomData,
        }
    }

    /// Names the result table (its changelog `<app>-<name>-changelog`, and the internal
    /// topics and tables after it).
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// The result's value codec chain (`json` by default).
    pub fn value_serializer(mut self, chain: &str) -> Self {
        self.value_serializer = Some(chain.to_owned());
        self
    }

    /// Keeps the result and the internal tables in `url` instead of the app's store.
    pub fn store(mut self, url: &str) -> Self {
        self.store = Some(url.to_owned());
        self
    }

    /// Declares the result table, the internal topics, tables and agents. Errors:
    /// [`Error::TableJoinSetting`] when a side is global or detached or the two are of different
    /// apps, and the errors of declaring a table (a name taken, a bad codec or store).
    pub fn build(self) -> Result<Table<K, V>> {
        result::check_sides(&self.name, &self.left, &self.right)?;
        let Some(decls) = result::app_of(&self.left) else {
            return Err(Error::TableJoinSetting {
                join: self.name.clone(),
                left: self.left.name().to_owned(),
                right: self.right.name().to_owned(),
                reason: "a foreign-key join sends its subscriptions through topics: declare both tables in an app (app.table), not detached".into(),
            });
        };
        let spec = self.left.spec();
        let out = result::declare_in::<K, V>(
            &decls,
            ResultSpec {
                name: &self.name,
                partitions: spec.partition_count(),
                key_serializer: spec.key_serializer(),
                value_serializer: self.value_serializer.as_deref(),
                store: self.store.as_deref(),
                standby_replicas: spec.standbys(),
            },
        )?;
        (self.wire)(&decls, &out, self.store.as_deref().unwrap_or_default())?;
        Ok(out)
    }
}

/// An internal table of the join: its own layout, records checked by the join itself.
fn internal_table(
    decls: &Arc<Declarations>,
    name: &str,
    like: &TableCore,
    store: &str,
) -> Result<Table<String, String>> {
    let spec = like.spec();
    let table = result::declare_in::<String, String>(
        decls,
        ResultSpec {
            name,
            partitions: spec.partition_count(),
            key_serializer: "raw",
            value_serializer: Some("raw"),
            store: (!store.is_empty()).then_some(store),
            standby_replicas: spec.standbys(),
        },
    )?;
    table.core().set_record_check(Arc::new(|_, _| Ok(())));
    table.core().set_render(Arc::new(render_internal));
    Ok(table)
}

/// A subscription entry as JSON for the web pages and the CLI: `{foreign_key, key}` ->
/// `{hash}` (the internal tables' layout is not their declared codecs').
fn render_internal(part: Part, bytes: &[u8]) -> std::result::Result<serde_json::Value, String> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match part {
        Part::Key => {
            let (&tag, rest) = bytes.split_first().ok_or("an empty key")?;
            let len = rest
                .get(..4)
                .and_then(|l| l.try_into().ok())
                .map(|l: [u8; 4]| u32::from_be_bytes(l) as usize);
            match (tag, len) {
                (SUB_TAG, Some(len)) if rest.len() >= 4 + len => Ok(serde_json::json!({
                    "foreign_key": text(&rest[4..4 + len]),
                    "key": text(&rest[4 + len..]),
                })),
                (OUT_TAG, _) => Ok(serde_json::json!("record waiting for the next commit")),
                _ => Err("not a key of a foreign-key join's internal table".into()),
            }
        }
        Part::Value => match <[u8; 8]>::try_from(bytes) {
            Ok(hash) => {
                Ok(serde_json::json!({ "hash": format!("{:016x}", u64::from_be_bytes(hash)) }))
            }
            Err(_) => Ok(serde_json::json!({ "bytes": bytes.len() })),
        },
    }
}

fn wire<K, L, F, R, V>(
    decls: &Arc<Declarations>,
    out: &Table<K, V>,
    store: &str,
    left: Table<K, L>,
    right: Table<F, R>,
    foreign_key: Arc<dyn Fn(&L) -> F + Send + Sync>,
    combine: Combine<L, R, V>,
) -> Result<()>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    L: Serialize + DeserializeOwned + Send + Sync + 'static,
    F: Serialize + DeserializeOwned + Send + Sync + 'static,
    R: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let name = out.name().to_owned();
    let subscriptions =
        internal_table(decls, &format!("{name}-subscriptions"), right.core(), store)?;
    let sender = internal_table(
        decls,
        &format!("{name}-subscription-sender"),
        left.core(),
        store,
    )?;
    let internal = |topic: String, partitions: i32| {
        decls
            .topic::<String, ()>(&topic)
            .partitions(partitions)
            .redeclare(|s| s.internal = true)
            .name()
            .to_owned()
    };
    let sub_topic = internal(
        format!("{}-{name}-subscription", decls.id),
        right.spec().partition_count(),
    );
    let resp_topic = internal(
        format!("{}-{name}-response", decls.id),
        left.spec().partition_count(),
    );
    sender.core().set_outbound(OUT_TAG, &sub_topic)?;
    subscriptions.core().set_outbound(OUT_TAG, &resp_topic)?;
    let sub_events: Topic<String, Subscription> = decls.topic(&sub_topic);
    let resp_events: Topic<String, Response> = decls.topic(&resp_topic);

    let partitions = left.spec().partition_count().max(0) as usize;
    // The orders' hook and the responses write the result one at a time per partition.
    let serial: Arc<Vec<Mutex<()>>> = Arc::new((0..partitions).map(|_| Mutex::new(())).collect());
    let (sent, answered) = (Arc::new(Sequence::default()), Arc::new(Sequence::default()));
    let failed = |side: &'static str, table: &str| {
        let (join, table) = (name.clone(), table.to_owned());
        move |e: Error| Error::TableJoinFailed {
            join: join.clone(),
            side,
            table: table.clone(),
            source: Box::new(e),
        }
    };

    // Orders: subscribe to the customer, unsubscribe from the old one, remove on delete.
    let left_hook: WriteHook = {
        let (lname, oname) = (left.name().to_owned(), out.name().to_owned());
        let (l, r, out, sender) = (
            left.downgrade(),
            right.downgrade(),
            out.downgrade(),
            sender.downgrade(),
        );
        let (serial, sent, fk_of) = (serial.clone(), sent.clone(), foreign_key.clone());
        let (fail_l, fail_out) = (failed("left", &lname), failed("result", &oname));
        Arc::new(move |w: &Written<'_>| {
            let (Some(l), Some(r), Some(out), Some(sender)) =
                (l.upgrade(), r.upgrade(), out.upgrade(), sender.upgrade())
            else {
                return Ok(());
            };
            let fk = |bytes: &Bytes| -> Result<Bytes> {
                let order = l.decode_value_in(w.partition, bytes)?;
                r.encode_key(&fk_of(&order))
            };
            let old_fk = w.old.map(fk).transpose().map_err(&fail_l)?;
            let mut records = Vec::new();
            let _one = serial
                .get(w.partition as usize)
                .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()));
            match w.new {
                None => {
                    result::write(&out, w.key, None).map_err(&fail_out)?;
                    if let Some(old) = old_fk {
                        records.push((old, false, 0));
                    }
                }
                Some(value) => {
                    let new_fk = fk(value).map_err(&fail_l)?;
                    if let Some(old) = old_fk.filter(|old| *old != new_fk) {
                        records.push((old, false, 0));
                    }
                    records.push((new_fk, true, hash(value)));
                }
            }
            sender.core().with_partition(w.partition, w.key, |txn| {
                for (fk, subscribe, hash) in records {
                    let sub = Subscription {
                        fk: b64(&fk),
                        pk: b64(w.key),
                        hash,
                        subscribe,
                    };
                    txn.put(sent.next_key(), Some(framed(&fk, &sub)?));
                }
                Ok(())
            })
        })
    };
    left.core().add_write_hook(left_hook);

    // Customers: answer every order subscribed to the customer with its new value.
    let right_hook: WriteHook = {
        let (r, subs, answered) = (
            right.downgrade(),
            subscriptions.downgrade(),
            answered.clone(),
        );
        Arc::new(move |w: &Written<'_>| {
            let (Some(r), Some(subs)) = (r.upgrade(), subs.upgrade()) else {
                return Ok(());
            };
            subs.core().with_partition(w.partition, w.key, |txn| {
                let prefix = sub_prefix(w.key);
                let end = prefix_end(&prefix);
                // Read under the subscriptions' lock: a subscription answered meanwhile saw
                // this value or an older one, and this answer comes after it.
                let value = r.core().get(w.key)?;
                for (key, hash) in txn.range(&prefix, end.as_deref())? {
                    let pk = key.slice(prefix.len()..);
                    let hash = u64::from_be_bytes(hash[..].try_into().unwrap_or_default());
                    let response = Response {
                        pk: b64(&pk),
                        hash,
                        value: value.as_deref().map(b64),
                    };
                    txn.put(answered.next_key(), Some(framed(&pk, &response)?));
                }
                Ok(())
            })
        })
    };
    right.core().add_write_hook(right_hook);

    // The customers' side: keep the subscriptions, answer each with the customer's value.
    {
        let (r, subs, answered, join) =
            (right.clone(), subscriptions.clone(), answered, name.clone());
        AgentBuilder::<String, Subscription, ()>::new(
            decls,
            &format!("{name}-subscription"),
            &sub_events,
        )
        .table(&subscriptions)
        .table(&right)
        .run(move |mut events| {
            let (r, subs, answered, join) =
                (r.clone(), subs.clone(), answered.clone(), join.clone());
            async move {
                while let Some(event) = events.next().await {
                    let s = &event.value;
                    let (fk, pk) = (unb64(&join, &s.fk)?, unb64(&join, &s.pk)?);
                    let partition = r.core().partition_of(&fk);
                    subs.core().with_partition(partition, &fk, |txn| {
                        let key = sub_key(&fk, &pk);
                        if !s.subscribe {
                            if txn.get(&key)?.is_some() {
                                txn.put(key, None);
                            }
                            return Ok(());
                        }
                        txn.put(key, Some(Bytes::copy_from_slice(&s.hash.to_be_bytes())));
                        let value = r.core().get(&fk)?;
                        let response = Response {
                            pk: s.pk.clone(),
                            hash: s.hash,
                            value: value.as_deref().map(b64),
                        };
                        txn.put(answered.next_key(), Some(framed(&pk, &response)?));
                        Ok(())
                    })?;
                }
                Ok::<(), Error>(())
            }
        });
    }

    // The orders' side: take the responses for the orders' current values.
    {
        let result_table = out.clone();
        let (l, r, out) = (left.clone(), right.clone(), out.clone());
        let (fail_l, fail_r, fail_out) = (
            failed("left", left.name()),
            failed("right", right.name()),
            failed("result", out.name()),
        );
        let join = name.clone();
        AgentBuilder::<String, Response, ()>::new(decls, &format!("{name}-response"), &resp_events)
            .table(&result_table)
            .table(&left)
            .run(move |mut events| {
                let (l, r, out, serial, combine) = (
                    l.clone(),
                    r.clone(),
                    out.clone(),
                    serial.clone(),
                    combine.clone(),
                );
                let (fail_l, fail_r, fail_out, join) = (
                    fail_l.clone(),
                    fail_r.clone(),
                    fail_out.clone(),
                    join.clone(),
                );
                async move {
                    while let Some(event) = events.next().await {
                        let response = &event.value;
                        let pk = unb64(&join, &response.pk)?;
                        let partition = l.core().partition_of(&pk);
                        let _one = serial
                            .get(partition as usize)
                            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()));
                        let Some(order) = l.core().get(&pk).map_err(&fail_l)? else {
                            continue; // deleted since: its result went with it
                        };
                        if hash(&order) != response.hash {
                            continue; // for an older value of the order: a newer response comes
                        }
                        let order = l.decode_value_in(partition, &order).map_err(&fail_l)?;
                        let customer = match &response.value {
                            Some(v) => Some(
                                r.decode_value_in(partition, &unb64(&join, v)?)
                                    .map_err(&fail_r)?,
                            ),
                            None => None,
                        };
                        let value = combine(&order, customer.as_ref());
                        result::write(&out, &pk, value).map_err(&fail_out)?;
                    }
                    Ok::<(), Error>(())
                }
            });
    }
    Ok(())
}

#[cfg(test)]
mod render_tests {
    use super::*;

    #[test]
    fn subscriptions_render_as_foreign_key_key_and_hash() {
        let key = sub_key(b"c-1", b"order-9");
        assert_eq!(
            render_internal(Part::Key, &key).unwrap(),
            serde_json::json!({ "foreign_key": "c-1", "key": "order-9" })
        );
        assert_eq!(
            render_internal(Part::Value, &1u64.to_be_bytes()).unwrap(),
            serde_json::json!({ "hash": "0000000000000001" })
        );
        assert!(render_internal(Part::Key, &[0x00, 0, 0, 0, 9, b'x']).is_err());
        assert!(render_internal(Part::Key, &[]).is_err());
    }
}
