//! SASL authentication of a connection: PLAIN and SCRAM-SHA-256/512 (RFC 5802, 7677), through
//! SaslHandshake v1 and SaslAuthenticate, with the session lifetime of KIP-368.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use hmac::digest::core_api::BlockSizeUser;
use hmac::digest::Digest;
use hmac::{Mac, SimpleHmac};
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Request, StrBytes};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, KafkaCode, Result};

/// Iteration counts above this are refused: a hostile broker could otherwise make the client
/// spin for minutes. Kafka's own limit is 16384.
const MAX_SCRAM_ITERATIONS: u32 = 1 << 20;

/// Iteration counts below this are refused (RFC 7677 section 4: at least 4096): a hostile
/// broker asking for 1 would get a proof that is cheap to brute-force offline. Kafka's own
/// minimum is 4096 too.
const MIN_SCRAM_ITERATIONS: u32 = 4096;

/// A SASL mechanism this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// User name and password in the clear: only over TLS.
    Plain,
    /// Salted challenge-response with SHA-256; the password never crosses the network.
    ScramSha256,
    /// Salted challenge-response with SHA-512.
    ScramSha512,
}

impl SaslMechanism {
    /// The name Kafka uses (`sasl.mechanism`).
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl std::str::FromStr for SaslMechanism {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            _ => Err(Error::UnknownName {
                kind: "SASL mechanism",
                name: s.to_owned(),
                expected: "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
            }),
        }
    }
}

/// SASL mechanism and credentials.
///
/// The password is overwritten with zeros when the config is dropped (each clone holds its
/// own copy, wiped when that clone is dropped), and never printed by `Debug`.
///
/// ```
/// # use kafka_client::{ClientConfig, SaslConfig, TlsConfig};
/// let config = ClientConfig::new("sasl_ssl://broker:9093")
///     .unwrap()
///     .with_tls(TlsConfig::new().with_ca_file("ca.pem"))
///     .with_sasl(SaslConfig::scram_sha512("alice", "alice-secret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// The mechanism to authenticate with.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub username: String,
    /// The password (zeroized on drop).
    pub password: String,
}

impl Drop for SaslConfig {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

impl ZeroizeOnDrop for SaslConfig {}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl SaslConfig {
    /// Credentials for a mechanism.
    pub fn new(
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        SaslConfig {
            mechanism,
            username: username.into(),
            password: password.into(),
        }
    }

    /// SASL/PLAIN.
    pub fn plain(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::new(SaslMechanism::Plain, username, password)
    }

    /// SASL/SCRAM-SHA-256.
    pub fn scram_sha256(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::new(SaslMechanism::ScramSha256, username, password)
    }

    /// SASL/SCRAM-SHA-512.
    pub fn scram_sha512(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::new(SaslMechanism::ScramSha512, username, password)
    }
}

/// What the SASL exchange needs of a connection. The connection implements it, so that this
/// module (whose settings the client configuration holds) does not depend on the connection.
pub(crate) trait SaslTransport: Sync {
    /// The broker's name, for errors.
    fn broker(&self) -> &str;
    /// The highest version of `api` in `ours` the broker supports.
    fn version(&self, api: ApiKey, ours: std::ops::RangeInclusive<i16>) -> Result<i16>;
    /// Sends a request and waits for its response (not counted against in-flight limits:
    /// the exchange runs alone on the connection).
    fn send<R: Request + Sync>(
        &self,
        request: &R,
        version: i16,
    ) -> impl std::future::Future<Output = Result<R::Response>> + Send;
}

/// Authenticates `conn`; returns the session lifetime the broker granted (KIP-368), after
/// which the connection must re-authenticate or be closed by the broker.
pub(crate) async fn authenticate(
    conn: &impl SaslTransport,
    sasl: &SaslConfig,
) -> Result<Option<Duration>> {
    let mechanism = sasl.mechanism.name();
    let fail = |reason: String| Error::Authentication {
        broker: conn.broker().to_owned(),
        mechanism: mechanism.to_owned(),
        reason,
    };
    let version = conn.version(ApiKey::SaslHandshake, 1..=1)?;
    let handshake = conn
        .send(
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
            version,
        )
        .await?;
    if let Some(code) = KafkaCode::try_from_code(handshake.error_code) {
        let enabled: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
        return Err(fail(format!(
            "the broker refused the mechanism ({code}); it has enabled {enabled:?}"
        )));
    }
    let version = conn.version(ApiKey::SaslAuthenticate, 0..=2)?;
    let mut exchange = Exchange {
        conn,
        version,
        fail: &fail,
    };
    let lifetime_ms = match sasl.mechanism {
        SaslMechanism::Plain => {
            // Bytes cannot be wiped: the copy that goes to the socket is the only one kept.
            let mut message = Zeroizing::new(Vec::new());
            message.push(0);
            message.extend_from_slice(sasl.username.as_bytes());
            message.push(0);
            message.extend_from_slice(sasl.password.as_bytes());
            exchange.step(message.to_vec()).await?.session_lifetime_ms
        }
        SaslMechanism::ScramSha256 => scram::<sha2::Sha256>(&mut exchange, sasl).await?,
        SaslMechanism::ScramSha512 => scram::<sha2::Sha512>(&mut exchange, sasl).await?,
    };
    Ok((lifetime_ms > 0).then(|| Duration::from_millis(lifetime_ms as u64)))
}

/// One SaslAuthenticate round trip after another.
struct Exchange<'a, T: SaslTransport, F: Fn(String) -> Error> {
    conn: &'a T,
    version: i16,
    fail: &'a F,
}

