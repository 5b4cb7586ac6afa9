//! Bodies of the cargo-fuzz targets in `fuzz/` (which include this file by path), run here
//! over random and mutated inputs with proptest so that stable `cargo test` exercises them.
//!
//! A body must never panic, whatever the bytes; errors are expected and ignored.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use kafka_client::protocol::frame::{decode_response, response_correlation_id};
use kafka_client::protocol::messages::{
    ApiVersionsRequest, FetchRequest, FindCoordinatorRequest, JoinGroupRequest, ListOffsetsRequest,
    MetadataRequest, OffsetFetchRequest, ProduceRequest,
};
use kafka_client::protocol::record::{
    assign_offsets, set_base_offset, set_log_append_time, Compression, RecordBatches,
};
use kafka_protocol::protocol::Request;

/// Largest decompressed batch the fuzz bodies allow (keeps iterations fast).
const MAX_DECOMPRESSED: usize = 1 << 20;

/// `record_batch` target. The first byte picks a mode: decode as given; decode after fixing
/// each batch's CRC (so mutations reach the record parser and decompressors); decompress the
/// rest directly with one codec; or apply the broker's in-place edits, then decode.
pub fn record_batch(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => decode_all(Bytes::copy_from_slice(rest)),
        1 => {
            let mut fixed = rest.to_vec();
            fix_crcs(&mut fixed);
            decode_all(Bytes::from(fixed));
        }
        2 => {
            if let Some((&codec, payload)) = rest.split_first() {
                let codec = Compression::ALL[usize::from(codec) % Compression::ALL.len()];
                let _ = codec.decompress(payload, MAX_DECOMPRESSED);
            }
        }
        _ => {
            let mut edited = rest.to_vec();
            let _ = assign_offsets(&mut edited, i64::MAX - 3);
            let _ = set_base_offset(&mut edited, -1);
            let _ = set_log_append_time(&mut edited, i64::MIN);
            fix_crcs(&mut edited);
            decode_all(Bytes::from(edited));
        }
    }
}

/// Decodes every batch and every record, touching each helper.
pub fn decode_all(data: Bytes) {
    for batch in RecordBatches::new(data) {
        let Ok(batch) = batch else { return };
        let h = batch.header();
        let _ = (
            h.compression(),
            h.timestamp_type(),
            h.is_transactional(),
            h.is_control(),
        );
        let _ = (
            h.last_offset(),
            h.next_offset(),
            h.total_len(),
            h.has_delete_horizon(),
        );
        let _ = batch.control_type();
        let Ok(records) = batch.records_with_limit(MAX_DECOMPRESSED) else {
            continue;
        };
        for record in records {
            let Ok(record) = record else { break };
            let _ = record.control_type();
            for header in &record.headers {
                let _ = header.key_str();
            }
        }
    }
}

/// Rewrites the CRC of each complete batch (walking the declared lengths).
pub fn fix_crcs(data: &mut [u8]) {
    let mut pos = 0usize;
    while let Some(batch) = data.get_mut(pos..) {
        let Some(len) = batch.get(8..12) else { return };
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        let Some(total) = usize::try_from(len)
            .ok()
            .filter(|l| *l >= 49)
            .map(|l| l + 12)
        else {
            return;
        };
        let Some(batch) = batch.get_mut(..total) else {
            return;
        };
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        pos += total;
    }
}

/// `response_frame` target: the first byte picks the API (low 3 bits) and the version (the
/// rest, modulo the API's version range); the remaining bytes are the frame after its size.
pub fn response_frame(data: &[u8]) {
    let _ = response_correlation_id(data);
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let frame = Bytes::copy_from_slice(frame);
    let v = selector >> 3;
    match selector & 7 {
        0 => decode::<MetadataRequest>(frame, v),
        1 => decode::<ProduceRequest>(frame, v),
        2 => {
            // Fetch responses carry record sets: walk them as the consumer would.
            let Some(version) = pick_version::<FetchRequest>(v) else {
                return;
            };
            if let Ok(response) = decode_response::<FetchRequest>(frame, version) {
                for topic in &response.responses {
                    for partition in &topic.partitions {
                        if let Some(records) = &partition.records {
                            decode_all(records.clone());
                        }
                    }
                }
            }
        }
        3 => decode::<ListOffsetsRequest>(frame, v),
        4 => decode::<ApiVersionsRequest>(frame, v),
        5 => decode::<FindCoordinatorRequest>(frame, v),
        6 => decode::<JoinGroupRequest>(frame, v),
        _ => decode::<OffsetFetchRequest>(frame, v),
    }
}

