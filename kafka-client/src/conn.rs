//! One connection to one broker (TCP, or a [`Connector`](crate::Connector)'s stream): a writer
//! task and a reader task, requests pipelined and matched to responses by correlation id, a
//! bounded number in flight.
//!
//! A connection that fails in any way (I/O error, malformed frame, timeout) shuts down as a
//! whole: every waiting request gets an error and the owner opens a new connection.
//!
//! With TLS the stream is wrapped by rustls before the tasks start; with SASL the connection
//! authenticates after ApiVersions and re-authenticates before its session expires (KIP-368).

use std::collections::HashMap;
use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;

use crate::config::ClientConfig;
use crate::error::{Error, KafkaCode, Result};
use crate::protocol::frame::{self, decode_response, encode_request, response_correlation_id};
use crate::sasl::{self, SaslConfig};

type Reply = oneshot::Sender<Result<Bytes>>;

/// A live connection. Cheap to share behind an `Arc`.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    writer: mpsc::Sender<BytesMut>,
    in_flight: Arc<Semaphore>,
    next_correlation_id: AtomicI32,
    versions: HashMap<i16, (i16, i16)>,
    /// Features the cluster finalized (ApiVersions v3+: name -> max version level), such as
    /// `transaction.version`.
    finalized_features: HashMap<String, i16>,
    client_id: String,
    request_timeout: Duration,
    max_in_flight: usize,
    sasl: Option<SaslConfig>,
    /// When to re-authenticate (KIP-368), if the broker gave the session a lifetime.
    reauthenticate_at: Mutex<Option<Instant>>,
    reauthenticating: tokio::sync::Mutex<()>,
}

struct Shared {
    broker: String,
    state: Mutex<State>,
    /// Set when TLS itself failed (a refused client certificate): waiting requests then get
    /// [`Error::Tls`], which is not retried, instead of a retriable disconnection.
    tls_failure: std::sync::OnceLock<String>,
}

#[derive(Default)]
struct State {
    closed: Option<String>,
    pending: HashMap<i32, Reply>,
    tasks: Vec<AbortHandle>,
}

impl Shared {
    /// Fails every waiting request and stops both tasks. Idempotent.
    fn shut_down(&self, reason: &str) {
        let (pending, tasks) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.closed.is_some() {
                return;
            }
            state.closed = Some(reason.to_owned());
            (
                std::mem::take(&mut state.pending),
                std::mem::take(&mut state.tasks),
            )
        };
        if !pending.is_empty() {
            tracing::warn!(broker = %self.broker, reason, waiting = pending.len(), "connection closed");
        } else {
            tracing::debug!(broker = %self.broker, reason, "connection closed");
        }
        for (_, reply) in pending {
            let _ = reply.send(Err(self.disconnected(reason)));
        }
        for task in tasks {
            task.abort();
        }
    }

    fn disconnected(&self, reason: &str) -> Error {
        if let Some(reason) = self.tls_failure.get() {
            return Error::Tls {
                broker: self.broker.clone(),
                reason: reason.clone(),
            };
        }
        Error::Disconnected {
            broker: self.broker.clone(),
            reason: reason.to_owned(),
        }
    }
}

/// The answer to one request, still on its way. Holds an in-flight slot until dropped.
pub(crate) struct PendingResponse {
    rx: oneshot::Receiver<Result<Bytes>>,
    api: ApiKey,
    correlation_id: i32,
    shared: Arc<Shared>,
    timeout: Duration,
    _permit: Option<OwnedSemaphorePermit>,
}

impl PendingResponse {
    /// Waits for the raw response frame (header included).
    pub(crate) async fn frame(self) -> Result<Bytes> {
        match tokio::time::timeout(self.timeout, self.rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.shared.disconnected("connection task ended")),
            Err(_) => {
                // A broker that stops answering one request cannot be trusted with the rest.
                let reason = format!(
                    "no response to {:?} (correlation id {}) within {:?}",
                    self.api, self.correlation_id, self.timeout
                );
                self.shared.shut_down(&reason);
                Err(Error::Timeout {
                    api: crate::error::Api::of(self.api),
                    broker: self.shared.broker.clone(),
                    after: self.timeout,
                })
            }
        }
    }

    /// Waits for the response and decodes it. A response that does not decode means the
    /// broker and we disagree about the protocol: the connection is reset.
    pub(crate) async fn decode<R: Request>(self, version: i16) -> Result<R::Response> {
        let shared = self.shared.clone();
        let result = decode_response::<R>(self.frame().await?, version);
        if let Err(e) = &result {
            shared.shut_down(&e.to_string());
        }
        result
    }
}

