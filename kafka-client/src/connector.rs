//! Pluggable transports: how a client opens the byte stream to a broker address.
//!
//! By default every connection is a TCP socket. A [`Connector`] set with
//! [`ClientConfig::with_connector`](crate::ClientConfig::with_connector) replaces that, for
//! example with in-memory pipes to an in-process mock cluster (`testkit`), so that whole
//! applications can be tested without sockets and on tokio's paused clock.

use std::fmt::Debug;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};

/// A connected, bidirectional byte stream to one broker, as a [`Connector`] returns it.
pub type BoxedStream = Box<dyn ByteStream>;

/// What a [`BoxedStream`] can do: read and write bytes. Implemented for every type that is
/// `AsyncRead + AsyncWrite + Send + Unpin` (a `tokio::io::DuplexStream`, a `TcpStream`, ...).
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> ByteStream for T {}

/// Opens the stream to a broker address (`host:port`, as given in the bootstrap list or
/// advertised by Metadata and FindCoordinator) instead of a TCP connection.
///
/// The client applies its request timeout to `connect`, then runs TLS (if configured, with the
/// address's host as the server name), the Kafka protocol and SASL (if configured) over the
/// stream, exactly as over TCP.
///
/// ```
/// use std::sync::Arc;
/// use futures::future::BoxFuture;
/// use kafka_client::{BoxedStream, ClientConfig, Connector};
///
/// /// Refuses every address: a client using it never reaches a broker.
/// #[derive(Debug)]
/// struct Nowhere;
///
/// impl Connector for Nowhere {
///     fn connect(&self, addr: &str) -> BoxFuture<'static, std::io::Result<BoxedStream>> {
///         let err = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, addr.to_owned());
///         Box::pin(async move { Err(err) })
///     }
/// }
///
/// let config = ClientConfig::new("nowhere:9092").unwrap().with_connector(Arc::new(Nowhere));
/// assert!(config.connector.is_some());
/// ```
pub trait Connector: Send + Sync + Debug {
    /// Opens a stream to `addr`. An address that leads nowhere is an I/O error, typically
    /// [`ConnectionRefused`](std::io::ErrorKind::ConnectionRefused): the client treats it as
    /// an unreachable broker and retries with backoff.
    fn connect(&self, addr: &str) -> BoxFuture<'static, std::io::Result<BoxedStream>>;
}
