//! The client side of a table query sent to another worker: one HTTP/1.1 GET of
//! `/table/<name>/<key>/` over a fresh connection (`Connection: close`), answered by
//! `200` with `{"key": .., "value": ..}` or `404` when the key has no value.
//!
//! Small on purpose: the body is read to the end of the connection or `Content-Length`,
//! chunked bodies are decoded, and everything is bounded by the caller's timeout and
//! [`MAX_RESPONSE`].

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::endpoint::Endpoint;

/// The largest answer read, headers included: a table value is far smaller.
const MAX_RESPONSE: u64 = 16 << 20;

/// An answer: its status and body.
#[derive(Debug)]
pub(super) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a GET failed: the peer could not be reached or did not answer in time
/// (`Unavailable`), or answered something that is not HTTP (`Malformed`).
#[derive(Debug)]
pub(super) enum Failure {
    Unavailable(String),
    Malformed(String),
}

/// The key as a path segment: a JSON string key as its text, any other key as its JSON,
/// percent-encoded (RFC 3986 unreserved characters stay).
pub(super) fn key_segment(key: &serde_json::Value) -> String {
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

/// GETs `path` from `endpoint` within `timeout`.
pub(super) async fn get(
    endpoint: &Endpoint,
    path: &str,
    timeout: Duration,
) -> Result<Response, Failure> {
    match tokio::time::timeout(timeout, exchange(endpoint, path)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(Failure::Unavailable(format!(
            "no answer within {timeout:?}"
        ))),
    }
}

async fn exchange(endpoint: &Endpoint, path: &str) -> Result<Response, Failure> {
    let unavailable = |e: std::io::Error| Failure::Unavailable(e.to_string());
    let mut stream = TcpStream::connect((endpoint.host(), endpoint.port()))
        .await
        .map_err(unavailable)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {endpoint}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(unavailable)?;
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
    parse(&raw).map_err(Failure::Malformed)
}

/// Parses a whole HTTP/1.1 response.
fn parse(raw: &[u8]) -> Result<Response, String> {
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
    let (mut length, mut chunked) = (None, false);
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
        }
    }
    let rest = &raw[head_end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or_else(|| format!("the body ends after {} of {n} bytes", rest.len()))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
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
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(r.body, b"abcde");
        let r = parse(b"HTTP/1.0 404 Not Found\r\n\r\nnope").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"nope"[..]));
        for junk in [
            &b"SSH-2.0\r\n\r\n"[..],
            b"HTTP/1.1 200",
            b"HTTP/1.1 x OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(parse(junk).is_err(), "{junk:?}");
        }
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
