//! Requests for a key whose table partition another worker owns (`/table/<name>/<key>/` and
//! table routes): answered by the owner the router names (the group's last assignment),
//! through this worker (forwarded: its status and body relayed) or, asked with
//! `?redirect=1` (or `true`), by a `307` to the owner's URL for the same path.
//!
//! A forwarded request carries the [`FORWARDED`] header; a worker that receives one for a
//! partition it does not serve answers 503 (its router is out of date) instead of forwarding
//! it again, so two workers whose routers disagree cannot bounce a request. Every other way
//! this can fail is a 503 saying why, within [`FORWARD_TIMEOUT`]: no owner known, an owner
//! without an endpoint, an owner that is down or silent (named), a partition recovering here.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::peer::{self, Failure, FORWARDED};
use super::view::View;
use crate::endpoint::Endpoint;
use crate::table::{PartitionStatus, TableCore};

/// How long the owner of a key may take to answer a forwarded request, connecting included.
pub(crate) const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest request body forwarded (a table route's, say).
const MAX_BODY: usize = 1 << 20;

/// Where a request is answered.
pub(crate) enum Served {
    /// Here: the partition is active on this worker; the request, untouched.
    Here(Request),
    /// Elsewhere or not at all: the answer to send.
    There(Response),
}

/// A JSON error body naming the partition.
fn refusal(status: StatusCode, message: String, partition: i32) -> Response {
    let body = json!({ "error": message, "partition": partition });
    (status, Json(body)).into_response()
}

/// Answers `request` for `partition` of `table` here when this worker serves it, else by its
/// owner (forwarded or redirected), else a 503 saying why.
pub(crate) async fn locate(
    view: &View,
    table: &TableCore,
    partition: i32,
    request: Request,
) -> Served {
    let name = table.name();
    let unavailable = |message: String| {
        Served::There(refusal(StatusCode::SERVICE_UNAVAILABLE, message, partition))
    };
    match table.status(partition) {
        Some(PartitionStatus::Active) => return Served::Here(request),
        Some(PartitionStatus::Recovering) => {
            return unavailable(format!(
                "partition {partition} of table {name} is recovering here: try again"
            ))
        }
        _ => {}
    }
    if table.spec().is_global() {
        return unavailable(format!(
            "table {name} is global: every worker holds all of it, and this one has not \
             loaded partition {partition} yet: try again"
        ));
    }
    if request.headers().contains_key(FORWARDED) {
        return unavailable(format!(
            "partition {partition} of table {name} is not served here, yet another worker \
             forwarded this request here: its router is out of date (a rebalance is under \
             way?); try again"
        ));
    }
    let router = view.runtime.router();
    let Some(owners) = router.table_partition(name, partition) else {
        return unavailable(format!(
            "no worker is known to own partition {partition} of table {name}: the group has \
             not assigned it yet (generation {}); try again",
            router.generation
        ));
    };
    let Some(owner) = owners.active.clone() else {
        return unavailable(format!(
            "the worker owning partition {partition} of table {name} advertises no web \
             server: give every worker an application_server, or turn its web server on"
        ));
    };
    if view.runtime.endpoint.as_ref() == Some(&owner) {
        return unavailable(format!(
            "partition {partition} of table {name} is assigned here and not served yet: try again"
        ));
    }
    let query = request.uri().query();
    if query.is_some_and(asks_redirect) {
        let location = format!(
            "http://{owner}{}{}",
            request.uri().path(),
            query.map(without_redirect).unwrap_or_default()
        );
        return Served::There(redirect(&location, &owner, partition));
    }
    Served::There(forward(&owner, table, partition, request).await)
}

/// Whether a query string asks for a redirect: `redirect=1` or `redirect=true`.
fn asks_redirect(query: &str) -> bool {
    query
        .split('&')
        .any(|pair| matches!(pair, "redirect=1" | "redirect=true"))
}

/// The query string without its `redirect` parameters, with its `?` (empty when nothing is
/// left): the owner serves the key, and a stale router there cannot bounce the client back.
fn without_redirect(query: &str) -> String {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some("redirect"))
        .collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    }
}

/// A 307 to `location`, with a JSON body naming the owner.
fn redirect(location: &str, owner: &Endpoint, partition: i32) -> Response {
    let Ok(value) = HeaderValue::from_str(location) else {
        // The path came from a parsed request and the endpoint is validated: unreachable.
        return refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot redirect to {location:?}"),
            partition,
        );
    };
    let body = json!({ "owner": owner.to_string(), "partition": partition, "location": location });
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, value)],
        Json(body),
    )
        .into_response()
}

/// Sends `request` to `owner` marked as forwarded and relays its answer.
async fn forward(
    owner: &Endpoint,
    table: &TableCore,
    partition: i32,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a request forwarded to another worker has a body of at most {MAX_BODY} bytes"),
            partition,
        );
    };
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut headers = vec![(FORWARDED, "1")];
    for (name, key) in [
        ("Accept", header::ACCEPT),
        ("Content-Type", header::CONTENT_TYPE),
    ] {
        if let Some(value) = parts.headers.get(key).and_then(|v| v.to_str().ok()) {
            headers.push((name, value));
        }
    }
    let sent = peer::Request {
        method: parts.method.as_str(),
        target,
        headers,
        body: &body,
    };
    let name = table.name();
    let failed = |status: StatusCode, what: &str, reason: String| {
        let body = json!({
            "error": format!(
                "the owner of partition {partition} of table {name}, the worker at {owner}, {what}: {reason}"
            ),
            "owner": owner.to_string(),
            "partition": partition,
        });
        (status, Json(body)).into_response()
    };
    let answer = match peer::send(owner, &sent, FORWARD_TIMEOUT).await {
        Ok(answer) => answer,
        Err(Failure::Unavailable(reason)) => {
            return failed(StatusCode::SERVICE_UNAVAILABLE, "cannot be reached", reason)
        }
        Err(Failure::Malformed(reason)) => {
            return failed(StatusCode::BAD_GATEWAY, "answered nonsense", reason)
        }
    };
    let Ok(status) = StatusCode::from_u16(answer.status) else {
        let reason = format!("status {}", answer.status);
        return failed(StatusCode::BAD_GATEWAY, "answered nonsense", reason);
    };
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = status;
    if let Some(value) = answer
        .content_type
        .and_then(|t| HeaderValue::from_str(&t).ok())
    {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_is_asked_with_1_or_true_and_left_out_of_the_location() {
        assert!(asks_redirect("redirect=1"));
        assert!(asks_redirect("a=b&redirect=true"));
        assert!(!asks_redirect("redirect=0"));
        assert!(!asks_redirect("noredirect=1"));
        assert_eq!(without_redirect("redirect=1"), "");
        assert_eq!(without_redirect("key=a&redirect=1&x"), "?key=a&x");
    }
}
