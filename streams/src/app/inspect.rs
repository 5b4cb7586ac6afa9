//! What operators read of an app from outside its workers (the CLI's `status` and `tables
//! --key/--partition`): the group with every worker's readiness, asked of its web server, and
//! a table's entries decoded, from this machine's store or, while a worker holds that store,
//! from the worker that owns the partition (through its advertised web server).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::App;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::runtime::{GroupStatus, Readiness};
use crate::table::{Part, TableCore};
use crate::web::peer::{self, Failure};
use stores::StoreUrl;

/// How long `status` waits for a worker's `/ready`, and `tables` for a worker's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// Where [`App::table_entry`] and [`App::table_entries`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadFrom {
    /// This machine's store (no worker holds it).
    Store,
    /// The web server of the worker that owns the partition (a worker holds this machine's
    /// store).
    Worker {
        /// Its advertised `host:port`.
        endpoint: String,
    },
}

/// A table's entries, decoded with its codecs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TableEntries {
    /// The table.
    pub table: String,
    /// Where they were read.
    pub from: ReadFrom,
    /// `(partition, key, value)`, in key-bytes order; an entry that does not decode is
    /// `{"undecodable": reason}`.
    pub entries: Vec<(i32, Value, Value)>,
    /// Whether the partition has more entries than were asked for.
    pub more: bool,
}

impl App {
    /// The app's consumer group now, as operators see it (the CLI's `status`): members with
    /// their partitions, standby numbers and advertised endpoints, the lag of every source
    /// partition, and every table partition's holder and recovery state, asked of its
    /// worker's web server `/ready` (`unknown` when it advertises none or does not answer
    /// within 2 s). Needs no running worker.
    pub async fn status(&self) -> Result<GroupStatus> {
        let status = self.status_without_readiness().await?;
        let asks = status.members.iter().filter_map(|m| {
            let endpoint = m.endpoint.clone()?;
            let id = m.member_id.clone();
            Some(async move { (id, readiness(&endpoint).await) })
        });
        let ready: BTreeMap<String, Readiness> =
            futures::future::join_all(asks).await.into_iter().collect();
        Ok(status.with_readiness(ready))
    }

    /// The value of `key` (the key codec's text, as in `/table/<name>/<key>/`) in table
    /// `table`, decoded: from this machine's store, or while a worker holds it, from the
    /// worker owning the key's partition (a store in memory: from that worker, the local
    /// store being empty). [`Error::KeyDoesNotDecode`] names the key codec;
    /// [`Error::KeyNotFound`] when the key has no value; [`Error::StoreHeld`] when a worker
    /// holds the store and no owner's web server answers.
    pub async fn table_entry(&self, table: &str, key: &str) -> Result<TableEntries> {
        let core = self.table_core(table)?;
        let bytes = key.as_bytes();
        if let Err(reason) = core.render_json(Part::Key, bytes) {
            return Err(Error::KeyDoesNotDecode {
                table: table.to_owned(),
                key: key.to_owned(),
                codec: core.spec().key_serializer().to_owned(),
                reason,
            });
        }
        let partition = core.partition_of(bytes);
        let not_found = || Error::KeyNotFound {
            table: table.to_owned(),
            key: key.to_owned(),
        };
        let path = format!("/table/{table}/{}/", peer::key_segment(&key.into()));
        let Some((endpoint, answer)) = self.source(&core, partition, &path).await? else {
            let value = core
                .store()?
                .get(partition, bytes)
                .map_err(|e| core.store_error(&[partition], e))?
                .ok_or_else(not_found)?;
            return Ok(TableEntries {
                table: table.to_owned(),
                from: ReadFrom::Store,
                entries: vec![(
                    partition,
                    rendered(&core, Part::Key, bytes),
                    rendered(&core, Part::Value, &value),
                )],
                more: false,
            });
        };
        let body = match answer.status {
            200 => json_body(table, &endpoint, &answer.body)?,
            404 => return Err(not_found()),
            status => return Err(bad_answer(table, &endpoint, status, &answer.body)),
        };
        Ok(TableEntries {
            table: table.to_owned(),
            from: ReadFrom::Worker { endpoint },
            entries: vec![(partition, body["key"].clone(), body["value"].clone())],
            more: false,
        })
    }

    /// Up to `limit` entries of partition `partition` of table `table`, decoded, in key-bytes
    /// order: from this machine's store, or while a worker holds it, from the worker owning
    /// the partition (`/table/<name>/?partition=N&limit=L`, at most 1000), as for a store in
    /// memory.
    pub async fn table_entries(
        &self,
        table: &str,
        partition: i32,
        limit: usize,
    ) -> Result<TableEntries> {
        let core = self.table_core(table)?;
        let count = core.spec().partition_count();
        if !(0..count).contains(&partition) {
            return Err(Error::NoSuchPartition {
                table: table.to_owned(),
                partition,
                count,
            });
        }
        let path = format!("/table/{table}/?partition={partition}&limit={limit}");
        let Some((endpoint, answer)) = self.source(&core, partition, &path).await? else {
            let failed = |e| core.store_error(&[partition], e);
            let mut entries = Vec::new();
            let mut more = false;
            for entry in core.store()?.iter(partition).map_err(failed)? {
                let (k, v) = entry.map_err(failed)?;
                if entries.len() == limit {
                    more = true;
                    break;
                }
                entries.push((
                    partition,
                    rendered(&core, Part::Key, &k),
                    rendered(&core, Part::Value, &v),
                ));
            }
            return Ok(TableEntries {
                table: table.to_owned(),
                from: ReadFrom::Store,
                entries,
                more,
            });
        };
        if answer.status != 200 {
            return Err(bad_answer(table, &endpoint, answer.status, &answer.body));
        }
        let body = json_body(table, &endpoint, &answer.body)?;
        let items = body["items"].as_array().cloned().unwrap_or_default();
        Ok(TableEntries {
            table: table.to_owned(),
            from: ReadFrom::Worker { endpoint },
            entries: items
                .into_iter()
                .map(|i| (partition, i["key"].clone(), i["value"].clone()))
                .collect(),
            more: !body["next"].is_null(),
        })
    }

