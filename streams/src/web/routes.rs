//! The routes: `/health`, `/ready`, `/metrics`, `/router/`, `/table/<name>/`, `/table/<name>/<key>/`, `/`
//! and the app's pages and table routes; anything else is 404.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::json;

use super::forward::{locate, Served};
use super::pages::Pages;
use super::table_route::undecodable;
use super::view::View;
use crate::runtime::RunState;
use crate::table::{Part, PartitionStatus, TableCore};

type AppState = State<Arc<View>>;

/// Entries a table page lists when `limit` is not given, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The router over `view`, with the app's `pages`.
pub(crate) fn router(view: Arc<View>, pages: &Pages) -> Router {
    let mut router = Router::new()
        .route("/", get(super::html::index))
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/router", get(router_view))
        .route("/router/", get(router_view))
        .route("/table/{name}", get(table_items))
        .route("/table/{name}/", get(table_items))
        .route("/table/{name}/{key}", get(table_key))
        .route("/table/{name}/{key}/", get(table_key));
    for (path, handler) in pages.iter() {
        let handler = handler.clone();
        router = router.route(path, any(move |request| handler(request)));
    }
    for (path, route) in pages.table_routes() {
        let route = route.clone();
        router = router.route(
            path,
            any(move |State(view): AppState, request: Request| {
                super::table_route::serve(view, route.clone(), request)
            }),
        );
    }
    router
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page".into()) })
        .with_state(view)
}

/// The router while the worker joins its group: `/health` answers, `/ready` and everything
/// else are 503 saying so.
pub(crate) fn joining() -> Router {
    let joining = || async {
        let body = json!({
            "ready": false,
            "state": "joining the group",
            "error": "the worker is joining its group: try again",
        });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    };
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .fallback(joining)
}

/// A JSON error body.
fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The answer of a handler that ran past [`REQUEST_TIMEOUT`](super::REQUEST_TIMEOUT).
pub(crate) fn timed_out() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the request took too long to answer".into(),
    )
}

/// Which worker (advertised endpoint) holds each partition of each topic and table, active
/// and standbys, as the group's last assignment said (Faust's `/router/`).
async fn router_view(State(view): AppState) -> Response {
    Json(view.runtime.router()).into_response()
}

/// The worker's metrics in the Prometheus (OpenMetrics) text format; table sizes are read now.
async fn metrics(State(view): AppState) -> Response {
    let metrics = view.decls.outbox.metrics();
    view.decls.outbox.report_retries();
    view.runtime.tables.report_sizes(metrics);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
        .into_response()
}

