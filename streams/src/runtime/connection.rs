//! Connecting to the brokers (or starting the embedded mock cluster for `mock://`).

use std::sync::Arc;

use kafka_client::admin::{Admin, CreateTopicsOptions, NewTopic};
use kafka_client::producer::{Producer, ProducerConfig};
use kafka_client::{ClientConfig, Connector};

use crate::broker::BrokerUrl;
use crate::declarations::Declarations;
use crate::error::{Error, Result};

/// What the app holds while connected. The producer lives in the declarations' outbox.
#[derive(Clone)]
pub(crate) struct Connection {
    pub client: ClientConfig,
    pub admin: Admin,
    /// Keeps a `mock://` cluster alive as long as the app.
    #[cfg(feature = "mock")]
    _mock: Option<std::sync::Arc<testkit::MockCluster>>,
}

impl Connection {
    /// Connects to `broker` and installs the app's producer in its outbox.
    /// With a `connector` (a test's in-memory cluster) the connections go through it
    /// instead of TCP.
    pub(crate) async fn open(
        decls: &Declarations,
        broker: &BrokerUrl,
        connector: Option<Arc<dyn Connector>>,
    ) -> Result<Connection> {
        #[cfg(feature = "mock")]
        let mut mock = None;
        let (bootstrap, security) = match broker {
            BrokerUrl::Kafka { hosts, security } => (hosts.join(","), *security),
            #[cfg(feature = "mock")]
            BrokerUrl::Mock => {
                let cluster = testkit::MockCluster::builder()
                    .default_partitions(decls.settings.topic_partitions)
                    .build()
                    .await
                    .map_err(|e| Error::MockCluster { source: e.into() })?;
                let bootstrap = cluster.bootstrap();
                tracing::info!(%bootstrap, "started an embedded mock Kafka cluster");
                mock = Some(cluster);
                (bootstrap, kafka_client::SecurityProtocol::Plaintext)
            }
        };
        let mut client = ClientConfig::new(&bootstrap)?
            .with_client_id(decls.id.clone())
            .with_default_api_timeout(decls.settings.broker_api_timeout);
        if let Some(connector) = connector {
            client = client.with_connector(connector);
        }
        client.security_protocol = security;
        if let Some(tls) = &decls.settings.broker_tls {
            client = client.with_tls(tls.clone());
        }
        if let Some(sasl) = &decls.settings.broker_credentials {
            // SASL over plain TCP only on an explicit sasl_plaintext:// (never inferred from
            // credentials being set); over TLS the credentials are protected.
            if !client.security_protocol.uses_tls() && !security.uses_sasl() {
                return Err(Error::CredentialsWithoutSasl {
                    broker: broker.to_string(),
                });
            }
            client = client.with_sasl(sasl.clone());
        }
        if security.uses_sasl() && decls.settings.broker_credentials.is_none() {
            return Err(Error::MissingCredentials {
                broker: broker.to_string(),
            });
        }
        // A broker that answered with an error was reached: that error says what is wrong.
        let unreachable = |source: kafka_client::Error| match source.code() {
            Some(_) => Error::Kafka(source),
            None => Error::Connect {
                broker: broker.to_string(),
                source,
            },
        };
        let producer = Producer::new(
            client.clone(),
            ProducerConfig::default().with_linger(decls.settings.producer_linger),
        )
        .await
        .map_err(unreachable)?;
        let admin = Admin::new(client.clone()).await.map_err(unreachable)?;
        decls.outbox.set(producer);
        decls.replies.connect(client.clone(), admin.clone());
        Ok(Connection {
            client,
            admin,
            #[cfg(feature = "mock")]
            _mock: mock.map(std::sync::Arc::new),
        })
    }

    /// Creates every declared topic that does not exist yet, then checks that each source
    /// topic exists (creation may be refused, and auto-creation off).
    pub(crate) async fn create_topics(
        &self,
        decls: &Declarations,
        sources: &[String],
    ) -> Result<()> {
        let specs = decls.catalog.all();
        for spec in &specs {
            spec.key_ser()?;
            spec.value_ser()?;
        }
        let topics: Vec<NewTopic> = specs
            .iter()
            .map(|s| {
                let mut t = NewTopic::new(
                    s.name.clone(),
                    s.partitions.unwrap_or(decls.settings.topic_partitions),
                    decls.settings.topic_replication_factor,
                );
                for (k, v) in &s.configs {
                    t = t.with_config(k.clone(), v.clone());
                }
                t
            })
            .collect();
        if !topics.is_empty() {
            let options = CreateTopicsOptions {
                ignore_existing: true,
                ..Default::default()
            };
            if let Err(e) = self.admin.create_topics_with(topics, options).await {
                tracing::warn!(error = %e, "could not create the declared topics; checking that the sources exist");
            }
        }
        for topic in sources {
            self.wait_for_leaders(topic).await?;
        }
        Ok(())
    }

