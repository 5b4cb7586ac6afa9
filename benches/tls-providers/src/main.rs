//! `tls-providers CERT_DIR`: handshakes per second and bulk MB/s of each rustls crypto
//! provider compiled in, client and server in one process talking through memory.
//!
//! CERT_DIR holds `ca.pem`, `server.pem`, `server.key` (see benches/TLS.md for how they are
//! made). The server name is `localhost`.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

fn providers() -> Vec<(&'static str, CryptoProvider)> {
    #[allow(unused_mut)]
    let mut all = vec![
        ("graviola", rustls_graviola::default_provider()),
        ("rustcrypto", rustls_rustcrypto::provider()),
    ];
    #[cfg(feature = "ring")]
    all.push(("ring (C/asm)", rustls::crypto::ring::default_provider()));
    #[cfg(feature = "aws-lc")]
    all.push((
        "aws-lc-rs (C)",
        rustls::crypto::aws_lc_rs::default_provider(),
    ));
    all
}

struct Configs {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

fn configs(
    provider: CryptoProvider,
    dir: &Path,
    version: &'static rustls::SupportedProtocolVersion,
) -> Configs {
    // One cipher suite for all, so bulk figures compare the same algorithm.
    let mut provider = provider;
    provider
        .cipher_suites
        .retain(|s| format!("{:?}", s.suite()).contains("AES_128_GCM"));
    let provider = Arc::new(provider);
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(dir.join("ca.pem")).expect("ca.pem") {
        roots.add(ca.expect("ca.pem")).expect("CA certificate");
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .expect("server.pem")
        .collect::<Result<_, _>>()
        .expect("server.pem");
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("server.key");
    let mut client = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[version])
        .expect("protocol version")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Every handshake a full one: a Kafka client opens few, long-lived connections.
    client.resumption = rustls::client::Resumption::disabled();
    let server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .expect("protocol version")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate");
    Configs {
        client: Arc::new(client),
        server: Arc::new(server),
    }
}

/// Moves whatever `from` has to send into `to`.
fn pump(
    from: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl Sized>>,
    to: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl Sized>>,
    buf: &mut Vec<u8>,
) {
    buf.clear();
    while from.wants_write() {
        from.write_tls(buf).expect("write_tls");
    }
    let mut slice = &buf[..];
    while !slice.is_empty() {
        to.read_tls(&mut slice).expect("read_tls");
        to.process_new_packets().expect("process_new_packets");
    }
}

fn connect(c: &Configs) -> (ClientConnection, ServerConnection) {
    let name = ServerName::try_from("localhost").expect("name");
    let mut client = ClientConnection::new(c.client.clone(), name).expect("client");
    let mut server = ServerConnection::new(c.server.clone()).expect("server");
    let mut buf = Vec::new();
    while client.is_handshaking() || server.is_handshaking() {
        pump(&mut client, &mut server, &mut buf);
        pump(&mut server, &mut client, &mut buf);
    }
    (client, server)
}

fn handshakes(c: &Configs, budget: Duration) -> f64 {
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < budget {
        let _ = connect(c);
        n += 1;
    }
    start.elapsed().as_secs_f64() * 1e3 / f64::from(n)
}

/// Client to server, 16 KiB writes; counts encrypt + decrypt of each byte.
fn bulk(c: &Configs, total: usize) -> f64 {
    let (mut client, mut server) = connect(c);
    client.set_buffer_limit(None);
    server.set_buffer_limit(None);
    let chunk = vec![0x5au8; 16 * 1024];
    let mut sink = vec![0u8; 64 * 1024];
    let mut buf = Vec::with_capacity(1 << 20);
    let start = Instant::now();
    let mut sent = 0;
    while sent < total {
        client.writer().write_all(&chunk).expect("write");
        sent += chunk.len();
        pump(&mut client, &mut server, &mut buf);
        loop {
            match server.reader().read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("read: {e}"),
            }
        }
    }
    sent as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: tls-providers CERT_DIR");
    let dir = Path::new(&dir);
    println!("| provider | version | handshake (client+server) ms | bulk MB/s (encrypt+decrypt) | suite |");
    println!("|---|---|---|---|---|");
    for (name, provider) in providers() {
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let c = configs(provider.clone(), dir, version);
            let (client, _) = connect(&c);
            let suite = format!("{:?}", client.negotiated_cipher_suite().map(|s| s.suite()));
            let hs = handshakes(&c, Duration::from_secs(3));
            let mbs = bulk(&c, 512 << 20);
            println!(
                "| {name} | {:?} | {hs:.2} | {mbs:.0} | {suite} |",
                version.version
            );
        }
    }
}
