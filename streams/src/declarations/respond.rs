//! The loop of a `process` agent instance: each result goes to the sinks and, when the
//! instance's current event is a request, to the asker's reply topic; a failure on a request
//! is reported to its asker before the instance stops.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::{FutureExt, Stream, StreamExt};
use kafka_client::producer::ProducerRecord;
use serde::Serialize;

use super::sink::Sink;
use crate::error::{panic_message, AgentFailure};
use crate::outbox::Outbox;
use crate::replies::{failure_record, reply_record, Current, ReplyTo};

/// Runs an instance's results to their end. Each result is handed to the sinks and the reply
/// topic before the next is asked for, so the event it came from is released (and committed)
/// only after they accepted it (the commit protocol then waits for their acknowledgement).
pub(super) async fn respond<T, S>(
    results: S,
    sinks: Arc<[Sink<T>]>,
    current: Current,
    outbox: Outbox,
    agent: Arc<str>,
) -> Result<(), AgentFailure>
where
    S: Stream<Item = Result<T, AgentFailure>> + Send,
    T: Serialize + Clone + Send + 'static,
{
    let mut results = std::pin::pin!(results);
    loop {
        let result = match AssertUnwindSafe(results.next()).catch_unwind().await {
            Ok(None) => return Ok(()),
            Ok(Some(Ok(result))) => result,
            Ok(Some(Err(failure))) => return Err(fail(&current, &outbox, failure).await),
            Err(panic) => {
                let failure = AgentFailure::Panicked(panic_message(&*panic).to_owned());
                return Err(fail(&current, &outbox, failure).await);
            }
        };
        // The request this result answers: the one taken most recently (Faust's current
        // event), read before anything polls the stream again.
        let to = request(&current);
        for sink in sinks.iter() {
            if let Err(e) = (sink.send)(result.clone()).await {
                let failure = AgentFailure::Sink {
                    sink: sink.name.clone(),
                    source: Box::new(e),
                };
                return Err(fail(&current, &outbox, failure).await);
            }
        }
        if let Some(to) = to {
            let record = reply(&to, &result, &agent);
            outbox.send(record).await.map_err(|e| AgentFailure::Sink {
                sink: format!("reply topic {}", to.topic),
                source: Box::new(e),
            })?;
        }
    }
}

fn request(current: &Current) -> Option<ReplyTo> {
    current.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The reply carrying `result`. A result that does not encode as JSON fails that request
/// (the asker is told why) but not the agent, whose sinks took it.
fn reply<T: Serialize>(to: &ReplyTo, result: &T, agent: &str) -> ProducerRecord {
    match serde_json::to_vec(result) {
        Ok(json) => reply_record(to, json),
        Err(e) => {
            tracing::warn!(agent, error = %e, "a result does not encode as JSON: its asker gets a failure");
            failure_record(to, &format!("its result does not encode as JSON: {e}"))
        }
    }
}

/// Tells the asker of the current request (if any) that the agent failed on it, then
/// returns the failure that stops the instance. Sent outside any transaction: under
/// exactly-once the failing instance's transaction is aborted.
async fn fail(current: &Current, outbox: &Outbox, failure: AgentFailure) -> AgentFailure {
    if let Some(to) = request(current) {
        let record = failure_record(&to, &failure.to_string());
        if let Err(e) = outbox.send_outside_transactions(record).await {
            tracing::warn!(error = %e, reply_topic = %to.topic, "cannot tell the asker that the agent failed on its request; it times out");
        }
    }
    failure
}
