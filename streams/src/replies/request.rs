//! The reply headers of a request, and the records that answer it.
//!
//! A request is an ordinary record of the agent's topic (its value typed as any other) with
//! two headers: the topic to reply to and a correlation id. A reply is keyed by that id; its
//! value is the agent's result as JSON, or, when the agent failed on the request, no value
//! and a header with the failure.

use std::sync::{Arc, Mutex};

use kafka_client::producer::ProducerRecord;

use crate::record::Header;

/// Header naming the topic a request's reply goes to.
pub(crate) const REPLY_TO: &str = "streams-reply-to";
/// Header carrying a request's correlation id.
pub(crate) const CORRELATION_ID: &str = "streams-correlation-id";
/// Header of a reply saying the agent failed on the request, and how.
pub(crate) const FAILED: &str = "streams-reply-failed";

/// Where a request's reply goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplyTo {
    pub topic: String,
    pub correlation_id: String,
}

impl ReplyTo {
    /// The reply headers of a record, if it is a request (both headers, in UTF-8).
    pub(crate) fn from_headers(headers: &[Header]) -> Option<ReplyTo> {
        let find = |name: &str| {
            headers
                .iter()
                .find(|h| h.key.as_ref() == name.as_bytes())
                .and_then(|h| h.value.as_deref())
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_owned)
        };
        Some(ReplyTo {
            topic: find(REPLY_TO)?,
            correlation_id: find(CORRELATION_ID)?,
        })
    }

    /// Adds the reply headers to a request.
    pub(crate) fn mark(&self, record: ProducerRecord) -> ProducerRecord {
        record
            .header(REPLY_TO, self.topic.clone())
            .header(CORRELATION_ID, self.correlation_id.clone())
    }
}

/// The request an agent instance took most recently (Faust's current event), if that event
/// was one: what its next result answers. Set by the instance's stream, read by its results.
pub(crate) type Current = Arc<Mutex<Option<ReplyTo>>>;

/// A reply carrying a result (JSON).
pub(crate) fn reply_record(to: &ReplyTo, value: Vec<u8>) -> ProducerRecord {
    ProducerRecord::new(to.topic.clone())
        .key(to.correlation_id.clone())
        .value(value)
}

/// A reply saying the agent failed on the request.
pub(crate) fn failure_record(to: &ReplyTo, reason: &str) -> ProducerRecord {
    ProducerRecord::new(to.topic.clone())
        .key(to.correlation_id.clone())
        .header(FAILED, reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(key: &str, value: &str) -> Header {
        Header {
            key: key.as_bytes().to_vec().into(),
            value: Some(value.as_bytes().to_vec().into()),
        }
    }

    #[test]
    fn a_request_needs_both_headers() {
        let both = [header(REPLY_TO, "app-reply-1"), header(CORRELATION_ID, "7")];
        assert_eq!(
            ReplyTo::from_headers(&both),
            Some(ReplyTo {
                topic: "app-reply-1".into(),
                correlation_id: "7".into()
            })
        );
        assert_eq!(ReplyTo::from_headers(&both[..1]), None);
        assert_eq!(ReplyTo::from_headers(&[]), None);
    }
}
