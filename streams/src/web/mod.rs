//! The worker's web server (Faust's `faust worker --web-port 6066`): health and readiness for
//! orchestrators, the tables' contents as JSON, an HTML overview, and the app's own pages
//! ([`App::page`](crate::App::page)).
//!
//! axum's router served by hyper's HTTP/1 connection, one task per connection, with hyper's
//! limits: a request head larger than [`MAX_HEAD`] is refused (431) and a client that does not
//! send its head within [`HEAD_TIMEOUT`] is dropped; a handler that takes longer than
//! [`REQUEST_TIMEOUT`] answers 503. A burst of connections waits in a 1024-deep accept queue
//! (std's 128 dropped a burst of idle clients' handshakes, which then hung for seconds).
//! Nothing here can stop the worker: a failing connection ends only itself; open connections
//! and connection panics are metrics.
//!
//! Layering: above the runtime (it reads the worker's partitions) and below `app`, which
//! starts it with the worker and stops it with the app.

mod html;
mod owner;
mod pages;
mod routes;
mod server;
mod view;

pub(crate) use owner::owner_of;
pub use pages::PageHandler;
pub(crate) use pages::Pages;
pub(crate) use routes::router;
pub(crate) use server::WebServer;
pub(crate) use view::View;

use std::time::Duration;

/// The largest request head (request line and headers) a connection buffers.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send a request's head (by default; tests shorten it).
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a handler may take to answer.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
