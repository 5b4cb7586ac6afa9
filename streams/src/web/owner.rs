//! Where a table partition this worker does not hold is served: the one hook the router
//! (branch `router`: the group's web addresses in its assignment metadata, and the proxy)
//! fills in. Until then no owner is known and the key routes answer 421 naming the partition.

use axum::http::Uri;

/// The web address of the worker that owns `partition` of table `table`, when known. Called
/// by `/table/<name>/<key>/` for a key whose partition is not active here.
pub(crate) fn owner_of(table: &str, partition: i32) -> Option<Uri> {
    // The router's metadata will answer here; this worker knows only its own partitions.
    let _ = (table, partition);
    None
}
