//! Turning a fetched record set into records for the caller: batch by batch, skipping what
//! precedes the fetch offset, control batches and (read_committed) aborted transactions, and
//! stopping at the first batch that cannot be read (the consumer decides what then).

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;

use super::state::Chunk;
use super::ConsumerRecord;
use crate::error::Error;
use crate::protocol::record::{
    BatchHeader, ControlRecordType, RecordBatches, Records, BATCH_HEADER_LEN, LOG_OVERHEAD,
    MAGIC_V2,
};
use crate::topic_partition::TopicPartition;

/// What a fetcher learns from framing a record set, without decoding records.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Length of the leading complete, well-framed batches.
    pub(crate) complete_len: usize,
    /// Offset after the last of them.
    pub(crate) next_offset: Option<i64>,
    /// Framing broke here (base offset, reason): nothing after can be read.
    pub(crate) broken: Option<(i64, Error)>,
}

/// Frames the batches of a record set: lengths and magic only (CRCs are checked when the
/// records are read). A trailing partial batch is not an error.
pub(crate) fn scan(records: &[u8]) -> Scan {
    let mut pos = 0;
    let mut next_offset = None;
    let broken = loop {
        match frame(&records[pos..]) {
            Frame::Batch(header) => {
                pos += header.total_len();
                next_offset = Some(header.next_offset());
            }
            Frame::End => break None,
            Frame::Broken(base_offset, e) => break Some((base_offset, e)),
        }
    };
    Scan {
        complete_len: pos,
        next_offset,
        broken,
    }
}

enum Frame {
    Batch(BatchHeader),
    End,
    Broken(i64, Error),
}

/// Looks at the batch at the start of `rest`.
fn frame(rest: &[u8]) -> Frame {
    if rest.len() < LOG_OVERHEAD {
        return Frame::End;
    }
    let base_offset = i64::from_be_bytes(rest[..8].try_into().unwrap_or_default());
    let batch_length = i32::from_be_bytes(rest[8..12].try_into().unwrap_or_default());
    let min_length = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
    if batch_length < min_length {
        let reason = format!("batch length {batch_length} is below the minimum of {min_length}");
        return Frame::Broken(base_offset, Error::malformed("record batch", reason));
    }
    if rest.len() < BATCH_HEADER_LEN {
        return Frame::End;
    }
    let header = match BatchHeader::parse(rest) {
        Ok(h) => h,
        Err(e) => return Frame::Broken(base_offset, e),
    };
    if header.magic != MAGIC_V2 {
        let reason = format!(
            "unsupported magic {} (only v2 record batches)",
            header.magic
        );
        return Frame::Broken(base_offset, Error::malformed("record batch", reason));
    }
    if header.total_len() > rest.len() {
        return Frame::End;
    }
    Frame::Batch(header)
}

/// Records of aborted transactions to drop (read_committed), following Java's algorithm: a
/// producer's transactional batches are dropped from the first offset of an aborted
/// transaction up to its ABORT marker.
#[derive(Debug)]
struct AbortFilter {
    /// `(producer_id, first_offset)` sorted by first offset, not yet reached.
    upcoming: std::vec::IntoIter<(i64, i64)>,
    next: Option<(i64, i64)>,
    aborting: HashSet<i64>,
}

impl AbortFilter {
    fn new(mut aborted: Vec<(i64, i64)>) -> Self {
        aborted.sort_by_key(|&(_, first)| first);
        let mut upcoming = aborted.into_iter();
        let next = upcoming.next();
        AbortFilter {
            upcoming,
            next,
            aborting: HashSet::new(),
        }
    }

    /// Whether a batch is to be dropped. Control batches end their producer's abort.
    fn drop_batch(&mut self, header: &BatchHeader, control: Option<ControlRecordType>) -> bool {
        if !header.has_producer_id() {
            return false;
        }
        let last = header.last_offset();
        while let Some((producer_id, _)) = self.next.filter(|&(_, first)| first <= last) {
            self.aborting.insert(producer_id);
            self.next = self.upcoming.next();
        }
        match control {
            Some(ControlRecordType::Abort) => {
                self.aborting.remove(&header.producer_id);
                true
            }
            Some(_) => true,
            None => header.is_transactional() && self.aborting.contains(&header.producer_id),
        }
    }
}

/// A batch the drain cannot read (CRC mismatch, bad framing, undecodable records). The drain
/// stops there and its position is not moved past the batch.
#[derive(Debug)]
pub(crate) struct Unreadable {
    /// The batch's base offset.
    pub(crate) base_offset: i64,
    /// Where the next batch starts, when that can be trusted (not after broken framing).
    pub(crate) end: Option<i64>,
    pub(crate) source: Error,
}

