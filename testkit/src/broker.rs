//! A broker's listener: accepts connections and runs one task per connection. Aborting the
//! broker task drops its connection set, which aborts every connection and closes its socket.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::connection;
use crate::error::{Error, Result};
use crate::handlers::Ctx;
use crate::state::Shared;

/// Binds a listener on `addr`.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format!("binding {addr}"), e))
}

/// Runs the accept loop of broker `id` on its own task.
pub(crate) fn spawn(listener: TcpListener, shared: Shared, id: i32) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        tracing::trace!(broker = id, %peer, "connection accepted");
                        let ctx = Ctx { shared: shared.clone(), broker: id, client_host: peer.ip().to_string() };
                        let _ = stream.set_nodelay(true);
                        connections.spawn(connection::serve(stream, ctx, peer.to_string()));
                    }
                    Err(e) => {
                        tracing::warn!(broker = id, error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                Some(done) = connections.join_next(), if !connections.is_empty() => {
                    if let Err(e) = done {
                        if e.is_panic() {
                            tracing::error!(broker = id, error = %e, "connection task panicked");
                        }
                    }
                }
            }
        }
    })
}
