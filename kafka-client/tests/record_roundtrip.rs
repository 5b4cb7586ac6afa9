//! Property round-trips: whatever records go into a `BatchBuilder` come back out of the
//! decoder, for every codec.

use bytes::Bytes;
use kafka_client::protocol::record::{
    BatchBuilder, Compression, Header, Record, RecordBatches, TimestampType,
};
use proptest::prelude::*;

fn bytes_opt() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Vec::new())),
        4 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Some),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    // A small key alphabet so duplicate keys are common.
    (
        prop_oneof![Just("a"), Just("b"), Just("trace-id"), Just("")],
        bytes_opt(),
    )
        .prop_map(|(k, v)| Header::new(k, v))
}

fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![
        1_700_000_000_000i64..1_700_000_100_000,
        any::<i64>(),
        Just(-1i64)
    ]
}

#[derive(Debug, Clone)]
struct Input {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

fn input() -> impl Strategy<Value = Input> {
    (
        timestamp(),
        bytes_opt(),
        bytes_opt(),
        proptest::collection::vec(header(), 0..4),
    )
        .prop_map(|(timestamp, key, value, headers)| Input {
            timestamp,
            key,
            value,
            headers,
        })
}

fn codec() -> impl Strategy<Value = Compression> {
    proptest::sample::select(Compression::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn records_round_trip(
        inputs in proptest::collection::vec(input(), 0..40),
        compression in codec(),
        base_offset in 0i64..1 << 50,
        producer in (any::<i64>(), any::<i16>(), any::<i32>()),
        transactional in any::<bool>(),
        leader_epoch in any::<i32>(),
    ) {
        let mut builder = BatchBuilder::new(compression)
            .base_offset(base_offset)
            .partition_leader_epoch(leader_epoch)
            .producer(producer.0, producer.1, producer.2)
            .transactional(transactional);
        for (i, r) in inputs.iter().enumerate() {
            let delta = builder.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &r.headers).unwrap();
            prop_assert_eq!(delta as usize, i);
        }
        let estimate = builder.estimated_size();
        let bytes = builder.build().unwrap();
        if compression == Compression::None {
            prop_assert_eq!(bytes.len(), estimate);
        }

        // A record set of the batch twice, plus a partial third copy: two batches, clean end.
        let mut set = bytes.to_vec();
        set.extend_from_slice(&bytes);
        set.extend_from_slice(&bytes[..bytes.len() - 1]);
        let mut batches = RecordBatches::new(Bytes::from(set));
        for _ in 0..2 {
            let batch = batches.next().unwrap().unwrap();
            let h = batch.header();
            prop_assert_eq!(h.base_offset, base_offset);
            prop_assert_eq!(h.partition_leader_epoch, leader_epoch);
            prop_assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), producer);
            prop_assert_eq!(h.is_transactional(), transactional);
            prop_assert!(!h.is_control());
            prop_assert_eq!(h.compression().unwrap(), compression);
            prop_assert_eq!(h.record_count as usize, inputs.len());
            prop_assert_eq!(h.next_offset(), base_offset + inputs.len() as i64);
            if let Some(first) = inputs.first() {
                prop_assert_eq!(h.base_timestamp, first.timestamp);
                prop_assert_eq!(h.max_timestamp, inputs.iter().map(|r| r.timestamp).max().unwrap());
            }
            let records: Vec<Record> = batch.records().unwrap().collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(records.len(), inputs.len());
            for (i, (got, want)) in records.iter().zip(&inputs).enumerate() {
                prop_assert_eq!(got.offset, base_offset + i as i64);
                prop_assert_eq!(got.timestamp, want.timestamp);
                prop_assert_eq!(got.key.as_deref(), want.key.as_deref());
                prop_assert_eq!(got.value.as_deref(), want.value.as_deref());
                prop_assert_eq!(&got.headers, &want.headers);
            }
        }
        prop_assert!(batches.next().is_none());
        prop_assert_eq!(batches.partial_trailing_bytes(), bytes.len() - 1);
    }

    /// Rewriting decoded records (as compaction does) keeps offsets, gaps included.
    #[test]
    fn append_record_keeps_offset_gaps(
        gaps in proptest::collection::vec(1i64..1000, 1..20),
        compression in codec(),
    ) {
        let base = 5_000;
        let mut offset = base;
        let mut originals = Vec::new();
        for (i, gap) in gaps.iter().enumerate() {
            originals.push(Record {
                offset,
                timestamp: 10 * i as i64,
                key: Some(Bytes::from(format!("k{i}"))),
                value: (i % 3 != 0).then(|| Bytes::from(vec![i as u8; i])),
                headers: vec![Header::new("x", Some("1")), Header::null("x")],
            });
            offset += gap;
        }
        let mut builder = BatchBuilder::new(compression).base_offset(base);
        for r in &originals {
            builder.append_record(r).unwrap();
        }
        prop_assert!(builder.append_record(&originals[0]).is_err(), "offsets must increase");
        let batch = RecordBatches::new(builder.build().unwrap()).next().unwrap().unwrap();
        prop_assert_eq!(batch.header().last_offset(), originals.last().unwrap().offset);
        let decoded: Vec<Record> = batch.records().unwrap().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(decoded, originals);
    }

    /// The size bound a producer checks before appending is never exceeded.
    #[test]
    fn record_size_upper_bound_holds(
        inputs in proptest::collection::vec(input(), 1..10),
    ) {
        let mut builder = BatchBuilder::new(Compression::None);
        for r in &inputs {
            let before = builder.estimated_size();
            let bound = BatchBuilder::record_size_upper_bound(r.key.as_deref(), r.value.as_deref(), &r.headers);
            builder.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &r.headers).unwrap();
            prop_assert!(builder.estimated_size() - before <= bound);
        }
    }
}

