//! The `mock-broker` binary with `--tls-cert/--tls-key` and `--sasl-plain`: a client with the
//! production settings (sasl_ssl://, CA file, PLAIN) gets in, a wrong password does not.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use kafka_client::admin::Admin;
use kafka_client::{ClientConfig, Error, SaslConfig, TlsConfig};

fn cert(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("certs")
        .join(name)
}

/// Kills the broker process when the test ends, passed or not.
struct Broker(std::process::Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn mock_broker_serves_sasl_plain_over_tls() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-broker"))
        .args(["--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(cert("server.pem"))
        .arg("--tls-key")
        .arg(cert("server.key"))
        .args(["--sasl-plain", "app:app-secret"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mock-broker");
    let stdout = child.stdout.take().expect("stdout");
    let broker = Broker(child);
    let mut address = String::new();
    BufReader::new(stdout)
        .read_line(&mut address)
        .expect("bootstrap address on stdout");
    let config = |password: &str| {
        ClientConfig::new(&format!("sasl_ssl://{}", address.trim()))
            .unwrap()
            .with_tls(TlsConfig::new().with_ca_file(cert("ca.pem")))
            .with_sasl(SaslConfig::plain("app", password))
    };
    let admin = Admin::new(config("app-secret"))
        .await
        .expect("authenticated");
    assert_eq!(admin.describe_cluster().await.unwrap().brokers.len(), 1);
    let Err(err) = Admin::new(config("wrong")).await else {
        panic!("a wrong password must fail");
    };
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    drop(broker);
}
