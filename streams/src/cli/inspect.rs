//! What `status` and `tables --key/--partition` print: aligned text for people, or with
//! `--json` one JSON document whose field names are part of the CLI's interface.

use serde_json::{json, Value};

use super::render::document;
use crate::app::{ReadFrom, TableEntries};
use crate::runtime::{GroupStatus, MemberStatus, Readiness};

/// `status --json`: see the shape in the command's help (`Command::Status`).
pub(super) fn status(s: &GroupStatus, as_json: bool) -> String {
    if as_json {
        let members: Vec<Value> = s.members.iter().map(member_json).collect();
        let partitions: Vec<Value> = s
            .sources
            .iter()
            .map(|p| {
                json!({
                    "topic": p.partition.topic,
                    "partition": p.partition.partition,
                    "member_id": p.member_id,
                    "committed": p.committed,
                    "end": p.end,
                    "lag": p.lag,
                })
            })
            .collect();
        let tables: Vec<Value> = s
            .tables
            .iter()
            .map(|t| {
                json!({
                    "table": t.table,
                    "partition": t.partition,
                    "active": t.active,
                    "standbys": t.standbys,
                    "state": t.state,
                })
            })
            .collect();
        return document(json!({
            "group": s.group,
            "state": s.state,
            "members": members,
            "partitions": partitions,
            "tables": tables,
        }));
    }
    let mut out = format!(
        "group {}: {}, {} member(s)\n",
        s.group,
        s.state,
        s.members.len()
    );
    for m in &s.members {
        out += &format!(
            "\nmember {}\n  instance {}, client {} on {}, web {}, {}\n  active  {}\n  standby {}\n",
            m.member_id,
            m.instance_id.as_deref().unwrap_or("-"),
            m.client_id,
            m.client_host,
            m.endpoint.as_deref().unwrap_or("-"),
            ready_text(&m.ready),
            list(m.active.iter().map(|tp| tp.to_string())),
            list(m.standby.iter().map(|p| p.to_string())),
        );
    }
    let text = |o: Option<i64>| o.map_or("-".to_owned(), |o| o.to_string());
    out += &format!(
        "\n{:<40} {:>9} {:>10} {:>10} {:>8}  member\n",
        "topic", "partition", "committed", "end", "lag"
    );
    for p in &s.sources {
        out += &format!(
            "{:<40} {:>9} {:>10} {:>10} {:>8}  {}\n",
            p.partition.topic,
            p.partition.partition,
            text(p.committed),
            text(p.end),
            text(p.lag),
            p.member_id.as_deref().unwrap_or("-"),
        );
    }
    if !s.tables.is_empty() {
        out += &format!(
            "\n{:<24} {:>9} {:<11} {:<40} standbys\n",
            "table", "partition", "state", "active"
        );
        for t in &s.tables {
            out += &format!(
                "{:<24} {:>9} {:<11} {:<40} {}\n",
                t.table,
                t.partition,
                t.state,
                t.active.as_deref().unwrap_or("-"),
                list(t.standbys.iter().cloned()),
            );
        }
    }
    out
}

fn member_json(m: &MemberStatus) -> Value {
    let active: Vec<Value> = m
        .active
        .iter()
        .map(|tp| json!({ "topic": tp.topic, "partition": tp.partition }))
        .collect();
    let (ready, detail) = match &m.ready {
        Readiness::Ready => ("ready", String::new()),
        Readiness::NotReady { .. } => ("not ready", ready_text(&m.ready)),
        Readiness::Unknown { reason } => ("unknown", reason.clone()),
    };
    json!({
        "member_id": m.member_id,
        "instance_id": m.instance_id,
        "client_id": m.client_id,
        "client_host": m.client_host,
        "endpoint": m.endpoint,
        "active": active,
        "standby": m.standby,
        "ready": ready,
        "ready_detail": detail,
    })
}

fn ready_text(r: &Readiness) -> String {
    match r {
        Readiness::Ready => "ready".into(),
        Readiness::NotReady { state, .. } if !state.is_empty() => format!("not ready: {state}"),
        Readiness::NotReady { recovering, .. } => format!(
            "not ready: recovering {}",
            list(recovering.iter().map(|(t, p)| format!("{t}/{p}")))
        ),
        Readiness::Unknown { reason } => format!("readiness unknown ({reason})"),
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

/// `tables --table T --key K|--partition N [--json]`: `{"table", "from": "store"|"worker",
/// "endpoint", "entries": [{"partition", "key", "value"}], "more"}`.
pub(super) fn entries(e: &TableEntries, as_json: bool) -> String {
    let endpoint = match &e.from {
        ReadFrom::Worker { endpoint } => Some(endpoint.clone()),
        _ => None,
    };
    if as_json {
        let list: Vec<Value> = e
            .entries
            .iter()
            .map(|(p, k, v)| json!({ "partition": p, "key": k, "value": v }))
            .collect();
        return document(json!({
            "table": e.table,
            "from": if endpoint.is_some() { "worker" } else { "store" },
            "endpoint": endpoint,
            "entries": list,
            "more": e.more,
        }));
    }
    let mut out = String::new();
    for (p, k, v) in &e.entries {
        out += &format!("{p:>4}  {k}  {v}\n");
    }
    if e.more {
        out += "... more entries: raise --limit\n";
    }
    match endpoint {
        Some(endpoint) => out += &format!("(from the worker at {endpoint})\n"),
        None => out += "(from this machine's store)\n",
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{SourceLag, TableRecovery};
    use kafka_client::TopicPartition;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn status_as_json_lists_members_partitions_and_tables() {
        let s = GroupStatus {
            group: "g".into(),
            state: "Empty".into(),
            members: vec![],
            sources: vec![SourceLag {
                partition: TopicPartition::new("t", 0),
                member_id: None,
                committed: Some(3),
                end: Some(5),
                lag: Some(2),
            }],
            tables: vec![TableRecovery {
                table: "totals".into(),
                partition: 0,
                active: None,
                standbys: vec![],
                state: "unassigned",
            }],
        };
        let doc = parse(&status(&s, true));
        assert_eq!(doc["members"], json!([]));
        assert_eq!(
            doc["partitions"][0],
            json!({"topic": "t", "partition": 0, "member_id": null, "committed": 3, "end": 5, "lag": 2})
        );
        assert_eq!(doc["tables"][0]["state"], "unassigned");
        let text = status(&s, false);
        assert!(text.starts_with("group g: Empty, 0 member(s)"), "{text}");
        assert!(text.contains("unassigned"), "{text}");
    }

    #[test]
    fn entries_say_where_they_were_read() {
        let e = TableEntries {
            table: "totals".into(),
            from: ReadFrom::Worker {
                endpoint: "h:1".into(),
            },
            entries: vec![(2, json!("EUR"), json!(7))],
            more: true,
        };
        let doc = parse(&entries(&e, true));
        assert_eq!(
            doc,
            json!({"table": "totals", "from": "worker", "endpoint": "h:1",
                   "entries": [{"partition": 2, "key": "EUR", "value": 7}], "more": true})
        );
        let text = entries(&e, false);
        assert!(text.starts_with("   2  \"EUR\"  7\n"), "{text}");
    }
}