/// 200 when the worker runs and every table partition it holds is recovered, else 503 with
/// why: its state, or the partitions still recovering.
async fn ready(State(view): AppState) -> Response {
    // A worker that has not joined yet, or stopped, serves nothing.
    let state = match view.runtime.state() {
        RunState::Running { .. } => None,
        RunState::Joining => Some("joining the group".to_owned()),
        RunState::Failed(error) => Some(format!("stopped on an error: {error}")),
        RunState::Stopped => Some("stopped".to_owned()),
    };
    if let Some(state) = state {
        let body = json!({ "ready": false, "state": state });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    let partitions = match view.runtime.tables.partitions() {
        Ok(p) => p,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let mut recovering: Vec<_> = partitions
        .iter()
        .filter(|p| p.status == PartitionStatus::Recovering)
        .map(|p| json!({ "table": p.table, "partition": p.partition }))
        .collect();
    // Joined stream partitions waiting for their tables to catch up with their sources:
    // the table partition counts as recovering, and why it waits is said.
    let bootstraps = view.runtime.tables.bootstraps();
    for b in &bootstraps {
        let entry = json!({ "table": b.table, "partition": b.source.partition });
        if !recovering.contains(&entry) {
            recovering.push(entry);
        }
    }
    if recovering.is_empty() {
        (StatusCode::OK, Json(json!({ "ready": true }))).into_response()
    } else {
        let bootstrapping: Vec<_> = bootstraps
            .iter()
            .map(|b| {
                json!({
                    "stream": b.stream.topic,
                    "partition": b.stream.partition,
                    "table": b.table,
                    "source": b.source.topic,
                    "done": b.done,
                    "target": b.target,
                    "error": b.error,
                })
            })
            .collect();
        let body = if bootstrapping.is_empty() {
            json!({ "ready": false, "recovering": recovering })
        } else {
            json!({ "ready": false, "recovering": recovering, "bootstrapping": bootstrapping })
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

fn find_table(view: &View, name: &str) -> Result<Arc<TableCore>, Response> {
    view.decls
        .tables()
        .iter()
        .find(|t| t.name() == name)
        .cloned()
        .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no table named {name:?}")))
}

/// A page of the entries this worker owns, in key-bytes order: `?limit=` entries (100, at most
/// 1000) after the key `?after=` (as text, the key codec's bytes), of partition `?partition=`
/// only when given (421 naming the owner when it is not active here).
async fn table_items(
    State(view): AppState,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let table = match find_table(&view, &name) {
        Ok(t) => t,
        Err(response) => return response,
    };
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) => n.min(MAX_LIMIT),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "limit is a number of entries".into(),
            )
        }
    };
    let after = query.get("after").map(|a| a.as_bytes().to_vec());
    let mut owned = table.owned_partitions();
    // `?partition=N`: that partition only, when this worker owns it (the CLI's `tables
    // --partition N` beside a running worker).
    if let Some(partition) = query.get("partition") {
        let Ok(partition) = partition.parse::<i32>() else {
            return error(
                StatusCode::BAD_REQUEST,
                "partition is a partition number".into(),
            );
        };
        if !owned.contains(&partition) {
            let owner = view
                .runtime
                .router()
                .table_partition(&name, partition)
                .and_then(|owners| owners.active.as_ref().map(|e| e.to_string()));
            let body = json!({
                "error": format!("partition {partition} of table {name} is not active on this worker"),
                "partition": partition,
                "owner": owner,
            });
            return (StatusCode::MISDIRECTED_REQUEST, Json(body)).into_response();
        }
        owned = vec![partition];
    }
    let mut entries = Vec::new();
    for &partition in &owned {
        match table.snapshot(partition) {
            Ok(snapshot) => entries.extend(snapshot),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let start = match &after {
        Some(after) => entries.partition_point(|(k, _)| k.as_ref() <= after.as_slice()),
        None => 0,
    };
    let page = &entries[start..];
    let more = page.len() > limit;
    let items: Vec<_> = page
        .iter()
        .take(limit)
        .map(|(k, v)| {
            json!({ "key": rendered(&table, Part::Key, k), "value": rendered(&table, Part::Value, v) })
        })
        .collect();
    let next = more
        .then(|| {
            page.get(limit.wrapping_sub(1))
                .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        })
        .flatten();
    Json(json!({ "table": name, "partitions": owned, "items": items, "next": next }))
        .into_response()
}

/// Bytes as JSON, or `{"undecodable": reason}`.
fn rendered(table: &TableCore, part: Part, bytes: &[u8]) -> serde_json::Value {
    table
        .render_json(part, bytes)
        .unwrap_or_else(|reason| json!({ "undecodable": reason }))
}

/// The value of one key, given as the text its key codec decodes; a key whose partition
/// another worker owns is answered by that worker (see [`forward`](super::forward)).
async fn table_key(
    State(view): AppState,
    Path((name, key)): Path<(String, String)>,
    request: Request,
) -> Response {
    let table = match find_table(&view, &name) {
        Ok(t) => t,
        Err(response) => return response,
    };
    let bytes = key.as_bytes();
    let rendered_key = match table.render_json(Part::Key, bytes) {
        Ok(k) => k,
        Err(reason) => return undecodable(&table, &key, &reason),
    };
    let partition = table.partition_of(bytes);
    if let Served::There(response) = locate(&view, &table, partition, request).await {
        return response;
    }
    match table.get(bytes) {
        Ok(Some(value)) => Json(json!({
            "key": rendered_key,
            "value": rendered(&table, Part::Value, &value),
            "partition": partition,
        }))
        .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no key {key:?} in table {name}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
