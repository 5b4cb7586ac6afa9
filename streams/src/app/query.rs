//! Interactive queries (Kafka Streams' IQv2, Faust's `/router/` and table views): who owns
//! which partition (every app: by partition number with tables, by topic partition without),
//! and a table key's value read here when this worker owns it, else asked of its owner's web
//! server over HTTP (`web::peer` has the client and the wire format). Workers are named by
//! the endpoint they advertise: their `application_server`, else their web server's address.
//! The web server answers the same way for a caller without Rust: any worker's
//! `/table/<name>/<key>/` is forwarded to the key's owner (`web::forward`).

use std::borrow::Borrow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::App;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::runtime::routes::{Owner, Queried, QueryOptions, Router};
use crate::table::{PartitionStatus, Table};
use crate::web::peer::{self, Failure};

/// The body of a `200` answer to `GET /table/<name>/<key>/`.
#[derive(Deserialize)]
struct Answer<V> {
    value: V,
}

impl App {
    /// Who owns which partition of the app's topics and tables, as the group's last
    /// assignment said (Faust's `/router/`): empty before the worker joined. Apps with tables
    /// hand partitions out by number (a topic's partition `p` and a table's go together);
    /// apps without route their topics' partitions as Kafka's `range` assignor placed them.
    /// Each worker is named by the endpoint it advertises
    /// ([`App::application_server`]: the builder's, else its web server's).
    pub fn router(&self) -> Router {
        self.runtime().map(|r| r.router()).unwrap_or(Router {
            generation: -1,
            ..Router::default()
        })
    }

    /// The endpoint of the worker owning `key`'s partition of `table` (this worker's own when
    /// it owns it); `None` when unknown or when the owner advertises no endpoint.
    pub fn owner_of<K, V, Q>(&self, table: &Table<K, V>, key: &Q) -> Result<Option<Endpoint>>
    where
        K: Serialize + DeserializeOwned + Borrow<Q> + 'static,
        V: Serialize + DeserializeOwned + 'static,
        Q: Serialize + ?Sized,
    {
        let partition = table.partition_of(key)?;
        if table.spec().is_global() {
            return Ok(self.application_server());
        }
        Ok(self
            .router()
            .table_partition(table.name(), partition)
            .and_then(|o| o.active.clone()))
    }

    /// The value of `key` in `table`, wherever its partition lives: read here when this worker
    /// owns it, else asked of the owner at its endpoint ([`App::router`]) within 5 s. An owner
    /// that cannot be reached is [`Error::PeerUnavailable`]; one that cannot be named
    /// [`Error::NoRoute`]; a bad answer [`Error::PeerResponse`].
    ///
    /// The query is the HTTP/1.1 request `GET /table/<table name>/<key>/` (the key: a string
    /// key as its text, any other key as its JSON, percent-encoded; `Accept:
    /// application/json`, `Connection: close`), which the owner's web server answers with
    /// `200` and the JSON body `{"key": <key>, "value": <value as JSON>}`, or `404` when the
    /// key has no value (`Ok(None)` here). The answer may be sent with `Content-Length`,
    /// chunked, or delimited by closing the connection.
    pub async fn query<K, V, Q>(&self, table: &Table<K, V>, key: &Q) -> Result<Option<V>>
    where
        K: Serialize + DeserializeOwned + Borrow<Q> + 'static,
        V: Serialize + DeserializeOwned + 'static,
        Q: Serialize + ?Sized,
    {
        Ok(self
            .query_with(table, key, QueryOptions::default())
            .await?
            .value)
    }

    /// [`query`](Self::query) with options: with [`QueryOptions::max_lag`] this worker's
    /// standby copy answers when it is at most that many changelog records behind, saving a
    /// network hop or answering while the owner is down; the answer says which copy answered
    /// and its lag. Kafka Streams (IQv2 lets a caller opt into stale stores, without a bound)
    /// and Faust (which always forwards to the owner) offer no such explicit freshness trade.
    pub async fn query_with<K, V, Q>(
        &self,
        table: &Table<K, V>,
        key: &Q,
        options: QueryOptions,
    ) -> Result<Queried<V>>
    where
        K: Serialize + DeserializeOwned + Borrow<Q> + 'static,
        V: Serialize + DeserializeOwned + 'static,
        Q: Serialize + ?Sized,
    {
        let runtime = self.runtime().ok_or(Error::NotStarted)?;
        let partition = table.partition_of(key)?;
        let core = table.core();
        if table.spec().is_global() || core.status(partition) == Some(PartitionStatus::Active) {
            return Ok(Queried::active(table.get(key)?));
        }
        if let Some(max_lag) = options.max_lag {
            if let Some(lag) = runtime.standby_lag(core, partition).await? {
                if lag <= max_lag {
                    let bytes = table.encode_key(key)?;
                    let stored = core
                        .store()?
                        .get(partition, &bytes)
                        .map_err(|e| core.store_error(&[partition], e))?;
                    let value = stored
                        .map(|v| table.decode_value_in(partition, &v))
                        .transpose()?;
                    return Ok(Queried {
                        value,
                        lag,
                        from: Owner::Standby,
                    });
                }
            }
        }
        let no_route = |reason: &str| Error::NoRoute {
            table: table.name().to_owned(),
            partition,
            reason: reason.to_owned(),
        };
        let router = runtime.router();
        let owners = router
            .table_partition(table.name(), partition)
            .ok_or_else(|| no_route("the group's assignment named no owner yet"))?;
        let endpoint = owners.active.clone().ok_or_else(|| {
            no_route(
                "its owner advertises no endpoint (neither a web server nor an application_server)",
            )
        })?;
        // Assigned here but not active yet (recovering): say so rather than ask ourselves.
        if runtime.endpoint.as_ref() == Some(&endpoint) {
            return Ok(Queried::active(table.get(key)?));
        }
        let key_json = serde_json::to_value(key).map_err(|e| Error::TableEncode {
            table: table.name().to_owned(),
            part: "key",
            reason: e.to_string(),
        })?;
        let path = format!("/table/{}/{}/", table.name(), peer::key_segment(&key_json));
        let bad = |reason: String| Error::PeerResponse {
            table: table.name().to_owned(),
            endpoint: endpoint.to_string(),
            reason,
        };
        let answer = match peer::get(&endpoint, &path, options.timeout).await {
            Ok(answer) => answer,
            Err(Failure::Unavailable(reason)) => {
                return Err(Error::PeerUnavailable {
                    table: table.name().to_owned(),
                    partition,
                    endpoint: endpoint.to_string(),
                    reason,
                })
            }
            Err(Failure::Malformed(reason)) => return Err(bad(reason)),
        };
        match answer.status {
            404 => Ok(Queried::active(None)),
            200 => {
                let Answer { value } = serde_json::from_slice::<Answer<V>>(&answer.body)
                    .map_err(|e| bad(format!("GET {path}: {e}")))?;
                Ok(Queried::active(Some(value)))
            }
            status => Err(bad(format!("GET {path}: status {status}"))),
        }
    }
}
