//! Codecs turn record keys and values into bytes and back, composed like Faust's:
//! `"json|binary"` encodes with `json`, then `binary` (and decodes in reverse).
//!
//! A codec works on a [`Payload`]: a structured value (JSON data model) or bytes, so text and
//! structure codecs compose with byte codecs in any order. `"binary|json"`, the Faust talk's
//! example, base64-encodes the value's bytes and then wraps them in a JSON string; either order
//! round-trips.
//!
//! ```
//! use streams::codec::{CodecRegistry, Serializer};
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Purchase { username: String, amount: u32 }
//!
//! let registry = CodecRegistry::default();
//! let ser = Serializer::parse("binary|json", &registry).unwrap();
//! let bytes = ser.encode(&Purchase { username: "ann".into(), amount: 3 }).unwrap();
//! assert_eq!(bytes, br#""eyJ1c2VybmFtZSI6ImFubiIsImFtb3VudCI6M30=""#);
//! let back: Purchase = ser.decode(&bytes).unwrap();
//! assert_eq!(back.amount, 3);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

mod into;

/// What flows between codecs: structured data or bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A value in the JSON data model (what `serde_json::to_value` gives).
    Value(serde_json::Value),
    /// Encoded bytes.
    Bytes(Vec<u8>),
}

impl Payload {
    /// The payload as bytes: strings as their UTF-8, other values as JSON.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Payload::Bytes(b) => b,
            Payload::Value(serde_json::Value::String(s)) => s.into_bytes(),
            // Serializing a `Value` cannot fail.
            Payload::Value(v) => serde_json::to_vec(&v).unwrap_or_default(),
        }
    }
}

/// One encoding step. Implement it to add your own (compression, encryption, ...) and register
/// it with [`AppBuilder::codec`](crate::AppBuilder::codec).
///
/// ```
/// use streams::codec::{Codec, Payload};
/// /// Reverses bytes: a toy codec.
/// struct Reverse;
/// impl Codec for Reverse {
///     fn dumps(&self, p: Payload) -> streams::Result<Payload> {
///         let mut b = p.into_bytes(); b.reverse(); Ok(Payload::Bytes(b))
///     }
///     fn loads(&self, p: Payload) -> streams::Result<Payload> { self.dumps(p) }
/// }
/// ```
pub trait Codec: Send + Sync + 'static {
    /// Encodes one step further.
    fn dumps(&self, payload: Payload) -> Result<Payload>;
    /// Undoes [`dumps`](Codec::dumps).
    fn loads(&self, payload: Payload) -> Result<Payload>;
}

fn codec_error(codec: &str, reason: impl fmt::Display) -> Error {
    Error::Codec {
        codec: codec.to_owned(),
        reason: reason.to_string(),
    }
}

/// `raw`: strings as their UTF-8 bytes, bytes unchanged.
struct Raw;
impl Codec for Raw {
    fn dumps(&self, payload: Payload) -> Result<Payload> {
        Ok(Payload::Bytes(payload.into_bytes()))
    }
    fn loads(&self, payload: Payload) -> Result<Payload> {
        Ok(payload)
    }
}

/// `json`: structured values as JSON text; bytes from an earlier codec as a JSON string.
struct Json;
impl Codec for Json {
    fn dumps(&self, payload: Payload) -> Result<Payload> {
        let value = match payload {
            Payload::Value(v) => v,
            Payload::Bytes(b) => serde_json::Value::String(String::from_utf8(b).map_err(|_| {
                codec_error("json", "bytes are not UTF-8: put `binary` before `json`")
            })?),
        };
        Ok(Payload::Bytes(
            serde_json::to_vec(&value).map_err(|e| codec_error("json", e))?,
        ))
    }
    fn loads(&self, payload: Payload) -> Result<Payload> {
        match payload {
            Payload::Bytes(b) => Ok(Payload::Value(
                serde_json::from_slice(&b).map_err(|e| codec_error("json", e))?,
            )),
            value => Ok(value),
        }
    }
}