/// Iterates the records of one chunk for the caller, tracking the position.
pub(crate) struct Drain {
    pub(crate) tp: TopicPartition,
    topic: Arc<str>,
    pub(crate) epoch: u64,
    pub(crate) size: usize,
    data: Bytes,
    pos: usize,
    records: Option<Records>,
    /// Base offset of the batch being read.
    batch_base: i64,
    /// Offset after the batch being read.
    batch_end: i64,
    /// Next offset to hand out.
    pub(crate) position: i64,
    /// Where the chunk ends (the fetch continued from there).
    next_offset: i64,
    aborted: Option<AbortFilter>,
    /// Framing broke after the chunk's batches: (base offset, reason).
    error_after: Option<(i64, Error)>,
    /// Set once a batch could not be read: nothing more comes out of this chunk.
    stuck: bool,
}

impl Drain {
    pub(crate) fn new(chunk: Chunk) -> Drain {
        let size = chunk.size();
        Drain {
            tp: TopicPartition::new(chunk.topic.as_ref(), chunk.partition),
            topic: chunk.topic,
            epoch: chunk.epoch,
            size,
            data: chunk.records,
            pos: 0,
            records: None,
            batch_base: chunk.fetch_offset,
            batch_end: chunk.fetch_offset,
            position: chunk.fetch_offset,
            next_offset: chunk.next_offset,
            aborted: chunk.aborted.map(AbortFilter::new),
            error_after: chunk.error_after,
            stuck: false,
        }
    }

    /// Stops at a batch that cannot be read; the position stays before it.
    fn unreadable(&mut self, base_offset: i64, end: Option<i64>, source: Error) -> Unreadable {
        self.stuck = true;
        self.records = None;
        Unreadable {
            base_offset,
            end: end.filter(|&e| e > self.position),
            source,
        }
    }

