//! What the user declared: the app's id and settings, its topics, agents, tables, timers and
//! tasks. No I/O here: the runtime reads these to start, and user code gets handles (topics,
//! agents) that talk to the runtime only through the outbox.

mod agent;
mod ask;
mod channel;
mod joined;
mod respond;
mod service;
mod sink;
mod stream_join;
mod table;

use std::sync::{Arc, Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde::Serialize;
use stores::StoreUrl;

pub use agent::{Agent, AgentBuilder, AgentResult, AgentTable};
pub(crate) use agent::{Instance, StartedAgent};
pub(crate) use channel::StartedChannelAgent;
pub use channel::{Channel, ChannelAgentBuilder, ChannelStream};
pub use joined::JoinBuilder;
#[cfg(test)]
pub(crate) use service::{Body, CronSchedule};
pub use service::{CrontabBuilder, TaskBuilder, TimerBuilder};
pub(crate) use service::{Schedule, ServiceSpec};
pub use sink::Sink;
pub use stream_join::{InnerJoin, LeftJoin, OuterJoin, StreamJoin, StreamJoinBuilder};
pub use table::{TableBuilder, TableSummary};

use crate::clock::Clock;
use crate::codec::CodecRegistry;
use crate::outbox::Outbox;
use crate::replies::Replies;
use crate::settings::Settings;
use crate::table::TableCore;
use crate::topic::{Topic, TopicCatalog};

/// An agent as registered, until the runtime starts it.
pub(crate) struct AgentSpec {
    pub name: String,
    pub topic: String,
    pub concurrency: usize,
    pub sinks: Vec<String>,
    /// Tables the agent declared it updates (checked for co-partitioning at start).
    pub tables: Vec<String>,
    /// Tables the agent joins its stream with (checked at start).
    pub joins: Vec<JoinUse>,
    /// Sinks added before `yields` changed the result type (start refuses them).
    pub lost_sinks: Vec<String>,
    starter: Option<agent::Starter>,
}

/// A table an agent joins its stream with.
#[derive(Debug, Clone)]
pub(crate) struct JoinUse {
    /// The table's name.
    pub table: String,
    /// Joined through a key extractor (`join_global`): the table must be global.
    pub global: bool,
    /// The stream's partitions wait for the table to catch up with its source (the
    /// default; `JoinBuilder::bootstrap`).
    pub bootstrap: bool,
}

/// Everything an app declared. Shared by the app, its builders and the runtime.
pub(crate) struct Declarations {
    pub id: String,
    pub settings: Settings,
    pub catalog: Arc<TopicCatalog>,
    pub outbox: Outbox,
    /// This worker's reply topic and the askers waiting on it.
    pub replies: Replies,
    /// Where tables live unless they say otherwise.
    pub store: StoreUrl,
    agents: Mutex<Vec<AgentSpec>>,
    tables: Mutex<Vec<Arc<TableCore>>>,
    /// Timers, crontabs and tasks.
    services: Mutex<Vec<Arc<ServiceSpec>>>,
    clock: Mutex<Clock>,
    /// This worker's `group.instance.id`: the setting's, unless the CLI's `--instance-id`
    /// replaced it before the worker started.
    instance_id: Mutex<Option<String>>,
    /// Every channel, to close when the app stops.
    channels: Mutex<Vec<Arc<dyn channel::Closer>>>,
    channel_agents: Mutex<Vec<channel::ChannelAgentSpec>>,
    /// Windowed stream-stream joins: `(join, left topic, right topic)`, checked for
    /// co-partitioning at start.
    stream_joins: Mutex<Vec<(String, String, String)>>,
}

/// A registered agent, as `app.agents()` and the CLI list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSummary {
    /// The agent's name (`<topic>-agent` for [`App::agent`](crate::App::agent)).
    pub name: String,
    /// The topic it reads (after a `group_by`, the repartition topic); for a channel agent,
    /// the channel's name.
    pub topic: String,
    /// Instances of its body that run at once.
    pub concurrency: usize,
    /// Names of the sinks its results go to.
    pub sinks: Vec<String>,
    /// True for a channel agent ([`App::channel_agent`](crate::App::channel_agent)): it reads
    /// the in-process channel named by `topic`, which has no offsets or lag.
    pub channel: bool,
}

