//! How the harness's apps and its own producer reach the mock cluster.

use testkit::MockCluster;

use crate::app::App;
use crate::error::Result;

/// A client configuration for the cluster.
pub(super) fn client(cluster: &MockCluster) -> Result<kafka_client::ClientConfig> {
    Ok(kafka_client::ClientConfig::new(&cluster.bootstrap())?)
}

/// Points an app (before it starts) at the cluster.
pub(super) fn attach(app: &App, cluster: &MockCluster) -> Result<()> {
    app.set_broker(&format!("kafka://{}", cluster.bootstrap()))
}