impl Connection {
    /// Opens a connection (TLS if configured), negotiates API versions and authenticates
    /// (SASL if configured).
    pub(crate) async fn connect(addr: &str, broker: String, config: &ClientConfig) -> Result<Self> {
        config.validate()?;
        let io_err = |source| Error::Io {
            broker: broker.clone(),
            source,
        };
        let shared = Arc::new(Shared {
            broker: broker.clone(),
            state: Mutex::default(),
            tls_failure: std::sync::OnceLock::new(),
        });
        let max_in_flight = config.max_in_flight_per_connection.max(1);
        let (writer, rx) = mpsc::channel(max_in_flight);
        let start = Start {
            addr,
            broker: &broker,
            config,
            shared: &shared,
        };
        let tasks = match &config.connector {
            None => {
                let stream = start
                    .within("connect", async {
                        TcpStream::connect(addr).await.map_err(io_err)
                    })
                    .await?;
                stream.set_nodelay(true).map_err(io_err)?;
                if config.security_protocol.uses_tls() {
                    start.tls(stream, rx).await?
                } else {
                    let (read_half, write_half) = stream.into_split();
                    spawn_loops(read_half, write_half, rx, &shared, config.max_frame_bytes)
                }
            }
            Some(connector) => {
                let stream = start
                    .within("connect", async {
                        connector.connect(addr).await.map_err(io_err)
                    })
                    .await?;
                if config.security_protocol.uses_tls() {
                    start.tls(stream, rx).await?
                } else {
                    let (read_half, write_half) = tokio::io::split(stream);
                    spawn_loops(read_half, write_half, rx, &shared, config.max_frame_bytes)
                }
            }
        };
        shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tasks
            .extend(tasks);

        let mut conn = Connection {
            shared,
            writer,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            next_correlation_id: AtomicI32::new(0),
            versions: HashMap::new(),
            finalized_features: HashMap::new(),
            client_id: config.client_id.clone(),
            request_timeout: config.request_timeout,
            max_in_flight,
            sasl: config
                .security_protocol
                .uses_sasl()
                .then(|| config.sasl.clone())
                .flatten(),
            reauthenticate_at: Mutex::new(None),
            reauthenticating: tokio::sync::Mutex::new(()),
        };
        if let Some(sasl) = conn.sasl.as_ref() {
            if sasl.mechanism == crate::sasl::SaslMechanism::Plain
                && !config.security_protocol.uses_tls()
            {
                tracing::warn!(
                    broker = %broker,
                    user = %sasl.username,
                    "SASL/PLAIN over plain TCP (sasl_plaintext://): the password crosses the network in the clear; use sasl_ssl:// or SCRAM"
                );
            }
        }
        (conn.versions, conn.finalized_features) = conn.negotiate_versions().await?;
        conn.authenticate().await?;
        Ok(conn)
    }

    /// Runs the SASL exchange, if configured, and notes when to run it again.
    async fn authenticate(&self) -> Result<()> {
        let Some(sasl) = &self.sasl else {
            return Ok(());
        };
        let lifetime = sasl::authenticate(self, sasl).await?;
        // Well before the broker's deadline, as Java does (85-95% of the lifetime).
        let at = lifetime.map(|l| Instant::now() + l.mul_f64(0.85));
        *self
            .reauthenticate_at
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = at;
        if let Some(lifetime) = lifetime {
            tracing::debug!(broker = %self.shared.broker, ?lifetime, "SASL session lifetime");
        }
        Ok(())
    }

    /// KIP-368: re-authenticates once the session is near its end. No other request may be
    /// in flight meanwhile, so this waits for every in-flight slot first.
    async fn reauthenticate_if_due(&self) -> Result<()> {
        let due = || {
            self.reauthenticate_at
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some_and(|at| Instant::now() >= at)
        };
        if !due() {
            return Ok(());
        }
        let _one = self.reauthenticating.lock().await;
        if !due() {
            return Ok(());
        }
        let _all = self
            .in_flight
            .clone()
            .acquire_many_owned(self.max_in_flight as u32)
            .await
            .map_err(|_| self.shared.disconnected("connection dropped"))?;
        tracing::debug!(broker = %self.shared.broker, "re-authenticating (KIP-368)");
        if let Err(e) = self.authenticate().await {
            self.shared
                .shut_down(&format!("re-authentication failed: {e}"));
            return Err(e);
        }
        Ok(())
    }

