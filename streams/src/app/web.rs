//! The app's side of the worker's web server: its settings (which the CLI may change), the
//! app's pages and table routes, and starting and stopping it with the worker: it listens
//! before the worker joins its group, so that the worker advertises the port it got.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::settings::Settings;
use crate::table::Table;
use crate::web::{Bound, KeyFrom, KeyHandler, Pages, TableRoute, View, WebServer};

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

    /// Starts the web server, when it is on, answering only `/health` while the worker joins,
    /// and says which endpoint the worker advertises: the builder's `application_server`, else
    /// the web server's (`web_host`, or the bind address or host name, and the port it got).
    pub(super) async fn bind_web(&self) -> Result<Option<Endpoint>> {
        let (enabled, bind, port, head_timeout) = {
            let web = lock(&self.inner.web);
            (web.enabled, web.bind.clone(), web.port, web.head_timeout)
        };
        let explicit = self.settings().application_server.clone();
        if !enabled {
            return Ok(explicit);
        }
        let bound = Bound::bind(&bind, port).await?;
        let endpoint = match explicit {
            Some(endpoint) => endpoint,
            None => crate::web::advertised(
                self.settings().web_host.as_deref(),
                &bind,
                bound.address().port(),
            )?,
        };
        let metrics = self.inner.decls.outbox.metrics().clone();
        let server = bound.serve(crate::web::joining(), head_timeout, metrics);
        lock(&self.inner.web).server = Some(server);
        Ok(Some(endpoint))
    }

    /// Serves the worker's pages over `runtime`, when the web server runs.
    pub(super) fn start_web(&self, runtime: Arc<Runtime>) {
        let web = lock(&self.inner.web);
        let Some(server) = &web.server else {
            return;
        };
        let view = Arc::new(View {
            decls: self.inner.decls.clone(),
            runtime,
        });
        server.route(crate::web::router(view, &web.pages));
    }

    /// The endpoint this worker advertises to its group, while it runs: the builder's
    /// [`application_server`](crate::AppBuilder::application_server), else its web server's
    /// (see [`AppBuilder::web_host`](crate::AppBuilder::web_host)); `None` without either.
    pub fn application_server(&self) -> Option<Endpoint> {
        self.runtime().and_then(|r| r.endpoint.clone())
    }

    /// Serves `handler` at `path` for one key of `table` (Faust's `@app.table_route`): the key
    /// is taken from the path ([`KeyFrom::Path`], a `{capture}` of `path`) or a query
    /// parameter ([`KeyFrom::Query`]), as the text the table's key codec decodes (a `String`
    /// key as itself). The worker that owns the key's partition runs the handler, with the
    /// request and the decoded key: a request reaching another worker is forwarded to the
    /// owner and its answer relayed, or answered `307` to the owner's URL when asked with
    /// `?redirect=1`. A key that does not decode is answered 400 naming the codec; an owner
    /// that cannot be reached 503 naming it, within seconds.
    /// Only before the worker starts; [`Error::WebPage`] for a path the server serves itself,
    /// a path taken, or a [`KeyFrom::Path`] capture the path lacks.
    ///
    /// ```
    /// use axum::response::IntoResponse;
    /// use streams::{App, KeyFrom};
    ///
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = testkit::MockCluster::builder().build().await?;
    /// let app = App::builder("counter")
    ///     .broker(&format!("kafka://{}", cluster.bootstrap()))
    ///     .web_enabled(true)
    ///     .web_port(0) // a free port; the worker advertises it to the other workers
    ///     .build()?;
    /// let clicks = app.topic::<String, String>("clicks");
    /// let counts = app.table::<String, u64>("clicks_per_user")?.with_default(u64::default);
    /// let table = counts.clone();
    /// app.agent_builder("count", &clicks).table(&counts).run(move |mut clicks| {
    ///     let table = table.clone();
    ///     async move {
    ///         use futures::StreamExt;
    ///         while let Some(click) = clicks.next().await {
    ///             table.update(&*click, |n| *n += 1)?;
    ///         }
    ///         Ok::<(), streams::Error>(())
    ///     }
    /// });
    /// // GET /count/ann: "ann: 0 clicks", from whichever worker owns ann's partition.
    /// let table = counts.clone();
    /// app.table_route(&counts, "/count/{user}", KeyFrom::Path("user"), move |_request, user: String| {
    ///     let table = table.clone();
    ///     async move {
    ///         match table.get_or_default(&user) {
    ///             Ok(n) => format!("{user}: {n} clicks").into_response(),
    ///             Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    ///         }
    ///     }
    /// })?;
    /// app.start().await?;
    /// let address = app.web_address().expect("the web server runs");
    /// assert_eq!(app.application_server().map(|e| e.port()), Some(address.port()));
    /// // `start` returns once the worker has partitions; they serve once recovered (`/ready`).
    /// tokio::time::timeout(std::time::Duration::from_secs(30), async {
    ///     while !http_get(address, "/ready").await?.starts_with("HTTP/1.1 200") {
    ///         tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    ///     }
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .await??;
    /// let page = http_get(address, "/count/ann").await?;
    /// assert!(page.ends_with("ann: 0 clicks"), "{page}");
    /// app.shutdown().await?;
    /// # Ok(()) }
    /// # /// A GET on a raw connection, its whole answer as text.
    /// # async fn http_get(address: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    /// #     use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// #     let mut stream = tokio::net::TcpStream::connect(address).await?;
    /// #     let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    /// #     stream.write_all(request.as_bytes()).await?;
    /// #     let mut answer = String::new();
    /// #     stream.read_to_string(&mut answer).await?;
    /// #     Ok(answer)
    /// # }
    /// ```
    pub fn table_route<K, V, F, Fut>(
        &self,
        table: &Table<K, V>,
        path: &str,
        key: KeyFrom,
        handler: F,
    ) -> Result<()>
    where
        K: Serialize + DeserializeOwned + Send + 'static,
        V: Serialize + DeserializeOwned + 'static,
        F: Fn(Request, K) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let mut web = lock(&self.inner.web);
        if web.server.is_some() {
            return Err(Error::AlreadyRunning {
                action: "add a table route",
            });
        }
        let typed = table.clone();
        let handler: KeyHandler = Arc::new(move |request: Request, bytes: bytes::Bytes| {
            let partition = typed.core().partition_of(&bytes);
            match typed.decode_key_in(partition, &bytes) {
                Ok(key) => handler(request, key).boxed(),
                // The web server checked that it decodes: kept as an answer all the same.
                Err(e) => {
                    let answer = (StatusCode::BAD_REQUEST, e.to_string()).into_response();
                    futures::future::ready(answer).boxed()
                }
            }
        });
        let route = TableRoute {
            table: table.core().clone(),
            key,
            handler,
        };
        web.pages.add_table_route(path, route)
    }

    /// Stops the web server, if it runs.
    pub(super) async fn stop_web(&self) {
        let server = lock(&self.inner.web).server.take();
        if let Some(server) = server {
            server.stop().await;
        }
    }
}
