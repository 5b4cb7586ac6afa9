//! Encoding into a buffer the caller reuses: what a send does, so that encoding a record's key
//! and value allocates nothing (the producer copies the bytes into its batch).

use serde::ser::{self, Impossible, Serialize};

use super::{codec_error, Fast, Serializer};
use crate::error::Result;

impl Serializer {
    /// Appends what [`encode`](Self::encode) returns to `out`.
    pub(crate) fn encode_into<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        match self.fast {
            Fast::Json => {
                serde_json::to_writer(&mut *out, value).map_err(|e| codec_error("json", e))
            }
            // `raw` writes a string as its UTF-8 bytes; anything else takes `encode`'s way.
            Fast::Raw if value.serialize(Text(out)).is_ok() => Ok(()),
            _ => {
                out.extend_from_slice(&self.encode(value)?);
                Ok(())
            }
        }
    }
}

/// Writes a value that serde_json's `to_value` turns into a JSON string (a string, a char, a
/// unit enum variant, through `Some` and newtypes) as its text; refuses anything else without
/// writing, so the caller falls back to the general path and the bytes stay `encode`'s.
struct Text<'a>(&'a mut Vec<u8>);

#[derive(Debug)]
struct NotText;

impl std::fmt::Display for NotText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a string")
    }
}

impl std::error::Error for NotText {}

impl ser::Error for NotText {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        NotText
    }
}

type No = std::result::Result<(), NotText>;

impl ser::Serializer for Text<'_> {
    type Ok = ();
    type Error = NotText;
    type SerializeSeq = Impossible<(), NotText>;
    type SerializeTuple = Impossible<(), NotText>;
    type SerializeTupleStruct = Impossible<(), NotText>;
    type SerializeTupleVariant = Impossible<(), NotText>;
    type SerializeMap = Impossible<(), NotText>;
    type SerializeStruct = Impossible<(), NotText>;
    type SerializeStructVariant = Impossible<(), NotText>;

    fn serialize_str(self, v: &str) -> No {
        self.0.extend_from_slice(v.as_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> No {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> No {
        self.serialize_str(variant)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> No {
        value.serialize(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> No {
        value.serialize(self)
    }

    fn serialize_bool(self, _: bool) -> No {
        Err(NotText)
    }
    fn serialize_i8(self, _: i8) -> No {
        Err(NotText)
    }
    fn serialize_i16(self, _: i16) -> No {
        Err(NotText)
    }
    fn serialize_i32(self, _: i32) -> No {
        Err(NotText)
    }
    fn serialize_i64(self, _: i64) -> No {
        Err(NotText)
    }
    fn serialize_u8(self, _: u8) -> No {
        Err(NotText)
    }
    fn serialize_u16(self, _: u16) -> No {
        Err(NotText)
    }
    fn serialize_u32(self, _: u32) -> No {
        Err(NotText)
    }
    fn serialize_u64(self, _: u64) -> No {
        Err(NotText)
    }
    fn serialize_f32(self, _: f32) -> No {
        Err(NotText)
    }
    fn serialize_f64(self, _: f64) -> No {
        Err(NotText)
    }
    fn serialize_bytes(self, _: &[u8]) -> No {
        Err(NotText)
    }
    fn serialize_none(self) -> No {
        Err(NotText)
    }
    fn serialize_unit(self) -> No {
        Err(NotText)
    }
    fn serialize_unit_struct(self, _: &'static str) -> No {
        Err(NotText)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> No {
        Err(NotText)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotText> {
        Err(NotText)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotText> {
        Err(NotText)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotText> {
        Err(NotText)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotText> {
        Err(NotText)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotText> {
        Err(NotText)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotText> {
        Err(NotText)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotText> {
        Err(NotText)
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use crate::codec::{CodecRegistry, Serializer};

    #[derive(Serialize)]
    enum Level {
        Gold,
    }

    #[derive(Serialize)]
    struct Wrapped(String);

    #[derive(Serialize)]
    struct Purchase {
        zeta: u32,
        alpha: &'static str,
    }

    fn same<T: Serialize + ?Sized>(spec: &str, value: &T) {
        let ser = Serializer::parse(spec, &CodecRegistry::default()).unwrap();
        let mut out = b"prefix".to_vec();
        ser.encode_into(value, &mut out).unwrap();
        let mut expected = b"prefix".to_vec();
        expected.extend_from_slice(&ser.encode(value).unwrap());
        assert_eq!(out, expected, "{spec}");
    }

    #[test]
    fn encoding_into_a_buffer_gives_the_bytes_of_encode() {
        for spec in ["raw", "json", "binary|json"] {
            same(spec, "alice");
            same(spec, &'é');
            same(spec, &Level::Gold);
            same(spec, &Some("bob".to_owned()));
            same(spec, &None::<String>);
            same(spec, &Wrapped("carol".into()));
            same(spec, &42_i64);
            same(spec, &-1.5_f64);
            same(
                spec,
                &Purchase {
                    zeta: 1,
                    alpha: "a",
                },
            );
            same(spec, &vec![1_u8, 2]);
        }
    }
}
