//! Hostile and damaged record sets: every outcome is an error value or a clean end, never a
//! panic or an allocation sized by an unchecked length.

use bytes::Bytes;
use kafka_client::protocol::record::{BatchBuilder, Compression, Header, RecordBatches};
use kafka_client::Error;

/// Decodes every batch and record, returning how many records came out or the first error.
fn decode_all(data: Bytes) -> Result<usize, Error> {
    let mut n = 0;
    for batch in RecordBatches::new(data) {
        let batch = batch?;
        let _ = batch.control_type();
        for record in batch.records_with_limit(1 << 20)? {
            record?;
            n += 1;
        }
    }
    Ok(n)
}

fn sample_batch(compression: Compression) -> Vec<u8> {
    let mut b = BatchBuilder::new(compression).producer(3, 0, 10);
    b.append(
        1000,
        Some(b"key-1"),
        Some(b"value one"),
        &[Header::new("h", Some("1"))],
    )
    .unwrap();
    b.append(
        1001,
        None,
        None,
        &[Header::null("h"), Header::new("h", Some(""))],
    )
    .unwrap();
    b.append(999, Some(b""), Some(&[7u8; 200]), &[]).unwrap();
    b.build().unwrap().to_vec()
}

fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn flipping_any_byte_is_an_error_or_other_content() {
    for compression in Compression::ALL {
        let good = sample_batch(compression);
        for i in 0..good.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= mask;
                let outcome = decode_all(Bytes::from(bad.clone()));
                if i >= 17 {
                    // Inside the CRC (or the CRC itself): always detected.
                    assert!(
                        matches!(outcome, Err(Error::CorruptBatch { .. })),
                        "{compression} byte {i} mask {mask:#x}: {outcome:?}"
                    );
                }
                // Recompute the CRC so the damage reaches the record parser and decompressor.
                if i >= 21 {
                    fix_crc(&mut bad);
                    let _ = decode_all(Bytes::from(bad));
                }
            }
        }
    }
}

#[test]
fn truncating_anywhere_ends_cleanly() {
    for compression in Compression::ALL {
        let good = sample_batch(compression);
        for cut in 0..good.len() {
            let mut batches = RecordBatches::new(Bytes::copy_from_slice(&good[..cut]));
            assert!(batches.next().is_none(), "{compression} cut at {cut}");
            assert_eq!(batches.partial_trailing_bytes(), cut);
        }
    }
}

#[test]
fn truncated_records_inside_a_valid_batch_are_errors() {
    // Shorten the records section but keep the header consistent (length and CRC), so the
    // record parser meets the end of data mid-record.
    let good = sample_batch(Compression::None);
    for cut in 61..good.len() {
        let mut bad = good[..cut].to_vec();
        bad[8..12].copy_from_slice(&((cut - 12) as i32).to_be_bytes());
        fix_crc(&mut bad);
        assert!(decode_all(Bytes::from(bad)).is_err(), "cut at {cut}");
    }
}

#[test]
fn absurd_record_count_is_rejected_before_allocating() {
    for count in [i32::MAX, 1 << 31 >> 1, 100, -1, i32::MIN] {
        let mut bad = sample_batch(Compression::None);
        bad[57..61].copy_from_slice(&count.to_be_bytes());
        fix_crc(&mut bad);
        let err = decode_all(Bytes::from(bad)).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{count}: {err}");
    }
}

#[test]
fn fewer_records_than_bytes_is_an_error() {
    let mut bad = sample_batch(Compression::None);
    bad[57..61].copy_from_slice(&2i32.to_be_bytes());
    fix_crc(&mut bad);
    let err = decode_all(Bytes::from(bad)).unwrap_err();
    assert!(err.to_string().contains("after the last record"), "{err}");
}

#[test]
fn absurd_batch_lengths() {
    let good = sample_batch(Compression::None);
    // Larger than the data: a partial batch, so a clean end.
    for len in [i32::MAX, good.len() as i32] {
        let mut bad = good.clone();
        bad[8..12].copy_from_slice(&len.to_be_bytes());
        assert_eq!(decode_all(Bytes::from(bad)).unwrap(), 0, "{len}");
    }
    // Smaller than a header: an error naming the length.
    for len in [-1, i32::MIN, 0, 48] {
        let mut bad = good.clone();
        bad[8..12].copy_from_slice(&len.to_be_bytes());
        let err = decode_all(Bytes::from(bad)).unwrap_err();
        assert!(err.to_string().contains("batch length"), "{len}: {err}");
    }
}