impl<T: SaslTransport, F: Fn(String) -> Error> Exchange<'_, T, F> {
    async fn step(&mut self, message: Vec<u8>) -> Result<SaslAuthenticateResponse> {
        let response = self
            .conn
            .send(
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message)),
                self.version,
            )
            .await?;
        if let Some(code) = KafkaCode::try_from_code(response.error_code) {
            let message = response
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            let hint = if code == KafkaCode::SaslAuthenticationFailed {
                ": check the user name and password"
            } else {
                ""
            };
            return Err((self.fail)(format!("{code}: {message}{hint}")));
        }
        Ok(response)
    }
}

async fn scram<D>(
    exchange: &mut Exchange<'_, impl SaslTransport, impl Fn(String) -> Error>,
    sasl: &SaslConfig,
) -> Result<i64>
where
    D: Digest + BlockSizeUser + Clone + Sync,
{
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce)
        .map_err(|e| (exchange.fail)(format!("no randomness for the nonce: {e}")))?;
    let mut client = ScramClient::<D>::new(&sasl.username, &sasl.password, &BASE64.encode(nonce));
    let server_first = exchange.step(client.first().into_bytes()).await?;
    let client_final = client
        .final_message(&server_first.auth_bytes)
        .map_err(exchange.fail)?;
    let server_final = exchange.step(client_final.into_bytes()).await?;
    client
        .verify_server(&server_final.auth_bytes)
        .map_err(exchange.fail)?;
    Ok(server_final.session_lifetime_ms)
}

/// The client side of one SCRAM exchange (RFC 5802), without channel binding. The password
/// and the server signature are wiped on drop; the keys derived from the password (salted
/// password, client, stored and server keys) as soon as they are used.
struct ScramClient<D> {
    first_bare: String,
    nonce: String,
    password: String,
    server_signature: Option<Vec<u8>>,
    _digest: std::marker::PhantomData<D>,
}

impl<D> Drop for ScramClient<D> {
    fn drop(&mut self) {
        self.password.zeroize();
        self.server_signature.zeroize();
    }
}

impl<D> ZeroizeOnDrop for ScramClient<D> {}

