//! Table-table joins in a running app, on the mock cluster: inner, left and outer results
//! follow updates and deletes of both sides and reach their changelogs; they survive a
//! restart (redb) and a worker's death (the other recovers the result from its changelog and
//! joins on); a result the changelog refuses stops the worker with nothing committed past
//! it; foreign-key joins follow updates and deletes of orders and customers, including
//! orders that change customer.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{mock, stopped_by_itself, WAIT};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use streams::{App, Error, PartitionStatus, Table, Topic};
use testkit::MockCluster;

const PARTITIONS: i32 = 3;

fn app(id: &str, cluster: &MockCluster, store: &str) -> App {
    common::mock_app(id, cluster)
        .topic_partitions(PARTITIONS)
        .store(store)
        .broker_commit_interval(Duration::from_millis(100))
        .broker_rebalance_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// An agent that writes `table` from `topic`: a value sets the key, `null` deletes it.
fn writer<V>(app: &App, topic: &Topic<String, Option<V>>, table: &Table<String, V>)
where
    V: Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    let t = table.clone();
    app.agent_builder(&format!("write-{}", table.name()), topic)
        .table(table)
        .run(move |mut events| {
            let t = t.clone();
            async move {
                while let Some(e) = events.next().await {
                    let key = e.key.clone().unwrap_or_default();
                    match e.value.clone() {
                        Some(v) => t.insert(&key, v)?,
                        None => {
                            t.remove(&key)?;
                        }
                    }
                }
                Ok::<(), Error>(())
            }
        });
}

type Pair = (Option<i64>, Option<i64>);

struct Joins {
    left: Topic<String, Option<i64>>,
    right: Topic<String, Option<i64>>,
    inner: Table<String, i64>,
    left_join: Table<String, Pair>,
    outer: Table<String, Pair>,
}

fn joins_app(app: &App) -> Joins {
    let id = app.id().to_owned();
    let left_topic = app.topic::<String, Option<i64>>(&format!("{id}-left"));
    let right_topic = app.topic::<String, Option<i64>>(&format!("{id}-right"));
    let left = app.table::<String, i64>("left").unwrap();
    let right = app.table::<String, i64>("right").unwrap();
    writer(app, &left_topic, &left);
    writer(app, &right_topic, &right);
    Joins {
        inner: left
            .join(&right, |l, r| l + r)
            .named("inner")
            .build()
            .unwrap(),
        left_join: left
            .left_join(&right, |l, r| (Some(*l), r.copied()))
            .named("leftj")
            .build()
            .unwrap(),
        outer: left
            .outer_join(&right, |l, r| (l.copied(), r.copied()))
            .named("outer")
            .build()
            .unwrap(),
        left: left_topic,
        right: right_topic,
    }
}

/// Updates and deletes of both sides over 12 keys, in an order mixing them; returns the
/// sides' final contents.
async fn send_round(j: &Joins, round: i64) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let (mut l, mut r) = (BTreeMap::new(), BTreeMap::new());
    for k in 0..12i64 {
        let key = format!("k{k}");
        // Each key gets its own order of left/right updates and deletes.
        let steps: Vec<(bool, Option<i64>)> = match (k + round) % 6 {
            0 => vec![(true, Some(1)), (false, Some(10))],
            1 => vec![(false, Some(10)), (true, Some(1)), (true, None)],
            2 => vec![(true, Some(1)), (false, Some(10)), (false, None)],
            3 => vec![(false, Some(10)), (false, None), (true, Some(2))],
            4 => vec![
                (true, Some(1)),
                (true, None),
                (false, Some(7)),
                (false, None),
            ],
            _ => vec![(true, Some(1)), (false, Some(3)), (true, Some(5 + round))],
        };
        for (is_left, value) in steps {
            let (topic, side) = if is_left {
                (&j.left, &mut l)
            } else {
                (&j.right, &mut r)
            };
            topic.send(key.clone(), value).await.unwrap();
            match value {
                Some(v) => side.insert(key.clone(), v),
                None => side.remove(&key),
            };
        }
    }
    (l, r)
}

