//! Request decoding: header guards, API key and version checks, body decoding.
//!
//! [`decode_request`] never panics and never allocates from an unchecked length: it is the
//! function the fuzz target drives.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use crate::error::{Error, Result};
use crate::handlers::api_versions;

/// A decoded request: its header and its body.
#[derive(Debug)]
pub struct DecodedRequest {
    /// The API this request is for.
    pub api_key: ApiKey,
    /// The header as the client sent it (version, correlation id, client id).
    pub header: RequestHeader,
    /// The request body.
    pub body: RequestKind,
}

/// The fixed part every request header starts with: api key, version, correlation id.
pub(crate) const MIN_HEADER_BYTES: usize = 8;

/// Reads the API key, version and correlation id of a frame without consuming it.
pub(crate) fn peek_header(frame: &[u8]) -> Result<(i16, i16, i32)> {
    if frame.len() < MIN_HEADER_BYTES {
        return Err(Error::ShortFrame { len: frame.len() });
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    Ok((key, version, correlation))
}

/// Decodes one request frame (the bytes after the 4-byte size prefix).
///
/// Errors: [`Error::ShortFrame`], [`Error::UnknownApiKey`], [`Error::UnsupportedVersion`] (a
/// version outside what this mock advertises in ApiVersions), [`Error::Malformed`].
///
/// ```
/// use bytes::{BufMut, BytesMut};
/// let mut frame = BytesMut::new();
/// frame.put_i16(18); // ApiVersions
/// frame.put_i16(0); // version 0
/// frame.put_i32(7); // correlation id
/// frame.put_i16(-1); // null client id
/// let request = testkit::decode_request(frame.freeze()).unwrap();
/// assert_eq!(request.header.correlation_id, 7);
/// assert!(testkit::decode_request(bytes::Bytes::from_static(&[1, 2, 3])).is_err());
/// ```
pub fn decode_request(mut frame: Bytes) -> Result<DecodedRequest> {
    let (key, version, correlation_id) = peek_header(&frame)?;
    let api_key = ApiKey::try_from(key).map_err(|_| Error::UnknownApiKey {
        api_key: key,
        correlation_id,
    })?;
    let supported = api_versions::supported(api_key).ok_or(Error::UnknownApiKey {
        api_key: key,
        correlation_id,
    })?;
    if version < supported.0 || version > supported.1 {
        return Err(Error::UnsupportedVersion {
            api_key,
            version,
            correlation_id,
        });
    }
    let header_version = api_key.request_header_version(version);
    let header =
        RequestHeader::decode(&mut frame, header_version).map_err(|e| Error::Malformed {
            what: "request header",
            api_key: key,
            version,
            reason: e.to_string(),
        })?;
    let body = RequestKind::decode(api_key, &mut frame, version).map_err(|e| Error::Malformed {
        what: "request body",
        api_key: key,
        version,
        reason: format!("{e:#}"),
    })?;
    if frame.has_remaining() {
        tracing::debug!(
            ?api_key,
            version,
            trailing = frame.remaining(),
            "request has trailing bytes, ignored"
        );
    }
    Ok(DecodedRequest {
        api_key,
        header,
        body,
    })
}
