//! What the CLI's listing commands print: aligned text for people, or with `--json` one JSON
//! document whose field names are part of the CLI's interface (scripts parse them).

use kafka_client::producer::RecordMetadata;
use serde_json::{json, Value};

use crate::app::TopicSummary;
use crate::declarations::{AgentSummary, TableSummary};
use crate::runtime::StoredPartition;

/// `agents`: `{"agents": [{"name", "topic", "concurrency", "sinks": [..], "channel"}]}`
/// (`channel`: true when `topic` names an in-process channel).
pub(super) fn agents(agents: &[AgentSummary], as_json: bool) -> String {
    if as_json {
        let list: Vec<Value> = agents
            .iter()
            .map(|a| {
                json!({
                    "name": a.name,
                    "topic": a.topic,
                    "concurrency": a.concurrency,
                    "sinks": a.sinks,
                    "channel": a.channel,
                })
            })
            .collect();
        return document(json!({ "agents": list }));
    }
    let mut out = format!(
        "{:<32} {:<32} {:>11}  sinks\n",
        "agent", "topic", "concurrency"
    );
    for a in agents {
        out += &format!(
            "{:<32} {:<32} {:>11}  {}\n",
            a.name,
            a.reads(),
            a.concurrency,
            a.sinks.join(", ")
        );
    }
    out
}

/// `topics`: `{"topics": [{"name", "key_serializer", "value_serializer", "partitions",
/// "internal"}]}`.
pub(super) fn topics(topics: &[TopicSummary], as_json: bool) -> String {
    if as_json {
        let list: Vec<Value> = topics
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "key_serializer": t.key_serializer,
                    "value_serializer": t.value_serializer,
                    "partitions": t.partitions,
                    "internal": t.internal,
                })
            })
            .collect();
        return document(json!({ "topics": list }));
    }
    let mut out = format!(
        "{:<40} {:<10} {:<14} {:>10}\n",
        "topic", "key", "value", "partitions"
    );
    for t in topics {
        let name = if t.internal {
            format!("{} (internal)", t.name)
        } else {
            t.name.clone()
        };
        out += &format!(
            "{:<40} {:<10} {:<14} {:>10}\n",
            name, t.key_serializer, t.value_serializer, t.partitions
        );
    }
    out
}

/// `tables`: `{"tables": [{"name", "partitions", "changelog", "store", "standby_replicas",
/// "global"}], "partitions": [{"table", "partition", "keys", "applied_offset",
/// "changelog_end", "to_replay", "state"}]}`; unknown offsets are `null`.
pub(super) fn tables(
    declared: &[TableSummary],
    parts: &[StoredPartition],
    as_json: bool,
) -> String {
    if as_json {
        let tables: Vec<Value> = declared
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "partitions": t.partitions,
                    "changelog": t.changelog,
                    "store": t.store,
                    "standby_replicas": t.standby_replicas,
                    "global": t.global,
                })
            })
            .collect();
        let parts: Vec<Value> = parts
            .iter()
            .map(|p| {
                json!({
                    "table": p.table,
                    "partition": p.partition,
                    "keys": p.entries,
                    "applied_offset": p.applied_offset,
                    "changelog_end": p.changelog_end,
                    "to_replay": p.to_replay(),
                    "state": state(p),
                })
            })
            .collect();
        return document(json!({ "tables": tables, "partitions": parts }));
    }
    let mut out = format!(
        "{:<24} {:>9} {:>10} {:>10} {:>10} {:>10}  state\n",
        "table", "partition", "keys", "applied", "changelog", "to replay"
    );
    let text = |o: Option<i64>| o.map_or("-".to_owned(), |o| o.to_string());
    for p in parts {
        out += &format!(
            "{:<24} {:>9} {:>10} {:>10} {:>10} {:>10}  {}\n",
            p.table,
            p.partition,
            p.entries,
            text(p.applied_offset),
            text(p.changelog_end),
            text(p.to_replay()),
            state(p),
        );
    }
    for t in declared {
        out += &format!(
            "table {}: changelog {}, store {}, {} standby replica(s){}\n",
            t.name,
            t.changelog,
            t.store,
            t.standby_replicas,
            if t.global { ", global" } else { "" }
        );
    }
    out
}