    /// Creates the tables' changelog topics (compacted) and checks co-partitioning: every
    /// changelog, every topic an agent that updates a table reads, and every topic an agent
    /// joins with a (non-global) table, has the table's partition count.
    pub(crate) async fn create_changelogs(&self, decls: &Declarations) -> Result<()> {
        let cores = decls.tables().clone();
        if cores.is_empty() {
            return Ok(());
        }
        let rf = decls.settings.topic_replication_factor;
        let topics = cores
            .iter()
            .map(|c| c.spec().changelog_new_topic(rf))
            .collect();
        let options = CreateTopicsOptions {
            ignore_existing: true,
            ..Default::default()
        };
        if let Err(e) = self.admin.create_topics_with(topics, options).await {
            tracing::warn!(error = %e, "could not create the changelog topics; checking that they exist");
        }
        let mismatch = |table: &str, topic: String, found: usize, wanted: i32| {
            Err(Error::CoPartitioning {
                table: table.to_owned(),
                topic,
                found,
                wanted,
            })
        };
        for core in &cores {
            let changelog = core.spec().changelog_topic();
            self.wait_for_leaders(&changelog).await?;
            let found = self
                .admin
                .describe_topic(&changelog)
                .await?
                .partitions
                .len();
            if found != core.spec().partition_count() as usize {
                return mismatch(
                    core.name(),
                    format!("its changelog {changelog}"),
                    found,
                    core.spec().partition_count(),
                );
            }
        }
        for (join, left, right) in decls.stream_joins() {
            let left_partitions = self.admin.describe_topic(&left).await?.partitions.len();
            let right_partitions = self.admin.describe_topic(&right).await?.partitions.len();
            if left_partitions != right_partitions {
                return Err(Error::StreamJoinNotCoPartitioned {
                    join,
                    left,
                    right,
                    left_partitions,
                    right_partitions,
                });
            }
        }
        for (agent, topic, join) in decls.join_users() {
            let Some(core) = cores.iter().find(|c| c.name() == join.table) else {
                continue;
            };
            if join.global {
                if !core.spec().is_global() {
                    return Err(Error::JoinTableNotGlobal {
                        agent,
                        stream: topic,
                        table: join.table,
                    });
                }
                continue;
            }
            if core.spec().is_global() {
                continue; // every partition is on every worker
            }
            let found = self.admin.describe_topic(&topic).await?.partitions.len();
            if found != core.spec().partition_count() as usize {
                return Err(Error::JoinNotCoPartitioned {
                    agent,
                    stream: topic,
                    table: join.table,
                    stream_partitions: found,
                    table_partitions: core.spec().partition_count(),
                });
            }
        }
        for (agent, topic, table) in decls.table_users() {
            let Some(core) = cores.iter().find(|c| c.name() == table) else {
                continue;
            };
            if core.spec().is_global() {
                continue;
            }
            let found = self.admin.describe_topic(&topic).await?.partitions.len();
            if found != core.spec().partition_count() as usize {
                return mismatch(
                    &table,
                    format!("topic {topic} (read by agent {agent}, which updates it)"),
                    found,
                    core.spec().partition_count(),
                );
            }
        }
        Ok(())
    }

    /// Waits until `topic` has partitions and each has a leader: a topic created a moment ago
    /// may not yet, and a group assigned then would leave its partitions out until the next
    /// metadata check.
    async fn wait_for_leaders(&self, topic: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut pause = std::time::Duration::from_millis(10);
        loop {
            match self.admin.describe_topic(topic).await {
                Ok(info)
                    if !info.partitions.is_empty()
                        && info.partitions.iter().all(|p| p.leader >= 0) =>
                {
                    return Ok(())
                }
                Ok(_) => {}
                Err(kafka_client::Error::UnknownPartition { .. }) => {
                    return Err(Error::MissingTopic {
                        topic: topic.to_owned(),
                    })
                }
                Err(e) if !e.is_retriable() => return Err(e.into()),
                Err(e) => tracing::debug!(topic, error = %e, "waiting for the topic's metadata"),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("waiting for leaders of topic {topic}"),
                    after: std::time::Duration::from_secs(30),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(500));
        }
    }
}
