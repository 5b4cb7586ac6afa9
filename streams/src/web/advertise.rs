//! The endpoint a worker advertises for its web server when it is given no
//! `application_server`: `web_host` (Faust's) and the port it listens on; without `web_host`,
//! the bind address, or this machine's host name when it binds every interface (an address
//! such as `0.0.0.0` reaches nothing from another machine).

use std::net::IpAddr;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

/// Where other workers reach a web server bound to `bind` and listening on `port`.
pub(crate) fn advertised(web_host: Option<&str>, bind: &str, port: u16) -> Result<Endpoint> {
    let host = match web_host {
        Some(host) => host.to_owned(),
        None if binds_everything(bind) => machine_host_name().ok_or_else(|| {
            Error::invalid_setting(
                "web_host",
                "unset".to_owned(),
                format!(
                    "the web server binds {bind} (every interface) and this machine's host \
                     name cannot be read: give the name other workers reach this one at \
                     (AppBuilder::web_host) or an application_server"
                ),
            )
        })?,
        None => bind.to_owned(),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let text = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    text.parse().map_err(|_| {
        Error::invalid_setting(
            "web_host",
            format!("{host:?}"),
            "give a host name or an address other workers reach this one at, such as \
             \"worker-1.internal\"",
        )
    })
}

/// Whether `bind` is the unspecified address (`0.0.0.0`, `::`).
fn binds_everything(bind: &str) -> bool {
    let bare = bind.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .is_ok_and(|address| address.is_unspecified())
}

/// This machine's host name, read where Linux keeps it or from the environment (no C call).
fn machine_host_name() -> Option<String> {
    let from_file = |path: &str| std::fs::read_to_string(path).ok();
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_host_then_the_bind_address_then_the_host_name() {
        let e = advertised(Some("w1.internal"), "0.0.0.0", 80).unwrap();
        assert_eq!(e.to_string(), "w1.internal:80");
        assert_eq!(
            advertised(None, "127.0.0.1", 6066).unwrap().to_string(),
            "127.0.0.1:6066"
        );
        assert_eq!(advertised(None, "::1", 1).unwrap().to_string(), "[::1]:1");
        if let Some(name) = machine_host_name() {
            for every in ["0.0.0.0", "::", "[::]"] {
                let e = advertised(None, every, 9).unwrap();
                assert_eq!((e.host(), e.port()), (name.as_str(), 9), "{every}");
            }
        }
        let bad = advertised(Some("a b"), "127.0.0.1", 1).unwrap_err();
        assert!(bad.to_string().contains("web_host"), "{bad}");
    }
}