impl<D: Digest + BlockSizeUser + Clone + Sync> ScramClient<D> {
    fn new(username: &str, password: &str, nonce: &str) -> Self {
        // RFC 5802 5.1: '=' and ',' in the name are escaped.
        let name = username.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            first_bare: format!("n={name},r={nonce}"),
            nonce: nonce.to_owned(),
            password: password.to_owned(),
            server_signature: None,
            _digest: std::marker::PhantomData,
        }
    }

    fn first(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// Answers the server's challenge with the proof of the password.
    fn final_message(&mut self, server_first: &[u8]) -> std::result::Result<String, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "the server's SCRAM challenge is not UTF-8".to_owned())?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("e", v)) => return Err(format!("the server refused: {v}")),
                _ => {}
            }
        }
        let malformed = || format!("malformed SCRAM challenge {server_first:?}");
        let (nonce, salt, iterations) = match (nonce, salt, iterations) {
            (Some(n), Some(s), Some(i)) => (n, s, i),
            _ => return Err(malformed()),
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's SCRAM nonce does not extend ours".to_owned());
        }
        let salt = BASE64.decode(salt).map_err(|_| malformed())?;
        let iterations: u32 = iterations.parse().map_err(|_| malformed())?;
        if iterations < MIN_SCRAM_ITERATIONS {
            return Err(format!(
                "the server asks for {iterations} SCRAM iterations, fewer than the \
                 {MIN_SCRAM_ITERATIONS} RFC 7677 requires: refused (a broker that weakens the \
                 password hash is not trusted; store the user's SCRAM credentials with at least \
                 {MIN_SCRAM_ITERATIONS} iterations)"
            ));
        }
        if iterations > MAX_SCRAM_ITERATIONS {
            return Err(format!(
                "the server asks for {iterations} SCRAM iterations (at most {MAX_SCRAM_ITERATIONS} accepted)"
            ));
        }
        let mut salted = Zeroizing::new(vec![0u8; <D as Digest>::output_size()]);
        pbkdf2::pbkdf2::<SimpleHmac<D>>(self.password.as_bytes(), &salt, iterations, &mut salted)
            .map_err(|e| format!("PBKDF2 failed: {e}"))?;
        let client_key = hmac::<D>(&salted, b"Client Key");
        let mut stored_key = D::digest(&*client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = hmac::<D>(&stored_key, auth_message.as_bytes());
        stored_key.as_mut_slice().zeroize();
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature.iter())
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac::<D>(&salted, b"Server Key");
        self.server_signature = Some(hmac::<D>(&server_key, auth_message.as_bytes()).to_vec());
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)))
    }

    /// Checks that the server, too, knows the password: a server that does not is an
    /// impostor even if it let us in.
    fn verify_server(&self, server_final: &[u8]) -> std::result::Result<(), String> {
        let text = String::from_utf8_lossy(server_final);
        if let Some(error) = text.strip_prefix("e=") {
            return Err(format!("the server refused: {error}"));
        }
        let verifier = text
            .strip_prefix("v=")
            .and_then(|v| BASE64.decode(v.split(',').next().unwrap_or(v)).ok())
            .ok_or_else(|| format!("malformed SCRAM server-final message {text:?}"))?;
        if self.server_signature.as_deref() != Some(&verifier[..]) {
            return Err(
                "the server's SCRAM signature is wrong: it does not know the password (impostor?)"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// HMAC of `data` under `key`; wiped on drop, as most of these are keys.
fn hmac<D: Digest + BlockSizeUser + Clone + Sync>(key: &[u8], data: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut mac =
        <SimpleHmac<D> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    let mut out = mac.finalize().into_bytes();
    let bytes = Zeroizing::new(out.to_vec());
    out.as_mut_slice().zeroize();
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil".
    #[test]
    fn scram_sha256_matches_rfc_7677() {
        let mut client = ScramClient::<sha2::Sha256>::new("user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            client.final_message(server_first).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .verify_server(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        let err = client
            .verify_server(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(err.contains("does not know the password"), "{err}");
    }

    #[test]
    fn scram_refuses_a_bad_challenge() {
        let mut client = ScramClient::<sha2::Sha512>::new("a,b=c", "p", "abc");
        assert_eq!(client.first(), "n,,n=a=2Cb=3Dc,r=abc");
        for (challenge, expected) in [
            (&b"r=xyz,s=AAAA,i=4096"[..], "does not extend ours"),
            (b"r=abc,s=AAAA,i=4096", "does not extend ours"),
            (b"r=abcd,s=AAAA,i=999999999", "iterations"),
            (b"r=abcd,s=AAAA,i=4095", "fewer than the 4096"),
            (b"r=abcd,i=4096", "malformed"),
            (b"e=unknown-user", "refused"),
        ] {
            let err = client.final_message(challenge).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }

    /// A hostile broker asking for one iteration would get a proof that is cheap to crack.
    #[test]
    fn scram_refuses_fewer_than_4096_iterations() {
        for iterations in [0, 1, 4095] {
            let mut client = ScramClient::<sha2::Sha256>::new("user", "pencil", "abc");
            let challenge = format!("r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i={iterations}");
            let err = client.final_message(challenge.as_bytes()).unwrap_err();
            assert!(err.contains("RFC 7677"), "{err}");
            assert!(client.server_signature.is_none());
        }
        let mut client = ScramClient::<sha2::Sha256>::new("user", "pencil", "abc");
        client
            .final_message(b"r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
    }

    #[test]
    fn passwords_and_scram_secrets_are_zeroized_on_drop() {
        fn zeroized_on_drop<T: ZeroizeOnDrop>() {}
        zeroized_on_drop::<SaslConfig>();
        zeroized_on_drop::<ScramClient<sha2::Sha512>>();
    }

    #[test]
    fn mechanisms_parse_and_passwords_stay_hidden() {
        assert_eq!(
            "scram-sha-512".parse::<SaslMechanism>().unwrap(),
            SaslMechanism::ScramSha512
        );
        assert!("GSSAPI".parse::<SaslMechanism>().is_err());
        let debug = format!("{:?}", SaslConfig::plain("u", "secret"));
        assert!(!debug.contains("secret"), "{debug}");
    }
}
