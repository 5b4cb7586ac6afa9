//! Routing consumed records to the agents of their topic, round-robin over each agent's
//! instances, with a hold per instance. Records are gathered per instance and handed over as
//! one batch per [`Router::flush`]: one channel operation and one wake-up per batch, not per
//! record.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kafka_client::consumer::ConsumerRecord;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::offsets::{Acks, PartitionAcks, Releases};
use crate::stream::Delivery;

/// Where the records of one topic go.
struct Route {
    agents: Vec<Target>,
    /// Trackers by partition number, for the assigned partitions.
    partitions: Vec<Option<Arc<PartitionAcks>>>,
}

/// One agent's instances.
pub(crate) struct Target {
    pub name: String,
    pub instances: Vec<(mpsc::Sender<Vec<Delivery>>, Arc<Releases>)>,
    pub stopped: Arc<AtomicBool>,
    /// `streams_events_in_total` of this topic and agent, resolved once.
    events_in: Counter,
    /// Deliveries gathered per instance until the next flush.
    pending: Vec<Vec<Delivery>>,
    next: usize,
    warned: bool,
}

impl Target {
    pub(crate) fn new(
        name: String,
        instances: Vec<(mpsc::Sender<Vec<Delivery>>, Arc<Releases>)>,
        stopped: Arc<AtomicBool>,
        events_in: Counter,
    ) -> Self {
        Target {
            name,
            events_in,
            pending: instances.iter().map(|_| Vec::new()).collect(),
            instances,
            stopped,
            next: 0,
            warned: false,
        }
    }
}

/// The agents over in-memory channels: the switches that end their streams, and their tasks.
#[derive(Default)]
pub(crate) struct ChannelAgents {
    pub stops: Vec<watch::Sender<bool>>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Every topic's route.
pub(crate) struct Router {
    acks: Arc<Acks>,
    routes: Vec<Route>,
    /// Index in `routes` by topic.
    names: HashMap<String, usize>,
    /// The topic of the last record dispatched and its route (records come in runs of one
    /// partition: no hashing of the topic name per record).
    last: Option<(Arc<str>, usize)>,
    /// Channel agents, stopped after the topic agents (they may feed them).
    pub channel_agents: ChannelAgents,
    /// The [`Acks::epoch`] the routes' trackers were read at.
    epoch: u64,
    /// When the records gathered since the last flush were delivered: the clock is read
    /// once per run, not per record (for the agents' processing latency).
    run_started: Option<Instant>,
    /// Offsets gathered since the last flush and not yet registered with their partition's
    /// tracker: registered as a run, under one lock, before the agents can see them.
    unregistered: Unregistered,
}

/// A run of gathered offsets of one partition, not yet registered as delivered.
#[derive(Default)]
struct Unregistered {
    part: Option<Arc<PartitionAcks>>,
    holders: u32,
    offsets: Vec<i64>,
}

impl Unregistered {
    /// Adds an offset delivered to `holders` instances, registering the run before it first
    /// when the partition changes.
    fn push(&mut self, part: &Arc<PartitionAcks>, offset: i64, holders: u32) {
        let same = self
            .part
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, part) && self.holders == holders);
        if !same {
            self.register();
            self.part = Some(part.clone());
            self.holders = holders;
        }
        self.offsets.push(offset);
    }

    /// Registers the run with its tracker (before any hold of it is released or failed).
    fn register(&mut self) {
        if let Some(part) = &self.part {
            if !self.offsets.is_empty() {
                part.deliver_all(&self.offsets, self.holders);
            }
        }
        self.offsets.clear();
    }
}

impl Router {
    pub(crate) fn new(acks: Arc<Acks>) -> Self {
        Router {
            acks,
            routes: Vec::new(),
            names: HashMap::new(),
            last: None,
            channel_agents: ChannelAgents::default(),
            epoch: u64::MAX,
            run_started: None,
            unregistered: Unregistered::default(),
        }
    }

    pub(crate) fn add(&mut self, topic: String, target: Target) {
        let i = *self.names.entry(topic).or_insert_with(|| {
            self.routes.push(Route {
                agents: Vec::new(),
                partitions: Vec::new(),
            });
            self.routes.len() - 1
        });
        self.routes[i].agents.push(target);
    }

    /// The topics with agents.
    pub(crate) fn topics(&self) -> Vec<String> {
        self.names.keys().cloned().collect()
    }

