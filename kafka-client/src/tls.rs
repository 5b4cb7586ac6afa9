//! TLS for broker connections: rustls with graviola's crypto provider by default, which builds
//! no C (pure Rust plus assembly embedded through Rust; chosen by measurement, see
//! benches/TLS.md). Graviola needs a CPU from about 2013 on (x86_64 with AES-NI, PCLMULQDQ,
//! AVX2, BMI1/2 and ADX; aarch64 with AES, SHA2 and PMULL); on another, connecting is a clear
//! error, and [`TlsConfig::with_crypto_provider`] takes any other rustls provider.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::{Error, Result};

/// The rustls crypto provider type, for [`TlsConfig::with_crypto_provider`].
pub use rustls::crypto::CryptoProvider as RustlsCryptoProvider;

/// The fields a rustls configuration is built from (the provider by identity).
type BuiltFrom = (Option<PathBuf>, Option<(PathBuf, PathBuf)>, bool, usize);
type BuiltCache = Arc<Mutex<Option<(BuiltFrom, Arc<rustls::ClientConfig>)>>>;

/// How to verify brokers and, for mutual TLS, how to present this client.
///
/// ```no_run
/// # use kafka_client::{ClientConfig, TlsConfig};
/// let config = ClientConfig::new("ssl://broker.example.com:9093")
///     .unwrap()
///     .with_tls(TlsConfig::new().with_ca_file("/etc/kafka/ca.pem"));
/// ```
#[derive(Clone, Default)]
pub struct TlsConfig {
    /// PEM file of the CA certificates to trust. Without it, the Mozilla root set built into
    /// the binary (webpki-roots) is trusted: a static binary needs no system certificate store.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain and PKCS#8/PKCS#1/SEC1 PEM key of this client (mutual TLS).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Name to verify the broker certificates against, instead of each broker's host name.
    pub server_name: Option<String>,
    /// Accepts any broker certificate. For tests against throwaway brokers only: anyone on the
    /// path can read and change the traffic. Every connection it affects logs a warning.
    pub danger_accept_invalid_certs: bool,
    /// The crypto rustls uses; `None` for graviola (see [`default_crypto_provider`]).
    crypto_provider: Option<Arc<CryptoProvider>>,
    /// The rustls configuration, built from the above on first use and shared by clones;
    /// rebuilt if the fields it was built from changed.
    built: BuiltCache,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("server_name", &self.server_name)
            .field(
                "danger_accept_invalid_certs",
                &self.danger_accept_invalid_certs,
            )
            .field(
                "crypto_provider",
                &if self.crypto_provider.is_some() {
                    "supplied"
                } else {
                    "graviola (default)"
                },
            )
            .finish()
    }
}

