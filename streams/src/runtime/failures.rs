//! Consumer and group errors: which ones pass (retried with a capped, jittered backoff and
//! logged once per change of state) and which ones stop the app (with what to do).

use std::time::Duration;

use kafka_client::KafkaCode;

/// What to do about a consumer error.
pub(crate) enum Severity {
    /// The group or the cluster is moving; trying again will work.
    Retriable,
    /// It can never work as configured: stop, with this hint of what to change.
    Fatal(&'static str),
}

/// Sorts a consumer (or group) error.
pub(crate) fn classify(e: &kafka_client::Error) -> Severity {
    use kafka_client::Error as K;
    let hint = match e {
        K::Rebalancing { .. } | K::UnknownPartition { .. } => None,
        // Going on would commit past records nobody read.
        K::CorruptRecords { .. } => Some(
            "a fetched record batch stays unreadable (corrupt on the broker or in its log): inspect that topic/partition at that offset; to skip such batches (their records are lost, each skip is logged) set App::builder(..).consumer_skip_corrupt_batches(true)",
        ),
        _ if e.is_config() => Some("fix the client settings"),
        K::Closed => Some("the consumer was closed underneath the app"),
        K::UnsupportedVersion { .. } => Some("the broker is too old for this client"),
        _ if e.is_retriable() => None,
        _ => match e.code() {
            Some(KafkaCode::InvalidSessionTimeout) => Some(
                "broker_session_timeout must lie within the broker's group.min.session.timeout.ms and group.max.session.timeout.ms",
            ),
            Some(KafkaCode::GroupAuthorizationFailed) => {
                Some("the app's principal may not use its consumer group (grant Read on the group)")
            }
            Some(KafkaCode::TopicAuthorizationFailed) => {
                Some("the app's principal may not read a source topic (grant Read on it)")
            }
            Some(KafkaCode::InvalidGroupId) => Some("the app id is not a valid group id"),
            Some(KafkaCode::InconsistentGroupProtocol) => Some(
                "other members of the group use another assignor: give this app its own id",
            ),
            Some(KafkaCode::GroupMaxSizeReached) => {
                Some("the group is full (group.max.size): stop a worker or raise the limit")
            }
            Some(KafkaCode::FencedInstanceId) => {
                Some("another worker uses this static member id: give each worker its own")
            }
            // Group codes the consumer handles by rejoining.
            Some(
                KafkaCode::IllegalGeneration
                | KafkaCode::UnknownMemberId
                | KafkaCode::RebalanceInProgress,
            ) => None,
            _ => Some("the broker refuses what the app asks; see the error"),
        },
    };
    match hint {
        None => Severity::Retriable,
        Some(hint) => Severity::Fatal(hint),
    }
}

/// Backoff between retried consumer errors: doubles from 50 ms up to 5 s, with jitter, and
/// remembers whether the last state was logged.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
    last: Option<String>,
    seed: u64,
}

impl Backoff {
    /// A failure: logs it if it differs from the last one, returns how long to wait.
    pub(crate) fn failed(&mut self, error: &kafka_client::Error) -> Duration {
        let text = error.to_string();
        if self.last.as_deref() != Some(&text) {
            tracing::warn!(error = %text, "consumer error; retrying with backoff (logged once until it changes)");
            self.last = Some(text);
        }
        self.failures = self.failures.saturating_add(1);
        let base = 50u64.saturating_mul(1 << self.failures.min(7)).min(5_000);
        // xorshift jitter: 50% to 100% of the base.
        self.seed = (self.seed ^ 0x9E37_79B9_7F4A_7C15).wrapping_add(self.failures as u64);
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        Duration::from_millis(base / 2 + self.seed % (base / 2 + 1))
    }

    /// A success: logs the recovery once.
    pub(crate) fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(
                failures = self.failures,
                "consumer recovered after retriable errors"
            );
            self.failures = 0;
            self.last = None;
        }
    }
}
