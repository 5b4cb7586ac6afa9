//! The codecs a batch's records section may be compressed with, all in pure Rust.
//!
//! Every decoder writes into a growing `Vec` through a size cap, so a small hostile payload
//! cannot expand into gigabytes ("decompression bomb"): output beyond the cap is an error.

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use crate::error::{Error, Result};

/// Compression codec of a record batch, with Kafka's attribute codes (bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Records stored as they are (code 0).
    #[default]
    None,
    /// gzip (code 1), via `flate2`'s Rust backend.
    Gzip,
    /// Snappy (code 2). Written with the xerial framing Java clients use; raw snappy and
    /// xerial are both read.
    Snappy,
    /// LZ4 frame format (code 3), as Kafka writes for magic v2.
    Lz4,
    /// Zstandard (code 4). Decoding is complete; encoding uses `ruzstd`'s fastest level, whose
    /// output the reference `zstd` decodes (checked in the tests).
    Zstd,
}

impl Compression {
    /// All codecs, in code order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// Kafka's code for this codec (the low three bits of a batch's attributes).
    pub fn code(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec for a Kafka code, if the code is one.
    pub fn from_code(code: i16) -> Option<Compression> {
        Some(match code {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return None,
        })
    }

    /// Appends `input` compressed with this codec to `out` (as a batch's records section).
    pub fn compress(self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        compress(self, input, out)
    }

    /// Decompresses a batch's records section, failing with [`Error::Compression`] once the
    /// output would exceed `max` bytes. Snappy accepts raw and xerial-framed input.
    pub fn decompress(self, input: &[u8], max: usize) -> Result<Vec<u8>> {
        decompress(self, input, max)
    }

    /// The name Kafka's `compression.type` setting uses.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = Error;

    /// Parses Kafka's `compression.type` names, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::UnknownName {
                kind: "compression type",
                name: s.to_owned(),
                expected: "none, gzip, snappy, lz4 or zstd",
            })
    }
}

fn codec_error(codec: Compression, reason: impl fmt::Display) -> Error {
    Error::Compression {
        codec: codec.name(),
        reason: reason.to_string(),
    }
}

fn too_large(codec: Compression, max: usize) -> Error {
    codec_error(
        codec,
        format!("decompressed records exceed the limit of {max} bytes"),
    )
}

/// Java's xerial `SnappyOutputStream` header: magic, then version 1 and compatible version 1.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
/// Block size of Java's `SnappyOutputStream` (32 KiB).
const XERIAL_BLOCK: usize = 32 * 1024;

/// Appends `input` compressed with `codec` to `out`.
pub(crate) fn compress(codec: Compression, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            enc.write_all(input)
                .and_then(|()| enc.try_finish())
                .map_err(|e| codec_error(codec, e))?;
        }
        Compression::Snappy => {
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for block in input.chunks(XERIAL_BLOCK) {
                let at = out.len();
                out.extend_from_slice(&[0; 4]);
                out.resize(at + 4 + snap::raw::max_compress_len(block.len()), 0);
                let n = enc
                    .compress(block, &mut out[at + 4..])
                    .map_err(|e| codec_error(codec, e))?;
                out.truncate(at + 4 + n);
                out[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
            }
        }
        Compression::Lz4 => {
            use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
            // What Java's KafkaLZ4BlockOutputStream writes: 64 KiB independent blocks, no
            // checksums, no content size.
            let info = FrameInfo::new()
                .block_size(BlockSize::Max64KB)
                .block_mode(BlockMode::Independent)
                .block_checksums(false)
                .content_checksum(false);
            let mut enc = FrameEncoder::with_frame_info(info, out);
            enc.write_all(input).map_err(|e| codec_error(codec, e))?;
            enc.finish().map_err(|e| codec_error(codec, e))?;
        }
        Compression::Zstd => {
            ruzstd::encoding::compress(input, out, ruzstd::encoding::CompressionLevel::Fastest);
        }
    }
    Ok(())
}

