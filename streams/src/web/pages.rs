//! The app's own pages (Faust's `@app.page("/path")`), registered before the worker starts.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use futures::future::BoxFuture;

use crate::error::{Error, Result};

/// A page's handler: axum's request in, axum's response out.
pub type PageHandler = Arc<dyn Fn(Request) -> BoxFuture<'static, Response> + Send + Sync>;

/// Paths the server serves itself.
const RESERVED: &[&str] = &["/", "/health", "/ready", "/metrics", "/router"];

/// The registered pages, by path.
#[derive(Default, Clone)]
pub(crate) struct Pages {
    by_path: BTreeMap<String, PageHandler>,
}

impl Pages {
    /// Adds a page at `path`: an exact path (no `{capture}` or `*`), not one of the server's.
    pub(crate) fn add(&mut self, path: &str, handler: PageHandler) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::WebPage {
                path: path.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if !path.starts_with('/') || path.len() < 2 {
            return bad("a page path starts with '/' and names something, such as \"/counts\"");
        }
        if path.contains(['{', '}', '*', '?', '#']) || path.contains("//") {
            return bad("a page path is plain: no '{', '}', '*', '?', '#' or empty segment");
        }
        if RESERVED.contains(&path) || path == "/table" || path.starts_with("/table/") {
            return bad("the worker serves this path itself: pick another");
        }
        if self.by_path.contains_key(path) {
            return bad("a page is already registered at this path");
        }
        self.by_path.insert(path.to_owned(), handler);
        Ok(())
    }

    /// The pages, by path.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &PageHandler)> {
        self.by_path.iter()
    }
}
