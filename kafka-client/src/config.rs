//! Connection settings shared by the producer, the consumer and the admin client.

use std::time::Duration;

use std::sync::Arc;

use crate::connector::Connector;
use crate::error::{Error, Result, UrlProblem};
use crate::protocol::frame::DEFAULT_MAX_FRAME_BYTES;
use crate::sasl::SaslConfig;
use crate::tls::TlsConfig;

/// How connections to brokers are secured, as Kafka's `security.protocol` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// Plain TCP (`kafka://`, `PLAINTEXT://`).
    #[default]
    Plaintext,
    /// TLS (`ssl://`, `SSL://`).
    Ssl,
    /// SASL authentication over plain TCP (`sasl_plaintext://`).
    SaslPlaintext,
    /// SASL authentication over TLS (`sasl_ssl://`).
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether connections use TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// Kafka's name of the protocol (`SASL_SSL`), as `security.protocol` takes it.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    fn from_scheme(scheme: &str) -> Option<Self> {
        Some(match scheme.to_ascii_lowercase().as_str() {
            "kafka" | "plaintext" | "tcp" => SecurityProtocol::Plaintext,
            "ssl" | "kafka+ssl" => SecurityProtocol::Ssl,
            "sasl_plaintext" => SecurityProtocol::SaslPlaintext,
            "sasl_ssl" => SecurityProtocol::SaslSsl,
            _ => return None,
        })
    }

    fn with_tls(self, sasl: bool) -> Self {
        match self {
            SecurityProtocol::Plaintext | SecurityProtocol::Ssl if !sasl => SecurityProtocol::Ssl,
            _ => SecurityProtocol::SaslSsl,
        }
    }

    /// SASL joins TLS; plain TCP stays plain: SASL over plain TCP is only ever chosen by an
    /// explicit `sasl_plaintext://`, never inferred from credentials being set.
    fn with_sasl(self) -> Self {
        match self {
            SecurityProtocol::Ssl | SecurityProtocol::SaslSsl => SecurityProtocol::SaslSsl,
            other => other,
        }
    }
}

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
    /// How long an admin operation keeps retrying while the cluster settles (a leader being
    /// elected or moving, a controller change, a new topic's partitions not loaded yet), as
    /// Java's `default.api.timeout.ms`; 60 s. Other retriable errors, such as a topic the
    /// metadata does not show, still give up after a few attempts.
    pub default_api_timeout: Duration,
    /// Requests written to one connection before waiting for responses.
    pub max_in_flight_per_connection: usize,
    /// First delay before reconnecting to a broker; doubles up to `reconnect_backoff_max`.
    pub reconnect_backoff: Duration,
    /// Upper bound of the reconnect delay.
    pub reconnect_backoff_max: Duration,
    /// Largest response frame accepted.
    pub max_frame_bytes: usize,
    /// Plain TCP, TLS, SASL or both; set by the URL scheme, [`ClientConfig::with_tls`] and
    /// [`ClientConfig::with_sasl`] (which adds SASL to TLS, but never to plain TCP: that takes
    /// a `sasl_plaintext://` URL).
    pub security_protocol: SecurityProtocol,
    /// TLS settings; when TLS is on and this is `None`, the built-in Mozilla roots are trusted.
    pub tls: Option<TlsConfig>,
    /// SASL mechanism and credentials; required when the protocol uses SASL.
    pub sasl: Option<SaslConfig>,
    /// Opens the streams to brokers instead of TCP (see [`ClientConfig::with_connector`]);
    /// `None`, the default, connects over TCP.
    pub connector: Option<Arc<dyn Connector>>,
}

