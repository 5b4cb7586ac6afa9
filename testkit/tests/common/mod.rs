//! A raw protocol client for the tests: one request at a time over TCP.

#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use kafka_client::protocol::frame::{decode_response, encode_request, read_frame};
use kafka_protocol::protocol::Request;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub struct Raw {
    stream: TcpStream,
    correlation: i32,
}

impl Raw {
    pub async fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Raw {
            stream,
            correlation: 0,
        }
    }

    pub async fn send<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        self.try_send(version, req).await.expect("response")
    }

    /// Sends a request; `None` when the connection closes instead of answering.
    pub async fn try_send<R: Request>(&mut self, version: i16, req: &R) -> Option<R::Response> {
        self.correlation += 1;
        let mut out = BytesMut::new();
        encode_request(&mut out, self.correlation, "testkit-tests", version, req).expect("encode");
        self.stream.write_all(&out).await.ok()?;
        let frame = read_frame(&mut self.stream, 64 << 20).await.ok()??;
        let frame: Bytes = frame.freeze();
        assert_eq!(
            i32::from_be_bytes(frame[..4].try_into().unwrap()),
            self.correlation
        );
        Some(decode_response::<R>(frame, version).expect("decode response"))
    }

    /// Reads one response frame as sent.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        Some(read_frame(&mut self.stream, 64 << 20).await.ok()??.freeze())
    }

    pub async fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Waits for the server to close the connection (read returns 0 or an error).
    pub async fn closed(&mut self) -> bool {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                self.stream.read(&mut buf)
            )
            .await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// An uncompressed v2 batch of (key, value) records with idempotence fields.
pub fn batch(
    records: &[(&str, &str)],
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    ts: i64,
) -> Bytes {
    use bytes::BufMut;
    fn varint(out: &mut BytesMut, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.put_u8((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
        out.put_u8(z as u8);
    }
    let mut body = BytesMut::new();
    for (i, (k, v)) in records.iter().enumerate() {
        let mut r = BytesMut::new();
        r.put_i8(0);
        varint(&mut r, i as i64); // timestamp delta
        varint(&mut r, i as i64); // offset delta
        varint(&mut r, k.len() as i64);
        r.put_slice(k.as_bytes());
        varint(&mut r, v.len() as i64);
        r.put_slice(v.as_bytes());
        varint(&mut r, 0);
        varint(&mut body, r.len() as i64);
        body.put_slice(&r);
    }
    let mut out = BytesMut::new();
    out.put_i64(0);
    out.put_i32((49 + body.len()) as i32);
    out.put_i32(-1);
    out.put_i8(2);
    out.put_u32(0);
    out.put_i16(0);
    out.put_i32(records.len() as i32 - 1);
    out.put_i64(ts);
    out.put_i64(ts + records.len() as i64 - 1);
    out.put_i64(producer_id);
    out.put_i16(epoch);
    out.put_i32(base_sequence);
    out.put_i32(records.len() as i32);
    out.put_slice(&body);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out.freeze()
}

/// Kafka's record count per batch in a record set (walking batch headers).
pub fn batch_offsets(records: &Bytes) -> Vec<(i64, i32)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 61 <= records.len() {
        let base = i64::from_be_bytes(records[at..at + 8].try_into().unwrap());
        let len = i32::from_be_bytes(records[at + 8..at + 12].try_into().unwrap()) as usize;
        let count = i32::from_be_bytes(records[at + 57..at + 61].try_into().unwrap());
        out.push((base, count));
        at += 12 + len;
    }
    out
}

/// Polls `check` until it returns true, failing the test with `what` after 10 s. The short
/// pause between polls only paces the loop; the outcome is decided by `check`.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after 10 s waiting until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// How many requests of `api` the cluster has received so far.
pub fn received(cluster: &testkit::MockCluster, api: kafka_protocol::messages::ApiKey) -> usize {
    cluster
        .requests()
        .iter()
        .filter(|r| r.api_key == api)
        .count()
}
