//! Table routes (Faust's `@app.table_route(table=.., match_info=..)`): an app's page about one
//! key of a table, taken from the path or the query, answered by the worker that owns the
//! key's partition (see [`forward`](super::forward)) and by the handler there.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Query, RawPathParams, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures::future::BoxFuture;
use serde_json::json;

use super::forward::{locate, Served};
use super::view::View;
use crate::table::{Part, TableCore};

/// Where a table route finds its key: the text its key codec decodes (for a `String` key,
/// the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyFrom {
    /// A capture of the path, such as `"key"` in `"/count/{key}"` (Faust's `match_info`).
    Path(&'static str),
    /// A query parameter, such as `"user"` in `/count?user=ann` (Faust's `query_param`).
    Query(&'static str),
}

/// A table route's handler: the request and the key's bytes (they decode).
pub(crate) type KeyHandler =
    Arc<dyn Fn(Request, Bytes) -> BoxFuture<'static, Response> + Send + Sync>;

/// A registered table route.
#[derive(Clone)]
pub(crate) struct TableRoute {
    pub table: Arc<TableCore>,
    pub key: KeyFrom,
    pub handler: KeyHandler,
}

/// A 400 for a key its table's key codec does not decode, naming the codec.
pub(crate) fn undecodable(table: &TableCore, key: &str, reason: &str) -> Response {
    let codec = table.spec().key_serializer();
    let message =
        format!("key {key:?} does not decode with the table's key codec {codec:?}: {reason}");
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// Serves `request` on `route`: here with the handler, or by the key's owner.
pub(crate) async fn serve(view: Arc<View>, route: TableRoute, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let key = match &route.key {
        KeyFrom::Path(name) => RawPathParams::from_request_parts(&mut parts, &())
            .await
            .ok()
            .and_then(|params| {
                params
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.to_owned())
            }),
        KeyFrom::Query(name) => Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|Query(mut q)| q.remove(*name)),
    };
    let Some(key) = key else {
        let message = match &route.key {
            KeyFrom::Path(name) => format!("the path has no key {{{name}}}"),
            KeyFrom::Query(name) => format!("give the key as the query parameter {name}=KEY"),
        };
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response();
    };
    let table = &route.table;
    if let Err(reason) = table.render_json(Part::Key, key.as_bytes()) {
        return undecodable(table, &key, &reason);
    }
    let partition = table.partition_of(key.as_bytes());
    let request = Request::from_parts(parts, body);
    match locate(&view, table, partition, request).await {
        Served::Here(request) => (route.handler)(request, Bytes::from(key.into_bytes())).await,
        Served::There(response) => response,
    }
}
