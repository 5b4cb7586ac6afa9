//! What the handlers read: the app's declarations and the running worker.

use std::sync::Arc;

use crate::declarations::Shared;
use crate::runtime::Runtime;

/// The declarations and the running worker, shared by every handler.
pub(crate) struct View {
    pub decls: Shared,
    pub runtime: Arc<Runtime>,
}