/// `binary`: base64 (standard alphabet, padded), as Faust's.
struct Binary;
impl Codec for Binary {
    fn dumps(&self, payload: Payload) -> Result<Payload> {
        let text = base64::engine::general_purpose::STANDARD.encode(payload.into_bytes());
        Ok(Payload::Bytes(text.into_bytes()))
    }
    fn loads(&self, payload: Payload) -> Result<Payload> {
        let text = payload.into_bytes();
        base64::engine::general_purpose::STANDARD
            .decode(text.trim_ascii())
            .map(Payload::Bytes)
            .map_err(|e| codec_error("binary", format!("not base64: {e}")))
    }
}

/// Codecs by name: `raw`, `json`, `binary` and any registered with
/// [`AppBuilder::codec`](crate::AppBuilder::codec).
#[derive(Clone)]
pub struct CodecRegistry {
    codecs: BTreeMap<String, Arc<dyn Codec>>,
    /// A user codec replaced the built-in `json`: no fast path for it then.
    json_replaced: bool,
    /// The same for `raw`.
    raw_replaced: bool,
}

impl Default for CodecRegistry {
    fn default() -> Self {
        let mut codecs: BTreeMap<String, Arc<dyn Codec>> = BTreeMap::new();
        codecs.insert("raw".into(), Arc::new(Raw));
        codecs.insert("json".into(), Arc::new(Json));
        codecs.insert("binary".into(), Arc::new(Binary));
        CodecRegistry {
            codecs,
            json_replaced: false,
            raw_replaced: false,
        }
    }
}

impl fmt::Debug for CodecRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.codecs.keys()).finish()
    }
}

impl CodecRegistry {
    /// Adds or replaces a codec. Names may not contain `|`.
    pub fn register(&mut self, name: &str, codec: Arc<dyn Codec>) -> Result<()> {
        let name = name.trim();
        if name.is_empty() || name.contains('|') {
            return Err(Error::InvalidCodecName {
                name: name.to_owned(),
            });
        }
        self.json_replaced |= name == "json";
        self.raw_replaced |= name == "raw";
        self.codecs.insert(name.to_owned(), codec);
        Ok(())
    }

    fn get(&self, name: &str) -> Result<Arc<dyn Codec>> {
        self.codecs
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownCodec {
                name: name.to_owned(),
                known: self.codecs.keys().cloned().collect(),
            })
    }
}

/// Which common chain a serializer is, for the fast paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fast {
    Json,
    /// `raw` alone: decoded from the record's bytes in place (no copy through a payload).
    Raw,
    None,
}

/// A parsed codec chain such as `binary|json`, applied left to right when encoding.
#[derive(Clone)]
pub struct Serializer {
    spec: Arc<str>,
    chain: Arc<[Arc<dyn Codec>]>,
    fast: Fast,
}

impl fmt::Debug for Serializer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serializer({})", self.spec)
    }
}

impl fmt::Display for Serializer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

/// Why a payload could not become the wanted type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeFailure {
    /// Path of the failing field, such as `items[0].amount`, when there is one.
    pub field: Option<String>,
    /// What was wrong, in the codec's words.
    pub reason: String,
}

impl Serializer {
    /// Parses `name|name|...` against the registry.
    pub fn parse(spec: &str, registry: &CodecRegistry) -> Result<Serializer> {
        let names: Vec<&str> = spec.split('|').map(str::trim).collect();
        let chain = names
            .iter()
            .map(|n| registry.get(n))
            .collect::<Result<Vec<_>>>()?;
        let fast = if names == ["json"] && !registry.json_replaced {
            Fast::Json
        } else if names == ["raw"] && !registry.raw_replaced {
            Fast::Raw
        } else {
            Fast::None
        };
        Ok(Serializer {
            spec: names.join("|").into(),
            chain: chain.into(),
            fast,
        })
    }

    /// The chain as written, normalised (`binary|json`).
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// Encodes a serde value.
    pub fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>> {
        if self.fast == Fast::Json {
            return json_exact(value).map_err(|e| codec_error("json", e));
        }
        let value = serde_json::to_value(value).map_err(|e| codec_error(&self.spec, e))?;
        if self.fast == Fast::Raw {
            return Ok(Payload::Value(value).into_bytes()); // what `raw`'s `dumps` does
        }
        self.encode_payload(Payload::Value(value))
    }