    /// Asks the broker which versions of each API it speaks. Starts at v3; a broker that does
    /// not know v3 answers UNSUPPORTED_VERSION in the v0 format, so that is decoded as v0.
    /// Also returns the cluster's finalized features (empty before v3).
    async fn negotiate_versions(&self) -> Result<(HashMap<i16, (i16, i16)>, HashMap<String, i16>)> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("kafka-client-rs"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let frame = self.send(&request, 3).await?.frame().await?;
        let response = match decode_response::<ApiVersionsRequest>(frame.clone(), 3) {
            Ok(r) if r.error_code == 0 => r,
            _ => {
                let mut body = frame.slice(4..);
                ApiVersionsResponse::decode(&mut body, 0)
                    .map_err(|e| Error::malformed("ApiVersions response", e.to_string()))?
            }
        };
        if let Some(code) = KafkaCode::try_from_code(response.error_code) {
            return Err(Error::broker(
                code,
                format!("ApiVersions from {}", self.shared.broker),
            ));
        }
        let versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        let features = response
            .finalized_features
            .iter()
            .map(|f| (f.name.to_string(), f.max_version_level))
            .collect();
        Ok((versions, features))
    }

    /// The finalized level of a cluster feature (`transaction.version`, ...) as this broker
    /// reported it when the connection opened; `None` when not finalized or not reported.
    pub(crate) fn finalized_feature(&self, name: &str) -> Option<i16> {
        self.finalized_features.get(name).copied()
    }

    /// Whether the broker speaks `api` at `version` or higher.
    pub(crate) fn supports(&self, api: ApiKey, version: i16) -> bool {
        self.versions
            .get(&(api as i16))
            .is_some_and(|&(_, max)| max >= version)
    }

    /// Label used in errors and logs (`id@host:port`).
    pub(crate) fn broker(&self) -> &str {
        &self.shared.broker
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed
            .is_some()
    }

    /// The highest version of `api` that both this client (`ours`) and the broker speak.
    pub(crate) fn version(&self, api: ApiKey, ours: RangeInclusive<i16>) -> Result<i16> {
        let unsupported = || Error::UnsupportedVersion {
            api: crate::error::Api::of(api),
            broker: self.shared.broker.clone(),
            ours: format!("v{}..=v{}", ours.start(), ours.end()),
        };
        let &(min, max) = self.versions.get(&(api as i16)).ok_or_else(unsupported)?;
        let top = max.min(*ours.end());
        if top < min.max(*ours.start()) {
            return Err(unsupported());
        }
        Ok(top)
    }

    /// Writes a request and returns the response to come. Calls made one after another from
    /// one task reach the socket in that order (the producer's ordering relies on it).
    pub(crate) async fn send<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<PendingResponse> {
        self.reauthenticate_if_due().await?;
        let permit = self.permit().await?;
        self.send_with(request, version, Some(permit)).await
    }

    /// Sends a SASL request, which must not wait for an in-flight slot: re-authentication
    /// holds them all.
    pub(crate) async fn request_unmetered<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<R::Response> {
        self.send_with(request, version, None)
            .await?
            .decode::<R>(version)
            .await
    }

    async fn send_with<R: Request>(
        &self,
        request: &R,
        version: i16,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<PendingResponse> {
        let (frame, correlation_id) = self.encode(request, version)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(reason) = &state.closed {
                return Err(self.shared.disconnected(reason));
            }
            state.pending.insert(correlation_id, tx);
        }
        self.write(frame).await?;
        Ok(PendingResponse {
            rx,
            api: api_key(R::KEY),
            correlation_id,
            shared: self.shared.clone(),
            timeout: self.request_timeout,
            _permit: permit,
        })
    }

    /// Writes a request the broker will not answer (Produce with acks=0).
    pub(crate) async fn send_without_response<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<()> {
        self.reauthenticate_if_due().await?;
        let _permit = self.permit().await?;
        let (frame, _) = self.encode(request, version)?;
        self.write(frame).await
    }

    /// Sends a request and decodes its response.
    pub(crate) async fn request<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<R::Response> {
        self.send(request, version)
            .await?
            .decode::<R>(version)
            .await
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit> {
        self.in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.shared.disconnected("connection dropped"))
    }

    fn encode<R: Request>(&self, request: &R, version: i16) -> Result<(BytesMut, i32)> {
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = BytesMut::new();
        encode_request(
            &mut frame,
            correlation_id,
            &self.client_id,
            version,
            request,
        )?;
        Ok((frame, correlation_id))
    }

    async fn write(&self, frame: BytesMut) -> Result<()> {
        self.writer.send(frame).await.map_err(|_| {
            let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            self.shared
                .disconnected(state.closed.as_deref().unwrap_or("writer task ended"))
        })
    }

    /// Closes the connection, failing whatever is still waiting.
    pub(crate) fn close(&self, reason: &str) {
        self.shared.shut_down(reason);
    }
}