    /// Where `partition` of `core` is read: `None` this machine's store (then open), or the
    /// answer to `path` of the worker owning it, when a worker holds the store. A store in
    /// memory holds nothing outside its worker: the owner is asked first, and the (empty)
    /// local store read only when none answers.
    async fn source(
        &self,
        core: &TableCore,
        partition: i32,
        path: &str,
    ) -> Result<Option<(String, peer::Response)>> {
        let decls = &self.inner.decls;
        let url = core.spec().store_url().unwrap_or(&decls.store);
        if matches!(url, StoreUrl::Memory) {
            if let Ok(answer) = self.ask_owner(partition, path).await {
                return Ok(Some(answer));
            }
            crate::runtime::open_stores(decls)?;
            return Ok(None);
        }
        match crate::runtime::open_stores(decls) {
            Ok(()) => Ok(None),
            Err(Error::StoreHeld { path: held }) => match self.ask_owner(partition, path).await {
                Ok(answer) => Ok(Some(answer)),
                Err(why) => {
                    tracing::warn!(
                        table = core.name(),
                        partition,
                        "a worker holds the store and cannot be asked: {why}"
                    );
                    Err(Error::StoreHeld { path: held })
                }
            },
            Err(e) => Err(e),
        }
    }

    fn table_core(&self, table: &str) -> Result<Arc<TableCore>> {
        let tables = self.inner.decls.tables();
        tables
            .iter()
            .find(|t| t.name() == table)
            .cloned()
            .ok_or_else(|| Error::UnknownTable {
                table: table.to_owned(),
                known: tables.iter().map(|t| t.name().to_owned()).collect(),
            })
    }

    /// GETs `path` from the web server of the worker owning `partition`, as the group's
    /// assignment names it; the error says why no owner could be asked.
    async fn ask_owner(
        &self,
        partition: i32,
        path: &str,
    ) -> std::result::Result<(String, peer::Response), String> {
        let status = self
            .status_without_readiness()
            .await
            .map_err(|e| format!("cannot read the group: {e}"))?;
        let owner = status
            .members
            .iter()
            .find(|m| m.active.iter().any(|tp| tp.partition == partition))
            .ok_or("no worker in the group holds the partition")?;
        let advertised = owner.endpoint.clone().ok_or_else(|| {
            format!(
                "worker {} advertises no web server (application_server)",
                owner.member_id
            )
        })?;
        let endpoint = advertised
            .parse::<Endpoint>()
            .map_err(|e| format!("worker {}: {e}", owner.member_id))?;
        match peer::get(&endpoint, path, ASK_TIMEOUT).await {
            Ok(answer) => Ok((advertised, answer)),
            Err(Failure::Unavailable(why) | Failure::Malformed(why)) => Err(format!(
                "the web server at {advertised} does not answer: {why}"
            )),
        }
    }

    async fn status_without_readiness(&self) -> Result<GroupStatus> {
        self.connect().await?;
        crate::runtime::group_status(&self.inner.decls, self.conn()?).await
    }
}

/// Bytes decoded with the table's codecs as JSON, or `{"undecodable": reason}`.
fn rendered(core: &TableCore, part: Part, bytes: &[u8]) -> Value {
    core.render_json(part, bytes)
        .unwrap_or_else(|reason| serde_json::json!({ "undecodable": reason }))
}

/// A worker's answer as JSON.
fn json_body(table: &str, endpoint: &str, body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| Error::PeerResponse {
        table: table.to_owned(),
        endpoint: endpoint.to_owned(),
        reason: format!("the body is not JSON: {e}"),
    })
}

/// A worker's answer other than the one asked for: its `error` field when it has one.
fn bad_answer(table: &str, endpoint: &str, status: u16, body: &[u8]) -> Error {
    let said = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|b| b["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    Error::PeerResponse {
        table: table.to_owned(),
        endpoint: endpoint.to_owned(),
        reason: format!("status {status}: {said}"),
    }
}

/// A worker's readiness, from its web server's `/ready`.
async fn readiness(endpoint: &str) -> Readiness {
    let unknown = |reason: String| Readiness::Unknown { reason };
    let parsed = match endpoint.parse::<Endpoint>() {
        Ok(e) => e,
        Err(e) => return unknown(e.to_string()),
    };
    let answer = match peer::get(&parsed, "/ready", ASK_TIMEOUT).await {
        Ok(a) => a,
        Err(Failure::Unavailable(why) | Failure::Malformed(why)) => {
            return unknown(format!("{endpoint}: {why}"))
        }
    };
    let Ok(body) = serde_json::from_slice::<Value>(&answer.body) else {
        return unknown(format!(
            "{endpoint}: /ready answered {} without JSON",
            answer.status
        ));
    };
    if let Some(error) = body["error"].as_str() {
        return unknown(format!("{endpoint}: {error}"));
    }
    if answer.status == 200 && body["ready"] == Value::Bool(true) {
        return Readiness::Ready;
    }
    let recovering = body["recovering"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|r| {
                    Some((
                        r["table"].as_str()?.to_owned(),
                        r["partition"].as_i64()? as i32,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Readiness::NotReady {
        state: body["state"].as_str().unwrap_or_default().to_owned(),
        recovering,
    }
}
