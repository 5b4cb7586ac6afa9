//! Kafka's framing: a 4-byte big-endian size, then a request or response header and body.
//!
//! Reading never trusts the size prefix: a frame larger than the configured maximum (or
//! negative) is an error before any buffer is allocated for it, and a frame within the
//! maximum gets a buffer that grows with the bytes that arrive, not one of the size claimed.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The buffer of a frame starts at most this large and then grows with what arrives.
const FIRST_READ_BYTES: usize = 64 * 1024;

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
    let mut buf = BytesMut::new();
    read_payload(reader, len, &mut buf).await?;
    Ok(Some(buf))
}

/// Appends exactly `len` bytes from `reader` to `buf`, growing `buf` as they arrive (at most
/// doubling what is there), so that a peer claiming a large frame and sending little makes
/// us allocate little. A stream that ends first is `UnexpectedEof`.
async fn read_payload<R: AsyncRead + Unpin>(
    reader: &mut R,
    len: usize,
    buf: &mut BytesMut,
) -> std::io::Result<()> {
    let end = buf.len() + len;
    while buf.len() < end {
        let missing = end - buf.len();
        if buf.capacity() == buf.len() {
            buf.reserve(missing.min(buf.len().max(FIRST_READ_BYTES)));
        }
        let n = (&mut *reader).take(missing as u64).read_buf(buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the stream ended {missing} bytes before the end of a frame"),
            ));
        }
    }
    Ok(())
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

    /// A 4-byte claim of 100 MiB followed by a few bytes allocates for what arrived, not for
    /// the claim.
    #[tokio::test]
    async fn a_large_size_claim_allocates_for_the_bytes_that_arrive() {
        let claim = 100 * 1024 * 1024;
        let mut input: &[u8] = &[7; 10];
        let mut buf = BytesMut::new();
        let err = read_payload(&mut input, claim, &mut buf).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(buf.len(), 10);
        assert!(buf.capacity() <= 1024 * 1024, "{}", buf.capacity());

        // Through read_frame, with the stream still open after the claim: nothing grows.
        let (mut client, mut server) = tokio::io::duplex(1024);
        tokio::io::AsyncWriteExt::write_all(&mut client, &(claim as i32).to_be_bytes())
            .await
            .unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut client, &[1; 100])
            .await
            .unwrap();
        let mut buf = BytesMut::new();
        let mut size = [0u8; 4];
        server.read_exact(&mut size).await.unwrap();
        // One poll reads all that is there, then waits for more.
        let pending = futures::FutureExt::now_or_never(read_payload(&mut server, claim, &mut buf));
        assert!(pending.is_none(), "the frame cannot be complete");
        assert_eq!(buf.len(), 100);
        assert!(buf.capacity() <= 1024 * 1024, "{}", buf.capacity());

        // A whole frame still arrives whole, across many reads.
        let frame: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let mut input = (frame.len() as i32).to_be_bytes().to_vec();
        input.extend_from_slice(&frame);
        input.extend_from_slice(&[0, 0, 0, 1, 9]);
        let mut input: &[u8] = &input;
        let read = read_frame(&mut input, 1 << 20).await.unwrap().unwrap();
        assert_eq!(&read[..], &frame[..]);
        assert_eq!(
            &read_frame(&mut input, 1 << 20).await.unwrap().unwrap()[..],
            [9]
        );
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
