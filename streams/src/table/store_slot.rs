//! A table's store, opened when the worker starts rather than when the table is declared:
//! declarations do no I/O, so the CLI's `send`, `agents` and `topics` work beside a running
//! worker that holds the store files locked.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use stores::{RedbOptions, Store, StoreUrl};

/// Where a table's store comes from, and the store once open.
pub(crate) struct StoreSlot {
    /// The URL, file name and redb options to open with; `None` for a store given already
    /// open.
    source: Option<(StoreUrl, String, RedbOptions)>,
    opened: OnceLock<Arc<dyn Store>>,
    /// Serialises opening, so that two callers never open the same file twice.
    opening: Mutex<()>,
}

impl StoreSlot {
    /// A store to open from `url` as file `file` (`<app id>-<table>`) on first [`open`](Self::open).
    pub(crate) fn lazy(url: StoreUrl, file: String, options: RedbOptions) -> Self {
        StoreSlot {
            source: Some((url, file, options)),
            opened: OnceLock::new(),
            opening: Mutex::new(()),
        }
    }

    /// A store the caller opened.
    pub(crate) fn given(store: Arc<dyn Store>) -> Self {
        let opened = OnceLock::new();
        let _ = opened.set(store);
        StoreSlot {
            source: None,
            opened,
            opening: Mutex::new(()),
        }
    }

    /// Opens the store unless it is open already.
    pub(crate) fn open(&self) -> stores::Result<&Arc<dyn Store>> {
        if let Some(store) = self.opened.get() {
            return Ok(store);
        }
        let _guard = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = self.opened.get() {
            return Ok(store);
        }
        let (url, file, options) = self
            .source
            .as_ref()
            .expect("a slot without a source is created open");
        let store = url.open_with(file, options.clone())?;
        Ok(self.opened.get_or_init(|| store))
    }

    /// The store, if open.
    pub(crate) fn get(&self) -> Option<&Arc<dyn Store>> {
        self.opened.get()
    }
}

impl fmt::Debug for StoreSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.opened.get(), &self.source) {
            (Some(store), _) => store.fmt(f),
            (None, Some((url, file, options))) => write!(f, "{url} {file} (not open, {options:?})"),
            (None, None) => f.write_str("(no store)"),
        }
    }
}
