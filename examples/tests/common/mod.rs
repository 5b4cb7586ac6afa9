//! Running a built example as a user would. `cargo test` builds the examples first, into
//! target/<profile>/examples/.
#![allow(dead_code)]

pub mod worker;

use std::path::PathBuf;
use std::process::Command;

pub fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let path = deps.parent().unwrap().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run through `cargo test`, which builds examples",
        path.display()
    );
    path
}

/// Runs an example; returns (stdout, stderr).
pub fn run(name: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(example(name))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{name} failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

pub fn lines<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.starts_with(prefix)).collect()
}