#[test]
fn empty_batch_round_trips() {
    let bytes = BatchBuilder::new(Compression::Gzip)
        .base_offset(7)
        .build()
        .unwrap();
    let batch = RecordBatches::new(bytes).next().unwrap().unwrap();
    assert_eq!(batch.header().record_count, 0);
    assert_eq!(batch.header().next_offset(), 7);
    assert_eq!(batch.records().unwrap().count(), 0);
}

#[test]
fn log_append_time_builder_flag() {
    let mut builder =
        BatchBuilder::new(Compression::None).timestamp_type(TimestampType::LogAppendTime);
    builder.append(5, None, Some(b"a"), &[]).unwrap();
    builder.append(9, None, Some(b"b"), &[]).unwrap();
    let batch = RecordBatches::new(builder.build().unwrap())
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        batch.header().timestamp_type(),
        TimestampType::LogAppendTime
    );
    let stamps: Vec<i64> = batch
        .records()
        .unwrap()
        .map(|r| r.unwrap().timestamp)
        .collect();
    assert_eq!(stamps, [9, 9]);
}

#[test]
fn large_values_span_many_compression_blocks() {
    // Values bigger than snappy's 32 KiB xerial blocks and lz4's 64 KiB blocks.
    let value: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
    for compression in Compression::ALL {
        let mut builder = BatchBuilder::new(compression);
        builder.append(1, Some(b"big"), Some(&value), &[]).unwrap();
        builder
            .append(2, Some(b"big"), Some(&value[..1000]), &[])
            .unwrap();
        let bytes = builder.build().unwrap();
        let batch = RecordBatches::new(bytes).next().unwrap().unwrap();
        let records: Vec<Record> = batch.records().unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            records[0].value.as_deref(),
            Some(&value[..]),
            "{compression}"
        );
        assert_eq!(
            records[1].value.as_deref(),
            Some(&value[..1000]),
            "{compression}"
        );
    }
}