    /// Encodes an untyped payload (what the CLI's `send` does with its argument).
    pub fn encode_payload(&self, mut payload: Payload) -> Result<Vec<u8>> {
        for codec in self.chain.iter() {
            payload = codec.dumps(payload)?;
        }
        Ok(payload.into_bytes())
    }

    /// Decodes bytes into a serde type; on failure says which field failed.
    pub fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, DecodeFailure> {
        if self.fast == Fast::Json {
            return json_from_bytes(bytes);
        }
        if self.fast == Fast::Raw {
            // What the chain below does for `raw` (its `loads` keeps the bytes), without
            // copying them first.
            return decode_text_or_json(bytes);
        }
        let mut payload = Payload::Bytes(bytes.to_vec());
        for codec in self.chain.iter().rev() {
            payload = codec.loads(payload).map_err(|e| DecodeFailure {
                field: None,
                reason: e.to_string(),
            })?;
        }
        match payload {
            Payload::Value(v) => serde_path_to_error::deserialize(v).map_err(|e| DecodeFailure {
                field: field_of(e.path()),
                reason: e.into_inner().to_string(),
            }),
            Payload::Bytes(b) => decode_text_or_json(&b),
        }
    }
}

/// Scratch space of [`json_exact`], per thread.
const JSON_SCRATCH_MAX: usize = 64 * 1024;
thread_local! {
    static JSON_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `serde_json::to_vec`, but the result's capacity is its length: it becomes a record's
/// `Bytes` without another allocation (a `Vec` with spare room needs a shared header), and
/// holds no unused space. Written into a per-thread scratch buffer, then copied once.
fn json_exact<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    JSON_SCRATCH.with(|scratch| {
        let Ok(mut buf) = scratch.try_borrow_mut() else {
            // Re-entered (a value's `Serialize` encoding another record): no scratch.
            return serde_json::to_vec(value);
        };
        buf.clear();
        let written = serde_json::to_writer(&mut *buf, value);
        let out = written.map(|()| buf.as_slice().to_vec());
        if buf.capacity() > JSON_SCRATCH_MAX {
            *buf = Vec::new(); // one large value does not pin its size per thread
        }
        out
    })
}

/// JSON from a record's bytes into `T`. The whole payload is checked as UTF-8 once and parsed
/// as text: serde_json's byte parser checks every string (keys included) on its own, which
/// cost more than the check of the whole payload (about 100 ns per 100-byte record of
/// seven strings). Bytes that are not UTF-8 go through the byte parser, for its error.
fn json_from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeFailure> {
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    };
    parsed.map_err(|e| json_failure::<T>(bytes, e))
}

/// Bytes a chain left as bytes: raw text first (a `String` key stays as written), then JSON
/// (numbers, structs).
fn decode_text_or_json<T: DeserializeOwned>(b: &[u8]) -> Result<T, DecodeFailure> {
    let Ok(text) = std::str::from_utf8(b) else {
        return serde_json::from_slice(b).map_err(|e| json_failure::<T>(b, e));
    };
    if let Ok(v) = T::deserialize(RawText(text)) {
        return Ok(v);
    }
    serde_json::from_str(text).map_err(|e| json_failure::<T>(b, e))
}

/// Raw text as serde data: a string, or a unit enum variant by name; an `Option` of either
/// reads as `Some` (a record's null value, a tombstone, is the `None`; it never gets here).
struct RawText<'a>(&'a str);

impl<'de> serde::Deserializer<'de> for RawText<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<W: serde::de::Visitor<'de>>(self, v: W) -> Result<W::Value, Self::Error> {
        serde::Deserializer::deserialize_any(serde::de::value::StrDeserializer::new(self.0), v)
    }

    fn deserialize_option<W: serde::de::Visitor<'de>>(self, v: W) -> Result<W::Value, Self::Error> {
        v.visit_some(self)
    }

    fn deserialize_enum<W: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: W,
    ) -> Result<W::Value, Self::Error> {
        let text = serde::de::value::StrDeserializer::new(self.0);
        serde::Deserializer::deserialize_enum(text, name, variants, v)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

/// Re-reads the bytes with path tracking to name the failing field (only on the error path).
fn json_failure<T: DeserializeOwned>(bytes: &[u8], error: serde_json::Error) -> DecodeFailure {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => DecodeFailure {
            field: field_of(e.path()),
            reason: e.into_inner().to_string(),
        },
        Ok(_) => DecodeFailure {
            field: None,
            reason: error.to_string(),
        },
    }
}

