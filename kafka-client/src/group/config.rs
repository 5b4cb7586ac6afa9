//! Consumer-group settings, named and defaulted like the Java client's.

use std::sync::Arc;
use std::time::Duration;

use super::assignor::{Assignor, CooperativeStickyAssignor, RangeAssignor};
use crate::error::{Error, Result};

/// Settings of one group member.
///
/// ```
/// # use std::time::Duration;
/// use kafka_client::group::{GroupConfig, CooperativeStickyAssignor};
/// let config = GroupConfig::new("billing")
///     .with_session_timeout(Duration::from_secs(10))
///     .with_heartbeat_interval(Duration::from_secs(1))
///     .with_group_instance_id("billing-worker-1")
///     .with_assignors(vec![std::sync::Arc::new(CooperativeStickyAssignor::default())]);
/// assert_eq!(config.assignors[0].name(), "cooperative-sticky");
/// ```
#[derive(Clone)]
pub struct GroupConfig {
    /// The group (`group.id`).
    pub group_id: String,
    /// A member that sends no heartbeat for this long is removed (`session.timeout.ms`,
    /// 45 s). The broker bounds it by `group.min/max.session.timeout.ms` (6 s .. 30 min).
    pub session_timeout: Duration,
    /// How long the coordinator waits for every member to rejoin during a rebalance. Java
    /// uses `max.poll.interval.ms` for it; so do we unless set.
    pub rebalance_timeout: Option<Duration>,
    /// Time between heartbeats (`heartbeat.interval.ms`, 3 s); well below the session timeout.
    pub heartbeat_interval: Duration,
    /// A member whose application does not call `recv` for this long leaves the group so its
    /// partitions go to live members (`max.poll.interval.ms`, 5 min).
    pub max_poll_interval: Duration,
    /// Static membership (`group.instance.id`): a restart within the session timeout keeps
    /// the member's partitions without a rebalance. Static members do not send LeaveGroup on
    /// close.
    pub group_instance_id: Option<String>,
    /// Assignors in order of preference (`partition.assignment.strategy`); default
    /// `[range, cooperative-sticky]` as the Java client 3.x+. The rebalance protocol is
    /// cooperative only if every assignor listed supports it.
    pub assignors: Vec<Arc<dyn Assignor>>,
    /// Commit positions in the background (`enable.auto.commit`, on by default), every
    /// [`auto_commit_interval`](Self::auto_commit_interval), before partitions are revoked
    /// and on close.
    pub auto_commit: bool,
    /// `auto.commit.interval.ms`, 5 s.
    pub auto_commit_interval: Duration,
    /// How often the leader looks for partition count changes of subscribed topics and
    /// rebalances if it finds one (`metadata.max.age.ms`, 5 min in Java; 30 s here).
    pub metadata_refresh_interval: Duration,
    /// Rack sent in the subscription (`client.rack`).
    pub rack: Option<String>,
}

impl std::fmt::Debug for GroupConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConfig")
            .field("group_id", &self.group_id)
            .field("session_timeout", &self.session_timeout)
            .field("rebalance_timeout", &self.rebalance_timeout)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("max_poll_interval", &self.max_poll_interval)
            .field("group_instance_id", &self.group_instance_id)
            .field(
                "assignors",
                &self.assignors.iter().map(|a| a.name()).collect::<Vec<_>>(),
            )
            .field("auto_commit", &self.auto_commit)
            .field("auto_commit_interval", &self.auto_commit_interval)
            .finish_non_exhaustive()
    }
}

impl GroupConfig {
    /// Java's defaults for group `group_id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        GroupConfig {
            group_id: group_id.into(),
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: None,
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            group_instance_id: None,
            assignors: vec![
                Arc::new(RangeAssignor),
                Arc::new(CooperativeStickyAssignor::default()),
            ],
            auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            metadata_refresh_interval: Duration::from_secs(30),
            rack: None,
        }
    }

    /// Sets `session_timeout`.
    pub fn with_session_timeout(mut self, d: Duration) -> Self {
        self.session_timeout = d;
        self
    }

    /// Sets `rebalance_timeout`.
    pub fn with_rebalance_timeout(mut self, d: Duration) -> Self {
        self.rebalance_timeout = Some(d);
        self
    }

    /// Sets `heartbeat_interval`.
    pub fn with_heartbeat_interval(mut self, d: Duration) -> Self {
        self.heartbeat_interval = d;
        self
    }

    /// Sets `max_poll_interval`.
    pub fn with_max_poll_interval(mut self, d: Duration) -> Self {
        self.max_poll_interval = d;
        self
    }

    /// Makes this a static member with this instance id.
    pub fn with_group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.group_instance_id = Some(id.into());
        self
    }

    /// Replaces the assignor list (most preferred first).
    pub fn with_assignors(mut self, assignors: Vec<Arc<dyn Assignor>>) -> Self {
        self.assignors = assignors;
        self
    }

    /// Turns auto-commit on or off.
    pub fn with_auto_commit(mut self, on: bool) -> Self {
        self.auto_commit = on;
        self
    }

    /// Sets the auto-commit interval.
    pub fn with_auto_commit_interval(mut self, d: Duration) -> Self {
        self.auto_commit_interval = d;
        self
    }

    /// Sets the leader's metadata check interval.
    pub fn with_metadata_refresh_interval(mut self, d: Duration) -> Self {
        self.metadata_refresh_interval = d;
        self
    }

    /// The rebalance timeout in effect.
    pub fn effective_rebalance_timeout(&self) -> Duration {
        self.rebalance_timeout.unwrap_or(self.max_poll_interval)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let group = &self.group_id;
        let bad = |setting, reason: String| {
            Err(Error::InvalidSetting {
                setting,
                reason: format!("group {group:?}: {reason}"),
            })
        };
        if self.group_id.is_empty() {
            return bad("GroupConfig::group_id", "must not be empty".into());
        }
        if self.assignors.is_empty() {
            return bad("GroupConfig::assignors", "at least one is needed".into());
        }
        if self.heartbeat_interval >= self.session_timeout {
            return bad(
                "GroupConfig::heartbeat_interval",
                format!(
                    "{:?} must be below session_timeout ({:?})",
                    self.heartbeat_interval, self.session_timeout
                ),
            );
        }
        if self.heartbeat_interval.is_zero() {
            return bad("GroupConfig::heartbeat_interval", "must be positive".into());
        }
        if self.auto_commit_interval.is_zero() {
            return bad(
                "GroupConfig::auto_commit_interval",
                "must be positive".into(),
            );
        }
        for (setting, d) in [
            ("GroupConfig::session_timeout", self.session_timeout),
            (
                "GroupConfig::rebalance_timeout",
                self.effective_rebalance_timeout(),
            ),
            ("GroupConfig::max_poll_interval", self.max_poll_interval),
        ] {
            if i32::try_from(d.as_millis()).is_err() {
                return bad(setting, format!("{d:?} does not fit in i32 milliseconds"));
            }
        }
        if self.group_instance_id.as_deref() == Some("") {
            return bad(
                "GroupConfig::group_instance_id",
                "must not be empty (use None)".into(),
            );
        }
        let mut names: Vec<&str> = self.assignors.iter().map(|a| a.name()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return bad(
                "GroupConfig::assignors",
                "two assignors share a name".into(),
            );
        }
        Ok(())
    }
}
