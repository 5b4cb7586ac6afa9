//! InitProducerId: allocates producer ids for idempotent producers; for a transactional id,
//! the transaction coordinator's rules ([`crate::txn::init_producer_id`]): a new id or an epoch
//! bump, the previous incarnation's open transaction aborted first, KIP-360 bumps.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError as E;

use super::Ctx;
use crate::state::lock;

pub(crate) fn handle(
    ctx: &Ctx,
    req: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let mut st = lock(&ctx.shared);
    let result = match req.transactional_id.as_ref().map(|t| t.0.to_string()) {
        Some(tid) => {
            if tid.is_empty() {
                Err(E::InvalidRequest.code())
            } else if let Some(code) = super::txn::coordinator_error(&st, ctx.broker, &tid) {
                Err(code)
            } else {
                let expected = (version >= 3 && req.producer_id.0 >= 0)
                    .then_some((req.producer_id.0, req.producer_epoch));
                crate::txn::init_producer_id(
                    &mut st,
                    &tid,
                    req.transaction_timeout_ms,
                    expected,
                    version,
                )
            }
        }
        None if req.producer_id.0 >= 0 && req.producer_epoch >= 0 => {
            // KIP-360: an idempotent producer bumping its own epoch after an error.
            Ok((req.producer_id.0, req.producer_epoch.saturating_add(1)))
        }
        None => {
            let id = st.next_producer_id;
            st.next_producer_id += 1;
            Ok((id, 0))
        }
    };
    match result {
        Ok((id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(code) => {
            tracing::debug!(transactional_id = ?req.transactional_id, code, "InitProducerId refused");
            InitProducerIdResponse::default()
                .with_error_code(code)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    }
}
