//! A histogram whose counts live in shards, one per agent instance, added up when scraped:
//! `streams_processing_seconds`. An instance counts an event's latency under the lock of its
//! release queue, which it takes for that event anyway, so observing costs no lock of its own
//! (prometheus-client's `Histogram` takes its mutex per observation: ~16 ns per event). The
//! series is the same: same buckets, sum and count.

use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Observations of one shard: a count per bucket (not cumulative; the last bucket is `+Inf`),
/// their sum and number.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts {
    bounds: Arc<[f64]>,
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Counts {
    fn new(bounds: Arc<[f64]>) -> Self {
        let buckets = vec![0; bounds.len()];
        Counts {
            bounds,
            buckets,
            sum: 0.0,
            count: 0,
        }
    }

    /// Counts one value (seconds). Before the shard joined a histogram it has no buckets:
    /// nothing is counted.
    pub(crate) fn observe(&mut self, value: f64) {
        let Some(last) = self.buckets.len().checked_sub(1) else {
            return;
        };
        self.sum += value;
        self.count += 1;
        // NaN goes to +Inf, as prometheus-client does.
        let i = self.bounds.iter().position(|b| value <= *b).unwrap_or(last);
        self.buckets[i] += 1;
    }

    /// Adds `other`'s counts (if it has the same buckets).
    pub(crate) fn add(&mut self, other: &Counts) {
        if other.buckets.len() != self.buckets.len() {
            return; // never in a histogram (no buckets)
        }
        self.sum += other.sum;
        self.count += other.count;
        self.buckets
            .iter_mut()
            .zip(&other.buckets)
            .for_each(|(a, b)| *a += b);
    }
}

/// Where a shard's counts are kept (an instance's release queue).
pub(crate) trait Shard: Debug + Send + Sync {
    /// The shard's counts, added to `total`.
    fn add_to(&self, total: &mut Counts);
}

/// The histogram: its live shards, and what shards that ended had counted.
#[derive(Debug, Clone)]
pub(crate) struct ShardedHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shards: Mutex<Shards>,
}

#[derive(Debug)]
struct Shards {
    live: Vec<Arc<dyn Shard>>,
    ended: Counts,
}

impl ShardedHistogram {
    /// Buckets with these upper bounds, and `+Inf`.
    pub(crate) fn new(bounds: impl IntoIterator<Item = f64>) -> Self {
        let bounds: Arc<[f64]> = bounds.into_iter().chain([f64::MAX]).collect();
        ShardedHistogram {
            inner: Arc::new(Inner {
                shards: Mutex::new(Shards {
                    live: Vec::new(),
                    ended: Counts::new(bounds),
                }),
            }),
        }
    }

    fn shards(&self) -> MutexGuard<'_, Shards> {
        self.inner.shards.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Empty counts for a new shard, which counts into them once [`join`](Self::join)ed.
    pub(crate) fn counts(&self) -> Counts {
        Counts::new(self.shards().ended.bounds.clone())
    }

    /// Adds a shard: scrapes read it from now on.
    pub(crate) fn join(&self, shard: Arc<dyn Shard>) {
        self.shards().live.push(shard);
    }

    /// Removes a shard, keeping what it counted (a scrape sees it either live or ended,
    /// never neither: the counts never go down).
    pub(crate) fn leave(&self, shard: &Arc<dyn Shard>) {
        let mut shards = self.shards();
        let Some(i) = shards
            .live
            .iter()
            .position(|s| std::ptr::addr_eq(Arc::as_ptr(s), Arc::as_ptr(shard)))
        else {
            return;
        };
        let shard = shards.live.swap_remove(i);
        shard.add_to(&mut shards.ended);
    }

    /// Every shard's counts, added up.
    fn total(&self) -> Counts {
        let shards = self.shards();
        let mut total = shards.ended.clone();
        shards.live.iter().for_each(|s| s.add_to(&mut total));
        total
    }
}

impl TypedMetric for ShardedHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for ShardedHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let total = self.total();
        let buckets: Vec<(f64, u64)> = total
            .bounds
            .iter()
            .copied()
            .zip(total.buckets.iter().copied())
            .collect();
        encoder.encode_histogram::<NoLabelSet>(total.sum, total.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Plain(Mutex<Counts>);

    impl Shard for Plain {
        fn add_to(&self, total: &mut Counts) {
            total.add(&self.0.lock().unwrap());
        }
    }

    #[test]
    fn shards_add_up_and_keep_their_counts_when_they_leave() {
        let h = ShardedHistogram::new([0.1, 1.0]);
        let a = Arc::new(Plain(Mutex::new(h.counts())));
        let b = Arc::new(Plain(Mutex::new(h.counts())));
        h.join(a.clone());
        h.join(b.clone());
        a.0.lock().unwrap().observe(0.05);
        b.0.lock().unwrap().observe(0.5);
        b.0.lock().unwrap().observe(5.0);
        b.0.lock().unwrap().observe(f64::NAN);
        let t = h.total();
        assert_eq!(t.buckets, vec![1, 1, 2]);
        assert_eq!(t.count, 4);
        let b: Arc<dyn Shard> = b;
        h.leave(&b);
        assert_eq!(h.shards().live.len(), 1);
        assert_eq!(h.total().buckets, vec![1, 1, 2], "kept after leaving");
        let mut unjoined = Counts::default();
        unjoined.observe(1.0);
        assert_eq!(unjoined.count, 0, "no buckets: nothing counted");
    }
}
