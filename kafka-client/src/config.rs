//! Connection settings shared by the producer, the consumer and the admin client.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::protocol::frame::DEFAULT_MAX_FRAME_BYTES;

/// How to reach the cluster and how patient to be with it.
///
/// ```
/// # use kafka_client::ClientConfig;
/// let config = ClientConfig::new("127.0.0.1:9092,127.0.0.1:9093")
///     .unwrap()
///     .with_client_id("billing");
/// assert_eq!(config.bootstrap.len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` addresses to learn the cluster from.
    pub bootstrap: Vec<String>,
    /// Sent with every request; shows up in broker logs and quotas.
    pub client_id: String,
    /// How long to wait for any one response before the connection is considered broken.
    pub request_timeout: Duration,
    /// Requests written to one connection before waiting for responses.
    pub max_in_flight_per_connection: usize,
    /// First delay before reconnecting to a broker; doubles up to `reconnect_backoff_max`.
    pub reconnect_backoff: Duration,
    /// Upper bound of the reconnect delay.
    pub reconnect_backoff_max: Duration,
    /// Largest response frame accepted.
    pub max_frame_bytes: usize,
}

impl ClientConfig {
    /// Settings with defaults for a comma-separated `host:port` list. A `kafka://` or
    /// `PLAINTEXT://` prefix is accepted, as Faust and Java configurations write it.
    pub fn new(bootstrap: &str) -> Result<Self> {
        Ok(ClientConfig {
            bootstrap: parse_bootstrap(bootstrap)?,
            client_id: "kafka-client-rs".to_owned(),
            request_timeout: Duration::from_secs(30),
            max_in_flight_per_connection: 5,
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
        })
    }

    /// Sets the client id sent with each request.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Sets the per-request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

/// Splits `kafka://h1:9092,h2:9092` (scheme optional) into `host:port` strings.
pub fn parse_bootstrap(url: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for part in url.split(',') {
        let part = part.trim();
        let part = part
            .split_once("://")
            .map(|(scheme, rest)| {
                if matches!(
                    scheme.to_ascii_lowercase().as_str(),
                    "kafka" | "plaintext" | "tcp"
                ) {
                    Ok(rest)
                } else {
                    Err(Error::Config(format!(
                        "unsupported scheme {scheme:?} in {url:?}: use kafka://host:port"
                    )))
                }
            })
            .transpose()?
            .unwrap_or(part)
            .trim_end_matches('/');
        if part.is_empty() {
            continue;
        }
        match part.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                out.push(part.to_owned())
            }
            _ => {
                return Err(Error::Config(format!(
                    "bootstrap address {part:?} is not host:port (in {url:?})"
                )))
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Config(format!("no broker address in {url:?}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_with_or_without_scheme() {
        assert_eq!(
            parse_bootstrap("kafka://a:1,b:2").unwrap(),
            vec!["a:1".to_owned(), "b:2".to_owned()]
        );
        assert_eq!(
            parse_bootstrap("PLAINTEXT://h:9092").unwrap(),
            vec!["h:9092".to_owned()]
        );
        assert_eq!(
            parse_bootstrap(" 127.0.0.1:9 ").unwrap(),
            vec!["127.0.0.1:9".to_owned()]
        );
    }

    #[test]
    fn rejects_what_cannot_be_an_address() {
        for bad in ["", "host", "host:port", "ssl://h:1", ":9"] {
            assert!(parse_bootstrap(bad).is_err(), "{bad}");
        }
    }
}