/// The selector modulo `R`'s supported versions.
pub fn pick_version<R: Request>(selector: u8) -> Option<i16> {
    let range = R::VERSIONS;
    let span = i32::from(range.max) - i32::from(range.min) + 1;
    (span > 0).then(|| range.min + (i32::from(selector) % span) as i16)
}

fn decode<R: Request>(frame: Bytes, selector: u8) {
    if let Some(version) = pick_version::<R>(selector) {
        let _ = decode_response::<R>(frame, version);
    }
}

/// A valid response frame (after the size prefix) for `R`, to seed mutations.
pub fn valid_response<R: Request>(version: i16, body: &R::Response) -> Vec<u8> {
    use kafka_client::protocol::messages::ResponseHeader;
    use kafka_protocol::protocol::{Encodable, HeaderVersion};
    let mut buf = BytesMut::new();
    let header = ResponseHeader::default().with_correlation_id(7);
    header
        .encode(&mut buf, R::Response::header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_client::protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_client::protocol::messages::{
        ApiVersionsResponse, FetchResponse, MetadataResponse, TopicName,
    };
    use kafka_client::protocol::record::{BatchBuilder, EndTxnMarker, Header};
    use kafka_client::protocol::StrBytes;
    use kafka_protocol::protocol::Message;
    use proptest::prelude::*;

    fn sample_record_set() -> Vec<u8> {
        let mut out = Vec::new();
        for (i, codec) in Compression::ALL.into_iter().enumerate() {
            let mut b = BatchBuilder::new(codec)
                .base_offset(i as i64 * 10)
                .producer(1, 2, 3);
            b.append(
                5,
                Some(b"k"),
                Some(b"value"),
                &[Header::new("h", Some("v"))],
            )
            .unwrap();
            b.append(6, None, None, &[]).unwrap();
            out.extend_from_slice(&b.build().unwrap());
        }
        let marker = EndTxnMarker {
            commit: false,
            coordinator_epoch: 1,
        };
        out.extend_from_slice(&marker.encode_batch(1, 2, 9).unwrap());
        out
    }

    /// Selector byte + a valid Fetch response (v4 and v12) carrying `sample_record_set`.
    fn fetch_frames() -> Vec<Vec<u8>> {
        let records = Bytes::from(sample_record_set());
        [4i16, 12]
            .into_iter()
            .map(|version| {
                let partition = PartitionData::default().with_records(Some(records.clone()));
                let topic = FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(vec![partition]);
                let response = FetchResponse::default().with_responses(vec![topic]);
                let range = FetchRequest::VERSIONS;
                let selector = (((version - range.min) as u8) << 3) | 2;
                let mut frame = vec![selector];
                frame.extend(valid_response::<FetchRequest>(version, &response));
                frame
            })
            .collect()
    }

    fn mutate(base: &[u8], edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
        let mut data = base.to_vec();
        for &(at, x) in edits {
            if !data.is_empty() {
                let i = at % data.len();
                data[i] ^= x;
            }
        }
        data.truncate(data.len() - cut % (data.len() + 1));
        data
    }

    #[test]
    fn seeds_decode() {
        for frame in fetch_frames() {
            let version = pick_version::<FetchRequest>(frame[0] >> 3).unwrap();
            let response =
                decode_response::<FetchRequest>(Bytes::from(frame[1..].to_vec()), version).unwrap();
            let records = response.responses[0].partitions[0].records.clone().unwrap();
            assert_eq!(RecordBatches::new(records).count(), 6);
        }
        let meta = valid_response::<MetadataRequest>(9, &MetadataResponse::default());
        assert!(decode_response::<MetadataRequest>(Bytes::from(meta), 9).is_ok());
        let api = valid_response::<ApiVersionsRequest>(3, &ApiVersionsResponse::default());
        assert!(decode_response::<ApiVersionsRequest>(Bytes::from(api), 3).is_ok());
    }

    /// Seed inputs of the cargo-fuzz targets: (target, file name, bytes).
    fn fuzz_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
        let mut seeds = Vec::new();
        let set = sample_record_set();
        for mode in 0..4u8 {
            let mut data = vec![mode];
            data.extend_from_slice(&set);
            seeds.push(("record_batch", format!("set-{mode}"), data));
        }
        let mut pos = 0;
        for (i, codec) in Compression::ALL.into_iter().enumerate() {
            let len = i32::from_be_bytes(set[pos + 8..pos + 12].try_into().unwrap()) as usize + 12;
            let mut data = vec![2, i as u8];
            data.extend_from_slice(&set[pos + 61..pos + len]);
            seeds.push(("record_batch", format!("codec-{codec}"), data));
            pos += len;
        }
        for (i, frame) in fetch_frames().into_iter().enumerate() {
            seeds.push(("response_frame", format!("fetch-{i}"), frame));
        }
        let meta = valid_response::<MetadataRequest>(9, &MetadataResponse::default());
        let range = MetadataRequest::VERSIONS;
        let mut data = vec![((9 - range.min) as u8) << 3];
        data.extend(meta);
        seeds.push(("response_frame", "metadata-9".into(), data));
        let api = valid_response::<ApiVersionsRequest>(3, &ApiVersionsResponse::default());
        let range = ApiVersionsRequest::VERSIONS;
        let mut data = vec![(((3 - range.min) as u8) << 3) | 4];
        data.extend(api);
        seeds.push(("response_frame", "api-versions-3".into(), data));
        // Request frames (without the size prefix), as the mock broker decodes them.
        let request = |version: i16, encode: &dyn Fn(&mut BytesMut, i16)| {
            let mut out = BytesMut::new();
            encode(&mut out, version);
            out[4..].to_vec()
        };
        use kafka_client::protocol::frame::encode_request;
        seeds.push((
            "request_decoder",
            "api-versions-3".into(),
            request(3, &|out, v| {
                encode_request(out, 1, "seed", v, &ApiVersionsRequest::default()).unwrap()
            }),
        ));
        seeds.push((
            "request_decoder",
            "metadata-12".into(),
            request(12, &|out, v| {
                encode_request(out, 2, "seed", v, &MetadataRequest::default()).unwrap()
            }),
        ));
        let produce = ProduceRequest::default().with_acks(-1).with_topic_data(vec![
            kafka_client::protocol::messages::produce_request::TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_data(vec![
                    kafka_client::protocol::messages::produce_request::PartitionProduceData::default()
                        .with_records(Some(Bytes::from(set.clone()))),
                ]),
        ]);
        seeds.push((
            "request_decoder",
            "produce-9".into(),
            request(9, &|out, v| {
                encode_request(out, 3, "seed", v, &produce).unwrap()
            }),
        ));
        seeds.extend(hostile_seeds());
        seeds
    }

    /// Hostile frames: an array whose count claims far more elements than the bytes that
    /// follow. A decoder that trusts the count allocates gigabytes before reading an element
    /// (and aborts the process); kafka-protocol-bounded rejects the count
    /// (vendor/kafka-protocol/PATCHED.md). `tests/downstream.rs` feeds every `hostile-*` seed
    /// to a project built outside this workspace.
    fn hostile_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
        const HUGE: [u8; 4] = 0x7fff_ffffi32.to_be_bytes(); // Array count (INT32)
        const HUGE_VARINT: [u8; 5] = [0xff, 0xff, 0xff, 0xff, 0x0f]; // CompactArray: u32::MAX
        let correlation_id = 7i32.to_be_bytes();
        let selector = |min: i16, version: i16, api: u8| (((version - min) as u8) << 3) | api;
        let mut seeds = Vec::new();
        // Metadata v1 response (header v0): brokers ARRAY first.
        let mut data = vec![selector(MetadataRequest::VERSIONS.min, 1, 0)];
        data.extend(correlation_id);
        data.extend(HUGE);
        seeds.push(("response_frame", "hostile-metadata-1-brokers".into(), data));
        // Metadata v12 response (header v1: correlation id, empty tagged fields):
        // throttle_time_ms, then brokers COMPACT_ARRAY.
        let mut data = vec![selector(MetadataRequest::VERSIONS.min, 12, 0)];
        data.extend(correlation_id);
        data.push(0);
        data.extend(0i32.to_be_bytes());
        data.extend(HUGE_VARINT);
        seeds.push(("response_frame", "hostile-metadata-12-brokers".into(), data));
        // Fetch v4 response, the count nested: throttle_time_ms, one topic "t", then its
        // partitions ARRAY.
        let mut data = vec![selector(FetchRequest::VERSIONS.min, 4, 2)];
        data.extend(correlation_id);
        data.extend(0i32.to_be_bytes());
        data.extend(1i32.to_be_bytes());
        data.extend(1i16.to_be_bytes());
        data.push(b't');
        data.extend(HUGE);
        seeds.push(("response_frame", "hostile-fetch-4-partitions".into(), data));
        // Request frames (no size prefix), as the mock broker decodes them. Produce v3 (header
        // v1: api key, version, correlation id, client id): transactional_id null, acks,
        // timeout_ms, then topic_data ARRAY.
        let mut data = Vec::new();
        data.extend(0i16.to_be_bytes());
        data.extend(3i16.to_be_bytes());
        data.extend(correlation_id);
        data.extend(4i16.to_be_bytes());
        data.extend(b"seed");
        data.extend((-1i16).to_be_bytes());
        data.extend((-1i16).to_be_bytes());
        data.extend(0i32.to_be_bytes());
        data.extend(HUGE);
        seeds.push(("request_decoder", "hostile-produce-3-topics".into(), data));
        // Metadata v12 (header v2: the v1 fields, empty tagged fields): topics COMPACT_ARRAY.
        let mut data = Vec::new();
        data.extend(3i16.to_be_bytes());
        data.extend(12i16.to_be_bytes());
        data.extend(correlation_id);
        data.extend(4i16.to_be_bytes());
        data.extend(b"seed");
        data.push(0);
        data.extend(HUGE_VARINT);
        seeds.push(("request_decoder", "hostile-metadata-12-topics".into(), data));
        seeds
    }

    /// The seed corpus in `fuzz/seeds/<target>/` (which .ci/run's fuzzing starts from) is what
    /// `fuzz_seeds` builds. To rewrite it after a format change:
    /// `UPDATE_FUZZ_SEEDS=1 cargo test -p kafka-client --test record_fuzz_bodies committed_fuzz_seeds`
    #[test]
    fn committed_fuzz_seeds_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
        let update = std::env::var_os("UPDATE_FUZZ_SEEDS").is_some();
        for (target, name, data) in fuzz_seeds() {
            let file = dir.join(target).join(&name);
            if update {
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, &data).unwrap();
            }
            let committed = std::fs::read(&file).unwrap_or_else(|e| {
                panic!("{}: {e} (UPDATE_FUZZ_SEEDS=1 writes it)", file.display())
            });
            assert!(
                committed == data,
                "{} is stale (UPDATE_FUZZ_SEEDS=1 rewrites it)",
                file.display()
            );
            if target == "request_decoder" && !name.starts_with("hostile-") {
                let decoded = testkit::decode_request(Bytes::from(data));
                assert!(decoded.is_ok(), "seed {name} decodes: {:?}", decoded.err());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn record_batch_random(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            record_batch(&data);
        }

        #[test]
        fn response_frame_random(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            response_frame(&data);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]

        #[test]
        fn record_batch_mutated(
            mode in 0u8..4,
            edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..6),
            cut in any::<usize>(),
        ) {
            let mut data = vec![mode];
            data.extend(mutate(&sample_record_set(), &edits, cut % 64));
            record_batch(&data);
        }

        #[test]
        fn response_frame_mutated(
            which in any::<bool>(),
            edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..6),
            cut in any::<usize>(),
        ) {
            let frames = fetch_frames();
            let base = &frames[usize::from(which)];
            // Keep the selector byte; damage the frame.
            let mut data = vec![base[0]];
            data.extend(mutate(&base[1..], &edits, cut % 64));
            response_frame(&data);
        }
    }
}
