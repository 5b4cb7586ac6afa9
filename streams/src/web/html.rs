//! `/`: the worker at a glance, rendered on the server (no script), every text escaped.

use std::fmt::Write;

use axum::extract::State;
use axum::response::Html;

use super::view::View;
use crate::runtime::RunState;

/// Escapes text for HTML element content and quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A table of rows, each cell escaped.
fn table(out: &mut String, title: &str, head: &[&str], rows: Vec<Vec<String>>) {
    let _ = write!(out, "<h2>{}</h2>", escape(title));
    if rows.is_empty() {
        out.push_str("<p>none</p>");
        return;
    }
    out.push_str("<table><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(&cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// The worker's state in a few words.
fn worker_state(state: &RunState) -> String {
    match state {
        RunState::Joining => "joining the group".into(),
        RunState::Running { .. } => "running".into(),
        RunState::Failed(error) => format!("stopped on an error: {error}"),
        RunState::Stopped => "stopped".into(),
    }
}

/// The overview page: app id, the worker's state, agents, topics, tables, the assigned
/// partitions with their lag, this worker's table partitions (assigned, recovering and
/// standby) and recent errors.
pub(crate) async fn index(State(view): State<std::sync::Arc<View>>) -> Html<String> {
    let decls = &view.decls;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{0}</title></head><body><h1>app {0}</h1>",
        escape(&decls.id)
    );
    let _ = write!(
        out,
        "<p>worker: {}</p>",
        escape(&worker_state(&view.runtime.state()))
    );
    let agents = decls
        .all_agent_summaries()
        .into_iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.reads(),
                a.concurrency.to_string(),
                a.sinks.join(", "),
            ]
        })
        .collect();
    table(
        &mut out,
        "Agents",
        &["name", "topic", "concurrency", "sinks"],
        agents,
    );
    let topics = decls
        .catalog
        .all()
        .iter()
        .map(|t| {
            let partitions = t.partitions.unwrap_or(decls.settings.topic_partitions);
            vec![t.name.clone(), partitions.to_string()]
        })
        .collect();
    table(&mut out, "Topics", &["name", "partitions"], topics);
    let tables = decls
        .table_summaries()
        .into_iter()
        .map(|t| vec![t.name, t.partitions.to_string(), t.changelog, t.store])
        .collect();
    table(
        &mut out,
        "Tables",
        &["name", "partitions", "changelog", "store"],
        tables,
    );
    // The consumer's lag, as the worker last measured it (at its commit ticks).
    let lags = view
        .decls
        .outbox
        .metrics()
        .lags()
        .into_iter()
        .map(|(topic, partition, lag)| vec![topic, partition.to_string(), lag.to_string()])
        .collect();
    table(
        &mut out,
        "Assigned partitions and lag",
        &["topic", "partition", "lag (records)"],
        lags,
    );
    let partitions = match view.runtime.tables.partitions() {
        Ok(parts) => parts
            .into_iter()
            .map(|p| {
                vec![
                    p.table,
                    p.partition.to_string(),
                    format!("{:?}", p.status).to_lowercase(),
                    p.entries.to_string(),
                    p.applied_offset.map_or("-".into(), |o| o.to_string()),
                ]
            })
            .collect(),
        Err(e) => vec![vec![e.to_string()]],
    };
    table(
        &mut out,
        "Table partitions (assigned and standby)",
        &["table", "partition", "state", "keys", "applied offset"],
        partitions,
    );
    let errors = view
        .runtime
        .errors
        .list()
        .into_iter()
        .map(|(at, error)| vec![at.to_string(), error])
        .collect();
    table(&mut out, "Recent errors", &["time", "error"], errors);
    out.push_str("</body></html>");
    Html(out)
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }
}