impl ClientConfig {
    /// Settings with defaults for a comma-separated `host:port` list. A `kafka://` or
    /// `PLAINTEXT://` prefix is accepted, as Faust and Java configurations write it; `ssl://`,
    /// `sasl_ssl://` and `sasl_plaintext://` set the [`SecurityProtocol`] (SASL then needs
    /// [`ClientConfig::with_sasl`]).
    pub fn new(bootstrap: &str) -> Result<Self> {
        let (security_protocol, bootstrap) = parse_broker_url(bootstrap)?;
        Ok(ClientConfig {
            bootstrap,
            security_protocol,
            tls: None,
            sasl: None,
            connector: None,
            client_id: "kafka-client-rs".to_owned(),
            request_timeout: Duration::from_secs(30),
            default_api_timeout: Duration::from_secs(60),
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

    /// Sets how long admin operations retry while the cluster settles
    /// ([`default_api_timeout`](Self::default_api_timeout)).
    pub fn with_default_api_timeout(mut self, timeout: Duration) -> Self {
        self.default_api_timeout = timeout;
        self
    }

    /// Opens every connection with `connector` instead of TCP: bootstrap and advertised
    /// broker addresses go to [`Connector::connect`], and the Kafka protocol (TLS and SASL as
    /// configured) runs over the stream it returns. For in-memory transports in tests, such
    /// as `testkit`'s in-memory mock cluster.
    pub fn with_connector(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connector = Some(connector);
        self
    }

    /// Connects over TLS with these settings (SSL, or SASL_SSL with SASL).
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self.security_protocol = self.security_protocol.with_tls(self.sasl.is_some());
        self
    }

    /// Authenticates every connection with SASL: SASL_SSL with TLS (an `ssl://` or
    /// `sasl_ssl://` URL, or [`ClientConfig::with_tls`]), SASL_PLAINTEXT only with an explicit
    /// `sasl_plaintext://` URL. Credentials on a plain `kafka://` URL are a configuration
    /// error when connecting, not a silent switch to sending them over plain TCP.
    ///
    /// ```
    /// # use kafka_client::{ClientConfig, SaslConfig};
    /// let config = ClientConfig::new("sasl_plaintext://broker:9092")
    ///     .unwrap()
    ///     .with_sasl(SaslConfig::scram_sha512("alice", "alice-secret"));
    /// ```
    pub fn with_sasl(mut self, sasl: SaslConfig) -> Self {
        self.sasl = Some(sasl);
        self.security_protocol = self.security_protocol.with_sasl();
        self
    }

    /// Checks that the security settings are complete.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.security_protocol.uses_sasl() && self.sasl.is_none() {
            return Err(Error::MissingSaslCredentials {
                protocol: self.security_protocol.name(),
            });
        }
        if !self.security_protocol.uses_sasl() && self.sasl.is_some() {
            return Err(Error::SaslWithoutSaslProtocol {
                protocol: self.security_protocol.name(),
            });
        }
        Ok(())
    }
}

/// Splits a broker URL into its security protocol and `host:port` addresses:
/// `sasl_ssl://h1:9093,h2:9093` or `h1:9092` (plain TCP). The scheme of the first address
/// applies to all; another scheme on a later one is an error.
///
/// ```
/// # use kafka_client::config::{parse_broker_url, SecurityProtocol};
/// let (protocol, hosts) = parse_broker_url("ssl://a:9093,b:9093").unwrap();
/// assert_eq!(protocol, SecurityProtocol::Ssl);
/// assert_eq!(hosts, ["a:9093", "b:9093"]);
/// ```
pub fn parse_broker_url(url: &str) -> Result<(SecurityProtocol, Vec<String>)> {
    let invalid = |reason| Error::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let mut protocol = None;
    let mut plain = Vec::new();
    for part in url.split(',') {
        let part = part.trim();
        let rest = match part.split_once("://") {
            None => part,
            Some((scheme, rest)) => {
                let this = SecurityProtocol::from_scheme(scheme).ok_or_else(|| {
                    invalid(UrlProblem::UnsupportedScheme {
                        scheme: scheme.to_owned(),
                    })
                })?;
                if protocol.is_some_and(|p| p != this) {
                    return Err(invalid(UrlProblem::MixedSchemes));
                }
                protocol = Some(this);
                rest
            }
        };
        plain.push(rest);
    }
    let addresses = parse_bootstrap(&plain.join(",")).map_err(|e| match e {
        // Name the URL as the caller wrote it, not its scheme-less rewrite.
        Error::InvalidUrl { reason, .. } => invalid(reason),
        other => other,
    })?;
    Ok((protocol.unwrap_or_default(), addresses))
}

