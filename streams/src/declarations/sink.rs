//! Where an agent's results go: a topic, another agent, or a function.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Result;
use crate::topic::Topic;

/// Where an agent's results go: a topic, another agent, or a function.
pub struct Sink<T> {
    pub(super) name: String,
    pub(super) send: Arc<dyn Fn(T) -> BoxFuture<'static, Result<()>> + Send + Sync>,
}

impl<T> Clone for Sink<T> {
    fn clone(&self) -> Self {
        Sink {
            name: self.name.clone(),
            send: self.send.clone(),
        }
    }
}

impl<T: Send + 'static> Sink<T> {
    /// A sink that awaits `send` for each result.
    pub(super) fn from_async(
        name: &str,
        send: impl Fn(T) -> BoxFuture<'static, Result<()>> + Send + Sync + 'static,
    ) -> Self {
        Sink {
            name: name.to_owned(),
            send: Arc::new(send),
        }
    }

    /// A function called with each result.
    pub fn func(name: &str, f: impl Fn(T) + Send + Sync + 'static) -> Self {
        Sink {
            name: name.to_owned(),
            send: Arc::new(move |v| {
                f(v);
                futures::future::ready(Ok(())).boxed()
            }),
        }
    }
}

impl<K, T> From<&Topic<K, T>> for Sink<T>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn from(topic: &Topic<K, T>) -> Self {
        let topic = topic.clone();
        Sink {
            name: topic.name().to_owned(),
            send: Arc::new(move |v| {
                let topic = topic.clone();
                async move { topic.send_value(v).await }.boxed()
            }),
        }
    }
}
