//! Listener security of the mock: TLS (rustls with graviola, as the client) and SASL/PLAIN
//! with a fixed user table, so apps' tests can run with their production settings.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::{
    RequestKind, ResponseKind, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::{Error, Result};

/// A TLS listener's certificate.
#[derive(Clone)]
pub struct MockTls {
    pub(crate) acceptor: TlsAcceptor,
}

impl std::fmt::Debug for MockTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockTls")
    }
}

impl MockTls {
    /// Serves TLS with a PEM certificate chain and its PEM (PKCS#8, PKCS#1 or SEC1) key.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        Self::build(cert.as_ref(), key.as_ref(), None)
    }

    /// Like [`MockTls::from_pem_files`], and requires clients to present a certificate signed
    /// by a CA of the PEM file `client_ca` (mutual TLS, Kafka's `ssl.client.auth=required`).
    pub fn with_client_auth(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
        client_ca: impl AsRef<Path>,
    ) -> Result<Self> {
        Self::build(cert.as_ref(), key.as_ref(), Some(client_ca.as_ref()))
    }

    fn build(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self> {
        let bad = |what: String| Error::Config(format!("mock TLS: {what}"));
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|c| c.collect::<Result<Vec<_>, _>>())
            .map_err(|e| bad(format!("cannot read {}: {e}", cert.display())))?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| bad(format!("cannot read {}: {e}", key.display())))?;
        // Graviola, as the client, after the same CPU check (an error, not a panic).
        let provider =
            kafka_client::tls::default_crypto_provider().map_err(|e| bad(e.to_string()))?;
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(ca)
                    .map_err(|e| bad(format!("cannot read {}: {e}", ca.display())))?
                {
                    let c = c.map_err(|e| bad(format!("cannot read {}: {e}", ca.display())))?;
                    roots.add(c).map_err(|e| bad(e.to_string()))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| bad(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| bad(format!("certificate and key do not work together: {e}")))?;
        Ok(MockTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// SASL/PLAIN users the mock accepts, and the session lifetime it grants (KIP-368).
#[derive(Debug, Clone, Default)]
pub struct MockSasl {
    users: HashMap<String, String>,
    session_lifetime: Option<Duration>,
}

impl MockSasl {
    /// Accepts these `(user, password)` pairs with SASL/PLAIN.
    pub fn plain<U: Into<String>, P: Into<String>>(
        users: impl IntoIterator<Item = (U, P)>,
    ) -> Self {
        MockSasl {
            users: users
                .into_iter()
                .map(|(u, p)| (u.into(), p.into()))
                .collect(),
            session_lifetime: None,
        }
    }

    /// Grants sessions this lifetime: a connection must re-authenticate within it or is
    /// closed at its next request, as Kafka does with `connections.max.reauth.ms`.
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_lifetime = Some(lifetime);
        self
    }
}

/// Largest frame read from a connection that has not authenticated yet on a SASL listener,
/// as Kafka's `sasl.server.max.receive.size` (512 KiB): an unauthenticated peer cannot make
/// the broker buffer 100 MiB.
pub(crate) const MAX_UNAUTHENTICATED_FRAME_BYTES: usize = 512 * 1024;

/// Where a connection stands in the SASL exchange.
pub(crate) enum SaslState {
    /// No SASL on this listener.
    Off,
    AwaitingHandshake,
    AwaitingAuthenticate,
    Authenticated {
        expires: Option<Instant>,
    },
}

/// What to do with a request, given the SASL state.
pub(crate) enum Gate {
    /// Serve it normally.
    Pass,
    /// Answer with this response (and close afterwards when `close`).
    Answer {
        response: Box<ResponseKind>,
        close: bool,
    },
    /// Close the connection without answering.
    Close(String),
}

impl SaslState {
    pub(crate) fn new(sasl: Option<&MockSasl>) -> Self {
        if sasl.is_some() {
            SaslState::AwaitingHandshake
        } else {
            SaslState::Off
        }
    }

    /// The largest frame to read next: capped until the connection has authenticated.
    pub(crate) fn max_frame_bytes(&self, authenticated: usize) -> usize {
        match self {
            SaslState::Off | SaslState::Authenticated { .. } => authenticated,
            SaslState::AwaitingHandshake | SaslState::AwaitingAuthenticate => {
                authenticated.min(MAX_UNAUTHENTICATED_FRAME_BYTES)
            }
        }
    }

    /// Applies one request to the state.
    pub(crate) fn gate(&mut self, sasl: Option<&MockSasl>, request: &RequestKind) -> Gate {
        match (request, sasl) {
            (RequestKind::ApiVersions(_), _) => Gate::Pass,
            (RequestKind::SaslHandshake(_), None) => Gate::Answer {
                response: handshake_response(33, &[]),
                close: false,
            },
            (RequestKind::SaslAuthenticate(_), None) => {
                Gate::Close("SaslAuthenticate on a listener without SASL".into())
            }
            (RequestKind::SaslHandshake(req), Some(_)) => match self {
                SaslState::AwaitingHandshake | SaslState::Authenticated { .. } => {
                    if req.mechanism.as_str() == "PLAIN" {
                        *self = SaslState::AwaitingAuthenticate;
                        Gate::Answer {
                            response: handshake_response(0, &["PLAIN"]),
                            close: false,
                        }
                    } else {
                        Gate::Answer {
                            response: handshake_response(33, &["PLAIN"]),
                            close: true,
                        }
                    }
                }
                _ => Gate::Close("SaslHandshake out of order".into()),
            },
            (RequestKind::SaslAuthenticate(req), Some(sasl)) => {
                if !matches!(self, SaslState::AwaitingAuthenticate) {
                    return Gate::Close("SaslAuthenticate before SaslHandshake".into());
                }
                if check_plain(sasl, &req.auth_bytes) {
                    *self = SaslState::Authenticated {
                        expires: sasl.session_lifetime.map(|l| Instant::now() + l),
                    };
                    let lifetime_ms = sasl.session_lifetime.map_or(0, |l| l.as_millis() as i64);
                    Gate::Answer {
                        response: Box::new(ResponseKind::SaslAuthenticate(
                            SaslAuthenticateResponse::default()
                                .with_session_lifetime_ms(lifetime_ms),
                        )),
                        close: false,
                    }
                } else {
                    Gate::Answer {
                        response: Box::new(ResponseKind::SaslAuthenticate(
                            SaslAuthenticateResponse::default()
                                .with_error_code(58)
                                .with_error_message(Some(StrBytes::from_static_str(
                                    "Authentication failed: Invalid username or password",
                                ))),
                        )),
                        close: true,
                    }
                }
            }
            (_, None) => Gate::Pass,
            (_, Some(_)) => match self {
                SaslState::Authenticated { expires } => {
                    if expires.is_some_and(|at| Instant::now() >= at) {
                        Gate::Close("SASL session expired without re-authentication".into())
                    } else {
                        Gate::Pass
                    }
                }
                _ => Gate::Close("request before SASL authentication".into()),
            },
        }
    }
}

fn handshake_response(error_code: i16, mechanisms: &[&'static str]) -> Box<ResponseKind> {
    Box::new(ResponseKind::SaslHandshake(
        SaslHandshakeResponse::default()
            .with_error_code(error_code)
            .with_mechanisms(
                mechanisms
                    .iter()
                    .map(|m| StrBytes::from_static_str(m))
                    .collect(),
            ),
    ))
}

/// RFC 4616: `[authzid] NUL authcid NUL passwd`.
fn check_plain(sasl: &MockSasl, message: &Bytes) -> bool {
    let mut parts = message.split(|b| *b == 0);
    let (Some(_authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    match (std::str::from_utf8(user), std::str::from_utf8(password)) {
        (Ok(user), Ok(password)) => sasl.users.get(user).is_some_and(|p| p == password),
        _ => false,
    }
}
