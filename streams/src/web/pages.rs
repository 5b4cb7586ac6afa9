//! The app's own pages (Faust's `@app.page("/path")`) and table routes (Faust's
//! `@app.table_route`), registered before the worker starts. Paths are checked here, with the
//! router's own rules, so that a path axum would refuse (a conflict) is an error, not a panic.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use futures::future::BoxFuture;

use super::table_route::{KeyFrom, TableRoute};
use crate::error::{Error, Result};

/// A page's handler: axum's request in, axum's response out.
pub type PageHandler = Arc<dyn Fn(Request) -> BoxFuture<'static, Response> + Send + Sync>;

/// Paths the server serves itself.
const RESERVED: &[&str] = &["/", "/health", "/ready", "/metrics", "/router"];

/// The server's own routes, for the conflict check.
const OWN_ROUTES: &[&str] = &[
    "/",
    "/health",
    "/ready",
    "/metrics",
    "/router",
    "/router/",
    "/table/{name}",
    "/table/{name}/",
    "/table/{name}/{key}",
    "/table/{name}/{key}/",
];

/// The registered pages and table routes, by path.
#[derive(Default, Clone)]
pub(crate) struct Pages {
    by_path: BTreeMap<String, PageHandler>,
    table_routes: BTreeMap<String, TableRoute>,
}

/// The names of a path's captures, `{name}` segments; an error for a capture that is not a
/// whole segment or not a plain name.
fn captures(path: &str) -> std::result::Result<Vec<&str>, &'static str> {
    let mut names = Vec::new();
    for segment in path.split('/') {
        if !segment.contains(['{', '}']) {
            continue;
        }
        let name = segment
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("a capture is a whole segment named with letters, digits or '_', such as \"/count/{key}\"")?;
        names.push(name);
    }
    Ok(names)
}

impl Pages {
    /// Adds a page at `path`: an exact path (no `{capture}` or `*`), not one of the server's.
    pub(crate) fn add(&mut self, path: &str, handler: PageHandler) -> Result<()> {
        self.check(path, false)?;
        self.by_path.insert(path.to_owned(), handler);
        Ok(())
    }

    /// Adds a table route at `path`, which may have `{captures}`; with [`KeyFrom::Path`], one
    /// of them is the key.
    pub(crate) fn add_table_route(&mut self, path: &str, route: TableRoute) -> Result<()> {
        self.check(path, true)?;
        if let KeyFrom::Path(name) = route.key {
            let names = captures(path).unwrap_or_default();
            if !names.contains(&name) {
                return Err(Error::WebPage {
                    path: path.to_owned(),
                    reason: format!(
                        "the key is the capture {{{name}}}, and the path has none: add it, such as \"/count/{{{name}}}\""
                    ),
                });
            }
        }
        self.table_routes.insert(path.to_owned(), route);
        Ok(())
    }

    /// Whether `path` can be served: well formed, not the server's, not another page's.
    fn check(&self, path: &str, with_captures: bool) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::WebPage {
                path: path.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if !path.starts_with('/') || path.len() < 2 {
            return bad("a page path starts with '/' and names something, such as \"/counts\"");
        }
        if path.contains(['*', '?', '#']) || path.contains("//") {
            return bad("a page path has no '*', '?', '#' or empty segment");
        }
        if !with_captures && path.contains(['{', '}']) {
            return bad(
                "a page path is plain, without '{' or '}': a table route may capture its key",
            );
        }
        if let Err(reason) = captures(path) {
            return bad(reason);
        }
        if RESERVED.contains(&path) || path == "/table" || path.starts_with("/table/") {
            return bad("the worker serves this path itself: pick another");
        }
        if self.by_path.contains_key(path) || self.table_routes.contains_key(path) {
            return bad("a page is already registered at this path");
        }
        // The router's own rules: two captures of one place with different names conflict.
        let mut routes = matchit::Router::new();
        let taken = OWN_ROUTES
            .iter()
            .copied()
            .chain(self.by_path.keys().map(String::as_str))
            .chain(self.table_routes.keys().map(String::as_str));
        for taken in taken {
            // Every one of these went through this check.
            let _ = routes.insert(taken, ());
        }
        if let Err(conflict) = routes.insert(path, ()) {
            return bad(&format!("it conflicts with another page: {conflict}"));
        }
        Ok(())
    }

    /// The pages, by path.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &PageHandler)> {
        self.by_path.iter()
    }

    /// The table routes, by path.
    pub(crate) fn table_routes(&self) -> impl Iterator<Item = (&String, &TableRoute)> {
        self.table_routes.iter()
    }
}