struct Expected {
    inner: BTreeMap<String, i64>,
    left: BTreeMap<String, Pair>,
    outer: BTreeMap<String, Pair>,
}

fn expected(l: &BTreeMap<String, i64>, r: &BTreeMap<String, i64>) -> Expected {
    let mut e = Expected {
        inner: BTreeMap::new(),
        left: BTreeMap::new(),
        outer: BTreeMap::new(),
    };
    for key in l.keys().chain(r.keys()) {
        let (lv, rv) = (l.get(key).copied(), r.get(key).copied());
        if let (Some(a), Some(b)) = (lv, rv) {
            e.inner.insert(key.clone(), a + b);
        }
        if lv.is_some() {
            e.left.insert(key.clone(), (lv, rv));
        }
        e.outer.insert(key.clone(), (lv, rv));
    }
    e
}

fn held<V: Serialize + serde::de::DeserializeOwned + 'static>(
    t: &Table<String, V>,
) -> BTreeMap<String, V> {
    t.items().unwrap().into_iter().collect()
}

fn assert_results(j: &Joins, e: &Expected) {
    assert_eq!(held(&j.inner), e.inner, "inner");
    assert_eq!(held(&j.left_join), e.left, "left");
    assert_eq!(held(&j.outer), e.outer, "outer");
}

/// The latest value per key of a table's changelog (what compaction keeps), decoded.
fn changelog<V: serde::de::DeserializeOwned>(
    cluster: &MockCluster,
    topic: &str,
) -> BTreeMap<String, V> {
    let mut out = BTreeMap::new();
    for p in 0..PARTITIONS {
        for (_, k, v) in cluster.records(topic, p) {
            let key = String::from_utf8(k.unwrap().to_vec()).unwrap();
            match v {
                Some(v) => out.insert(key, serde_json::from_slice(&v).unwrap()),
                None => out.remove(&key),
            };
        }
    }
    out
}