fn state(p: &StoredPartition) -> &'static str {
    match p.to_replay() {
        None => "changelog unknown",
        Some(0) => "up to date",
        Some(_) => "behind",
    }
}

/// One line of `send` per record written.
pub(super) fn sent_line(written: &RecordMetadata) -> String {
    format!(
        "sent to {}/{} at offset {}",
        written.topic, written.partition, written.offset
    )
}

/// `send --json`: `{"sent": [{"topic", "partition", "offset"}]}`, one entry per record.
pub(super) fn sent_json(sent: &[RecordMetadata]) -> String {
    let list: Vec<Value> = sent
        .iter()
        .map(|w| json!({ "topic": w.topic, "partition": w.partition, "offset": w.offset }))
        .collect();
    document(json!({ "sent": list }))
}

/// Pretty-printed, so people can read it too; scripts parse it the same.
pub(super) fn document(value: Value) -> String {
    // Serializing a `Value` cannot fail.
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> AgentSummary {
        AgentSummary {
            name: "totals".into(),
            topic: "purchases".into(),
            concurrency: 2,
            sinks: vec!["out".into()],
            channel: false,
        }
    }

    fn partition(applied: Option<i64>, end: Option<i64>) -> StoredPartition {
        StoredPartition {
            table: "currency_total".into(),
            partition: 1,
            entries: 4,
            applied_offset: applied,
            changelog_end: end,
        }
    }

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn agents_as_json_have_stable_fields_and_text_keeps_its_columns() {
        let doc = parse(&agents(&[agent()], true));
        assert_eq!(
            doc,
            json!({"agents": [{"name": "totals", "topic": "purchases", "concurrency": 2, "sinks": ["out"], "channel": false}]})
        );
        let text = agents(&[agent()], false);
        assert!(text.starts_with("agent "), "{text}");
        assert!(text.lines().nth(1).unwrap().ends_with("  out"), "{text}");
    }

    #[test]
    fn a_channel_agent_is_marked_as_one() {
        let relay = AgentSummary {
            name: "relay".into(),
            topic: "alerts".into(),
            concurrency: 1,
            sinks: vec![],
            channel: true,
        };
        let listed = [relay];
        let doc = parse(&agents(&listed, true));
        assert_eq!(doc["agents"][0]["channel"], json!(true));
        assert_eq!(doc["agents"][0]["topic"], json!("alerts"));
        let text = agents(&listed, false);
        assert!(
            text.lines().nth(1).unwrap().contains("channel alerts"),
            "{text}"
        );
    }

    #[test]
    fn tables_as_json_say_null_for_unknown_offsets() {
        let parts = [partition(Some(9), Some(10)), partition(None, None)];
        let doc = parse(&tables(&[], &parts, true));
        assert_eq!(doc["tables"], json!([]));
        assert_eq!(doc["partitions"][0]["to_replay"], 0);
        assert_eq!(doc["partitions"][0]["state"], "up to date");
        assert_eq!(doc["partitions"][0]["keys"], 4);
        assert_eq!(doc["partitions"][1]["applied_offset"], Value::Null);
        assert_eq!(doc["partitions"][1]["state"], "changelog unknown");
        let text = tables(&[], &parts, false);
        assert!(
            text.lines()
                .nth(2)
                .unwrap()
                .ends_with("-  changelog unknown"),
            "{text}"
        );
    }

    #[test]
    fn sent_records_as_json_list_topic_partition_and_offset() {
        let written = RecordMetadata {
            topic: "purchases".into(),
            partition: 2,
            offset: 41,
            timestamp: 0,
        };
        assert_eq!(
            parse(&sent_json(std::slice::from_ref(&written))),
            json!({"sent": [{"topic": "purchases", "partition": 2, "offset": 41}]})
        );
        assert_eq!(sent_line(&written), "sent to purchases/2 at offset 41");
    }
}
