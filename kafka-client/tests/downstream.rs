//! What a user's project gets (issue 20 item 5): a fresh Cargo project outside this workspace,
//! depending on the checkout's kafka-client, testkit and streams by path, must resolve our
//! bounded copy of kafka-protocol (vendor/kafka-protocol, package `kafka-protocol-bounded`)
//! and never the registry's `kafka-protocol`, whose array decoders allocate from unchecked
//! counts; built, it must reject the hostile frames of the fuzz corpus (`fuzz/seeds/*/hostile-*`)
//! with errors. A `[patch]` in our workspace would not reach such a project.
//!
//! The downstream program is `downstream/app.rs`, also compiled here and run in-process.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "downstream/app.rs"]
mod app;

fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The same check in this workspace's build, cheap enough for every run.
#[test]
fn hostile_seeds_are_rejected_in_process() {
    let lines = app::check_hostile_seeds(&checkout().join("fuzz/seeds")).unwrap();
    assert!(lines.len() >= 5, "{lines:#?}");
}

/// The target directory of the downstream build: `downstream/` under this build's target
/// directory, kept between runs so that only the first compiles the dependencies. (Not this
/// build's own directory: cargo holds its lock while the tests run.)
fn downstream_target_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => checkout().join(dir), // join keeps an absolute path as it is
        None => checkout().join("target"),
    };
    target.join("downstream")
}

fn cargo(project: &Path, args: &[&str]) -> String {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(args)
        .current_dir(project)
        .env("CARGO_TARGET_DIR", downstream_target_dir())
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "cargo {args:?} in {} failed ({}):\n{}",
        project.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
#[ignore = "builds a downstream project; .ci/run runs it"]
fn downstream_project_gets_the_bounded_protocol_crate() {
    let root = checkout();
    let project =
        std::env::temp_dir().join(format!("kafka-client-downstream-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(project.join("src")).unwrap();
    // streams is optional: `cargo tree --all-features` resolves it, the build skips it.
    let manifest = format!(
        r#"[package]
name = "downstream-check"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
bytes = "1"
kafka-client = {{ path = "{root}/kafka-client" }}
testkit = {{ path = "{root}/testkit" }}
streams = {{ path = "{root}/streams", optional = true }}

[workspace]
"#,
        root = root.display()
    );
    std::fs::write(project.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(
        root.join("kafka-client/tests/downstream/app.rs"),
        project.join("src/main.rs"),
    )
    .unwrap();
    // The checkout's lock file: the same versions as our builds, so --offline needs nothing
    // that is not already downloaded (cargo drops the entries this project does not use).
    std::fs::copy(root.join("Cargo.lock"), project.join("Cargo.lock")).unwrap();

    let tree = cargo(
        &project,
        &[
            "tree",
            "--offline",
            "--all-features",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ],
    );
    let protocol: Vec<&str> = tree
        .lines()
        .filter(|line| line.starts_with("kafka-protocol"))
        .collect();
    let bounded = format!(
        "kafka-protocol-bounded v0.18.0 ({})",
        root.join("vendor/kafka-protocol").display()
    );
    assert!(
        protocol.iter().all(|line| line.starts_with(&bounded)) && !protocol.is_empty(),
        "the downstream project must resolve only {bounded}, got: {protocol:#?}"
    );
    assert!(tree.contains("streams v"), "streams was resolved:\n{tree}");

    cargo(&project, &["build", "--offline", "--quiet"]);
    let binary = downstream_target_dir().join("debug/downstream-check");
    // Address space capped at 4 GiB: an allocation sized by a hostile count fails (and aborts
    // the process) whatever the machine's memory and overcommit settings.
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 4194304 && exec "$0" "$1""#)
        .arg(&binary)
        .arg(root.join("fuzz/seeds"))
        .output()
        .expect("run the downstream program");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the downstream program failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout
            .lines()
            .filter(|l| l.starts_with("rejected "))
            .count()
            >= 5
    );
    std::fs::remove_dir_all(&project).unwrap();
}
