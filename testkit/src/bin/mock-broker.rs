//! `mock-broker`: runs a mock Kafka cluster until Ctrl-C or SIGTERM.
//!
//! Prints the bootstrap address as the first line on stdout.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use testkit::{MockCluster, MockSasl, MockTls};

/// A mock Kafka cluster on the real wire protocol.
#[derive(Debug, Parser)]
#[command(name = "mock-broker", version, about)]
struct Args {
    /// Address of the first broker; the others use the same IP and free ports.
    #[arg(long, default_value = "127.0.0.1:9092")]
    listen: SocketAddr,
    /// Number of brokers.
    #[arg(long, default_value_t = 1)]
    brokers: usize,
    /// Partitions of auto-created topics.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Do not create topics on Metadata requests.
    #[arg(long)]
    no_auto_create: bool,
    /// Smallest group session timeout accepted, in milliseconds.
    #[arg(long, default_value_t = 6000)]
    min_session_timeout_ms: u64,
    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    tls_key: Option<std::path::PathBuf>,
    /// Require SASL/PLAIN with this user (repeatable).
    #[arg(long, value_name = "USER:PASSWORD")]
    sasl_plain: Vec<String>,
    /// The finalized transaction.version feature: 2 (Kafka 4.x) or 1 (the older protocol).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i16).range(0..=2))]
    transaction_version: i16,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let mut builder = MockCluster::builder()
        .listen(args.listen)
        .brokers(args.brokers)
        .default_partitions(args.partitions)
        .auto_create_topics(!args.no_auto_create)
        .group_min_session_timeout(Duration::from_millis(args.min_session_timeout_ms))
        .transaction_version(args.transaction_version);
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        match MockTls::from_pem_files(cert, key) {
            Ok(tls) => builder = builder.tls(tls),
            Err(e) => {
                eprintln!("mock-broker: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    if !args.sasl_plain.is_empty() {
        let mut users = Vec::new();
        for user in &args.sasl_plain {
            match user.split_once(':') {
                Some((name, password)) if !name.is_empty() => users.push((name, password)),
                _ => {
                    eprintln!("mock-broker: --sasl-plain takes USER:PASSWORD, not {user:?}");
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
        builder = builder.sasl(MockSasl::plain(users));
    }
    let cluster = match builder.build().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mock-broker: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("{}", cluster.bootstrap());
    shutdown_signal().await;
    tracing::info!("shutting down");
    drop(cluster);
    std::process::ExitCode::SUCCESS
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the broker");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
