//! Feeds arbitrary bytes to `frame::decode_response` for Metadata, Produce, Fetch (and its
//! record sets), ListOffsets, ApiVersions, FindCoordinator, JoinGroup and OffsetFetch at every
//! version, and to `response_correlation_id`. See `kafka-client/tests/record_fuzz_bodies.rs`.
#![no_main]

#[path = "../../kafka-client/tests/record_fuzz_bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::response_frame(data));