impl AgentSummary {
    /// What the agent reads, for listings: the topic, or `channel NAME` (as sinks name one).
    pub(crate) fn reads(&self) -> String {
        match self.channel {
            true => format!("channel {}", self.topic),
            false => self.topic.clone(),
        }
    }
}

impl Declarations {
    pub(crate) fn new(
        id: String,
        settings: Settings,
        registry: CodecRegistry,
        store: StoreUrl,
    ) -> Self {
        Declarations {
            replies: Replies::new(&id, settings.topic_replication_factor),
            instance_id: Mutex::new(settings.worker_instance_id.clone()),
            id,
            settings,
            catalog: Arc::new(TopicCatalog::new(registry)),
            outbox: Outbox::default(),
            store,
            agents: Mutex::default(),
            tables: Mutex::default(),
            services: Mutex::default(),
            clock: Mutex::default(),
            channels: Mutex::default(),
            channel_agents: Mutex::default(),
            stream_joins: Mutex::default(),
        }
    }

    /// The app's clock (the system's unless a test set a virtual one).
    pub(crate) fn clock(&self) -> Clock {
        self.clock.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the app's clock (before the app starts).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn set_clock(&self, clock: Clock) {
        // Clocks the user took from the app before (captured by agents) follow it too.
        self.clock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .follow(&clock);
    }