fn field_of(path: &serde_path_to_error::Path) -> Option<String> {
    let path = path.to_string();
    (path != "." && !path.is_empty()).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Purchase {
        username: String,
        currency: String,
        amount: u32,
    }

    fn purchase() -> Purchase {
        Purchase {
            username: "ann".into(),
            currency: "EUR".into(),
            amount: 7,
        }
    }

    fn ser(spec: &str) -> Serializer {
        Serializer::parse(spec, &CodecRegistry::default()).unwrap()
    }

    #[test]
    fn json_and_raw_encode_as_before_into_exactly_sized_buffers() {
        let json = ser("json").encode(&purchase()).unwrap();
        assert_eq!(json, serde_json::to_vec(&purchase()).unwrap());
        // Exactly sized: it becomes a record's Bytes without another allocation.
        assert_eq!(json.capacity(), json.len());
        // A value larger than the scratch bound, then a small one: both exact and right.
        let big = "x".repeat(JSON_SCRATCH_MAX * 2);
        let encoded = ser("json").encode(&big).unwrap();
        assert_eq!(encoded, serde_json::to_vec(&big).unwrap());
        assert_eq!(ser("json").encode(&purchase()).unwrap(), json);
        JSON_SCRATCH.with(|s| assert!(s.borrow().capacity() <= JSON_SCRATCH_MAX));
        // `raw`: strings as their bytes, other values as JSON, as the chain did.
        assert_eq!(ser("raw").encode("user-7").unwrap(), b"user-7");
        let as_value = serde_json::to_value(purchase()).unwrap();
        assert_eq!(
            ser("raw").encode(&purchase()).unwrap(),
            serde_json::to_vec(&as_value).unwrap()
        );
        assert_eq!(ser("raw").encode(&7u32).unwrap(), b"7");
    }

    #[test]
    fn json_encoding_inside_a_json_encoding_does_not_share_the_scratch_buffer() {
        struct Nested;
        impl Serialize for Nested {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let inner = ser("json").encode(&purchase()).unwrap(); // re-enters json_exact
                s.serialize_str(std::str::from_utf8(&inner).unwrap())
            }
        }
        let outer = ser("json").encode(&Nested).unwrap();
        let inner = serde_json::to_string(&purchase()).unwrap();
        assert_eq!(outer, serde_json::to_vec(&inner).unwrap());
    }

    #[test]
    fn a_registered_json_codec_replaces_the_builtin_one() {
        struct Tagged;
        impl Codec for Tagged {
            fn dumps(&self, payload: Payload) -> Result<Payload> {
                let mut bytes = b"tagged:".to_vec();
                bytes.extend(Json.dumps(payload)?.into_bytes());
                Ok(Payload::Bytes(bytes))
            }
            fn loads(&self, payload: Payload) -> Result<Payload> {
                let bytes = payload.into_bytes();
                let rest = bytes.strip_prefix(b"tagged:").unwrap_or(&bytes).to_vec();
                Json.loads(Payload::Bytes(rest))
            }
        }
        let mut registry = CodecRegistry::default();
        registry.register("json", Arc::new(Tagged)).unwrap();
        let json = Serializer::parse("json", &registry).unwrap();
        let bytes = json.encode(&purchase()).unwrap();
        assert!(
            bytes.starts_with(b"tagged:"),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }

    #[test]
    fn every_builtin_chain_round_trips_a_record() {
        for spec in [
            "json",
            "binary|json",
            "json|binary",
            "json|binary|binary",
            " json | binary ",
        ] {
            let s = ser(spec);
            let bytes = s.encode(&purchase()).unwrap();
            assert_eq!(s.decode::<Purchase>(&bytes).unwrap(), purchase(), "{spec}");
        }
    }

    #[test]
    fn json_then_binary_is_base64_of_the_json() {
        let bytes = ser("json|binary").encode(&purchase()).unwrap();
        let json = base64::engine::general_purpose::STANDARD
            .decode(&bytes)
            .unwrap();
        assert_eq!(
            json,
            br#"{"username":"ann","currency":"EUR","amount":7}"#.to_vec()
        );
    }

    #[test]
    fn a_registered_raw_codec_replaces_the_builtin_one_when_decoding() {
        struct Upper;
        impl Codec for Upper {
            fn dumps(&self, payload: Payload) -> Result<Payload> {
                Ok(Payload::Bytes(payload.into_bytes().to_ascii_uppercase()))
            }
            fn loads(&self, payload: Payload) -> Result<Payload> {
                Ok(Payload::Bytes(payload.into_bytes().to_ascii_uppercase()))
            }
        }
        let mut registry = CodecRegistry::default();
        registry.register("raw", Arc::new(Upper)).unwrap();
        let raw = Serializer::parse("raw", &registry).unwrap();
        assert_eq!(raw.decode::<String>(b"alice").unwrap(), "ALICE");
        assert_eq!(raw.encode("alice").unwrap(), b"ALICE");
    }

    #[test]
    fn raw_keeps_strings_as_written_and_reads_numbers() {
        let raw = ser("raw");
        assert_eq!(raw.encode("alice").unwrap(), b"alice");
        assert_eq!(raw.decode::<String>(b"alice").unwrap(), "alice");
        assert_eq!(raw.decode::<String>(b"123").unwrap(), "123");
        assert_eq!(raw.encode(&42u64).unwrap(), b"42");
        assert_eq!(raw.decode::<u64>(b"42").unwrap(), 42);
        // An Option reads as Some (a tombstone is the None): a table kept from a raw topic.
        assert_eq!(
            raw.decode::<Option<String>>(b"gold").unwrap().as_deref(),
            Some("gold")
        );
        assert_eq!(raw.decode::<Option<u64>>(b"42").unwrap(), Some(42));
    }

    #[test]
    fn decode_errors_name_the_failing_field() {
        let s = ser("json");
        let e = s
            .decode::<Purchase>(br#"{"username":"a","currency":"EUR","amount":"lots"}"#)
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("amount"), "{e:?}");
        assert!(e.reason.contains("invalid type"), "{e:?}");
        let e = s
            .decode::<Purchase>(br#"{"username":"a","currency":"EUR"}"#)
            .unwrap_err();
        assert!(e.reason.contains("missing field `amount`"), "{e:?}");
        // The same through a chain.
        let chained = ser("json|binary");
        let bytes = chained
            .encode_payload(Payload::Value(
                serde_json::json!({"username": "a", "currency": 5, "amount": 1}),
            ))
            .unwrap();
        let e = chained.decode::<Purchase>(&bytes).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("currency"), "{e:?}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for spec in ["json", "binary|json", "json|binary", "raw"] {
            let s = ser(spec);
            for input in [&b""[..], b"\xff\xfe", b"{", b"\"%%%\"", b"!!"] {
                let _ = s.decode::<Purchase>(input);
            }
        }
        let e = ser("json|binary").decode::<Purchase>(b"!!").unwrap_err();
        assert!(e.reason.contains("not base64"), "{e:?}");
    }

    #[test]
    fn unknown_codecs_are_named_with_the_known_ones() {
        let e = Serializer::parse("json|gzip", &CodecRegistry::default()).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("\"gzip\"") && text.contains("binary, json, raw"),
            "{text}"
        );
    }

    #[test]
    fn user_codecs_compose_with_builtins() {
        struct Upper;
        impl Codec for Upper {
            fn dumps(&self, p: Payload) -> Result<Payload> {
                Ok(Payload::Bytes(p.into_bytes().to_ascii_uppercase()))
            }
            fn loads(&self, p: Payload) -> Result<Payload> {
                Ok(Payload::Bytes(p.into_bytes().to_ascii_lowercase()))
            }
        }
        let mut registry = CodecRegistry::default();
        registry.register("upper", Arc::new(Upper)).unwrap();
        assert!(registry.register("a|b", Arc::new(Upper)).is_err());
        let s = Serializer::parse("raw|upper", &registry).unwrap();
        assert_eq!(s.encode("shout").unwrap(), b"SHOUT");
        assert_eq!(s.decode::<String>(b"SHOUT").unwrap(), "shout");
    }
}
