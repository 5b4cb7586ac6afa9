//! InitProducerId: allocates producer ids; a transactional id keeps its id and gets its epoch
//! bumped (fencing the previous incarnation).

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::Ctx;
use crate::state::lock;

pub(crate) fn handle(ctx: &Ctx, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut st = lock(&ctx.shared);
    let (id, epoch) = match req.transactional_id.as_ref().map(|t| t.0.to_string()) {
        Some(tid) => {
            if !st.transactional_ids.contains_key(&tid) {
                let id = st.next_producer_id;
                st.next_producer_id += 1;
                st.transactional_ids.insert(tid.clone(), (id, -1));
            }
            let Some(e) = st.transactional_ids.get_mut(&tid) else {
                return InitProducerIdResponse::default()
                    .with_error_code(kafka_protocol::ResponseError::UnknownServerError.code());
            };
            e.1 = if e.1 >= i16::MAX - 1 { 0 } else { e.1 + 1 };
            *e
        }
        None if req.producer_id.0 >= 0 && req.producer_epoch >= 0 => {
            // KIP-360: an idempotent producer bumping its own epoch after an error.
            (req.producer_id.0, req.producer_epoch.saturating_add(1))
        }
        None => {
            let id = st.next_producer_id;
            st.next_producer_id += 1;
            (id, 0)
        }
    };
    InitProducerIdResponse::default()
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch)
}