    /// The next record, or the batch that cannot be read; `None` once the chunk is used up.
    pub(crate) fn next(&mut self) -> Option<Result<ConsumerRecord, Unreadable>> {
        if self.stuck {
            return None;
        }
        loop {
            if let Some(records) = &mut self.records {
                match records.next() {
                    Some(Ok(r)) => {
                        if r.offset < self.position {
                            continue;
                        }
                        self.position = r.offset + 1;
                        return Some(Ok(ConsumerRecord {
                            topic: self.topic.clone(),
                            partition: self.tp.partition,
                            offset: r.offset,
                            timestamp: r.timestamp,
                            key: r.key,
                            value: r.value,
                            headers: r.headers,
                        }));
                    }
                    Some(Err(e)) => {
                        let (base, end) = (self.batch_base, self.batch_end);
                        return Some(Err(self.unreadable(base, Some(end), e)));
                    }
                    None => {
                        // Offsets compacted away at the end of a batch still count as read.
                        self.records = None;
                        self.position = self.position.max(self.batch_end);
                    }
                }
            }
            match self.next_batch() {
                Ok(true) => {}
                Ok(false) => {
                    return match self.error_after.take() {
                        // The position stays at the broken batch (the chunk ends there).
                        Some((base, e)) => Some(Err(self.unreadable(base, None, e))),
                        None => {
                            self.position = self.position.max(self.next_offset);
                            None
                        }
                    };
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Moves to the next batch with records to return. `Ok(false)` at the end of the chunk.
    fn next_batch(&mut self) -> Result<bool, Unreadable> {
        loop {
            let rest = &self.data[self.pos..];
            let header = match frame(rest) {
                Frame::Batch(header) => header,
                // The fetcher cut the chunk at the first broken frame.
                Frame::End | Frame::Broken(..) => return Ok(false),
            };
            let total = header.total_len();
            let bytes = self.data.slice(self.pos..self.pos + total);
            self.pos += total;
            let end = header.next_offset();
            if end <= self.position {
                continue;
            }
            // A damaged header may claim any last offset: the next batch's base offset, as the
            // broker stamped it, bounds where this one ends.
            let skip_to = match frame(&self.data[self.pos..]) {
                Frame::Batch(next) if next.base_offset > self.position => end.min(next.base_offset),
                _ => end,
            };
            let base = header.base_offset;
            let batch = match RecordBatches::new(bytes).next() {
                Some(Ok(batch)) => batch,
                Some(Err(e)) => return Err(self.unreadable(base, Some(skip_to), e)),
                None => continue,
            };
            let control = match batch.control_type() {
                Ok(control) => control,
                Err(e) => return Err(self.unreadable(base, Some(skip_to), e)),
            };
            let dropped = match &mut self.aborted {
                Some(filter) => filter.drop_batch(&header, control),
                None => false,
            };
            if dropped || control.is_some() {
                self.position = end;
                continue;
            }
            match batch.records() {
                Ok(records) => {
                    self.records = Some(records);
                    self.batch_base = base;
                    self.batch_end = skip_to;
                    return Ok(true);
                }
                Err(e) => return Err(self.unreadable(base, Some(skip_to), e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record::{BatchBuilder, Compression, EndTxnMarker, Header};
    use bytes::BytesMut;

    fn batch(base: i64, offsets: &[i64], builder: BatchBuilder) -> Vec<u8> {
        let mut b = builder.base_offset(base);
        for &o in offsets {
            let v = format!("v{o}");
            b.append_with_offset_delta(
                (o - base) as i32,
                1000 + o,
                Some(b"k"),
                Some(v.as_bytes()),
                &[],
            )
            .unwrap();
        }
        b.build().unwrap().to_vec()
    }

    fn plain(base: i64, offsets: &[i64]) -> Vec<u8> {
        batch(base, offsets, BatchBuilder::new(Compression::None))
    }

    fn chunk(records: Vec<u8>, fetch_offset: i64, aborted: Option<Vec<(i64, i64)>>) -> Chunk {
        let scan = scan(&records);
        let records = Bytes::from(records);
        Chunk {
            topic: Arc::from("t"),
            partition: 0,
            epoch: 1,
            fetch_offset,
            next_offset: scan.next_offset.unwrap_or(fetch_offset),
            records: records.slice(..scan.complete_len),
            aborted,
            error_after: scan.broken,
        }
    }

    fn offsets(drain: &mut Drain) -> Vec<Result<i64, String>> {
        std::iter::from_fn(|| drain.next())
            .map(|r| {
                r.map(|r| r.offset).map_err(|u| {
                    let end = u.end.map_or("?".into(), |e| e.to_string());
                    format!("at {} to {end}: {}", u.base_offset, u.source)
                })
            })
            .collect()
    }

    #[test]
    fn skips_records_before_the_fetch_offset_and_keeps_fields() {
        let mut b = BatchBuilder::new(Compression::None).base_offset(10);
        let headers = [Header::new("h", Some("1")), Header::new("h", None::<Bytes>)];
        b.append(5, Some(b"a"), Some(b"x"), &headers).unwrap();
        b.append(6, None, None, &[]).unwrap();
        b.append(7, Some(b"c"), Some(b"z"), &[]).unwrap();
        let mut drain = Drain::new(chunk(b.build().unwrap().to_vec(), 11, None));
        let r = drain.next().unwrap().unwrap();
        assert_eq!((r.offset, r.timestamp, r.key, r.value), (11, 6, None, None));
        let r = drain.next().unwrap().unwrap();
        assert_eq!((r.offset, r.key.as_deref()), (12, Some(&b"c"[..])));
        assert!(drain.next().is_none());
        assert_eq!(drain.position, 13);

        let mut drain = Drain::new(chunk(b_with_headers(&headers), 0, None));
        let r = drain.next().unwrap().unwrap();
        assert_eq!(r.headers, headers);
    }

    /// A batch header with no records, as compaction leaves behind.
    fn empty_batch(base: i64, last_offset_delta: i32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(base.to_be_bytes());
        b.extend(49i32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b.push(2);
        b.extend([0; 4]); // crc, below
        b.extend(0i16.to_be_bytes());
        b.extend(last_offset_delta.to_be_bytes());
        b.extend(0i64.to_be_bytes());
        b.extend(0i64.to_be_bytes());
        b.extend((-1i64).to_be_bytes());
        b.extend((-1i16).to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b.extend(0i32.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn b_with_headers(headers: &[Header]) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None);
        b.append(1, None, Some(b"v"), headers).unwrap();
        b.build().unwrap().to_vec()
    }

    #[test]
    fn compacted_gaps_and_empty_batches_advance_the_position() {
        let mut set = plain(0, &[0, 2, 5]);
        set.extend(empty_batch(6, 3)); // offsets 6..=9, every record compacted away
        set.extend(plain(10, &[10]));
        set.extend(empty_batch(11, 0));
        set.extend(plain(12, &[13, 15]));
        let mut drain = Drain::new(chunk(set, 1, None));
        assert_eq!(
            offsets(&mut drain),
            vec![Ok(2), Ok(5), Ok(10), Ok(13), Ok(15)]
        );
        assert_eq!(drain.position, 16);
        let mut drain = Drain::new(chunk(empty_batch(6, 3), 6, None));
        assert_eq!(offsets(&mut drain), vec![]);
        assert_eq!(drain.position, 10);
    }

    #[test]
    fn control_batches_and_partial_trailing_batches() {
        let mut set = plain(0, &[0, 1]);
        let marker = EndTxnMarker {
            commit: true,
            coordinator_epoch: 0,
        };
        let mut control = marker.encode_batch(7, 0, 0).unwrap().to_vec();
        crate::protocol::record::set_base_offset(&mut control, 2).unwrap();
        set.extend(control);
        set.extend(plain(3, &[3]));
        let partial = plain(4, &[4]);
        set.extend(&partial[..partial.len() - 3]);
        let mut drain = Drain::new(chunk(set, 0, None));
        assert_eq!(offsets(&mut drain), vec![Ok(0), Ok(1), Ok(3)]);
        assert_eq!(drain.position, 4);
    }

    #[test]
    fn read_committed_drops_aborted_transactions() {
        let txn = |base, offsets: &[i64], pid| {
            batch(
                base,
                offsets,
                BatchBuilder::new(Compression::None)
                    .producer(pid, 0, 0)
                    .transactional(true),
            )
        };
        let marker = |commit, base, pid| {
            let mut b = EndTxnMarker {
                commit,
                coordinator_epoch: 0,
            }
            .encode_batch(pid, 0, 0)
            .unwrap()
            .to_vec();
            crate::protocol::record::set_base_offset(&mut b, base).unwrap();
            b
        };
        let mut set = txn(0, &[0, 1], 1); // producer 1: aborted
        set.extend(txn(2, &[2], 2)); // producer 2: committed
        set.extend(marker(false, 3, 1));
        set.extend(marker(true, 4, 2));
        set.extend(txn(5, &[5], 1)); // producer 1 again, committed later
        set.extend(plain(6, &[6]));
        let mut committed = Drain::new(chunk(set.clone(), 0, Some(vec![(1, 0)])));
        assert_eq!(offsets(&mut committed), vec![Ok(2), Ok(5), Ok(6)]);
        assert_eq!(committed.position, 7);
        let mut uncommitted = Drain::new(chunk(set, 0, None));
        assert_eq!(
            offsets(&mut uncommitted),
            vec![Ok(0), Ok(1), Ok(2), Ok(5), Ok(6)]
        );
    }

    #[test]
    fn a_corrupt_batch_stops_the_drain_before_it() {
        let mut set = plain(0, &[0]);
        let mut bad = plain(1, &[1, 2]);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        set.extend(bad);
        set.extend(plain(3, &[3]));
        let mut drain = Drain::new(chunk(set, 0, None));
        let got = offsets(&mut drain);
        assert_eq!(got[0], Ok(0));
        let err = got[1].as_ref().unwrap_err();
        assert!(
            err.starts_with("at 1 to 3: ") && err.contains("CRC"),
            "{err}"
        );
        assert_eq!(got.len(), 2, "nothing after the corrupt batch: {got:?}");
        assert_eq!(drain.position, 1);
    }

    #[test]
    fn a_damaged_last_offset_is_bounded_by_the_next_batch() {
        let mut set = plain(0, &[0]);
        let mut bad = plain(1, &[1, 2]);
        bad[23..27].copy_from_slice(&1000i32.to_be_bytes()); // last offset delta, under the CRC
        set.extend(bad);
        set.extend(plain(3, &[3]));
        let got = offsets(&mut Drain::new(chunk(set, 1, None)));
        assert!(
            got[0].as_ref().unwrap_err().starts_with("at 1 to 3: "),
            "{got:?}"
        );
    }

    #[test]
    fn broken_framing_is_reported_after_the_good_batches() {
        let mut set = plain(0, &[0]);
        let mut garbage = BytesMut::new();
        garbage.extend_from_slice(&5i64.to_be_bytes());
        garbage.extend_from_slice(&3i32.to_be_bytes()); // absurd length
        garbage.extend_from_slice(&[0; 60]);
        set.extend(&garbage);
        let c = chunk(set, 0, None);
        assert_eq!(c.next_offset, 1);
        let mut drain = Drain::new(c);
        let got = offsets(&mut drain);
        assert_eq!(got[0], Ok(0));
        assert!(
            got[1].as_ref().unwrap_err().starts_with("at 5 to ?: "),
            "{:?}",
            got[1]
        );
        assert_eq!(got.len(), 2);
        assert_eq!(drain.position, 1);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let good = plain(0, &[0, 1, 2]);
        for cut in 0..good.len() {
            for flip in [0usize, 9, 20, 30, 57, 62, 70] {
                let mut bytes = good[..cut].to_vec();
                if let Some(b) = bytes.get_mut(flip) {
                    *b ^= 0x5a;
                }
                let mut drain = Drain::new(chunk(bytes, 0, None));
                let _ = offsets(&mut drain);
            }
        }
    }
}
