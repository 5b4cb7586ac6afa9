//! Table-table joins over detached tables, against a model: every sequence of updates and
//! deletes of both sides (up to four steps, two keys), after every step.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::error::Error;
use crate::table::{Table, TableSpec};

#[derive(Debug, Clone, Copy)]
enum Op {
    Left(&'static str, Option<i64>),
    Right(&'static str, Option<i64>),
}

const OPS: [Op; 6] = [
    Op::Left("a", Some(1)),
    Op::Left("a", Some(2)),
    Op::Left("a", None),
    Op::Right("a", Some(10)),
    Op::Right("a", None),
    Op::Right("b", Some(20)),
];

fn table<V>(name: &str) -> Table<String, V>
where
    V: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    Table::detached(TableSpec::new("joins", name).partitions(3)).unwrap()
}

fn apply(ops: &[Op]) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let (mut l, mut r) = (BTreeMap::new(), BTreeMap::new());
    for op in ops {
        let (side, key, value) = match *op {
            Op::Left(k, v) => (&mut l, k, v),
            Op::Right(k, v) => (&mut r, k, v),
        };
        match value {
            Some(v) => side.insert(key.to_owned(), v),
            None => side.remove(key),
        };
    }
    (l, r)
}

type Model = fn(Option<i64>, Option<i64>) -> Option<(Option<i64>, Option<i64>)>;

fn expected(ops: &[Op], model: Model) -> BTreeMap<String, (Option<i64>, Option<i64>)> {
    let (l, r) = apply(ops);
    let mut out = BTreeMap::new();
    for key in l.keys().chain(r.keys()) {
        if let Some(v) = model(l.get(key).copied(), r.get(key).copied()) {
            out.insert(key.clone(), v);
        }
    }
    out
}

fn sequences(len: usize) -> Vec<Vec<Op>> {
    let mut all = vec![vec![]];
    for _ in 0..len {
        all = all
            .into_iter()
            .flat_map(|seq| {
                OPS.iter().map(move |op| {
                    let mut next = seq.clone();
                    next.push(*op);
                    next
                })
            })
            .collect();
    }
    all
}

#[test]
fn inner_left_and_outer_follow_every_order_of_updates_and_deletes() {
    for seq in sequences(4) {
        let left = table::<i64>("left");
        let right = table::<i64>("right");
        type Pair = (Option<i64>, Option<i64>);
        let inner = left
            .join(&right, |l, r| (Some(*l), Some(*r)))
            .build()
            .unwrap();
        let leftj = left
            .left_join(&right, |l, r| (Some(*l), r.copied()))
            .build()
            .unwrap();
        let outer = left
            .outer_join(&right, |l, r| (l.copied(), r.copied()))
            .build()
            .unwrap();
        let models: [(&Table<String, Pair>, Model); 3] = [
            (&inner, |l, r| Some((Some(l?), Some(r?)))),
            (&leftj, |l, r| Some((Some(l?), r))),
            (&outer, |l, r| {
                (l.is_some() || r.is_some()).then_some((l, r))
            }),
        ];
        for step in 1..=seq.len() {
            match seq[step - 1] {
                Op::Left(k, Some(v)) => left.insert(k, v).unwrap(),
                Op::Left(k, None) => {
                    left.remove(k).unwrap();
                }
                Op::Right(k, Some(v)) => right.insert(k, v).unwrap(),
                Op::Right(k, None) => {
                    right.remove(k).unwrap();
                }
            }
            for (i, (result, model)) in models.iter().enumerate() {
                let held: BTreeMap<String, Pair> = result.items().unwrap().into_iter().collect();
                assert_eq!(
                    held,
                    expected(&seq[..step], *model),
                    "join {i} after {:?}",
                    &seq[..step]
                );
            }
        }
    }
}

