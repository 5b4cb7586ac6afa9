//! Decodes arbitrary bytes as a record set: every batch, every record, the decompressors and
//! the broker's in-place edits. See `kafka-client/tests/record_fuzz_bodies.rs`.
#![no_main]

#[path = "../../kafka-client/tests/record_fuzz_bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::record_batch(data));
