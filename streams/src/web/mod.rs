//! The worker's web server (Faust's `faust worker --web-port 6066`): health and readiness for
//! orchestrators, the tables' contents as JSON, an HTML overview, the router, and the app's own
//! pages ([`App::page`](crate::App::page)) and table routes
//! ([`App::table_route`](crate::App::table_route)).
//!
//! Any worker answers for any key: `/table/<name>/<key>/` and table routes for a key whose
//! partition another worker owns are forwarded to that worker (its status and body relayed)
//! or, with `?redirect=1`, answered `307` to its URL ([`forward`]); the owner is named by the
//! group's last assignment, where every worker advertises its endpoint (its
//! `application_server`, else this server's address: [`advertised`]). A forwarded request is
//! never forwarded again; what cannot be answered is a 503 saying why.
//!
//! axum's router served by hyper's HTTP/1 connection, one task per connection, with hyper's
//! limits: a request head larger than [`MAX_HEAD`] is refused (431) and a client that does not
//! send its head within [`HEAD_TIMEOUT`] is dropped; a handler that takes longer than
//! [`REQUEST_TIMEOUT`] answers 503. A burst of connections waits in a 1024-deep accept queue
//! (std's 128 dropped a burst of idle clients' handshakes, which then hung for seconds).
//! Nothing here can stop the worker: a failing connection ends only itself; open connections
//! and connection panics are metrics. The listener is bound before the worker joins its group
//! ([`Bound`]), so that the port it got is advertised, and answers `/health` (and 503
//! "joining" to the rest) until the worker has joined.
//!
//! Layering: above the runtime (it reads the worker's partitions and router) and below `app`,
//! which starts it with the worker and stops it with the app, and which shares its HTTP
//! client ([`peer`]) for `App::query`.

mod advertise;
mod forward;
mod html;
mod pages;
pub(crate) mod peer;
mod routes;
mod server;
mod table_route;
mod view;

pub(crate) use advertise::advertised;
pub use pages::PageHandler;
pub(crate) use pages::Pages;
pub(crate) use routes::{joining, router};
pub(crate) use server::{Bound, WebServer};
pub use table_route::KeyFrom;
pub(crate) use table_route::{KeyHandler, TableRoute};
pub(crate) use view::View;

use std::time::Duration;

/// The largest request head (request line and headers) a connection buffers.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send a request's head (by default; tests shorten it).
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a handler may take to answer.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
