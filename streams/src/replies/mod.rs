//! Agents as services (Faust's `agent.ask`): how a request names where its reply goes
//! ([`request`]), and the asking side of a worker ([`hub`]): its reply topic, the task that
//! reads it and the askers waiting on it.

mod hub;
mod request;

pub(crate) use hub::{Replies, Reply};
pub(crate) use request::{failure_record, reply_record, Current, ReplyTo};
