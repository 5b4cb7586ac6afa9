//! How the harness's apps and its own producer reach the mock cluster: through the cluster's
//! connector (in-memory pipes for the harness's own cluster, so no socket is opened and
//! tokio's paused clock only moves when every task waits).

use testkit::MockCluster;

use crate::app::App;
use crate::error::Result;

/// A client configuration for the cluster.
pub(super) fn client(cluster: &MockCluster) -> Result<kafka_client::ClientConfig> {
    Ok(kafka_client::ClientConfig::new(&cluster.bootstrap())?.with_connector(cluster.connector()))
}

/// Points an app (before it starts) at the cluster.
pub(super) fn attach(app: &App, cluster: &MockCluster) -> Result<()> {
    app.use_mock(cluster)
}