#[test]
fn a_join_follows_updates_made_in_place_and_chains() {
    let left = table::<i64>("counts").with_default(i64::default);
    let right = table::<String>("names");
    let named = left
        .join(&right, |n, name| format!("{name}:{n}"))
        .named("named")
        .build()
        .unwrap();
    // A join of a join: the result is a table like any other.
    let shout = named
        .left_join(&right, |s, _| s.to_uppercase())
        .build()
        .unwrap();
    right.insert("k", "ann".into()).unwrap();
    left.update("k", |n| *n += 2).unwrap();
    left.update("k", |n| *n += 3).unwrap();
    assert_eq!(named.get("k").unwrap().as_deref(), Some("ann:5"));
    assert_eq!(shout.get("k").unwrap().as_deref(), Some("ANN:5"));
    right.remove("k").unwrap();
    assert_eq!(named.get("k").unwrap(), None);
    assert_eq!(shout.get("k").unwrap(), None);
    assert_eq!(named.name(), "named");
    assert_eq!(shout.name(), "named-left-join-names");
}

#[test]
fn sides_that_cannot_be_joined_are_refused_naming_both() {
    let left = table::<i64>("left");
    let four =
        Table::<String, i64>::detached(TableSpec::new("joins", "four").partitions(4)).unwrap();
    let err = left.join(&four, |a, b| a + b).build().unwrap_err();
    assert!(
        matches!(&err, Error::TableJoinNotCoPartitioned { left, right, left_partitions: 3, right_partitions: 4, .. } if left == "left" && right == "four"),
        "{err}"
    );
    assert!(err.to_string().contains("same partition count"), "{err}");
    let json = Table::<String, i64>::detached(
        TableSpec::new("joins", "json")
            .partitions(3)
            .with_key_serializer("json"),
    )
    .unwrap();
    let err = left.join(&json, |a, b| a + b).build().unwrap_err();
    assert!(err.to_string().contains("key codec"), "{err}");
    let global =
        Table::<String, i64>::detached(TableSpec::new("joins", "g").partitions(3).global())
            .unwrap();
    let err = left.join(&global, |a, b| a + b).build().unwrap_err();
    assert!(matches!(err, Error::TableJoinSetting { .. }), "{err}");
}

#[test]
fn a_value_of_the_other_side_that_does_not_decode_fails_the_write_naming_that_side() {
    let left = table::<i64>("left");
    let right = table::<i64>("right");
    // Written under the table's codec by something else (before the join follows it).
    right
        .core()
        .put(
            Bytes::from_static(b"k"),
            Some(Bytes::from_static(b"not json")),
        )
        .unwrap();
    let joined = left.join(&right, |a, b| a + b).build().unwrap();
    let err = left.insert("k", 1).unwrap_err();
    assert!(
        matches!(&err, Error::TableJoinFailed { side: "right", table, .. } if table == "right"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("join left-join-right") && text.contains("right table right"),
        "{text}"
    );
    assert_eq!(
        joined.get("k").unwrap(),
        None,
        "no result from a value that does not decode"
    );
}

#[test]
fn writers_of_both_sides_at_once_leave_the_join_of_the_last_values() {
    for round in 0..20u64 {
        let left = table::<i64>("left");
        let right = table::<i64>("right");
        let outer = left
            .outer_join(&right, |l, r| (l.copied(), r.copied()))
            .build()
            .unwrap();
        let start = std::sync::Arc::new(std::sync::Barrier::new(2));
        let write = |side: Table<String, i64>, seed: u64| {
            let start = start.clone();
            std::thread::spawn(move || {
                let mut x = seed;
                start.wait();
                for _ in 0..2000 {
                    // A small LCG: which key, and whether to delete or set it.
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let key = format!("k{}", (x >> 33) % 2);
                    if (x >> 40).is_multiple_of(3) {
                        side.remove(&key).unwrap();
                    } else {
                        side.insert(&key, (x >> 45) as i64 % 100).unwrap();
                    }
                }
            })
        };
        let a = write(left.clone(), round * 2 + 1);
        let b = write(right.clone(), round * 2 + 2);
        a.join().unwrap();
        b.join().unwrap();
        let (l, r): (BTreeMap<String, i64>, BTreeMap<String, i64>) = (
            left.items().unwrap().into_iter().collect(),
            right.items().unwrap().into_iter().collect(),
        );
        let mut want = BTreeMap::new();
        for key in l.keys().chain(r.keys()) {
            want.insert(key.clone(), (l.get(key).copied(), r.get(key).copied()));
        }
        let held: BTreeMap<String, (Option<i64>, Option<i64>)> =
            outer.items().unwrap().into_iter().collect();
        assert_eq!(held, want, "round {round}");
    }
}
