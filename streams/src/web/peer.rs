//! The client side of a request sent to another worker's web server: a table query of
//! `App::query` (`GET /table/<name>/<key>/`, answered by `200` with `{"key": .., "value": ..}`
//! or `404` when the key has no value) or a request this worker forwards to the owner of a
//! key. One HTTP/1.1 request over a fresh connection (`Connection: close`).
//!
//! Small on purpose: the body is read to the end of the connection or `Content-Length`,
//! chunked bodies are decoded, and everything is bounded by the caller's timeout and
//! [`MAX_RESPONSE`]. Used by the web server (forwarding) and by `app` (queries).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::endpoint::Endpoint;

/// The largest answer read, headers included: a table value is far smaller.
const MAX_RESPONSE: u64 = 16 << 20;

/// The header a forwarded request carries: its receiver answers it itself or says why not,
/// and never forwards it again (no loop between workers whose routers disagree).
pub(crate) const FORWARDED: &str = "streams-forwarded";

/// A request to send: method, target (path and query, as received or percent-encoded),
/// extra headers and body.
#[derive(Debug, Default)]
pub(crate) struct Request<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

/// An answer: its status, content type and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Why a request failed: the peer could not be reached or did not answer in time
/// (`Unavailable`), or answered something that is not HTTP (`Malformed`).
#[derive(Debug)]
pub(crate) enum Failure {
    Unavailable(String),
    Malformed(String),
}

/// The key as a path segment: a JSON string key as its text, any other key as its JSON,
/// percent-encoded (RFC 3986 unreserved characters stay).
pub(crate) fn key_segment(key: &serde_json::Value) -> String {
    let text = match key {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// GETs `path` from `endpoint` within `timeout` (a table query).
pub(crate) async fn get(
    endpoint: &Endpoint,
    path: &str,
    timeout: Duration,
) -> Result<Response, Failure> {
    let request = Request {
        method: "GET",
        target: path,
        headers: vec![("Accept", "application/json")],
        body: &[],
    };
    send(endpoint, &request, timeout).await
}

/// Sends `request` to `endpoint` and reads the whole answer, within `timeout`.
pub(crate) async fn send(
    endpoint: &Endpoint,
    request: &Request<'_>,
    timeout: Duration,
) -> Result<Response, Failure> {
    match tokio::time::timeout(timeout, exchange(endpoint, request)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(Failure::Unavailable(format!(
            "no answer within {timeout:?}"
        ))),
    }
}

/// The request's head: the callers pass a target and headers that came from a parsed
/// request or from this crate, so none holds a line break.
fn head(endpoint: &Endpoint, request: &Request<'_>) -> String {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {endpoint}\r\nConnection: close\r\n",
        request.method, request.target
    );
    for (name, value) in &request.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !request.body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str("\r\n");
    head
}

async fn exchange(endpoint: &Endpoint, request: &Request<'_>) -> Result<Response, Failure> {
    let unavailable = |e: std::io::Error| Failure::Unavailable(e.to_string());
    let mut stream = TcpStream::connect((endpoint.host(), endpoint.port()))
        .await
        .map_err(unavailable)?;
    let mut bytes = head(endpoint, request).into_bytes();
    bytes.extend_from_slice(request.body);
    stream.write_all(&bytes).await.map_err(unavailable)?;
    let mut raw = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE + 1)
        .read_to_end(&mut raw)
        .await
        .map_err(unavailable)?;
    if raw.len() as u64 > MAX_RESPONSE {
        return Err(Failure::Malformed(format!(
            "an answer over {MAX_RESPONSE} bytes"
        )));
    }
    parse(&raw, request.method == "HEAD").map_err(Failure::Malformed)
}

/// Parses a whole HTTP/1.1 response (`bodiless`: the answer to a HEAD, whose length
/// headers describe a body that is not sent).
fn parse(raw: &[u8], bodiless: bool) -> Result<Response, String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer ends before its headers do")?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "headers are not text")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = match status_line.split(' ').collect::<Vec<_>>().as_slice() {
        [version, code, ..] if version.starts_with("HTTP/1.") => code
            .parse::<u16>()
            .map_err(|_| format!("bad status line {status_line:?}"))?,
        _ => return Err(format!("not an HTTP/1.x answer: {status_line:?}")),
    };
    let (mut length, mut chunked, mut content_type) = (None, false, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_owned());
        }
    }
    let rest = &raw[head_end + 4..];
    let body = if bodiless {
        Vec::new()
    } else if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or_else(|| format!("the body ends after {} of {n} bytes", rest.len()))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        content_type,
        body,
    })
}

/// Decodes a chunked body (extensions and trailers ignored).
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line without its end")?;
        let line = std::str::from_utf8(&rest[..line_end]).map_err(|_| "a bad chunk size")?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {size:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or("a chunk cut short")?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or("a chunk without its end")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_length_chunked_and_close_delimited_bodies_and_refuses_junk() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}extra",
            false,
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", true).unwrap();
        assert_eq!((r.status, r.body.len()), (200, 0));
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n", false).unwrap();
        assert_eq!(r.body, b"abcde");
        let r = parse(b"HTTP/1.0 404 Not Found\r\n\r\nnope", false).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"nope"[..]));
        for junk in [
            &b"SSH-2.0\r\n\r\n"[..],
            b"HTTP/1.1 200",
            b"HTTP/1.1 x OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(parse(junk, false).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn a_request_head_names_the_host_its_headers_and_the_body_length() {
        let endpoint: Endpoint = "w1:6066".parse().unwrap();
        let request = Request {
            method: "POST",
            target: "/count/a%20b?x=1",
            headers: vec![(FORWARDED, "1")],
            body: b"abc",
        };
        assert_eq!(
            head(&endpoint, &request),
            "POST /count/a%20b?x=1 HTTP/1.1\r\nHost: w1:6066\r\nConnection: close\r\nstreams-forwarded: 1\r\nContent-Length: 3\r\n\r\n"
        );
    }

    #[test]
    fn keys_become_percent_encoded_segments() {
        assert_eq!(
            key_segment(&serde_json::json!("ann b/é")),
            "ann%20b%2F%C3%A9"
        );
        assert_eq!(key_segment(&serde_json::json!(42)), "42");
        assert_eq!(
            key_segment(&serde_json::json!([1, "a"])),
            "%5B1%2C%22a%22%5D"
        );
    }
}
