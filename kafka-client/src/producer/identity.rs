//! The idempotent producer's identity (producer id and epoch) and how a plain idempotent
//! producer gets one; a transactional producer gets its own through the coordinator.

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, ProducerId};

use crate::backoff::Backoff;
use crate::cluster::Cluster;
use crate::error::{KafkaCode, Result};

const INIT_PRODUCER_ID_VERSIONS: std::ops::RangeInclusive<i16> = 0..=5;

/// The idempotent producer's id and epoch (-1/-1 when not idempotent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerIdentity {
    pub(crate) id: i64,
    pub(crate) epoch: i16,
}

impl ProducerIdentity {
    pub(crate) const NONE: ProducerIdentity = ProducerIdentity { id: -1, epoch: -1 };
}

/// Asks any broker for a new producer id, retrying while the cluster is getting ready.
pub(crate) async fn init_producer_id(cluster: &Cluster) -> Result<ProducerIdentity> {
    let mut backoff =
        Backoff::new(Duration::from_millis(50), Duration::from_secs(1)).with_max_attempts(20);
    loop {
        let result = cluster
            .request_any(ApiKey::InitProducerId, INIT_PRODUCER_ID_VERSIONS, |_| {
                // Nullable strings default to "" in kafka-protocol: say "no transaction".
                InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(i32::MAX)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
            })
            .await
            .and_then(|(r, _)| {
                crate::error::check_code(r.error_code, || "InitProducerId".into())?;
                Ok(ProducerIdentity {
                    id: r.producer_id.0,
                    epoch: r.producer_epoch,
                })
            });
        match result {
            Ok(identity) => return Ok(identity),
            // CONCURRENT_TRANSACTIONS: the id's previous transaction is still completing.
            Err(e) if e.is_retriable() || e.code() == Some(KafkaCode::ConcurrentTransactions) => {
                let attempt = backoff.attempts();
                tracing::debug!(error = %e, attempt, "InitProducerId failed, retrying");
                backoff.wait(e).await?;
            }
            Err(e) => return Err(e),
        }
    }
}
