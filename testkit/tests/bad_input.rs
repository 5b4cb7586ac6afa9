//! Garbage on one connection never disturbs the broker or other clients.

mod common;

use bytes::Bytes;
use common::Raw;
use kafka_protocol::messages::*;
use testkit::{MockCluster, MockSasl};

async fn still_serving(addr: &str) {
    let mut c = Raw::connect(addr).await;
    let r = c.send(3, &ApiVersionsRequest::default()).await;
    assert_eq!(r.error_code, 0);
}

#[tokio::test]
async fn garbage_absurd_lengths_and_unknown_keys_close_only_that_connection() {
    let cluster = MockCluster::builder().build().await.unwrap();
    let addr = cluster.bootstrap();
    let mut bystander = Raw::connect(&addr).await;

    // Absurd and negative frame lengths.
    for prefix in [i32::MAX, -5, 200 << 20] {
        let mut c = Raw::connect(&addr).await;
        c.write_raw(&prefix.to_be_bytes()).await.unwrap();
        assert!(c.closed().await, "size {prefix}");
    }
    // A frame too short for a header.
    let mut c = Raw::connect(&addr).await;
    c.write_raw(&[0, 0, 0, 3, 1, 2, 3]).await.unwrap();
    assert!(c.closed().await);
    // An unknown API key.
    let mut c = Raw::connect(&addr).await;
    c.write_raw(&[0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff])
        .await
        .unwrap();
    assert!(c.closed().await);
    // A known API at an unsupported version (Produce v1): closed, as Kafka does.
    let mut c = Raw::connect(&addr).await;
    c.write_raw(&[0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff])
        .await
        .unwrap();
    assert!(c.closed().await);
    // Random bytes.
    let mut seed = 0x9e3779b97f4a7c15u64;
    for _ in 0..50 {
        let mut c = Raw::connect(&addr).await;
        let mut junk = Vec::new();
        let len = (seed % 64) as usize + 8;
        junk.extend_from_slice(&(len as i32).to_be_bytes());
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            junk.push(seed as u8);
        }
        let _ = c.write_raw(&junk).await;
    }
    still_serving(&addr).await;
    let r = bystander.send(3, &ApiVersionsRequest::default()).await;
    assert_eq!(r.error_code, 0);
}

/// Before authentication on a SASL listener a frame may be at most 512 KiB, as in Kafka: the
/// size prefix of a 1 MiB frame closes the connection before its bytes are awaited.
#[tokio::test]
async fn a_sasl_listener_refuses_large_frames_before_authentication() {
    let cluster = MockCluster::builder()
        .sasl(MockSasl::plain([("alice", "alice-secret")]))
        .build()
        .await
        .unwrap();
    let addr = cluster.bootstrap();
    let mut c = Raw::connect(&addr).await;
    c.write_raw(&(1i32 << 20).to_be_bytes()).await.unwrap();
    assert!(c.closed().await, "a 1 MiB claim before authentication");
    // The whole frame, too.
    let mut c = Raw::connect(&addr).await;
    let mut frame = (1i32 << 20).to_be_bytes().to_vec();
    frame.resize(4 + (1 << 20), 0);
    let _ = c.write_raw(&frame).await; // the mock may close before all of it is written
    assert!(c.closed().await, "a 1 MiB frame before authentication");
    // Frames up to the cap are still read (ApiVersions is allowed before authentication).
    still_serving(&addr).await;
}

#[tokio::test]
async fn api_versions_at_an_unknown_version_gets_a_v0_answer() {
    let cluster = MockCluster::builder().build().await.unwrap();
    let mut c = Raw::connect(&cluster.bootstrap()).await;
    // ApiVersions v99 with a flexible (v2) header: answered at v0 with UNSUPPORTED_VERSION.
    let frame = [0u8, 0, 0, 11, 0, 18, 0, 99, 0, 0, 0, 5, 0xff, 0xff, 0];
    c.write_raw(&frame).await.unwrap();
    let reply = c.read_frame().await.expect("a response");
    let r = kafka_client::protocol::frame::decode_response::<ApiVersionsRequest>(reply, 0).unwrap();
    assert_eq!(
        r.error_code,
        kafka_protocol::ResponseError::UnsupportedVersion.code()
    );
    assert!(!r.api_keys.is_empty());
}

#[test]
fn decode_request_never_panics_on_prefixes_and_flips() {
    let mut out = bytes::BytesMut::new();
    let req = MetadataRequest::default().with_topics(None);
    kafka_client::protocol::frame::encode_request(&mut out, 1, "c", 12, &req).unwrap();
    let frame = Bytes::from(out[4..].to_vec());
    assert!(testkit::decode_request(frame.clone()).is_ok());
    for cut in 0..frame.len() {
        let _ = testkit::decode_request(frame.slice(..cut));
    }
    for i in 0..frame.len() {
        for bit in 0..8 {
            let mut f = frame.to_vec();
            f[i] ^= 1 << bit;
            let _ = testkit::decode_request(Bytes::from(f));
        }
    }
}
