//! The crate's one error type.

use kafka_protocol::messages::ApiKey;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the mock cluster, with context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request frame too short to hold a request header.
    #[error("request frame of {len} bytes is too short for a request header")]
    ShortFrame { len: usize },

    /// A request for an API key Kafka does not define.
    #[error("unknown API key {api_key} (correlation id {correlation_id})")]
    UnknownApiKey { api_key: i16, correlation_id: i32 },

    /// A request at a version this mock does not serve.
    #[error("{api_key:?} v{version} is not supported (correlation id {correlation_id})")]
    UnsupportedVersion {
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
    },

    /// A request whose header or body does not decode.
    #[error("malformed {what} for API key {api_key} v{version}: {reason}")]
    Malformed {
        what: &'static str,
        api_key: i16,
        version: i16,
        reason: String,
    },

    /// A response that cannot be encoded at the version the client asked for (a mock bug).
    #[error("cannot encode {api_key:?} v{version} response: {reason}")]
    Encode {
        api_key: ApiKey,
        version: i16,
        reason: String,
    },

    /// A topic operation the cluster refused.
    #[error("topic {topic}: {reason}")]
    Topic { topic: String, reason: String },

    /// A broker id the cluster does not have.
    #[error("no broker with id {0}")]
    UnknownBroker(i32),

    /// Listener settings that cannot work (a TLS certificate that does not load).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Socket errors: binding a listener, reading or writing a connection.
    #[error("I/O error on {context}: {source}")]
    Io {
        context: String,
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
