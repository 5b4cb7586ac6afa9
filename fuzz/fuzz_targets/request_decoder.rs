//! Decodes arbitrary bytes as a request frame body, as the mock broker does for every client:
//! header, then the body for that API key and version. Must return errors, never panic or
//! allocate from an unchecked length.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = testkit::decode_request(bytes::Bytes::copy_from_slice(data));
});
