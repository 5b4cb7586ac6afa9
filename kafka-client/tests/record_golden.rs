//! Golden bytes for the v2 record batch codec, commented field by field.
//!
//! The CRC literals were computed with an independent bitwise CRC-32C (Castagnoli), not with
//! the codec under test.

use bytes::Bytes;
use kafka_client::protocol::record::{
    assign_offsets, set_base_offset, set_log_append_time, set_partition_leader_epoch, BatchBuilder,
    Compression, ControlRecordType, EndTxnMarker, Header, Record, RecordBatches, TimestampType,
};
use kafka_client::Error;

/// Two records: the first with a key and a header, the second with a null key.
#[rustfmt::skip]
const GOLDEN: [u8; 85] = [
    0, 0, 0, 0, 0, 0, 0, 0,         // base offset 0
    0, 0, 0, 73,                    // batch length: 85 - 12
    0xff, 0xff, 0xff, 0xff,         // partition leader epoch -1
    2,                              // magic 2
    0x82, 0xe1, 0x3c, 0xf1,         // CRC-32C of everything after it
    0, 0,                           // attributes: no compression, create time, not txn/control
    0, 0, 0, 1,                     // last offset delta 1
    0, 0, 0, 0, 0, 0, 0x03, 0xe8,   // base timestamp 1000
    0, 0, 0, 0, 0, 0, 0x03, 0xed,   // max timestamp 1005
    0, 0, 0, 0, 0, 0, 0, 7,         // producer id 7
    0, 1,                           // producer epoch 1
    0, 0, 0, 0,                     // base sequence 0
    0, 0, 0, 2,                     // record count 2
    // record 0
    0x1c,                           // length 14 (zigzag 28)
    0,                              // attributes
    0,                              // timestamp delta 0
    0,                              // offset delta 0
    0x04, b'k', b'1',               // key length 2, "k1"
    0x04, b'v', b'1',               // value length 2, "v1"
    0x02,                           // 1 header
    0x02, b'h',                     //   key length 1, "h"
    0x02, b'x',                     //   value length 1, "x"
    // record 1
    0x10,                           // length 8
    0,                              // attributes
    0x0a,                           // timestamp delta 5
    0x02,                           // offset delta 1
    0x01,                           // key length -1: null
    0x04, b'v', b'2',               // value length 2, "v2"
    0x00,                           // no headers
];

fn golden_records() -> Vec<Record> {
    vec![
        Record {
            offset: 0,
            timestamp: 1000,
            key: Some(Bytes::from_static(b"k1")),
            value: Some(Bytes::from_static(b"v1")),
            headers: vec![Header::new("h", Some("x"))],
        },
        Record {
            offset: 1,
            timestamp: 1005,
            key: None,
            value: Some(Bytes::from_static(b"v2")),
            headers: vec![],
        },
    ]
}

#[test]
fn encode_produces_the_golden_bytes() {
    let mut builder = BatchBuilder::new(Compression::None).producer(7, 1, 0);
    assert_eq!(
        builder
            .append(
                1000,
                Some(b"k1"),
                Some(b"v1"),
                &[Header::new("h", Some("x"))]
            )
            .unwrap(),
        0
    );
    assert_eq!(builder.append(1005, None, Some(b"v2"), &[]).unwrap(), 1);
    assert_eq!(builder.len(), 2);
    assert_eq!(builder.estimated_size(), GOLDEN.len());
    assert_eq!(&builder.build().unwrap()[..], &GOLDEN[..]);
}

#[test]
fn decode_gives_back_every_field() {
    let mut batches = RecordBatches::new(Bytes::from_static(&GOLDEN));
    let batch = batches.next().unwrap().unwrap();
    assert!(batches.next().is_none());
    assert_eq!(batches.partial_trailing_bytes(), 0);

    let h = batch.header();
    assert_eq!(h.base_offset, 0);
    assert_eq!(h.batch_length, 73);
    assert_eq!(h.partition_leader_epoch, -1);
    assert_eq!(h.magic, 2);
    assert_eq!(h.crc, 0x82e1_3cf1);
    assert_eq!(h.attributes, 0);
    assert_eq!(h.last_offset_delta, 1);
    assert_eq!(h.base_timestamp, 1000);
    assert_eq!(h.max_timestamp, 1005);
    assert_eq!(h.producer_id, 7);
    assert_eq!(h.producer_epoch, 1);
    assert_eq!(h.base_sequence, 0);
    assert_eq!(h.record_count, 2);
    assert_eq!(h.compression().unwrap(), Compression::None);
    assert!(!h.is_transactional() && !h.is_control() && !h.has_delete_horizon());
    assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
    assert_eq!(h.last_offset(), 1);
    assert_eq!(h.next_offset(), 2);
    assert_eq!(h.total_len(), GOLDEN.len());
    assert_eq!(batch.as_bytes().len(), GOLDEN.len());
    assert_eq!(batch.control_type().unwrap(), None);

    let records: Vec<Record> = batch.records().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(records, golden_records());
    assert_eq!(records[0].headers[0].key_str().unwrap(), "h");
}

