//! What runs on each value before the agent sees it: processors (sync or async) and filters.

use std::sync::Arc;

use futures::future::BoxFuture;

/// A processor run on each value before the agent sees it (Faust's `processors=[...]`).
pub type Processor<V> = Arc<dyn Fn(V) -> V + Send + Sync>;

/// One processing step, in declaration order.
pub(crate) enum Step<V> {
    /// A processor.
    Map(Processor<V>),
    /// An asynchronous processor (Faust's `async def` processors).
    Async(Arc<dyn Fn(V) -> BoxFuture<'static, V> + Send + Sync>),
    /// Keeps the values for which it is true; the others are done at once.
    Filter(Arc<dyn Fn(&V) -> bool + Send + Sync>),
}

impl<V> Clone for Step<V> {
    fn clone(&self) -> Self {
        match self {
            Step::Map(f) => Step::Map(f.clone()),
            Step::Async(f) => Step::Async(f.clone()),
            Step::Filter(f) => Step::Filter(f.clone()),
        }
    }
}
