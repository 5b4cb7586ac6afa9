//! Finding the group (or transaction) coordinator and talking to it: FindCoordinator, a
//! cached coordinator id, forgotten on NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE or a lost
//! connection.

use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest};
use kafka_protocol::protocol::{Request, StrBytes};

use crate::backoff::Backoff;
use crate::cluster::Cluster;
use crate::error::{Error, KafkaCode, Result};

const FIND_COORDINATOR_VERSIONS: RangeInclusive<i16> = 0..=6;

/// How a group API error code is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeClass {
    /// The coordinator moved or is gone: find it again, then retry.
    Refind,
    /// The coordinator is loading the group: retry after a pause.
    Retry,
    /// Anything else: the caller decides.
    Other,
}

pub(crate) fn classify(code: KafkaCode) -> CodeClass {
    match code {
        KafkaCode::NotCoordinator | KafkaCode::CoordinatorNotAvailable => CodeClass::Refind,
        KafkaCode::CoordinatorLoadInProgress | KafkaCode::RequestTimedOut => CodeClass::Retry,
        _ => CodeClass::Other,
    }
}

/// FindCoordinator key types.
const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

/// The coordinator of one group, or of one transactional id.
pub(crate) struct Coordinator {
    pub(crate) cluster: Arc<Cluster>,
    /// The group id or transactional id (named `group` in logs either way).
    group: String,
    key_type: i8,
    node: Mutex<Option<i32>>,
}

impl Coordinator {
    pub(crate) fn new(cluster: Arc<Cluster>, group: String) -> Self {
        Coordinator {
            cluster,
            group,
            key_type: KEY_GROUP,
            node: Mutex::new(None),
        }
    }

    /// The transaction coordinator of `transactional_id` (FindCoordinator key type 1).
    pub(crate) fn for_transaction(cluster: Arc<Cluster>, transactional_id: String) -> Self {
        Coordinator {
            key_type: KEY_TRANSACTION,
            ..Coordinator::new(cluster, transactional_id)
        }
    }

    /// The connection to the coordinator, finding it first if needed.
    pub(crate) async fn connection(
        &self,
        deadline: Instant,
    ) -> Result<Arc<crate::conn::Connection>> {
        let node = self.node(deadline).await?;
        match self.cluster.broker(node).await {
            Ok(c) => Ok(c),
            Err(e) => {
                self.mark_unknown("cannot connect");
                Err(e)
            }
        }
    }

    fn cached(&self) -> Option<i32> {
        *self.node.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets the coordinator; the next request looks it up again.
    pub(crate) fn mark_unknown(&self, why: &str) {
        let old = self.node.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(old) = old {
            tracing::info!(group = %self.group, coordinator = old, why, "coordinator unknown");
        }
    }

    /// The coordinator's broker id, looking it up (with retries until `deadline`) if needed.
    pub(crate) async fn node(&self, deadline: Instant) -> Result<i32> {
        if let Some(id) = self.cached() {
            return Ok(id);
        }
        let mut backoff = backoff_until(deadline);
        loop {
            match self.find().await {
                Ok(id) => {
                    tracing::info!(group = %self.group, coordinator = id, "found coordinator");
                    *self.node.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
                    return Ok(id);
                }
                Err(e) if e.is_retriable() => {
                    tracing::debug!(group = %self.group, error = %e, "FindCoordinator failed, retrying");
                    backoff.wait(e).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn find(&self) -> Result<i32> {
        let group = self.group.clone();
        let key_type = self.key_type;
        let (response, version) = self
            .cluster
            .request_any(ApiKey::FindCoordinator, FIND_COORDINATOR_VERSIONS, |v| {
                let key = StrBytes::from_string(group.clone());
                let r = FindCoordinatorRequest::default();
                if v >= 4 {
                    r.with_key_type(key_type).with_coordinator_keys(vec![key])
                } else if v >= 1 {
                    r.with_key_type(key_type).with_key(key)
                } else {
                    r.with_key(key)
                }
            })
            .await?;
        let (code, node) = if version >= 4 {
            let c = response.coordinators.first().ok_or_else(|| {
                Error::malformed("FindCoordinator response", "no coordinator in the answer")
            })?;
            (c.error_code, c.node_id.0)
        } else {
            (response.error_code, response.node_id.0)
        };
        let what = if self.key_type == KEY_GROUP {
            "group"
        } else {
            "transactional id"
        };
        crate::error::check_code(code, || {
            format!("FindCoordinator for {what} {}", self.group)
        })?;
        if node < 0 {
            return Err(Error::broker(
                KafkaCode::CoordinatorNotAvailable,
                format!("FindCoordinator for group {}: no node", self.group),
            ));
        }
        Ok(node)
    }

    /// Sends one request to the coordinator at the best common version. A transport error
    /// forgets the coordinator (it is found again on the next attempt).
    pub(crate) async fn send<R: Request>(
        &self,
        api: ApiKey,
        versions: RangeInclusive<i16>,
        deadline: Instant,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(R::Response, i16)> {
        let node = self.node(deadline).await?;
        let conn = match self.cluster.broker(node).await {
            Ok(c) => c,
            Err(e) => {
                self.mark_unknown("cannot connect");
                return Err(e);
            }
        };
        let version = conn.version(api, versions)?;
        match conn.request(&build(version), version).await {
            Ok(r) => Ok((r, version)),
            Err(e) => {
                if e.is_retriable() {
                    self.mark_unknown(&format!("{api:?} failed: {e}"));
                }
                Err(e)
            }
        }
    }
}

/// Retry pacing for group and transaction requests: doubling pauses from 50 ms up to 1 s,
/// none reaching `deadline` ([`Backoff::wait`] then gives the last error back).
pub(crate) fn backoff_until(deadline: Instant) -> Backoff {
    GROUP_BACKOFF.until(deadline)
}

const GROUP_BACKOFF: Backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
