//! Where a table partition this worker does not hold is served: the group's assignment
//! metadata (the router) names the owner's advertised endpoint (`application_server`).

use super::view::View;
use crate::endpoint::Endpoint;

/// The advertised endpoint of the worker that owns `partition` of table `table`, when the
/// last assignment named one. Called by `/table/<name>/<key>/` for a key whose partition is
/// not active here (answered 421 with the owner, for the caller to ask it).
pub(crate) fn owner_of(view: &View, table: &str, partition: i32) -> Option<Endpoint> {
    view.runtime
        .router()
        .table_partition(table, partition)
        .and_then(|owners| owners.active.clone())
}
