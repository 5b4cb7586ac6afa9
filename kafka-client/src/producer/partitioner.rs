//! Java's default partitioning, so a key lands where the Java client, librdkafka's
//! `murmur2_random` and Faust put it: murmur2 of the key bytes, made positive, modulo the
//! partition count. Records without a key stick to one partition per topic until a batch
//! fills, then move on, as Java's sticky partitioner does.

/// Kafka's murmur2 (Utils.murmur2 in the Java client).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Java's default partitioner picks for a key.
pub fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) as usize % partitions.max(1)) as i32
}

/// Chooses partitions for records that did not name one. Lives in the accumulator, under its
/// lock: a record's partition, its batch and the sticky choice change together.
#[derive(Default)]
pub(crate) struct Partitioner {
    seed: u64,
}

impl Partitioner {
    /// `sticky` is the topic's current partition for keyless records (`None` before the first).
    pub(crate) fn partition(
        &mut self,
        sticky: &mut Option<i32>,
        key: Option<&[u8]>,
        partitions: usize,
    ) -> i32 {
        match key {
            Some(key) => partition_for_key(key, partitions),
            None => match *sticky {
                Some(p) if (p as usize) < partitions => p,
                _ => {
                    let p = self.random(partitions);
                    *sticky = Some(p);
                    p
                }
            },
        }
    }

    /// Called when `partition`'s batch is full: keyless records move elsewhere.
    pub(crate) fn batch_full(
        &mut self,
        sticky: &mut Option<i32>,
        partition: i32,
        partitions: usize,
    ) {
        if *sticky == Some(partition) && partitions > 1 {
            let mut next = self.random(partitions - 1);
            if next >= partition {
                next += 1;
            }
            *sticky = Some(next);
        }
    }

    /// xorshift64*: spreading keyless batches needs no cryptographic randomness.
    fn random(&mut self, below: usize) -> i32 {
        let seed = &mut self.seed;
        if *seed == 0 {
            *seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1;
        }
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) % below.max(1) as u64) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Values asserted by Kafka's own UtilsTest for Utils.murmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn keyless_records_stick_until_the_batch_fills() {
        let mut p = Partitioner::default();
        let mut sticky = None;
        let first = p.partition(&mut sticky, None, 6);
        assert!((0..100).all(|_| p.partition(&mut sticky, None, 6) == first));
        p.batch_full(&mut sticky, first, 6);
        let second = p.partition(&mut sticky, None, 6);
        assert_ne!(first, second);
        assert_eq!(p.partition(&mut sticky, None, 1), 0);
    }
}
