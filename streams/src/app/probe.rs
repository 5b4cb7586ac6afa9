//! What a test harness reads of a running worker (the `testing` feature): the partitions it
//! consumes with their commit positions, events in flight, and whether it stopped.

use kafka_client::TopicPartition;

use crate::runtime::RunState;

use super::App;

/// A running worker, as seen from a test.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    /// The partitions it consumes, each with its commit position (every event below it done).
    pub assigned: Vec<(TopicPartition, i64)>,
    /// Events delivered to agents and not done yet.
    pub in_flight: usize,
    /// Why it stopped, when it stopped on an error.
    pub failed: Option<String>,
    /// Whether it stopped (on an error or as asked).
    pub stopped: bool,
}

impl App {
    /// The worker's state now; `None` before it starts.
    pub(crate) fn probe(&self) -> Option<Probe> {
        let runtime = self.runtime()?;
        let assigned = runtime
            .acks
            .assigned()
            .into_iter()
            .map(|tp| {
                let position = runtime.acks.position(&tp).unwrap_or(0);
                (tp, position)
            })
            .collect();
        let state = runtime.state();
        Some(Probe {
            assigned,
            in_flight: runtime.acks.in_flight(None),
            failed: match &state {
                RunState::Failed(reason) => Some(reason.clone()),
                _ => None,
            },
            stopped: matches!(state, RunState::Failed(_) | RunState::Stopped),
        })
    }
}
