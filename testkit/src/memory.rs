//! The in-memory transport: brokers reached through [`MemoryConnector`] over
//! `tokio::io::duplex` pipes instead of TCP listeners, so that a whole application can run
//! against the mock with no sockets, on tokio's paused clock.
//!
//! Each connect spawns the ordinary per-connection server on the broker's side of a new pipe.
//! Stopping a broker aborts its connection tasks (the client sees its pipe close) and refuses
//! new connects until it restarts; closing the network (the cluster dropped) does both for
//! every broker, for good.

use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use kafka_client::{BoxedStream, Connector};
use tokio::task::AbortHandle;

use crate::connection;
use crate::error::{Error, Result};
use crate::handlers::Ctx;
use crate::state::Shared;

/// Bytes each direction of a pipe buffers before the writer waits for the reader: large
/// enough that a full fetch or produce batch never waits halfway.
const PIPE_BYTES: usize = 1 << 20;

/// The port every in-memory broker advertises, as a default Kafka listener does.
pub(crate) const PORT: u16 = 9092;

/// The host an in-memory broker advertises in Metadata and FindCoordinator.
pub(crate) fn host(id: i32) -> String {
    format!("mock-broker-{id}")
}

/// The in-memory brokers of one cluster and their live connections.
#[derive(Clone)]
pub(crate) struct MemoryNet {
    net: Arc<Mutex<Net>>,
    shared: Shared,
}

struct Net {
    /// Set when the cluster is dropped: every connect is refused from then on.
    closed: bool,
    brokers: Vec<Broker>,
}

struct Broker {
    id: i32,
    addr: String,
    running: bool,
    connections: Vec<AbortHandle>,
}

impl Broker {
    fn abort_connections(&mut self) {
        for c in self.connections.drain(..) {
            c.abort();
        }
    }
}

impl MemoryNet {
    /// A network with brokers `ids`, all running.
    pub(crate) fn new(shared: Shared, ids: impl IntoIterator<Item = i32>) -> Self {
        let brokers = ids
            .into_iter()
            .map(|id| Broker {
                id,
                addr: format!("{}:{PORT}", host(id)),
                running: true,
                connections: Vec::new(),
            })
            .collect();
        MemoryNet {
            net: Arc::new(Mutex::new(Net {
                closed: false,
                brokers,
            })),
            shared,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Net> {
        self.net.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every broker's `host:port`, in id order.
    pub(crate) fn addresses(&self) -> Vec<(i32, String)> {
        self.lock()
            .brokers
            .iter()
            .map(|b| (b.id, b.addr.clone()))
            .collect()
    }

    /// Stops (`running == false`: drops its connections, refuses new ones) or restarts a broker.
    pub(crate) fn set_running(&self, id: i32, running: bool) -> Result<()> {
        let mut net = self.lock();
        let b = net
            .brokers
            .iter_mut()
            .find(|b| b.id == id)
            .ok_or(Error::UnknownBroker(id))?;
        b.running = running;
        if !running {
            b.abort_connections();
        }
        Ok(())
    }

    /// Ends every connection and refuses every connect from now on.
    pub(crate) fn close(&self) {
        let mut net = self.lock();
        net.closed = true;
        for b in &mut net.brokers {
            b.abort_connections();
        }
    }

    /// Opens a pipe to the broker at `addr` and serves its far end.
    fn open(&self, addr: &str) -> std::io::Result<BoxedStream> {
        let refused = |why: String| std::io::Error::new(std::io::ErrorKind::ConnectionRefused, why);
        let mut net = self.lock();
        if net.closed {
            return Err(refused(format!(
                "{addr}: the in-memory mock cluster was dropped"
            )));
        }
        let known = net
            .brokers
            .iter()
            .map(|b| b.addr.clone())
            .collect::<Vec<_>>()
            .join(",");
        let Some(b) = net.brokers.iter_mut().find(|b| b.addr == addr) else {
            return Err(refused(format!(
                "no in-memory mock broker at {addr}: the cluster's brokers are {known}"
            )));
        };
        if !b.running {
            return Err(refused(format!(
                "in-memory mock broker {} at {addr} is stopped",
                b.id
            )));
        }
        let (client, server) = tokio::io::duplex(PIPE_BYTES);
        let ctx = Ctx {
            shared: self.shared.clone(),
            broker: b.id,
            client_host: "in-memory".into(),
        };
        let task = tokio::spawn(connection::serve(server, ctx, format!("in-memory:{addr}")));
        b.connections.retain(|c| !c.is_finished());
        b.connections.push(task.abort_handle());
        Ok(Box::new(client))
    }
}

/// The [`Connector`] of [`MockCluster::connector`](crate::MockCluster::connector): pipes to
/// the brokers of an in-memory cluster, TCP for a cluster on sockets (`None`).
#[derive(Clone)]
pub(crate) struct MemoryConnector(pub(crate) Option<MemoryNet>);

impl std::fmt::Debug for MemoryConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(net) => {
                let addrs: Vec<String> = net.addresses().into_iter().map(|(_, a)| a).collect();
                f.debug_tuple("MemoryConnector").field(&addrs).finish()
            }
            None => f.write_str("MemoryConnector(tcp)"),
        }
    }
}

impl Connector for MemoryConnector {
    fn connect(&self, addr: &str) -> BoxFuture<'static, std::io::Result<BoxedStream>> {
        let net = self.0.clone();
        let addr = addr.to_owned();
        // Opened inside the future: it runs on the client's runtime, where the server task
        // is spawned.
        Box::pin(async move {
            match net {
                Some(net) => net.open(&addr),
                None => {
                    let tcp = tokio::net::TcpStream::connect(&addr).await?;
                    tcp.set_nodelay(true)?;
                    Ok(Box::new(tcp) as BoxedStream)
                }
            }
        })
    }
}