impl sasl::SaslTransport for Connection {
    fn broker(&self) -> &str {
        Connection::broker(self)
    }

    fn version(&self, api: ApiKey, ours: RangeInclusive<i16>) -> Result<i16> {
        Connection::version(self, api, ours)
    }

    async fn send<R: Request + Sync>(&self, request: &R, version: i16) -> Result<R::Response> {
        self.request_unmetered(request, version).await
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.shut_down("dropped");
    }
}

fn api_key(key: i16) -> ApiKey {
    ApiKey::try_from(key).unwrap_or(ApiKey::ApiVersions)
}

/// The host part of `host:port` (`[::1]:9092` gives `::1`), as TLS verifies it.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// What opening a connection's stream needs: the address and settings, for timeouts, TLS and
/// the tasks.
struct Start<'a> {
    addr: &'a str,
    broker: &'a str,
    config: &'a ClientConfig,
    shared: &'a Arc<Shared>,
}

impl Start<'_> {
    /// Runs one step of opening the stream (`what`: "connect", "TLS handshake") within the
    /// request timeout; running out of time is an I/O error.
    async fn within<T>(&self, what: &str, step: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.config.request_timeout, step).await {
            Ok(result) => result,
            Err(_) => Err(Error::Io {
                broker: self.broker.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{what} to {} timed out", self.addr),
                ),
            }),
        }
    }

    /// Wraps the stream in TLS and starts the tasks over it.
    async fn tls<S>(&self, stream: S, rx: mpsc::Receiver<BytesMut>) -> Result<[AbortHandle; 2]>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let tls = self.config.tls.clone().unwrap_or_default();
        let handshake = tls.connect(stream, host_of(self.addr), self.broker);
        let stream = self.within("TLS handshake", handshake).await?;
        let (read_half, write_half) = tokio::io::split(stream);
        Ok(spawn_loops(
            read_half,
            write_half,
            rx,
            self.shared,
            self.config.max_frame_bytes,
        ))
    }
}

/// Starts the writer and reader tasks over the two halves of a stream.
fn spawn_loops<R, W>(
    read_half: R,
    write_half: W,
    rx: mpsc::Receiver<BytesMut>,
    shared: &Arc<Shared>,
    max_frame_bytes: usize,
) -> [AbortHandle; 2]
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let write_task = tokio::spawn(write_loop(write_half, rx, shared.clone()));
    let read_task = tokio::spawn(read_loop(read_half, shared.clone(), max_frame_bytes));
    [write_task.abort_handle(), read_task.abort_handle()]
}

async fn write_loop(
    write_half: impl AsyncWrite + Unpin,
    mut rx: mpsc::Receiver<BytesMut>,
    shared: Arc<Shared>,
) {
    let mut out = BufWriter::with_capacity(256 * 1024, write_half);
    while let Some(frame) = rx.recv().await {
        let mut result = out.write_all(&frame).await;
        // Coalesce whatever else is queued into the same flush.
        while result.is_ok() {
            match rx.try_recv() {
                Ok(frame) => result = out.write_all(&frame).await,
                Err(_) => break,
            }
        }
        if let Err(e) = result.and(out.flush().await) {
            shared.shut_down(&format!("write failed: {e}"));
            return;
        }
    }
}

