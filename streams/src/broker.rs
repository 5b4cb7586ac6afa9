//! Broker URLs: `kafka://h1:9092,h2:9092`, `PLAINTEXT://h:9092`, plain `h:9092`, or `mock://`
//! for an embedded in-process mock cluster.

use std::fmt;

use crate::error::{Error, Result};

/// Where the app's Kafka is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerUrl {
    /// Real brokers, as `host:port` bootstrap addresses.
    Kafka(Vec<String>),
    /// An embedded mock cluster started with the app (`mock://`, with the `mock` cargo
    /// feature); gone when the app stops.
    #[cfg(feature = "mock")]
    Mock,
}

impl BrokerUrl {
    /// Parses a broker URL.
    ///
    /// ```
    /// use streams::BrokerUrl;
    /// assert_eq!(
    ///     BrokerUrl::parse("kafka://a:9092,b:9093").unwrap(),
    ///     BrokerUrl::Kafka(vec!["a:9092".into(), "b:9093".into()])
    /// );
    /// assert!(BrokerUrl::parse("ssl://a:9092").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<Self> {
        let trimmed = url.trim();
        if let Some(rest) = trimmed.strip_prefix("mock://") {
            if !rest.trim_end_matches('/').is_empty() {
                return Err(Error::config(format!(
                    "broker {url:?}: mock:// takes no address (it starts its own)"
                )));
            }
            #[cfg(feature = "mock")]
            return Ok(BrokerUrl::Mock);
            #[cfg(not(feature = "mock"))]
            return Err(Error::config(format!(
                "broker {url:?}: the embedded mock cluster needs the `mock` feature of the streams crate (streams = {{ features = [\"mock\"] }})"
            )));
        }
        kafka_client::config::parse_bootstrap(trimmed)
            .map(BrokerUrl::Kafka)
            .map_err(|e| {
                Error::config(format!(
                    "broker {url:?}: {e}; use kafka://host:port[,host:port] or mock://"
                ))
            })
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "mock")]
            BrokerUrl::Mock => f.write_str("mock://"),
            BrokerUrl::Kafka(hosts) => write!(f, "kafka://{}", hosts.join(",")),
        }
    }
}
