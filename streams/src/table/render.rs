//! A table's entries as JSON without its types: what the worker's web pages show. Set by the
//! typed [`Table`](super::Table) when it is declared, from its codecs.

use std::sync::Arc;

/// Which half of an entry bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// Key bytes, decoded with the table's key codec.
    Key,
    /// Value bytes, decoded with the table's value codec.
    Value,
}

/// Decodes key or value bytes with the table's codecs and renders them as JSON; the error is
/// why they do not decode.
pub(crate) type Render =
    Arc<dyn Fn(Part, &[u8]) -> Result<serde_json::Value, String> + Send + Sync>;