async fn read_loop(read_half: impl AsyncRead + Unpin, shared: Arc<Shared>, max_frame_bytes: usize) {
    let mut input = BufReader::with_capacity(256 * 1024, read_half);
    loop {
        let frame = match frame::read_frame(&mut input, max_frame_bytes).await {
            Ok(Some(frame)) => frame.freeze(),
            Ok(None) => return shared.shut_down("closed by the broker"),
            Err(e) => {
                if let Some(reason) = crate::tls::failure(&e, &shared.broker) {
                    let _ = shared.tls_failure.set(reason);
                }
                return shared.shut_down(&format!("read failed: {e}"));
            }
        };
        let correlation_id = match response_correlation_id(&frame) {
            Ok(id) => id,
            Err(e) => return shared.shut_down(&e.to_string()),
        };
        let reply = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.pending.remove(&correlation_id)
        };
        match reply {
            Some(reply) => {
                let _ = reply.send(Ok(frame));
            }
            None => {
                return shared.shut_down(&format!(
                    "response with unknown correlation id {correlation_id}"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::{MetadataRequest, ResponseHeader};
    use kafka_protocol::protocol::Encodable;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// What the fake broker answers to the request after ApiVersions.
    #[derive(Clone, Copy)]
    enum Answer {
        AbsurdLength,
        GarbageBody,
        WrongCorrelationId,
        Close,
    }

    /// A broker that answers ApiVersions properly and the next request per `answer`.
    async fn fake_broker(answer: Answer) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let frame = frame::read_frame(&mut socket, 1 << 20)
                        .await
                        .unwrap()
                        .unwrap();
                    let correlation_id = i32::from_be_bytes(frame[4..8].try_into().unwrap());
                    let mut body = BytesMut::new();
                    ResponseHeader::default()
                        .with_correlation_id(correlation_id)
                        .encode(&mut body, 0)
                        .unwrap();
                    let mut response = ApiVersionsResponse::default();
                    for key in [ApiKey::ApiVersions, ApiKey::Metadata] {
                        response.api_keys.push(
                            ApiVersion::default()
                                .with_api_key(key as i16)
                                .with_min_version(0)
                                .with_max_version(12),
                        );
                    }
                    response.encode(&mut body, 3).unwrap();
                    let mut out = BytesMut::new();
                    out.put_i32(body.len() as i32);
                    out.extend_from_slice(&body);
                    socket.write_all(&out).await.unwrap();

                    let mut size = [0u8; 4];
                    if socket.read_exact(&mut size).await.is_err() {
                        return;
                    }
                    let mut request = vec![0u8; i32::from_be_bytes(size) as usize];
                    socket.read_exact(&mut request).await.unwrap();
                    let correlation_id = i32::from_be_bytes(request[4..8].try_into().unwrap());
                    let reply: Vec<u8> = match answer {
                        Answer::AbsurdLength => i32::MAX.to_be_bytes().to_vec(),
                        Answer::GarbageBody => {
                            let mut v = 12i32.to_be_bytes().to_vec();
                            v.extend_from_slice(&correlation_id.to_be_bytes());
                            v.extend_from_slice(&[0xff; 8]);
                            v
                        }
                        Answer::WrongCorrelationId => {
                            let mut v = 4i32.to_be_bytes().to_vec();
                            v.extend_from_slice(&(correlation_id + 1000).to_be_bytes());
                            v
                        }
                        Answer::Close => Vec::new(),
                    };
                    let _ = socket.write_all(&reply).await;
                    // Keep the socket open until the client gives up on it.
                    let mut rest = Vec::new();
                    let _ = socket.read_to_end(&mut rest).await;
                });
            }
        });
        addr
    }

    async fn metadata_through(answer: Answer) -> (Error, Connection) {
        let addr = fake_broker(answer).await;
        let config = ClientConfig::new(&addr)
            .unwrap()
            .with_request_timeout(Duration::from_secs(5));
        let conn = Connection::connect(&addr, "fake".into(), &config)
            .await
            .unwrap();
        let version = conn.version(ApiKey::Metadata, 1..=12).unwrap();
        let err = conn
            .request(&MetadataRequest::default(), version)
            .await
            .unwrap_err();
        (err, conn)
    }

    #[test]
    fn tls_verifies_the_host_part_of_the_address() {
        assert_eq!(host_of("broker.example.com:9093"), "broker.example.com");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9093"), "::1");
    }

    #[tokio::test]
    async fn absurd_frame_length_resets_the_connection() {
        let (err, conn) = metadata_through(Answer::AbsurdLength).await;
        assert!(err.to_string().contains("exceeds the maximum"), "{err}");
        assert!(conn.is_closed());
    }

    #[tokio::test]
    async fn undecodable_body_is_an_error_naming_the_api_and_resets() {
        let (err, conn) = metadata_through(Answer::GarbageBody).await;
        assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains("API key 3"), "{err}");
        assert!(conn.is_closed());
    }

    #[tokio::test]
    async fn unknown_correlation_id_resets() {
        let (err, conn) = metadata_through(Answer::WrongCorrelationId).await;
        assert!(err.to_string().contains("unknown correlation id"), "{err}");
        assert!(conn.is_closed());
    }

    #[tokio::test]
    async fn broker_closing_mid_request_fails_it_as_retriable() {
        let (err, _conn) = metadata_through(Answer::Close).await;
        assert!(err.is_retriable(), "{err:?}");
    }

    #[tokio::test]
    async fn unsupported_api_is_a_clear_error() {
        let addr = fake_broker(Answer::Close).await;
        let config = ClientConfig::new(&addr).unwrap();
        let conn = Connection::connect(&addr, "fake".into(), &config)
            .await
            .unwrap();
        let err = conn.version(ApiKey::Produce, 3..=12).unwrap_err();
        assert!(
            err.to_string().contains("does not support Produce"),
            "{err}"
        );
        assert!(conn.version(ApiKey::Metadata, 13..=20).is_err());
    }
}