#[test]
fn decoded_slices_share_the_input_buffer() {
    let input = Bytes::copy_from_slice(&GOLDEN);
    let batch = RecordBatches::new(input.clone()).next().unwrap().unwrap();
    let record = batch.records().unwrap().next().unwrap().unwrap();
    let value = record.value.unwrap();
    let range = input.as_ptr_range();
    assert!(
        range.contains(&value.as_ptr()),
        "value was copied instead of sliced"
    );
    assert!(range.contains(&record.headers[0].key.as_ptr()));
}

#[test]
fn broker_edits_base_offset_without_touching_the_crc() {
    let mut bytes = GOLDEN.to_vec();
    set_base_offset(&mut bytes, 1_000_000).unwrap();
    set_partition_leader_epoch(&mut bytes, 5).unwrap();
    assert_eq!(&bytes[..8], &1_000_000i64.to_be_bytes());
    assert_eq!(
        &bytes[17..],
        &GOLDEN[17..],
        "CRC and covered bytes unchanged"
    );
    let batch = RecordBatches::new(Bytes::from(bytes))
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(batch.header().partition_leader_epoch, 5);
    let offsets: Vec<i64> = batch
        .records()
        .unwrap()
        .map(|r| r.unwrap().offset)
        .collect();
    assert_eq!(offsets, [1_000_000, 1_000_001]);
}

#[test]
fn assign_offsets_walks_every_batch_of_a_record_set() {
    let mut set = GOLDEN.to_vec();
    set.extend_from_slice(&GOLDEN);
    assert_eq!(assign_offsets(&mut set, 10).unwrap(), 14);
    let bases: Vec<i64> = RecordBatches::new(Bytes::from(set))
        .map(|b| b.unwrap().header().base_offset)
        .collect();
    assert_eq!(bases, [10, 12]);
    let mut cut = GOLDEN[..80].to_vec();
    assert!(assign_offsets(&mut cut, 0).is_err());
    let mut backwards = GOLDEN.to_vec();
    backwards[23..27].copy_from_slice(&(-5i32).to_be_bytes()); // last offset delta -5
    assert!(assign_offsets(&mut backwards, 100).is_err());
}

#[test]
fn log_append_time_overrides_record_timestamps_and_keeps_the_crc_valid() {
    let mut bytes = GOLDEN.to_vec();
    set_log_append_time(&mut bytes, 99_999).unwrap();
    let batch = RecordBatches::new(Bytes::from(bytes))
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
    assert_eq!(stamps, [99_999, 99_999]);
}

/// A commit marker as a transaction coordinator writes it.
#[rustfmt::skip]
const COMMIT_MARKER: [u8; 61 + 17] = [
    0, 0, 0, 0, 0, 0, 0, 0,         // base offset 0
    0, 0, 0, 66,                    // batch length: 78 - 12
    0xff, 0xff, 0xff, 0xff,         // partition leader epoch -1
    2,                              // magic
    0x5c, 0x96, 0x50, 0x3d,         // CRC
    0, 0x30,                        // attributes: transactional (0x10) | control (0x20)
    0, 0, 0, 0,                     // last offset delta 0
    0, 0, 0, 0, 0, 0, 0, 50,        // base timestamp 50
    0, 0, 0, 0, 0, 0, 0, 50,        // max timestamp 50
    0, 0, 0, 0, 0, 0, 0, 9,         // producer id 9
    0, 3,                           // producer epoch 3
    0xff, 0xff, 0xff, 0xff,         // base sequence -1
    0, 0, 0, 1,                     // 1 record
    0x20,                           // length 16
    0, 0, 0,                        // attributes, timestamp delta, offset delta
    0x08, 0, 0, 0, 1,               // key (4 bytes): version 0, type 1 = commit
    0x0c, 0, 0, 0, 0, 0, 4,         // value (6 bytes): version 0, coordinator epoch 4
    0,                              // no headers
];

#[test]
fn commit_marker_golden_bytes() {
    let marker = EndTxnMarker {
        commit: true,
        coordinator_epoch: 4,
    };
    let bytes = marker.encode_batch(9, 3, 50).unwrap();
    assert_eq!(&bytes[..], &COMMIT_MARKER[..]);
    let batch = RecordBatches::new(bytes).next().unwrap().unwrap();
    assert!(batch.header().is_control() && batch.header().is_transactional());
    assert_eq!(
        batch.control_type().unwrap(),
        Some(ControlRecordType::Commit)
    );
    let record = batch.records().unwrap().next().unwrap().unwrap();
    assert_eq!(EndTxnMarker::parse(&record).unwrap(), marker);
}

#[test]
fn old_magic_is_named() {
    let mut bytes = GOLDEN.to_vec();
    bytes[16] = 1;
    let err = RecordBatches::new(Bytes::from(bytes))
        .next()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("magic 1"), "{err}");
}

#[test]
fn wrong_crc_is_corrupt_batch() {
    let mut bytes = GOLDEN.to_vec();
    bytes[80] ^= 1;
    match RecordBatches::new(Bytes::from(bytes)).next().unwrap() {
        Err(Error::CorruptBatch {
            base_offset: 0,
            stored: 0x82e1_3cf1,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}
