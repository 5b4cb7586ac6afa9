//! Broker URLs: `kafka://h1:9092,h2:9092`, `PLAINTEXT://h:9092`, plain `h:9092`, `ssl://`,
//! `sasl_ssl://`, `sasl_plaintext://`, or `mock://` for an embedded in-process mock cluster.

use std::fmt;

use kafka_client::SecurityProtocol;

use crate::error::{Error, Result};

/// Where the app's Kafka is.
///
/// Non-exhaustive: `Mock` exists only with the `mock` feature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerUrl {
    /// Real brokers, as `host:port` bootstrap addresses, reached with `security` (TLS and
    /// SASL settings: [`AppBuilder::broker_tls`](crate::AppBuilder::broker_tls) and
    /// [`broker_credentials`](crate::AppBuilder::broker_credentials)).
    Kafka {
        /// Bootstrap addresses, `host:port`, in the order given.
        hosts: Vec<String>,
        /// Kafka's security protocol, from the URL's scheme (`kafka://` is plaintext).
        security: SecurityProtocol,
    },
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
    /// use kafka_client::SecurityProtocol;
    /// assert_eq!(
    ///     BrokerUrl::parse("kafka://a:9092,b:9093").unwrap(),
    ///     BrokerUrl::Kafka {
    ///         hosts: vec!["a:9092".into(), "b:9093".into()],
    ///         security: SecurityProtocol::Plaintext,
    ///     }
    /// );
    /// let tls = BrokerUrl::parse("sasl_ssl://a:9093").unwrap();
    /// assert_eq!(tls.to_string(), "sasl_ssl://a:9093");
    /// assert!(BrokerUrl::parse("http://a:9092").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<Self> {
        let trimmed = url.trim();
        if let Some(rest) = trimmed.strip_prefix("mock://") {
            if !rest.trim_end_matches('/').is_empty() {
                return Err(Error::MockBroker {
                    url: url.to_owned(),
                    reason: "mock:// takes no address (it starts its own)",
                });
            }
            #[cfg(feature = "mock")]
            return Ok(BrokerUrl::Mock);
            #[cfg(not(feature = "mock"))]
            return Err(Error::MockBroker {
                url: url.to_owned(),
                reason: "the embedded mock cluster needs the `mock` feature of the streams crate (streams = { features = [\"mock\"] })",
            });
        }
        kafka_client::config::parse_broker_url(trimmed)
            .map(|(security, hosts)| BrokerUrl::Kafka { hosts, security })
            .map_err(|source| Error::BrokerUrl { source })
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "mock")]
            BrokerUrl::Mock => f.write_str("mock://"),
            BrokerUrl::Kafka { hosts, security } => {
                let scheme = match security {
                    SecurityProtocol::Plaintext => "kafka",
                    SecurityProtocol::Ssl => "ssl",
                    SecurityProtocol::SaslPlaintext => "sasl_plaintext",
                    SecurityProtocol::SaslSsl => "sasl_ssl",
                };
                write!(f, "{scheme}://{}", hosts.join(","))
            }
        }
    }
}