    /// This worker's name in the group (static membership), if it has one.
    pub(crate) fn worker_instance_id(&self) -> Option<String> {
        self.instance_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Names this worker in the group (before it starts).
    pub(crate) fn set_worker_instance_id(&self, id: String) {
        *self.instance_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
    }

    /// The declared tables (the runtime's side of each).
    pub(crate) fn tables(&self) -> MutexGuard<'_, Vec<Arc<TableCore>>> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The declared tables, as the CLI lists them.
    pub(crate) fn table_summaries(&self) -> Vec<TableSummary> {
        self.tables()
            .iter()
            .map(|t| {
                let spec = t.spec();
                TableSummary {
                    name: spec.name().to_owned(),
                    partitions: spec.partition_count(),
                    changelog: spec.changelog_topic(),
                    store: spec.store_url().unwrap_or(&self.store).to_string(),
                    standby_replicas: spec.standbys(),
                    global: spec.is_global(),
                }
            })
            .collect()
    }

    /// `(agent, source topic, table)` for every table an agent declared it updates.
    pub(crate) fn table_users(&self) -> Vec<(String, String, String)> {
        self.agents()
            .iter()
            .flat_map(|a| {
                a.tables
                    .iter()
                    .map(|t| (a.name.clone(), a.topic.clone(), t.clone()))
            })
            .collect()
    }

    /// (agent, topic it reads, join) for every join an agent declared.
    pub(crate) fn join_users(&self) -> Vec<(String, String, JoinUse)> {
        self.agents()
            .iter()
            .flat_map(|a| {
                a.joins
                    .iter()
                    .map(|j| (a.name.clone(), a.topic.clone(), j.clone()))
            })
            .collect()
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

    /// Adds a timer, crontab or task; [`Error::DuplicateService`] when another one of the app
    /// has its name.
    pub(crate) fn add_service(&self, spec: ServiceSpec) -> crate::error::Result<()> {
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(taken) = services.iter().find(|s| s.name == spec.name) {
            return Err(crate::error::Error::DuplicateService {
                kind: spec.schedule.kind(),
                name: spec.name,
                taken_by: taken.schedule.kind(),
            });
        }
        services.push(Arc::new(spec));
        Ok(())
    }

    /// The declared timers, crontabs and tasks.
    pub(crate) fn services(&self) -> Vec<Arc<ServiceSpec>> {
        self.services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A topic for an app whose workers read no topic but run timers or tasks to subscribe to,
    /// so that they still form the group that elects the leader of leader-only services (as
    /// Faust's leader topic): `<app>-__leader`, one partition, nothing written to it. Declared
    /// here (when the worker starts) so that it is created with the other topics.
    pub(crate) fn group_topic(&self) -> Option<String> {
        if !self.agents().is_empty() || self.services().is_empty() {
            return None;
        }
        let name = format!("{}-__leader", self.id);
        self.topic::<String, String>(&name)
            .partitions(1)
            .redeclare(|s| s.internal = true);
        Some(name)
    }

    /// Registers a windowed stream-stream join's two topics (checked at start).
    pub(crate) fn add_stream_join(&self, join: &str, left: &str, right: &str) {
        self.stream_joins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((join.to_owned(), left.to_owned(), right.to_owned()));
    }

    /// `(join, left topic, right topic)` of every windowed stream-stream join.
    pub(crate) fn stream_joins(&self) -> Vec<(String, String, String)> {
        self.stream_joins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn add_agent(&self, spec: AgentSpec) {
        self.agents().push(spec);
    }

    /// The registered agents.
    /// The agents that read topics (what offsets, lag and resets are about).
    pub(crate) fn agent_summaries(&self) -> Vec<AgentSummary> {
        self.agents()
            .iter()
            .map(|a| AgentSummary {
                name: a.name.clone(),
                topic: a.topic.clone(),
                concurrency: a.concurrency,
                sinks: a.sinks.clone(),
                channel: false,
            })
            .collect()
    }

    /// Every agent, the topic agents first, then the channel agents: what users list.
    pub(crate) fn all_agent_summaries(&self) -> Vec<AgentSummary> {
        let mut all = self.agent_summaries();
        all.extend(
            self.channel_agents
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|a| a.summary.clone()),
        );
        all
    }

    /// An error for the first agent declared in a way that cannot work as written.
    pub(crate) fn check_agents(&self) -> crate::error::Result<()> {
        match self.agents().iter().find(|a| !a.lost_sinks.is_empty()) {
            Some(a) => Err(crate::error::Error::SinksBeforeYields {
                agent: a.name.clone(),
                sinks: a.lost_sinks.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Starts every agent (again, when the worker restarts): each instance gets a channel of
    /// `capacity` batches. The starters run outside the lock (a body may declare things).
    pub(crate) fn start_agents(&self, capacity: usize) -> Vec<StartedAgent> {
        let mut starters: Vec<(usize, agent::Starter)> = self
            .agents()
            .iter_mut()
            .enumerate()
            .filter_map(|(i, a)| a.starter.take().map(|s| (i, s)))
            .collect();
        let started = starters
            .iter_mut()
            .map(|(_, start)| start(capacity))
            .collect();
        let mut agents = self.agents();
        for (i, starter) in starters {
            agents[i].starter = Some(starter);
        }
        started
    }
}

/// Channels (`app.channel()`) and the agents that read them.
impl Declarations {
    fn add_channel(&self, channel: Arc<dyn channel::Closer>) {
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(channel);
    }

    fn add_channel_agent(&self, spec: channel::ChannelAgentSpec) {
        self.channel_agents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(spec);
    }

    /// Starts every channel agent (again, when the worker restarts). The starters run outside
    /// the lock (a body may declare things).
    pub(crate) fn start_channel_agents(&self) -> Vec<StartedChannelAgent> {
        let lock = || {
            self.channel_agents
                .lock()
                .unwrap_or_else(|e| e.into_inner())
        };
        let mut starters: Vec<(usize, channel::ChannelStarter)> = lock()
            .iter_mut()
            .enumerate()
            .filter_map(|(i, a)| a.starter.take().map(|s| (i, s)))
            .collect();
        let started = starters.iter_mut().map(|(_, start)| start()).collect();
        let mut agents = lock();
        for (i, starter) in starters {
            agents[i].starter = Some(starter);
        }
        started
    }

    /// Closes every channel for good (the app stopped): sends fail from now on.
    pub(crate) fn close_channels(&self) {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.iter().for_each(|c| c.close());
    }
}

/// Clones of the declarations for builders.
pub(crate) type Shared = Arc<Declarations>;
