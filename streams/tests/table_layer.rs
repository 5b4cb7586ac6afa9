//! The table layer through its public API only: detached tables (no app, no broker).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use streams::{Error, SetTable, Table, TableSpec};

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Purchase {
    username: String,
    currency: String,
    amount: i64,
}

fn purchase(username: &str, currency: &str, amount: i64) -> Purchase {
    Purchase {
        username: username.into(),
        currency: currency.into(),
        amount,
    }
}

#[test]
fn the_talks_currency_totals_read_like_a_dict() {
    let currency = Table::<String, i64>::detached(TableSpec::new("demo", "currency"))
        .unwrap()
        .with_default(|| 0);
    let purchases = [
        purchase("ann", "EUR", 10),
        purchase("bob", "USD", 7),
        purchase("ann", "EUR", 5),
        purchase("cid", "GBP", 1),
        purchase("bob", "USD", 3),
    ];
    let mut model: BTreeMap<String, i64> = BTreeMap::new();
    for p in &purchases {
        // currency.setdefault(p.currency, 0); currency[p.currency] += p.amount
        let total = currency.update(&p.currency, |t| *t += p.amount).unwrap();
        *model.entry(p.currency.clone()).or_default() += p.amount;
        assert_eq!(total, model[&p.currency]);
    }
    let mut items = currency.items().unwrap();
    items.sort();
    assert_eq!(items, model.into_iter().collect::<Vec<_>>());
    assert_eq!(currency.len().unwrap(), 3);
    assert_eq!(
        currency.owned_partitions().len(),
        8,
        "a detached table holds every partition"
    );
}

#[test]
fn a_detached_redb_table_keeps_its_data_and_a_second_opener_is_told_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redb://{}", dir.path().display()).parse().unwrap();
    let spec = TableSpec::new("demo", "users").store(url);
    {
        let users = Table::<String, Vec<String>>::detached(spec.clone()).unwrap();
        users.insert("ann", vec!["admin".into()]).unwrap();
        users.insert("bob", vec![]).unwrap();
        users.remove("bob").unwrap();

        let err = Table::<String, Vec<String>>::detached(spec.clone()).unwrap_err();
        assert!(matches!(err, Error::Store(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("users"), "names the file: {text}");
        assert!(
            text.contains("stop the other worker"),
            "says what to do: {text}"
        );
    }
    let users = Table::<String, Vec<String>>::detached(spec).unwrap();
    assert_eq!(users.get("ann").unwrap(), Some(vec!["admin".to_string()]));
    assert_eq!(users.get("bob").unwrap(), None);
}

#[test]
fn set_tables_and_global_specs() {
    let spec = TableSpec::new("demo", "roles").partitions(2).global();
    assert!(spec.is_global());
    assert_eq!(spec.partitions_to_hold(&[]), vec![0, 1]);
    let roles = SetTable::<String, String>::detached(spec).unwrap();
    roles.add("ann", "admin".into()).unwrap();
    roles.add("ann", "dev".into()).unwrap();
    assert!(roles.contains("ann", &"dev".to_string()).unwrap());
    assert_eq!(roles.remove("ann").unwrap().len(), 2);
    assert!(roles.table().is_empty().unwrap());
}

#[test]
fn a_bad_codec_chain_names_the_table() {
    let err = Table::<String, i64>::detached(
        TableSpec::new("demo", "t").with_value_serializer("json|nope"),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("table t: value serializer \"json|nope\""),
        "{text}"
    );
    assert!(text.contains("unknown codec \"nope\""), "{text}");
}
