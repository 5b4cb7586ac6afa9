//! Listening and serving connections, until stopped. The listener is bound before the worker
//! joins its group (the worker advertises its port) and serves at once: while the worker joins,
//! a router that answers `/health` and says "joining" to the rest; then the worker's own,
//! swapped in for every request from then on, kept-alive connections included.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tower_service::Service;

use super::{MAX_HEAD, REQUEST_TIMEOUT};
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// A running web server; stopped when dropped.
pub(crate) struct WebServer {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    /// The router every request is served by (read per request).
    routes: watch::Sender<Router>,
    task: Option<JoinHandle<()>>,
}

/// A listener bound before the worker joins its group, so that the worker can advertise the
/// port it got (`web_port` 0 picks one).
pub(crate) struct Bound {
    listener: TcpListener,
    address: SocketAddr,
}

impl Bound {
    /// Binds `bind:port`; [`Error::WebBind`] names the address when it cannot listen.
    pub(crate) async fn bind(bind: &str, port: u16) -> Result<Bound> {
        let address = if bind.contains(':') && !bind.starts_with('[') {
            format!("[{bind}]:{port}") // an IPv6 address
        } else {
            format!("{bind}:{port}")
        };
        let listener = listen(&address).await.map_err(|source| Error::WebBind {
            address: address.clone(),
            source,
        })?;
        let bound = listener
            .local_addr()
            .map_err(|source| Error::WebBind { address, source })?;
        Ok(Bound {
            listener,
            address: bound,
        })
    }

    /// The address it listens on (the port picked when 0 was asked for).
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves `router` on this listener until stopped (or [`WebServer::route`] replaces it),
    /// dropping a client that has not sent a request's head within `head_timeout`; open
    /// connections and their panics are counted in `metrics`.
    pub(crate) fn serve(
        self,
        router: Router,
        head_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> WebServer {
        let (stop, stopped) = watch::channel(false);
        let (routes, current) = watch::channel(router);
        let limits = Limits {
            head_timeout,
            metrics,
        };
        let task = tokio::spawn(accept(self.listener, current, limits, stopped));
        tracing::info!(address = %self.address, "web server listening");
        WebServer {
            address: self.address,
            stop,
            routes,
            task: Some(task),
        }
    }
}

impl WebServer {
    /// Serves every request from now on with `router`.
    pub(crate) fn route(&self, router: Router) {
        // The router it replaces serves the requests already running, then goes.
        drop(self.routes.send_replace(router));
    }

    /// The address it listens on (the port picked when 0 was asked for).
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops listening and drops every open connection.
    pub(crate) async fn stop(mut self) {
        self.stop.send_replace(true);
        // Nothing else reads the flag: the accept loop ends on any change.
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Connections the kernel queues until the server accepts them. A burst (scrapes, a flood of
/// clients) waits here; past it the kernel drops the handshake's last packet, and the client,
/// connected on its side, waits seconds for retransmissions. std's and tokio's default is 128;
/// the kernel caps it at `net.core.somaxconn`.
const BACKLOG: u32 = 1024;

/// Listens on `address` (a host name or an IP address, with its port), the first of its
/// addresses that binds, with [`BACKLOG`].
async fn listen(address: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(address).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // As std and tokio do: rebind at once after a restart (never over a listening socket).
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "the address resolves to no IP address",
        )
    }))
}

/// What every connection is held to, and where it is counted.
#[derive(Clone)]
struct Limits {
    head_timeout: Duration,
    metrics: Arc<Metrics>,
}

/// Counts a connection as open until dropped (its task ended, panicked or was aborted).
struct Open(prometheus_client::metrics::gauge::Gauge);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Accepts connections until stopped; dropping the set ends the open ones.
async fn accept(
    listener: TcpListener,
    routes: watch::Receiver<Router>,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    let open = limits.metrics.web_connections();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // `changed` ends too when the server is dropped (a stop).
            _ = stopped.changed() => break,
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                // A handler's panic ends only its connection; it is counted and logged.
                if let Err(e) = ended {
                    if e.is_panic() {
                        limits.metrics.web_connection_panicked();
                        tracing::error!(error = %e, "web server: a connection's task panicked");
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    open.inc();
                    let counted = Open(open.clone());
                    let (routes, head_timeout) = (routes.clone(), limits.head_timeout);
                    connections.spawn(async move {
                        let _counted = counted;
                        serve(stream, routes, head_timeout).await;
                    });
                }
                // Out of file descriptors, say: the listener stays, the next accept may work.
                Err(e) => {
                    tracing::warn!(error = %e, "web server: cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Serves one connection with hyper's limits; its failure ends only it.
async fn serve(
    stream: tokio::net::TcpStream,
    routes: watch::Receiver<Router>,
    head_timeout: Duration,
) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut router = routes.borrow().clone();
        async move {
            let answer = tokio::time::timeout(REQUEST_TIMEOUT, router.call(request)).await;
            Ok::<_, Infallible>(match answer {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => super::routes::timed_out(),
            })
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "web server: connection ended");
    }
}
