//! A worker's advertised `host:port` (Kafka Streams' `application.server`): where other
//! workers reach its web server to query the tables it owns.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::error::{Error, Result};

/// A `host:port` other workers can reach this worker's web server at.
///
/// ```
/// let e: streams::Endpoint = "worker-1.internal:6066".parse()?;
/// assert_eq!((e.host(), e.port()), ("worker-1.internal", 6066));
/// assert_eq!(e.to_string(), "worker-1.internal:6066");
/// # Ok::<(), streams::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    host: String,
    port: u16,
}

impl Endpoint {
    /// The host name or address (an IPv6 address without its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    /// Reads `host:port` (`[v6addr]:port` for IPv6).
    fn from_str(s: &str) -> Result<Endpoint> {
        let invalid = |why: &str| {
            Error::invalid_setting(
                "application_server",
                format!("{s:?}"),
                format!("{why}: give host:port, e.g. \"worker-1:6066\""),
            )
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(|| invalid("no port"))?;
        let port = port
            .parse::<u16>()
            .map_err(|_| invalid("the port is not a number from 0 to 65535"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_:".contains(c);
        if host.is_empty() || !host.chars().all(allowed) {
            return Err(invalid("the host is not a name or an address"));
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// As its `host:port` text.
impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_addresses_and_refuses_the_rest() {
        let v6: Endpoint = "[::1]:80".parse().unwrap();
        assert_eq!((v6.host(), v6.to_string().as_str()), ("::1", "[::1]:80"));
        for bad in ["host", "host:", ":80", "host:99999", "a b:1", "h/x:1"] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
    }
}