#[test]
fn absurd_field_lengths_inside_a_record() {
    // One record with a 1-byte key; the key length varint is at byte 61 + 4.
    let mut b = BatchBuilder::new(Compression::None);
    b.append(0, Some(b"k"), Some(b"v"), &[Header::new("a", Some("b"))])
        .unwrap();
    let good = b.build().unwrap().to_vec();
    assert_eq!(good[61 + 4], 0x02, "key length 1");
    let header_count_at = good.len() - 5;
    assert_eq!(good[header_count_at], 0x02, "header count 1");
    for (at, bytes) in [
        (61, vec![0xfe, 0xff, 0xff, 0xff, 0x0f]), // record length i32::MAX
        (61, vec![0x01]),                         // record length -1
        (61 + 4, vec![0xfe, 0xff, 0xff, 0xff, 0x0f]), // key length i32::MAX
        (61 + 4, vec![0x03]),                     // key length -2
        (61 + 4, vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), // varint too long
        (header_count_at, vec![0xfe, 0xff, 0xff, 0xff, 0x0f]), // header count i32::MAX
        (header_count_at, vec![0x01]),            // header count -1
        (header_count_at + 1, vec![0x01]),        // null header key
    ] {
        let mut bad = good[..at].to_vec();
        bad.extend_from_slice(&bytes);
        bad.extend_from_slice(&good[at + 1..]);
        let len = (bad.len() - 12) as i32;
        bad[8..12].copy_from_slice(&len.to_be_bytes());
        fix_crc(&mut bad);
        let err = decode_all(Bytes::from(bad)).unwrap_err();
        assert!(
            matches!(err, Error::Malformed { .. }),
            "at {at} {bytes:x?}: {err}"
        );
    }
}

#[test]
fn unknown_compression_code_is_named() {
    let mut bad = sample_batch(Compression::None);
    bad[22] |= 0x07;
    fix_crc(&mut bad);
    let err = decode_all(Bytes::from(bad)).unwrap_err();
    assert!(err.to_string().contains("compression code 7"), "{err}");
}

#[test]
fn decompression_bomb_stops_at_the_limit() {
    let zeros = vec![0u8; 8 << 20];
    for compression in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut b = BatchBuilder::new(compression);
        b.append(0, None, Some(&zeros), &[]).unwrap();
        let bytes = b.build().unwrap();
        assert!(
            bytes.len() < zeros.len() / 20,
            "{compression} compressed to {}",
            bytes.len()
        );
        let batch = RecordBatches::new(bytes).next().unwrap().unwrap();
        let err = batch.records_with_limit(1 << 20).unwrap_err();
        assert!(
            matches!(err, Error::Compression { .. }),
            "{compression}: {err}"
        );
        assert!(
            batch.records().is_ok(),
            "{compression} within the default limit"
        );
    }
}

#[test]
fn garbage_compressed_payloads_are_compression_errors() {
    for compression in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        for payload in [
            &b"not compressed at all, really"[..],
            &[0xff; 64],
            &[0x82, b'S', b'N'],
        ] {
            let err = compression.decompress(payload, 1 << 20).unwrap_err();
            assert!(
                matches!(err, Error::Compression { .. }),
                "{compression} {payload:x?}: {err}"
            );
        }
    }
    // A single zero byte is raw snappy for "": valid.
    assert_eq!(Compression::Snappy.decompress(&[0], 10).unwrap(), b"");
}

#[test]
fn an_error_fuses_the_batch_iterator() {
    let good = sample_batch(Compression::None);
    let mut set = good.clone();
    set[30] ^= 1; // corrupt first batch
    set.extend_from_slice(&good);
    let mut batches = RecordBatches::new(Bytes::from(set));
    assert!(batches.next().unwrap().is_err());
    assert!(batches.next().is_none());
}
