//! Kafka's framing: a 4-byte big-endian size, then a request or response header and body.
//!
//! Reading never trusts the size prefix: a frame larger than the configured maximum (or
//! negative) is an error before any buffer is allocated for it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{Error, Result};

/// Largest frame accepted by default (Kafka's `socket.request.max.bytes` is 100 MiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// Reads one frame's payload (without the size prefix).
///
/// Returns `Ok(None)` on a clean end of stream between frames. A size prefix that is negative
/// or above `max_bytes`, or a stream that ends inside a frame, is an error.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
) -> std::io::Result<Option<BytesMut>> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let size = i32::from_be_bytes(size);
    let len = checked_frame_len(size, max_bytes)
        .map_err(|reason| std::io::Error::new(std::io::ErrorKind::InvalidData, reason))?;
    let mut buf = BytesMut::zeroed(len);
    reader.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

/// Validates a frame size prefix; the error names what is wrong with it.
pub fn checked_frame_len(size: i32, max_bytes: usize) -> std::result::Result<usize, String> {
    if size < 0 {
        return Err(format!("frame size {size} is negative"));
    }
    let len = size as usize;
    if len > max_bytes {
        return Err(format!(
            "frame size {len} exceeds the maximum of {max_bytes} bytes"
        ));
    }
    Ok(len)
}

/// Appends a complete request frame (size prefix, header, body) to `out`.
pub fn encode_request<R: Request>(
    out: &mut BytesMut,
    correlation_id: i32,
    client_id: &str,
    version: i16,
    request: &R,
) -> Result<()> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_owned())));
    let start = out.len();
    out.put_i32(0); // size, patched below
    header
        .encode(out, R::header_version(version))
        .and_then(|()| request.encode(out, version))
        .map_err(|e| {
            out.truncate(start);
            Error::malformed(
                "request",
                format!("cannot encode API key {} v{version}: {e}", R::KEY),
            )
        })?;
    let size = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// The correlation id every response starts with, whatever its header version.
pub fn response_correlation_id(frame: &[u8]) -> Result<i32> {
    match frame.get(..4) {
        Some(id) => Ok(i32::from_be_bytes([id[0], id[1], id[2], id[3]])),
        None => Err(Error::malformed(
            "response frame",
            format!("{} bytes is too short for a correlation id", frame.len()),
        )),
    }
}

/// Decodes a response frame (header and body) to `R`'s response at `version`.
pub fn decode_response<R: Request>(mut frame: Bytes, version: i16) -> Result<R::Response> {
    let header_version = R::Response::header_version(version);
    ResponseHeader::decode(&mut frame, header_version).map_err(|e| {
        Error::malformed(
            "response header",
            format!("API key {} v{version}: {e}", R::KEY),
        )
    })?;
    let response = R::Response::decode(&mut frame, version).map_err(|e| {
        Error::malformed(
            "response body",
            format!("API key {} v{version}: {e}", R::KEY),
        )
    })?;
    if frame.has_remaining() {
        tracing::debug!(
            api_key = R::KEY,
            version,
            trailing = frame.remaining(),
            "response has trailing bytes (newer broker fields?), ignored"
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

    #[tokio::test]
    async fn rejects_negative_and_oversized_sizes_before_allocating() {
        let mut negative: &[u8] = &(-1i32).to_be_bytes();
        let err = read_frame(&mut negative, 1024).await.unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");

        let mut huge: &[u8] = &i32::MAX.to_be_bytes();
        let err = read_frame(&mut huge, 1024).await.unwrap_err();
        assert!(err.to_string().contains("exceeds the maximum"), "{err}");
    }

    #[tokio::test]
    async fn clean_eof_between_frames_is_none_and_inside_a_frame_is_an_error() {
        let mut empty: &[u8] = &[];
        assert!(read_frame(&mut empty, 1024).await.unwrap().is_none());

        let mut cut: &[u8] = &[0, 0, 0, 10, 1, 2, 3];
        let err = read_frame(&mut cut, 1024).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn request_frame_layout() {
        let mut out = BytesMut::new();
        encode_request(&mut out, 7, "c", 0, &ApiVersionsRequest::default()).unwrap();
        // size 11 | api key 18 | version 0 | correlation id 7 | client id "c" (len 1) | empty body
        assert_eq!(
            &out[..],
            &[0, 0, 0, 11, 0, 18, 0, 0, 0, 0, 0, 7, 0, 1, b'c']
        );
    }

    #[test]
    fn truncated_response_is_an_error_not_a_panic() {
        let mut body = BytesMut::new();
        body.put_i32(7); // correlation id
        let mut response = ApiVersionsResponse::default();
        response.api_keys.push(Default::default());
        response.encode(&mut body, 3).unwrap();
        let full = body.freeze();
        assert_eq!(response_correlation_id(&full).unwrap(), 7);
        assert!(decode_response::<ApiVersionsRequest>(full.clone(), 3).is_ok());
        for cut in 0..full.len() {
            let _ = decode_response::<ApiVersionsRequest>(full.slice(..cut), 3);
        }
        assert!(decode_response::<ApiVersionsRequest>(full.slice(..3), 3).is_err());
    }
}
