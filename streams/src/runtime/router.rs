//! Routing consumed records to the agents of their topic, round-robin over each agent's
//! instances, with a hold per instance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kafka_client::consumer::ConsumerRecord;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};

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
    pub instances: Vec<(mpsc::Sender<Delivery>, Arc<Releases>)>,
    pub stopped: Arc<AtomicBool>,
    next: usize,
    warned: bool,
}

impl Target {
    pub(crate) fn new(
        name: String,
        instances: Vec<(mpsc::Sender<Delivery>, Arc<Releases>)>,
        stopped: Arc<AtomicBool>,
    ) -> Self {
        Target {
            name,
            instances,
            stopped,
            next: 0,
            warned: false,
        }
    }
}

/// Every topic's route.
pub(crate) struct Router {
    acks: Arc<Acks>,
    routes: HashMap<String, Route>,
    /// The [`Acks::epoch`] the routes' trackers were read at.
    epoch: u64,
}

impl Router {
    pub(crate) fn new(acks: Arc<Acks>) -> Self {
        Router {
            acks,
            routes: HashMap::new(),
            epoch: u64::MAX,
        }
    }

    pub(crate) fn add(&mut self, topic: String, target: Target) {
        self.routes
            .entry(topic)
            .or_insert_with(|| Route {
                agents: Vec::new(),
                partitions: Vec::new(),
            })
            .agents
            .push(target);
    }

    /// The topics with agents.
    pub(crate) fn topics(&self) -> Vec<String> {
        self.routes.keys().cloned().collect()
    }

    /// Closes every agent's stream (the graceful stop).
    pub(crate) fn close(&mut self) {
        self.routes.values_mut().for_each(|r| r.agents.clear());
    }

    /// Re-reads which partitions are tracked after a rebalance.
    fn refresh(&mut self) {
        for route in self.routes.values_mut() {
            route.partitions.clear();
        }
        for tp in self.acks.assigned() {
            if let (Some(route), Some(part)) =
                (self.routes.get_mut(&tp.topic), self.acks.partition(&tp))
            {
                let i = tp.partition as usize;
                if route.partitions.len() <= i {
                    route.partitions.resize(i + 1, None);
                }
                route.partitions[i] = Some(part);
            }
        }
    }

    /// Hands a record to every agent of its topic; `false` if a stop came while waiting for
    /// room (the record then stays undone and is read again after a restart).
    pub(crate) async fn dispatch(
        &mut self,
        record: ConsumerRecord,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let epoch = self.acks.epoch();
        if epoch != self.epoch {
            self.refresh();
            self.epoch = epoch;
        }
        let Some(route) = self.routes.get_mut(&*record.topic) else {
            return true;
        };
        let Some(Some(part)) = route.partitions.get(record.partition as usize) else {
            return true; // revoked meanwhile
        };
        let part = part.clone();
        part.deliver(record.offset, route.agents.len() as u32);
        let last = route.agents.len().saturating_sub(1);
        let mut record = Some(record);
        for (i, target) in route.agents.iter_mut().enumerate() {
            let rec = if i == last {
                record.take()
            } else {
                record.clone()
            };
            let Some(rec) = rec else { break };
            if !target.send(rec, &part, stop).await {
                return false;
            }
        }
        true
    }
}

impl Target {
    /// Round-robin over the instances, skipping full ones; waits on one if all are full.
    async fn send(
        &mut self,
        record: ConsumerRecord,
        part: &Arc<PartitionAcks>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let offset = record.offset;
        if self.stopped.load(Ordering::Acquire) {
            if !self.warned {
                tracing::warn!(agent = %self.name, "agent has stopped: its events stay uncommitted until it runs again");
                self.warned = true;
            }
            part.hold(offset, &self.instances[0].1).fail();
            return true;
        }
        let n = self.instances.len();
        let mut delivery = Delivery { record, hold: None };
        for k in 0..n {
            let i = (self.next + k) % n;
            let (sender, releases) = &self.instances[i];
            delivery.hold = Some(part.hold(offset, releases));
            match sender.try_send(delivery) {
                Ok(()) => {
                    self.next = (i + 1) % n;
                    return true;
                }
                Err(TrySendError::Full(mut d)) | Err(TrySendError::Closed(mut d)) => {
                    // Not handed over: the hold goes back unreleased.
                    if let Some(hold) = d.hold.take() {
                        hold.cancel();
                    }
                    delivery = d;
                }
            }
        }
        let i = self.next;
        self.next = (i + 1) % n;
        let (sender, releases) = &self.instances[i];
        delivery.hold = Some(part.hold(offset, releases));
        tokio::select! {
            sent = sender.send(delivery) => {
                if sent.is_err() {
                    self.stopped.store(true, Ordering::Release);
                }
                true
            }
            _ = stop.wait_for(|s| *s) => false,
        }
    }
}