async fn wait_active(app: &App, tables: usize) {
    common::wait_until("every table partition active", || {
        let parts = app.table_partitions().unwrap();
        parts.len() == tables * PARTITIONS as usize
            && parts.iter().all(|p| p.status == PartitionStatus::Active)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inner_left_and_outer_results_follow_both_sides_and_reach_their_changelogs() {
    let cluster = mock().await;
    let id = testkit::unique_name("tt-joins");
    let app = app(&id, &cluster, "memory://");
    let j = joins_app(&app);
    app.start().await.unwrap();
    let (l, r) = send_round(&j, 0).await;
    app.wait_caught_up(WAIT).await.unwrap();
    let e = expected(&l, &r);
    assert!(
        !e.inner.is_empty() && e.outer.len() > e.inner.len(),
        "a mixed input"
    );
    assert_results(&j, &e);
    app.commit().await.unwrap();
    assert_eq!(
        changelog::<i64>(&cluster, &format!("{id}-inner-changelog")),
        e.inner
    );
    assert_eq!(
        changelog::<Pair>(&cluster, &format!("{id}-leftj-changelog")),
        e.left
    );
    assert_eq!(
        changelog::<Pair>(&cluster, &format!("{id}-outer-changelog")),
        e.outer
    );
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_results_survive_a_restart_with_redb_and_join_on() {
    let cluster = mock().await;
    let id = testkit::unique_name("tt-redb");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb://{}", dir.path().display());
    let app1 = app(&id, &cluster, &store);
    let j = joins_app(&app1);
    app1.start().await.unwrap();
    let (l, r) = send_round(&j, 0).await;
    app1.wait_caught_up(WAIT).await.unwrap();
    app1.shutdown().await.unwrap();
    drop((app1, j));

    let app2 = app(&id, &cluster, &store);
    let j = joins_app(&app2);
    app2.start().await.unwrap();
    wait_active(&app2, 5).await;
    let replayed: u64 = app2
        .table_partitions()
        .unwrap()
        .iter()
        .map(|p| p.replayed)
        .sum();
    assert_eq!(replayed, 0, "a cleanly stopped redb store is up to date");
    assert_results(&j, &expected(&l, &r));
    // And joins on from the restored sides.
    let (l2, r2) = send_round(&j, 1).await;
    app2.wait_caught_up(WAIT).await.unwrap();
    let (mut l, mut r) = (l, r);
    for k in 0..12 {
        let key = format!("k{k}");
        for (side, new) in [(&mut l, &l2), (&mut r, &r2)] {
            match new.get(&key) {
                Some(v) => side.insert(key.clone(), *v),
                None => side.remove(&key),
            };
        }
    }
    assert_results(&j, &expected(&l, &r));
    app2.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_that_takes_over_recovers_results_from_their_changelog_and_joins_on() {
    let cluster = mock().await;
    let id = testkit::unique_name("tt-rebalance");
    let (a, b) = (
        app(&id, &cluster, "memory://"),
        app(&id, &cluster, "memory://"),
    );
    let (ja, jb) = (joins_app(&a), joins_app(&b));
    a.start().await.unwrap();
    b.start().await.unwrap();
    common::wait_until("both workers own partitions", || {
        let owned = |app: &App| {
            app.table_partitions()
                .unwrap()
                .iter()
                .any(|p| p.status == PartitionStatus::Active)
        };
        owned(&a) && owned(&b)
    })
    .await;
    let (l, r) = send_round(&ja, 0).await;
    a.wait_caught_up(WAIT).await.unwrap();
    b.wait_caught_up(WAIT).await.unwrap();
    a.commit().await.unwrap();
    b.commit().await.unwrap();
    let e = expected(&l, &r);
    let both = |t: fn(&Joins) -> BTreeMap<String, i64>| {
        let mut all = t(&ja);
        all.extend(t(&jb));
        all
    };
    assert_eq!(both(|j| held(&j.inner)), e.inner, "split over two workers");

    // b stops; a takes every partition, recovering b's results from their changelogs.
    b.shutdown().await.unwrap();
    common::wait_until("a owns every partition", || {
        let parts = a.table_partitions().unwrap();
        parts
            .iter()
            .filter(|p| p.status == PartitionStatus::Active)
            .count()
            == 5 * PARTITIONS as usize
    })
    .await;
    let recovered: u64 = a
        .table_partitions()
        .unwrap()
        .iter()
        .filter(|p| ["inner", "leftj", "outer"].contains(&p.table.as_str()))
        .map(|p| p.replayed)
        .sum();
    assert!(
        recovered > 0,
        "the results b wrote come from their changelogs"
    );
    assert_results(&ja, &e);
    // And joins on: round 1 moves every key to a new state.
    let (l2, r2) = send_round(&ja, 1).await;
    a.wait_caught_up(WAIT).await.unwrap();
    let (mut l, mut r) = (l, r);
    for k in 0..12 {
        let key = format!("k{k}");
        for (side, new) in [(&mut l, &l2), (&mut r, &r2)] {
            match new.get(&key) {
                Some(v) => side.insert(key.clone(), *v),
                None => side.remove(&key),
            };
        }
    }
    assert_results(&ja, &expected(&l, &r));
    a.shutdown().await.unwrap();
}

/// The producer's default `max_request_size` is 1 MiB: a result this long can never be written.
const TOO_LARGE: i64 = 2 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_its_changelog_refuses_stops_the_worker_with_nothing_committed_past_it() {
    let cluster = mock().await;
    let id = testkit::unique_name("tt-refused");
    let app = common::mock_app(&id, &cluster)
        .broker_commit_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let left_topic = app.topic::<String, Option<i64>>(&format!("{id}-left"));
    let right_topic = app.topic::<String, Option<i64>>(&format!("{id}-right"));
    let left = app.table::<String, i64>("left").unwrap();
    let right = app.table::<String, i64>("right").unwrap();
    writer(&app, &left_topic, &left);
    writer(&app, &right_topic, &right);
    let blobs = left
        .join(&right, |n, _| "x".repeat(*n as usize))
        .named("blobs")
        .build()
        .unwrap();
    app.start().await.unwrap();
    right_topic.send("a".to_owned(), Some(1)).await.unwrap();
    right_topic.send("big".to_owned(), Some(1)).await.unwrap();
    // The right side first, so that the left event is the one whose result fails.
    common::wait_until("the right side written", || {
        matches!(right.get("big"), Ok(Some(1)))
    })
    .await;
    left_topic.send("a".to_owned(), Some(10)).await.unwrap();
    left_topic
        .send("big".to_owned(), Some(TOO_LARGE))
        .await
        .unwrap();
    let err = stopped_by_itself(&app)
        .await
        .expect_err("the result cannot be written");
    assert!(
        matches!(&err, Error::ChangelogWrite { table, .. } if table == "blobs"),
        "{err}"
    );
    let committed: Vec<_> = cluster
        .commit_history(&id)
        .into_iter()
        .filter(|c| c.topic == format!("{id}-left"))
        .collect();
    assert!(
        committed.iter().all(|c| c.offset <= 1),
        "committed past the failed result: {committed:?}"
    );
    drop(blobs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_with_different_partition_counts_are_refused_naming_both() {
    let cluster = mock().await;
    let app = app("tt-partitions", &cluster, "memory://");
    let left = app.table::<String, i64>("orders").unwrap();
    let right = app
        .table_builder::<String, i64>("prices")
        .partitions(4)
        .build()
        .unwrap();
    let err = left.join(&right, |a, b| a * b).build().unwrap_err();
    assert!(
        matches!(&err, Error::TableJoinNotCoPartitioned { left, right, left_partitions: 3, right_partitions: 4, .. } if left == "orders" && right == "prices"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("orders") && text.contains("prices") && text.contains("join_on"),
        "{text}"
    );
    assert!(
        app.tables().iter().all(|t| t.name != "orders-join-prices"),
        "nothing declared"
    );
}

// ---- Foreign-key joins ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    customer: String,
    amount: i64,
}

struct FkJoins {
    orders: Topic<String, Option<Order>>,
    customers: Topic<String, Option<String>>,
    inner: Table<String, String>,
    left: Table<String, String>,
}

fn fk_app(app: &App) -> FkJoins {
    let id = app.id().to_owned();
    let orders_topic = app.topic::<String, Option<Order>>(&format!("{id}-orders"));
    // The customers are partitioned otherwise: a foreign-key join needs no co-partitioning.
    let customers_topic = app
        .topic::<String, Option<String>>(&format!("{id}-customers"))
        .partitions(2);
    let orders = app.table::<String, Order>("orders").unwrap();
    let customers = app
        .table_builder::<String, String>("customers")
        .partitions(2)
        .build()
        .unwrap();
    writer(app, &orders_topic, &orders);
    writer(app, &customers_topic, &customers);
    FkJoins {
        inner: orders
            .join_on(
                &customers,
                |o| o.customer.clone(),
                |o, c| format!("{c}:{}", o.amount),
            )
            .named("fk-inner")
            .build()
            .unwrap(),
        left: orders
            .left_join_on(
                &customers,
                |o| o.customer.clone(),
                |o, c| format!("{}:{}", c.map_or("?", String::as_str), o.amount),
            )
            .named("fk-left")
            .build()
            .unwrap(),
        orders: orders_topic,
        customers: customers_topic,
    }
}

fn fk_expected(
    orders: &BTreeMap<String, Order>,
    customers: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let (mut inner, mut left) = (BTreeMap::new(), BTreeMap::new());
    for (k, o) in orders {
        let c = customers.get(&o.customer);
        if let Some(c) = c {
            inner.insert(k.clone(), format!("{c}:{}", o.amount));
        }
        left.insert(
            k.clone(),
            format!("{}:{}", c.map_or("?", String::as_str), o.amount),
        );
    }
    (inner, left)
}

async fn wait_fk(
    j: &FkJoins,
    orders: &BTreeMap<String, Order>,
    customers: &BTreeMap<String, String>,
) {
    let (inner, left) = fk_expected(orders, customers);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (hi, hl) = (held(&j.inner), held(&j.left));
        if hi == inner && hl == left {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "inner {hi:?} != {inner:?}, or left {hl:?} != {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_key_joins_follow_updates_and_deletes_of_both_sides_and_changes_of_customer() {
    let cluster = mock().await;
    let id = testkit::unique_name("fk-joins");
    let app = app(&id, &cluster, "memory://");
    let j = fk_app(&app);
    app.start().await.unwrap();
    let (mut orders, mut customers) = (BTreeMap::new(), BTreeMap::new());
    let order = |c: &str, amount| Order {
        customer: c.into(),
        amount,
    };
    macro_rules! customer {
        ($k:expr, $v:expr) => {{
            let v: Option<&str> = $v;
            j.customers
                .send($k.to_owned(), v.map(str::to_owned))
                .await
                .unwrap();
            match v {
                Some(v) => customers.insert($k.to_owned(), v.to_owned()),
                None => customers.remove($k),
            };
        }};
    }
    macro_rules! order {
        ($k:expr, $v:expr) => {{
            let v: Option<Order> = $v;
            j.orders.send($k.to_owned(), v.clone()).await.unwrap();
            match v {
                Some(v) => orders.insert($k.to_owned(), v),
                None => orders.remove($k),
            };
        }};
    }
    // Customers first, then orders (one without its customer), then changes of every kind.
    customer!("c1", Some("ann"));
    customer!("c2", Some("bob"));
    for i in 0..6 {
        order!(
            &format!("o{i}"),
            Some(order(["c1", "c2", "c3"][i % 3], i as i64))
        );
    }
    wait_fk(&j, &orders, &customers).await;
    customer!("c1", Some("anna")); // fans out to o0 and o3
    order!("o1", Some(order("c1", 11))); // c2 -> c1
    order!("o4", Some(order("c3", 44))); // c2 -> c3 (no such customer: inner drops it)
    order!("o3", None); // deleted
    wait_fk(&j, &orders, &customers).await;
    customer!("c2", None); // o1 moved away; nobody else left on c2
    customer!("c3", Some("cy")); // o2, o5 and o4 find theirs
    order!("o0", Some(order("c2", 100))); // to a deleted customer
    customer!("c1", None); // o1 loses its customer
    order!("o6", Some(order("c3", 6)));
    order!("o6", Some(order("c1", 7))); // twice quickly: the first response is stale
    wait_fk(&j, &orders, &customers).await;
    customer!("c1", Some("again"));
    order!("o2", None);
    wait_fk(&j, &orders, &customers).await;
    // The result tables are changelogged like any table.
    app.commit().await.unwrap();
    let (inner, left) = fk_expected(&orders, &customers);
    assert_eq!(
        changelog::<String>(&cluster, &format!("{id}-fk-inner-changelog")),
        inner
    );
    assert_eq!(
        changelog::<String>(&cluster, &format!("{id}-fk-left-changelog")),
        left
    );
    app.shutdown().await.unwrap();
}

/// `a` then `b` merged: the sides after both rounds.
fn merged(a: &BTreeMap<String, i64>, b: &BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    let mut out = a.clone();
    for k in 0..12 {
        let key = format!("k{k}");
        match b.get(&key) {
            Some(v) => out.insert(key, *v),
            None => out.remove(&key),
        };
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_before_its_commit_is_replayed_into_results_equal_to_the_join_of_its_sides()
{
    let cluster = mock().await;
    let id = testkit::unique_name("tt-killed");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb://{}", dir.path().display());
    let killable = |id: &str| {
        common::mock_app(id, &cluster)
            .topic_partitions(PARTITIONS)
            .store(&store)
            // Commits only when the test asks.
            .broker_commit_interval(Duration::from_secs(3600))
            .build()
            .unwrap()
    };
    let app1 = killable(&id);
    let j = joins_app(&app1);
    app1.start().await.unwrap();
    let (l0, r0) = send_round(&j, 0).await;
    app1.wait_caught_up(WAIT).await.unwrap();
    app1.commit().await.unwrap();
    // Round 1 is processed (tables and results written) but never committed: killed.
    let (l1, r1) = send_round(&j, 1).await;
    app1.wait_caught_up(WAIT).await.unwrap();
    app1.abort().await;
    drop((app1, j));

    let app2 = killable(&id);
    let j = joins_app(&app2);
    app2.start().await.unwrap();
    app2.wait_caught_up(WAIT).await.unwrap();
    assert_results(&j, &expected(&merged(&l0, &l1), &merged(&r0, &r1)));
    app2.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_exactly_once_results_are_committed_with_their_events() {
    let cluster = mock().await;
    let id = testkit::unique_name("tt-eos");
    let app = common::mock_app(&id, &cluster)
        .topic_partitions(PARTITIONS)
        .processing_guarantee("exactly_once")
        .broker_commit_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let j = joins_app(&app);
    let fk = fk_app(&app);
    app.start().await.unwrap();
    let (l, r) = send_round(&j, 2).await;
    let mut customers = BTreeMap::new();
    for (k, v) in [("c1", "ann"), ("c2", "bob")] {
        fk.customers
            .send(k.to_owned(), Some(v.to_owned()))
            .await
            .unwrap();
        customers.insert(k.to_owned(), v.to_owned());
    }
    let mut orders = BTreeMap::new();
    for (k, c, amount) in [
        ("o1", "c1", 1),
        ("o2", "c2", 2),
        ("o3", "c9", 3),
        ("o1", "c2", 4),
    ] {
        let o = Order {
            customer: c.into(),
            amount,
        };
        fk.orders.send(k.to_owned(), Some(o.clone())).await.unwrap();
        orders.insert(k.to_owned(), o);
    }
    app.wait_caught_up(WAIT).await.unwrap();
    let e = expected(&l, &r);
    assert_results(&j, &e);
    wait_fk(&fk, &orders, &customers).await;
    app.commit().await.unwrap();
    assert_eq!(
        changelog::<i64>(&cluster, &format!("{id}-inner-changelog")),
        e.inner
    );
    assert_eq!(
        changelog::<Pair>(&cluster, &format!("{id}-outer-changelog")),
        e.outer
    );
    let (inner, left) = fk_expected(&orders, &customers);
    assert_eq!(
        changelog::<String>(&cluster, &format!("{id}-fk-inner-changelog")),
        inner
    );
    assert_eq!(
        changelog::<String>(&cluster, &format!("{id}-fk-left-changelog")),
        left
    );
    app.shutdown().await.unwrap();
}

/// [`wait_fk`] over the workers' results together.
async fn wait_fk_on(
    joins: &[&FkJoins],
    orders: &BTreeMap<String, Order>,
    customers: &BTreeMap<String, String>,
) {
    let (inner, left) = fk_expected(orders, customers);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (mut hi, mut hl) = (BTreeMap::new(), BTreeMap::new());
        for j in joins {
            hi.extend(held(&j.inner));
            hl.extend(held(&j.left));
        }
        if hi == inner && hl == left {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "inner {hi:?} != {inner:?}, or left {hl:?} != {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_key_join_goes_on_after_a_worker_leaves_from_the_subscriptions_it_recovered() {
    let cluster = mock().await;
    let id = testkit::unique_name("fk-rebalance");
    let (a, b) = (
        app(&id, &cluster, "memory://"),
        app(&id, &cluster, "memory://"),
    );
    let (ja, jb) = (fk_app(&a), fk_app(&b));
    a.start().await.unwrap();
    b.start().await.unwrap();
    common::wait_until("both workers own partitions", || {
        let owned = |app: &App| {
            app.table_partitions()
                .unwrap()
                .iter()
                .any(|p| p.status == PartitionStatus::Active)
        };
        owned(&a) && owned(&b)
    })
    .await;
    let (mut orders, mut customers) = (BTreeMap::new(), BTreeMap::new());
    for (k, v) in [("c1", "ann"), ("c2", "bob"), ("c3", "cy")] {
        ja.customers
            .send(k.to_owned(), Some(v.to_owned()))
            .await
            .unwrap();
        customers.insert(k.to_owned(), v.to_owned());
    }
    for i in 0..12i64 {
        let o = Order {
            customer: format!("c{}", 1 + i % 3),
            amount: i,
        };
        ja.orders
            .send(format!("o{i}"), Some(o.clone()))
            .await
            .unwrap();
        orders.insert(format!("o{i}"), o);
    }
    wait_fk_on(&[&ja, &jb], &orders, &customers).await;
    a.commit().await.unwrap();
    b.commit().await.unwrap();

    // The worker that keeps subscriptions leaves: the other takes its partitions, the
    // subscriptions and results it kept among them.
    let subscriptions_of = |app: &App| -> Vec<i32> {
        app.table_partitions()
            .unwrap()
            .iter()
            .filter(|p| {
                p.table == "fk-inner-subscriptions"
                    && p.status == PartitionStatus::Active
                    && p.entries > 0
            })
            .map(|p| p.partition)
            .collect()
    };
    let (leaving, staying, js) = if subscriptions_of(&b).is_empty() {
        (a, b, jb)
    } else {
        (b, a, ja)
    };
    let moved = subscriptions_of(&leaving);
    assert!(!moved.is_empty(), "one of the workers keeps subscriptions");
    leaving.shutdown().await.unwrap();
    // Orders, results and sender: 3 partitions each; customers and subscriptions: 2.
    let all = 3 + 2 + 2 * (3 + 2 + 3);
    common::wait_until("the other owns every partition", || {
        staying
            .table_partitions()
            .unwrap()
            .iter()
            .filter(|p| p.status == PartitionStatus::Active)
            .count()
            == all
    })
    .await;
    for p in &moved {
        let parts = staying.table_partitions().unwrap();
        let part = parts
            .iter()
            .find(|t| t.table == "fk-inner-subscriptions" && t.partition == *p)
            .unwrap();
        assert!(
            part.replayed > 0,
            "the subscriptions come from their changelog: {part:?}"
        );
    }
    // Every customer changes: each fans out to its orders through the recovered subscriptions.
    for (k, v) in [("c1", "anna"), ("c2", "bobby")] {
        js.customers
            .send(k.to_owned(), Some(v.to_owned()))
            .await
            .unwrap();
        customers.insert(k.to_owned(), v.to_owned());
    }
    js.customers.send("c3".to_owned(), None).await.unwrap();
    customers.remove("c3");
    wait_fk_on(&[&js], &orders, &customers).await;
    staying.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_do_not_decode_on_either_side_follow_their_topics_decode_error_policy() {
    use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
    let cluster = mock().await;
    let id = testkit::unique_name("tt-decode");
    let app = app(&id, &cluster, "memory://");
    let dead = format!("{id}-dead");
    // The left side skips what does not decode (the default), the right dead-letters it.
    let left_topic = app.topic::<String, i64>(&format!("{id}-left"));
    let right_topic = app
        .topic::<String, i64>(&format!("{id}-right"))
        .on_decode_error(streams::OnDecodeError::DeadLetter(dead.clone()));
    let left = app
        .table_builder::<String, i64>("left")
        .from_topic(&left_topic)
        .unwrap();
    let right = app
        .table_builder::<String, i64>("right")
        .from_topic(&right_topic)
        .unwrap();
    let sums = left
        .join(&right, |a, b| a + b)
        .named("sums")
        .build()
        .unwrap();
    app.start().await.unwrap();
    let client = kafka_client::ClientConfig::new(&cluster.bootstrap()).unwrap();
    let producer = Producer::new(client, ProducerConfig::default())
        .await
        .unwrap();
    for (topic, value) in [
        (format!("{id}-left"), "1"),
        (format!("{id}-left"), "not a number"),
        (format!("{id}-right"), "{\"oops\": true}"),
        (format!("{id}-right"), "2"),
    ] {
        let record = ProducerRecord::new(topic).key("a").value(value);
        producer.send(record).await.unwrap().await.unwrap();
    }
    producer.close().await.unwrap();
    app.wait_caught_up(WAIT).await.unwrap();
    assert_eq!(
        sums.get("a").unwrap(),
        Some(3),
        "the records that decode are joined"
    );
    common::wait_until("the bad right record dead-lettered", || {
        (0..PARTITIONS)
            .map(|p| cluster.records(&dead, p).len())
            .sum::<usize>()
            == 1
    })
    .await;
    assert!(
        !app.is_stopping(),
        "skipped and dead-lettered: the worker goes on"
    );
    app.shutdown().await.unwrap();
}
