//! What the user declared: the app's id and settings, its topics and agents (and later its
//! tables). No I/O here: the runtime reads these to start, and user code gets handles (topics,
//! agents) that talk to the runtime only through the outbox.

mod agent;

use std::sync::{Arc, Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use agent::{Agent, AgentBuilder, AgentResult, Sink};
pub(crate) use agent::{Instance, StartedAgent};

use crate::codec::CodecRegistry;
use crate::outbox::Outbox;
use crate::settings::Settings;
use crate::topic::{Topic, TopicCatalog};

/// An agent as registered, until the runtime starts it.
pub(crate) struct AgentSpec {
    pub name: String,
    pub topic: String,
    pub concurrency: usize,
    pub sinks: Vec<String>,
    starter: Option<agent::Starter>,
}

/// Everything an app declared. Shared by the app, its builders and the runtime.
pub(crate) struct Declarations {
    pub id: String,
    pub settings: Settings,
    pub catalog: Arc<TopicCatalog>,
    pub outbox: Outbox,
    agents: Mutex<Vec<AgentSpec>>,
}

/// A registered agent, as `app.agents()` and the CLI list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSummary {
    pub name: String,
    pub topic: String,
    pub concurrency: usize,
    pub sinks: Vec<String>,
}

impl Declarations {
    pub(crate) fn new(id: String, settings: Settings, registry: CodecRegistry) -> Self {
        Declarations {
            id,
            settings,
            catalog: Arc::new(TopicCatalog::new(registry)),
            outbox: Outbox::default(),
            agents: Mutex::default(),
        }
    }

    fn agents(&self) -> MutexGuard<'_, Vec<AgentSpec>> {
        self.agents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Declares a topic (or takes its earlier declaration).
    pub(crate) fn topic<K, V>(&self, name: &str) -> Topic<K, V>
    where
        K: Serialize + DeserializeOwned + Send + 'static,
        V: Serialize + DeserializeOwned + Send + 'static,
    {
        Topic::declare(&self.catalog, &self.outbox, name)
    }

    pub(crate) fn add_agent(&self, spec: AgentSpec) {
        self.agents().push(spec);
    }

    /// The registered agents.
    pub(crate) fn agent_summaries(&self) -> Vec<AgentSummary> {
        self.agents()
            .iter()
            .map(|a| AgentSummary {
                name: a.name.clone(),
                topic: a.topic.clone(),
                concurrency: a.concurrency,
                sinks: a.sinks.clone(),
            })
            .collect()
    }

    /// Starts every agent not started yet: each instance gets a channel of `capacity` batches.
    pub(crate) fn start_agents(&self, capacity: usize) -> Vec<StartedAgent> {
        let starters: Vec<_> = self
            .agents()
            .iter_mut()
            .filter_map(|a| a.starter.take())
            .collect();
        starters.into_iter().map(|start| start(capacity)).collect()
    }
}

/// Clones of the declarations for builders.
pub(crate) type Shared = Arc<Declarations>;