impl TlsConfig {
    /// Verifies brokers against the built-in Mozilla roots, no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the CA certificates of a PEM file (and only those).
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Presents this certificate chain and key to brokers that ask (mutual TLS).
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// Verifies every broker's certificate against `name` rather than its host.
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Accepts any certificate (tests only: the connection is encrypted but not authenticated).
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.danger_accept_invalid_certs = accept;
        self
    }

    /// Uses this rustls crypto provider instead of graviola: for a CPU graviola does not
    /// support, or to use the provider the rest of a program uses.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use kafka_client::TlsConfig;
    /// # use kafka_client::tls::{default_crypto_provider, RustlsCryptoProvider};
    /// // Any `rustls::crypto::CryptoProvider` works, for instance
    /// // `rustls_rustcrypto::provider()` or `rustls::crypto::ring::default_provider()`.
    /// let provider: Arc<RustlsCryptoProvider> = default_crypto_provider().unwrap();
    /// let tls = TlsConfig::new().with_crypto_provider(provider);
    /// ```
    pub fn with_crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.crypto_provider = Some(provider);
        self
    }

    fn built_from(&self) -> BuiltFrom {
        (
            self.ca_file.clone(),
            self.client_cert.clone(),
            self.danger_accept_invalid_certs,
            self.crypto_provider
                .as_ref()
                .map_or(0, |p| Arc::as_ptr(p) as usize),
        )
    }

    fn rustls_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        let from = self.built_from();
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((was, config)) = built.as_ref() {
            if *was == from {
                return Ok(config.clone());
            }
        }
        let config = Arc::new(self.build()?);
        *built = Some((from, config.clone()));
        Ok(config)
    }

    fn build(&self) -> Result<rustls::ClientConfig> {
        let provider = match &self.crypto_provider {
            Some(provider) => provider.clone(),
            None => default_crypto_provider()?,
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_config_error(format!("no usable TLS version: {e}")))?;
        let builder = if self.danger_accept_invalid_certs {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        match &self.client_cert {
            None => Ok(builder.with_no_client_auth()),
            Some((cert, key)) => {
                let chain = read_certs(cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    tls_config_error(format!(
                        "cannot read the private key {}: {e}",
                        key.display()
                    ))
                })?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    tls_config_error(format!(
                        "the client certificate {} and its key do not work together: {e}",
                        cert.display()
                    ))
                })
            }
        }
    }

    fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Some(path) => {
                for cert in read_certs(path)? {
                    roots.add(cert).map_err(|e| {
                        tls_config_error(format!("bad CA certificate in {}: {e}", path.display()))
                    })?;
                }
            }
        }
        Ok(roots)
    }

    /// Opens TLS over `tcp` (a TCP socket or a connector's stream) to `host` (the broker's
    /// host name or IP), labelled `broker`.
    pub(crate) async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        tcp: S,
        host: &str,
        broker: &str,
    ) -> Result<TlsStream<S>> {
        let config = self.rustls_config()?;
        let name = self.server_name.as_deref().unwrap_or(host);
        if self.danger_accept_invalid_certs {
            tracing::warn!(
                broker,
                server_name = name,
                "TLS certificate verification is off (TlsConfig::danger_accept_invalid_certs): \
                 the connection is encrypted but anyone on the path can read and change it"
            );
        }
        let server_name = ServerName::try_from(name.to_owned()).map_err(|e| {
            tls_config_error(format!("{name:?} is not a valid TLS server name: {e}"))
        })?;
        TlsConnector::from(config)
            .connect(server_name, tcp)
            .await
            .map_err(|e| handshake_error(e, broker, name))
    }
}

/// Graviola's rustls provider, the default, after checking that this CPU has the instructions
/// it needs: without them graviola would panic on first use, so this is an error that says
/// how to choose another provider ([`TlsConfig::with_crypto_provider`]).
pub fn default_crypto_provider() -> Result<Arc<CryptoProvider>> {
    let missing = missing_cpu_features();
    if !missing.is_empty() {
        return Err(unsupported_cpu(&missing));
    }
    Ok(Arc::new(rustls_graviola::default_provider()))
}

/// The CPU features graviola requires that this CPU lacks (graviola checks the same list).
fn missing_cpu_features() -> Vec<&'static str> {
    #[cfg(target_arch = "x86_64")]
    let features = [
        ("aes", std::arch::is_x86_feature_detected!("aes")),
        (
            "pclmulqdq",
            std::arch::is_x86_feature_detected!("pclmulqdq"),
        ),
        ("avx", std::arch::is_x86_feature_detected!("avx")),
        ("avx2", std::arch::is_x86_feature_detected!("avx2")),
        ("bmi1", std::arch::is_x86_feature_detected!("bmi1")),
        ("bmi2", std::arch::is_x86_feature_detected!("bmi2")),
        ("adx", std::arch::is_x86_feature_detected!("adx")),
    ];
    #[cfg(target_arch = "aarch64")]
    let features = [
        ("neon", std::arch::is_aarch64_feature_detected!("neon")),
        ("aes", std::arch::is_aarch64_feature_detected!("aes")),
        ("pmull", std::arch::is_aarch64_feature_detected!("pmull")),
        ("sha2", std::arch::is_aarch64_feature_detected!("sha2")),
    ];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let features: [(&'static str, bool); 0] = [];
    features
        .into_iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| name)
        .collect()
}

