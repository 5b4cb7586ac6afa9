//! The crate's one error type.

use kafka_protocol::messages::ApiKey;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the mock cluster, with context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request frame too short to hold a request header.
    #[error("request frame of {len} bytes is too short for a request header")]
    ShortFrame {
        /// Bytes the frame had.
        len: usize,
    },

    /// A request for an API key Kafka does not define.
    #[error("unknown API key {api_key} (correlation id {correlation_id})")]
    UnknownApiKey {
        /// The key as sent.
        api_key: i16,
        /// The request's correlation id, to match it with the client's log.
        correlation_id: i32,
    },

    /// A request at a version this mock does not serve.
    #[error("{api_key:?} v{version} is not supported (correlation id {correlation_id})")]
    UnsupportedVersion {
        /// The request's API.
        api_key: ApiKey,
        /// The version the client sent.
        version: i16,
        /// The request's correlation id, to match it with the client's log.
        correlation_id: i32,
    },

    /// A request whose header or body does not decode.
    #[error("malformed {what} for API key {api_key} v{version}: {reason}")]
    Malformed {
        /// The part that failed: the header or the body.
        what: &'static str,
        /// The API key from the header (as sent, possibly unknown).
        api_key: i16,
        /// The version from the header.
        version: i16,
        /// What the decoder reported.
        reason: String,
    },

    /// A response that cannot be encoded at the version the client asked for (a mock bug).
    #[error("cannot encode {api_key:?} v{version} response: {reason}")]
    Encode {
        /// The response's API.
        api_key: ApiKey,
        /// The version the client asked for.
        version: i16,
        /// What the encoder reported.
        reason: String,
    },

    /// A topic operation the cluster refused.
    #[error("topic {topic}: {reason}")]
    Topic {
        /// The topic named in the call.
        topic: String,
        /// Why it was refused (no such topic or partition, a bad partition count, ...).
        reason: String,
    },

    /// A broker id the cluster does not have.
    #[error("no broker with id {0}")]
    UnknownBroker(i32),

    /// Listener settings that cannot work (a TLS certificate that does not load).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Socket errors: binding a listener, reading or writing a connection.
    #[error("I/O error on {context}: {source}")]
    Io {
        /// What the cluster was doing, with the address involved.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