/// Decompresses `input`, failing once the output would exceed `max` bytes.
pub(crate) fn decompress(codec: Compression, input: &[u8], max: usize) -> Result<Vec<u8>> {
    match codec {
        Compression::None => {
            if input.len() > max {
                return Err(too_large(codec, max));
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => read_capped(codec, flate2::read::MultiGzDecoder::new(input), max),
        Compression::Snappy => {
            if input.starts_with(&XERIAL_MAGIC) {
                decompress_xerial(input, max)
            } else {
                let mut out = Vec::new();
                snappy_block(input, &mut out, max)?;
                Ok(out)
            }
        }
        Compression::Lz4 => read_capped(codec, lz4_flex::frame::FrameDecoder::new(input), max),
        Compression::Zstd => decompress_zstd(input, max),
    }
}

/// Reads a decoder to the end, stopping with an error one byte past `max`.
fn read_capped(codec: Compression, reader: impl Read, max: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let limit = (max as u64).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| codec_error(codec, e))?;
    if out.len() > max {
        return Err(too_large(codec, max));
    }
    Ok(out)
}

/// Appends one raw snappy block, checking its declared length against the cap first.
fn snappy_block(block: &[u8], out: &mut Vec<u8>, max: usize) -> Result<()> {
    let codec = Compression::Snappy;
    let len = snap::raw::decompress_len(block).map_err(|e| codec_error(codec, e))?;
    if len > max.saturating_sub(out.len()) {
        return Err(too_large(codec, max));
    }
    let at = out.len();
    out.resize(at + len, 0);
    let n = snap::raw::Decoder::new()
        .decompress(block, &mut out[at..])
        .map_err(|e| codec_error(codec, e))?;
    out.truncate(at + n);
    Ok(())
}

/// xerial framing: 8-byte magic, two big-endian i32 versions, then blocks each prefixed by
/// a big-endian i32 compressed length.
fn decompress_xerial(input: &[u8], max: usize) -> Result<Vec<u8>> {
    let codec = Compression::Snappy;
    let Some(mut rest) = input.get(XERIAL_HEADER_LEN..) else {
        return Err(codec_error(codec, "xerial snappy header is truncated"));
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(codec_error(
                codec,
                "xerial snappy block length is truncated",
            ));
        };
        let len = i32::from_be_bytes(*len);
        let block = usize::try_from(len)
            .ok()
            .and_then(|n| tail.get(..n))
            .ok_or_else(|| {
                codec_error(
                    codec,
                    format!(
                        "xerial snappy block of {len} bytes but {} bytes left",
                        tail.len()
                    ),
                )
            })?;
        snappy_block(block, &mut out, max)?;
        rest = &tail[block.len()..];
    }
    Ok(out)
}

/// Decodes one or more concatenated zstd frames.
fn decompress_zstd(mut input: &[u8], max: usize) -> Result<Vec<u8>> {
    let codec = Compression::Zstd;
    // ruzstd reserves the declared window up front (address space, touched only as output is
    // written). Frames from streaming encoders declare windows far larger than their content
    // (zstd level 22: 128 MiB), so the limit is zstd's own default, window log 27, rather than
    // the output cap; the output itself is still capped below.
    let max_window = ruzstd::decoding::DEFAULT_MAX_WINDOW_SIZE;
    let mut out = Vec::new();
    loop {
        let decoder =
            ruzstd::decoding::StreamingDecoder::new_with_max_window_size(&mut input, max_window)
                .map_err(|e| codec_error(codec, e))?;
        let limit = ((max - out.len()) as u64).saturating_add(1);
        decoder
            .take(limit)
            .read_to_end(&mut out)
            .map_err(|e| codec_error(codec, e))?;
        if out.len() > max {
            return Err(too_large(codec, max));
        }
        if input.is_empty() {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes() {
        for c in Compression::ALL {
            assert_eq!(c.to_string().parse::<Compression>().unwrap(), c);
            assert_eq!(Compression::from_code(c.code()), Some(c));
        }
        assert_eq!("LZ4".parse::<Compression>().unwrap(), Compression::Lz4);
        assert!("brotli".parse::<Compression>().is_err());
        assert_eq!(Compression::from_code(5), None);
    }

    #[test]
    fn every_codec_round_trips_and_respects_the_cap() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 7) as u8)
            .collect();
        for c in Compression::ALL {
            let mut z = Vec::new();
            compress(c, &data, &mut z).unwrap();
            assert_eq!(decompress(c, &z, data.len()).unwrap(), data, "{c}");
            let err = decompress(c, &z, data.len() - 1).unwrap_err();
            assert!(err.to_string().contains("exceed"), "{c}: {err}");
        }
    }

    #[test]
    fn zstd_empty_input_and_concatenated_frames() {
        let mut z = Vec::new();
        compress(Compression::Zstd, b"", &mut z).unwrap();
        assert_eq!(decompress(Compression::Zstd, &z, 10).unwrap(), b"");
        let mut two = Vec::new();
        compress(Compression::Zstd, b"hello ", &mut two).unwrap();
        compress(Compression::Zstd, b"world", &mut two).unwrap();
        assert_eq!(
            decompress(Compression::Zstd, &two, 100).unwrap(),
            b"hello world"
        );
        assert!(decompress(Compression::Zstd, &[], 100).is_err());
    }
}