/// Splits `kafka://h1:9092,h2:9092` (scheme optional) into `host:port` strings.
pub fn parse_bootstrap(url: &str) -> Result<Vec<String>> {
    let invalid = |reason| Error::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
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
                    Err(invalid(match SecurityProtocol::from_scheme(scheme) {
                        Some(_) => UrlProblem::SecureScheme {
                            scheme: scheme.to_owned(),
                        },
                        None => UrlProblem::UnsupportedScheme {
                            scheme: scheme.to_owned(),
                        },
                    }))
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
                return Err(invalid(UrlProblem::NotHostPort {
                    address: part.to_owned(),
                }))
            }
        }
    }
    if out.is_empty() {
        return Err(invalid(UrlProblem::NoAddress));
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
    fn security_schemes_set_the_protocol() {
        for (url, protocol) in [
            ("h:1", SecurityProtocol::Plaintext),
            ("PLAINTEXT://h:1", SecurityProtocol::Plaintext),
            ("SSL://h:1,ssl://g:2", SecurityProtocol::Ssl),
            ("sasl_ssl://h:1,g:2", SecurityProtocol::SaslSsl),
            ("SASL_PLAINTEXT://h:1", SecurityProtocol::SaslPlaintext),
        ] {
            assert_eq!(parse_broker_url(url).unwrap().0, protocol, "{url}");
        }
        assert!(parse_broker_url("ssl://h:1,kafka://g:2").is_err());
        assert!(parse_broker_url("https://h:1").is_err());
        let config = ClientConfig::new("sasl_ssl://h:1").unwrap();
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("with_sasl"));
        let config = ClientConfig::new("h:1")
            .unwrap()
            .with_tls(TlsConfig::new())
            .with_sasl(SaslConfig::plain("u", "p"));
        assert_eq!(config.security_protocol, SecurityProtocol::SaslSsl);
        config.validate().unwrap();
        let config = ClientConfig::new("h:1")
            .unwrap()
            .with_sasl(SaslConfig::plain("u", "p"))
            .with_tls(TlsConfig::new());
        assert_eq!(config.security_protocol, SecurityProtocol::SaslSsl);
        config.validate().unwrap();
    }

    /// Credentials on a plain URL do not make it SASL_PLAINTEXT: that would send a PLAIN
    /// password in the clear because a setting was filled in.
    #[test]
    fn credentials_never_turn_a_plaintext_url_into_sasl() {
        for url in ["h:1", "kafka://h:1", "PLAINTEXT://h:1"] {
            let config = ClientConfig::new(url)
                .unwrap()
                .with_sasl(SaslConfig::plain("u", "p"));
            assert_eq!(
                config.security_protocol,
                SecurityProtocol::Plaintext,
                "{url}"
            );
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("sasl_plaintext://"), "{err}");
        }
        let config = ClientConfig::new("sasl_plaintext://h:1")
            .unwrap()
            .with_sasl(SaslConfig::plain("u", "p"));
        assert_eq!(config.security_protocol, SecurityProtocol::SaslPlaintext);
        config.validate().unwrap();
        let config = ClientConfig::new("ssl://h:1")
            .unwrap()
            .with_sasl(SaslConfig::scram_sha256("u", "p"));
        assert_eq!(config.security_protocol, SecurityProtocol::SaslSsl);
    }

    #[test]
    fn rejects_what_cannot_be_an_address() {
        for bad in ["", "host", "host:port", "ssl://h:1", ":9"] {
            assert!(parse_bootstrap(bad).is_err(), "{bad}");
        }
    }
}
