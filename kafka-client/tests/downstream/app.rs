//! The program that `tests/downstream.rs` copies to `src/main.rs` of a fresh Cargo project
//! outside this workspace, depending on kafka-client and testkit by path as a user's project
//! would; the same test file also runs it in-process. Its argument is the checkout's
//! `fuzz/seeds` directory. Every `hostile-*` seed there (an array count far beyond the bytes
//! that follow) must come back from kafka-client's `decode_response` or testkit's
//! `decode_request` as an error from the array-length bound; a panic, or an allocation failure
//! that aborts the process, fails the check.

use std::path::Path;

use bytes::Bytes;
use kafka_client::protocol::frame::decode_response;
use kafka_client::protocol::messages::{
    ApiVersionsRequest, FetchRequest, FindCoordinatorRequest, JoinGroupRequest, ListOffsetsRequest,
    MetadataRequest, OffsetFetchRequest, ProduceRequest,
};
use kafka_client::protocol::Request;

/// Prints one line per rejected seed; exits with status 1 if a seed decoded or was rejected
/// for another reason.
#[allow(dead_code)] // The downstream binary's entry point; unused in-process.
pub fn main() {
    let Some(seeds) = std::env::args().nth(1) else {
        eprintln!("usage: downstream-check FUZZ_SEEDS_DIR");
        std::process::exit(2);
    };
    match check_hostile_seeds(Path::new(&seeds)) {
        Ok(lines) => lines.iter().for_each(|line| println!("{line}")),
        Err(e) => {
            eprintln!("downstream-check: {e}");
            std::process::exit(1);
        }
    }
}

/// Decodes every `hostile-*` seed of the `response_frame` and `request_decoder` fuzz targets;
/// returns one line per seed ("rejected TARGET/NAME: ERROR").
pub fn check_hostile_seeds(seeds: &Path) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for target in ["response_frame", "request_decoder"] {
        let dir = seeds.join(target);
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut names: Vec<String> = entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with("hostile-"))
            .collect();
        names.sort();
        for name in names {
            let data = std::fs::read(dir.join(&name)).map_err(|e| format!("{name}: {e}"))?;
            let outcome = match target {
                "response_frame" => decode_response_seed(&data),
                _ => testkit::decode_request(Bytes::from(data))
                    .map(drop)
                    .map_err(|e| e.to_string()),
            };
            match outcome {
                Ok(()) => return Err(format!("{target}/{name} decoded; it must be rejected")),
                // The message of kafka-protocol-bounded's bound (PATCHED.md).
                Err(e) if e.contains("Array length") => {
                    lines.push(format!("rejected {target}/{name}: {e}"))
                }
                Err(e) => {
                    return Err(format!(
                        "{target}/{name} was rejected, but not by the array-length bound: {e}"
                    ))
                }
            }
        }
    }
    if lines.is_empty() {
        return Err(format!("no hostile-* seeds in {}", seeds.display()));
    }
    Ok(lines)
}

/// A `response_frame` seed: a selector byte (the API in the low 3 bits, the version offset in
/// the rest, as in `tests/record_fuzz_bodies.rs`), then the frame after its size.
fn decode_response_seed(data: &[u8]) -> Result<(), String> {
    let (&selector, frame) = data.split_first().ok_or("empty seed")?;
    let frame = Bytes::copy_from_slice(frame);
    let v = selector >> 3;
    match selector & 7 {
        0 => decode::<MetadataRequest>(frame, v),
        1 => decode::<ProduceRequest>(frame, v),
        2 => decode::<FetchRequest>(frame, v),
        3 => decode::<ListOffsetsRequest>(frame, v),
        4 => decode::<ApiVersionsRequest>(frame, v),
        5 => decode::<FindCoordinatorRequest>(frame, v),
        6 => decode::<JoinGroupRequest>(frame, v),
        _ => decode::<OffsetFetchRequest>(frame, v),
    }
}

fn decode<R: Request>(frame: Bytes, selector: u8) -> Result<(), String> {
    let range = R::VERSIONS;
    let span = i32::from(range.max) - i32::from(range.min) + 1;
    let version = range.min + (i32::from(selector) % span) as i16;
    decode_response::<R>(frame, version)
        .map(drop)
        .map_err(|e| e.to_string())
}