    /// Closes every agent's stream (the graceful stop).
    pub(crate) fn close(&mut self) {
        self.unregistered.register(); // the gathered deliveries drop with their agents: failed
        self.routes.iter_mut().for_each(|r| r.agents.clear());
    }

    /// Re-reads which partitions are tracked after a rebalance.
    fn refresh(&mut self) {
        for route in &mut self.routes {
            route.partitions.clear();
        }
        for tp in self.acks.assigned() {
            let route = self.names.get(&*tp.topic).map(|&i| &mut self.routes[i]);
            if let (Some(route), Some(part)) = (route, self.acks.partition(&tp)) {
                let i = tp.partition as usize;
                if route.partitions.len() <= i {
                    route.partitions.resize(i + 1, None);
                }
                route.partitions[i] = Some(part);
            }
        }
    }

    /// Gathers a record for every agent of its topic (sent at the next [`flush`](Self::flush)).
    pub(crate) fn dispatch(&mut self, record: ConsumerRecord) {
        let epoch = self.acks.epoch();
        if epoch != self.epoch {
            self.unregistered.register();
            self.refresh();
            self.epoch = epoch;
        }
        let i = match &self.last {
            Some((topic, i)) if Arc::ptr_eq(topic, &record.topic) => *i,
            _ => {
                let Some(&i) = self.names.get(&*record.topic) else {
                    return;
                };
                self.last = Some((record.topic.clone(), i));
                i
            }
        };
        let route = &mut self.routes[i];
        let Some(Some(part)) = route.partitions.get(record.partition as usize) else {
            return; // revoked meanwhile
        };
        let holders = route.agents.len() as u32;
        self.unregistered.push(part, record.offset, holders);
        if route
            .agents
            .iter()
            .any(|t| t.stopped.load(Ordering::Acquire))
        {
            // A stopped agent fails its hold at once: the offset must be known by then.
            self.unregistered.register();
        }
        let last = route.agents.len().saturating_sub(1);
        let mut record = Some(record);
        let run_started = &mut self.run_started;
        let mut now = || *run_started.get_or_insert_with(Instant::now);
        for (i, target) in route.agents.iter_mut().enumerate() {
            let rec = if i == last {
                record.take()
            } else {
                record.clone()
            };
            let Some(rec) = rec else { break };
            target.gather(rec, part, &mut now);
        }
    }

    /// Hands every gathered batch to its instance, waiting for room when a channel is full;
    /// `false` if a stop came while waiting (those records stay undone and are read again
    /// after a restart).
    pub(crate) async fn flush(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        self.run_started = None;
        self.unregistered.register();
        for route in &mut self.routes {
            for target in &mut route.agents {
                if !target.flush(stop).await {
                    return false;
                }
            }
        }
        true
    }
}

impl Target {
    /// Round-robin over the instances.
    fn gather(
        &mut self,
        record: ConsumerRecord,
        part: &Arc<PartitionAcks>,
        now: &mut impl FnMut() -> Instant,
    ) {
        let offset = record.offset;
        if self.stopped.load(Ordering::Acquire) {
            if !self.warned {
                tracing::warn!(agent = %self.name, "agent has stopped: its events stay uncommitted until it runs again");
                self.warned = true;
            }
            part.hold(offset, &self.instances[0].1).fail();
            return;
        }
        let i = self.next;
        self.next = (i + 1) % self.instances.len();
        self.events_in.inc();
        let delivered = self.instances[i].1.measures_latency().then(&mut *now);
        self.pending[i].push(Delivery::new(record, part.clone(), delivered));
    }

    async fn flush(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        for i in 0..self.instances.len() {
            if self.pending[i].is_empty() {
                continue;
            }
            // The next batch starts with room for as many: no regrowing (and moving the
            // deliveries gathered so far) as a long run is gathered.
            let room = self.pending[i].len();
            let batch = std::mem::replace(&mut self.pending[i], Vec::with_capacity(room));
            let sender = &self.instances[i].0;
            let batch = match sender.try_send(batch) {
                Ok(()) => continue,
                Err(TrySendError::Closed(_)) => {
                    self.stopped.store(true, Ordering::Release);
                    continue; // the batch drops: its holds fail
                }
                Err(TrySendError::Full(batch)) => batch,
            };
            tokio::select! {
                sent = sender.send(batch) => {
                    if sent.is_err() {
                        self.stopped.store(true, Ordering::Release);
                    }
                }
                _ = stop.wait_for(|s| *s) => return false,
            }
        }
        true
    }
}
