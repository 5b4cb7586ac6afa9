//! The app's side of the worker's web server: its settings (which the CLI may change), the
//! app's pages, and starting and stopping it with the worker.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use futures::FutureExt;

use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::settings::Settings;
use crate::web::{Pages, View, WebServer};

use super::{lock, App};

/// The web server's settings, pages and, while the worker runs, the server.
pub(super) struct WebState {
    enabled: bool,
    port: u16,
    bind: String,
    /// How long a client may take to send a request's head.
    head_timeout: Duration,
    pages: Pages,
    server: Option<WebServer>,
}

impl WebState {
    pub(super) fn from_settings(settings: &Settings) -> WebState {
        WebState {
            enabled: settings.web_enabled,
            port: settings.web_port,
            bind: settings.web_bind.clone(),
            head_timeout: crate::web::HEAD_TIMEOUT,
            pages: Pages::default(),
            server: None,
        }
    }
}

impl App {
    /// Serves `handler` at `path` on the worker's web server (Faust's `@app.page("/path")`):
    /// an exact path such as `"/counts"`, answered for every method. Handlers take and return
    /// axum's types (`axum::extract::Request`, `axum::response::Response`). Only before the
    /// worker starts; [`Error::WebPage`] for a path the server serves itself (`/`, `/health`,
    /// `/ready`, `/table/..`), a path with captures or wildcards, or a path given twice.
    pub fn page<F, Fut>(&self, path: &str, handler: F) -> Result<()>
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let mut web = lock(&self.inner.web);
        if web.server.is_some() {
            return Err(Error::AlreadyRunning {
                action: "add a web page",
            });
        }
        web.pages
            .add(path, Arc::new(move |request| handler(request).boxed()))
    }

    /// Turns the web server on or off and sets where it listens, before the worker starts
    /// (the CLI's `worker --web-port N --web-bind ADDR`, `--no-web`).
    pub(crate) fn set_web(&self, enabled: bool, port: Option<u16>, bind: Option<&str>) {
        let mut web = lock(&self.inner.web);
        web.enabled = enabled;
        if let Some(port) = port {
            web.port = port;
        }
        if let Some(bind) = bind {
            web.bind = bind.to_owned();
        }
    }

    /// Drops a web client that has not sent a request's head within `timeout` (default 10 s),
    /// so that a test of slow clients need not wait the default out. Only before the worker
    /// starts.
    #[cfg(feature = "testing")]
    pub fn set_web_head_timeout(&self, timeout: Duration) -> Result<()> {
        let mut web = lock(&self.inner.web);
        if web.server.is_some() {
            return Err(Error::AlreadyRunning {
                action: "change the web server's head timeout",
            });
        }
        web.head_timeout = timeout;
        Ok(())
    }

    /// The address the worker's web server listens on, while it runs (the port it picked when
    /// `web_port` is 0).
    pub fn web_address(&self) -> Option<SocketAddr> {
        lock(&self.inner.web)
            .server
            .as_ref()
            .map(WebServer::address)
    }

    /// Starts the web server over `runtime`, when it is on.
    pub(super) async fn start_web(&self, runtime: Arc<Runtime>) -> Result<()> {
        let (bind, port, router, head_timeout) = {
            let web = lock(&self.inner.web);
            if !web.enabled {
                return Ok(());
            }
            let view = Arc::new(View {
                decls: self.inner.decls.clone(),
                runtime,
            });
            (
                web.bind.clone(),
                web.port,
                crate::web::router(view, &web.pages),
                web.head_timeout,
            )
        };
        let metrics = self.inner.decls.outbox.metrics().clone();
        let server = WebServer::start(&bind, port, router, head_timeout, metrics).await?;
        lock(&self.inner.web).server = Some(server);
        Ok(())
    }

    /// Stops the web server, if it runs.
    pub(super) async fn stop_web(&self) {
        let server = lock(&self.inner.web).server.take();
        if let Some(server) = server {
            server.stop().await;
        }
    }
}