fn unsupported_cpu(missing: &[&str]) -> Error {
    tls_config_error(format!(
        "this CPU lacks {} that the default crypto provider (graviola) needs: supply another \
         rustls CryptoProvider with TlsConfig::with_crypto_provider (for instance \
         rustls-rustcrypto's, pure Rust)",
        missing.join(", ")
    ))
}

fn tls_config_error(reason: String) -> Error {
    Error::InvalidTls { reason }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            tls_config_error(format!(
                "cannot read PEM certificates from {}: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(tls_config_error(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// A failed handshake: a rustls error is about trust or protocol and will not fix itself;
/// anything else is the network.
fn handshake_error(e: std::io::Error, broker: &str, name: &str) -> Error {
    match failure(&e, name) {
        Some(reason) => Error::Tls {
            broker: broker.to_owned(),
            reason,
        },
        None => Error::Io {
            broker: broker.to_owned(),
            source: e,
        },
    }
}

/// What a TLS failure means and what to do about it, when `e` is one (and not the network).
/// With TLS 1.3 a broker refuses a client certificate after the client's handshake is done,
/// so this also reads errors of an open connection.
pub(crate) fn failure(e: &std::io::Error, name: &str) -> Option<String> {
    let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    let hint = match tls {
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
            "the broker's certificate is not signed by a trusted CA: set TlsConfig::ca_file to the CA that signed it".to_owned()
        }
        rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the broker's certificate is not valid for the name {name:?}: connect by a name the certificate lists, or set TlsConfig::server_name"
        ),
        rustls::Error::InvalidCertificate(_) => {
            "the broker's certificate was refused".to_owned()
        }
        rustls::Error::AlertReceived(alert) => format!(
            "the broker refused the handshake ({alert:?}); if it requires mutual TLS, set TlsConfig::client_cert"
        ),
        _ => "TLS handshake failed".to_owned(),
    };
    Some(format!("{hint} ({tls})"))
}

/// Accepts any certificate but still checks that the handshake is signed by its key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../testkit/certs")
            .join(name)
    }

    #[test]
    fn files_are_read_once_and_again_when_the_settings_change() {
        let mut tls = TlsConfig::new().with_ca_file(cert("ca.pem"));
        let first = tls.rustls_config().unwrap();
        assert!(Arc::ptr_eq(&first, &tls.rustls_config().unwrap()));
        tls.ca_file = Some(cert("no-such-file.pem"));
        let err = tls.rustls_config().unwrap_err();
        assert!(err.to_string().contains("no-such-file.pem"), "{err}");
    }

    #[test]
    fn a_supplied_crypto_provider_is_the_one_used() {
        let graviola = default_crypto_provider().expect("this CPU runs graviola");
        // A provider without cipher suites cannot make a configuration: proof it is used.
        let empty = Arc::new(CryptoProvider {
            cipher_suites: Vec::new(),
            ..(*graviola).clone()
        });
        let mut tls = TlsConfig::new()
            .with_ca_file(cert("ca.pem"))
            .with_crypto_provider(empty);
        assert!(tls.rustls_config().is_err());
        tls = tls.with_crypto_provider(graviola.clone());
        let config = tls.rustls_config().unwrap();
        assert!(Arc::ptr_eq(config.crypto_provider(), &graviola));
        assert!(format!("{tls:?}").contains("supplied"));
    }

    #[test]
    fn a_cpu_graviola_cannot_run_on_gets_an_error_that_says_what_to_do() {
        assert!(
            missing_cpu_features().is_empty(),
            "{:?}",
            missing_cpu_features()
        );
        let err = unsupported_cpu(&["avx2", "adx"]).to_string();
        assert!(err.contains("lacks avx2, adx"), "{err}");
        assert!(err.contains("TlsConfig::with_crypto_provider"), "{err}");
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_a_clear_error() {
        let tls = TlsConfig::new()
            .with_ca_file(cert("ca.pem"))
            .with_client_cert(cert("client.pem"), cert("server.key"));
        let err = tls.rustls_config().unwrap_err();
        assert!(err.to_string().contains("do not work together"), "{err}");
    }
}
