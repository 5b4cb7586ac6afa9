//! Compression formats as other Kafka clients write them: hand-built xerial snappy and LZ4
//! frames, and (when the tools are installed) round trips through the reference `gzip`,
//! `lz4` and `zstd` command-line programs.

use std::io::Write;
use std::process::{Command, Stdio};

use bytes::Bytes;
use kafka_client::protocol::record::{BatchBuilder, Compression, Header, Record, RecordBatches};

#[rustfmt::skip]
const XERIAL: [u8; 16 + 4 + 7 + 4 + 7] = [
    0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, // xerial magic
    0, 0, 0, 1,                                  // version 1
    0, 0, 0, 1,                                  // compatible version 1
    0, 0, 0, 7,                                  // block 1: 7 bytes
    0x05,                                        //   uncompressed length 5
    0x10, b'h', b'e', b'l', b'l', b'o',          //   literal of 5: "hello"
    0, 0, 0, 7,                                  // block 2: 7 bytes
    0x09,                                        //   uncompressed length 9
    0x08, b'a', b'b', b'c',                      //   literal of 3: "abc"
    0x09, 0x03,                                  //   copy 6 bytes from 3 back
];

#[test]
fn hand_built_xerial_stream() {
    assert_eq!(
        Compression::Snappy.decompress(&XERIAL, 100).unwrap(),
        b"helloabcabcabc"
    );
    assert!(
        Compression::Snappy.decompress(&XERIAL, 13).is_err(),
        "cap applies across blocks"
    );
    // A block length past the end, a negative one, a cut header.
    let mut bad = XERIAL.to_vec();
    bad[19] = 8;
    assert!(Compression::Snappy.decompress(&bad, 100).is_err());
    bad[16] = 0x80;
    assert!(Compression::Snappy.decompress(&bad, 100).is_err());
    assert!(Compression::Snappy.decompress(&XERIAL[..12], 100).is_err());
    assert!(Compression::Snappy.decompress(&XERIAL[..22], 100).is_err());
    // Header only: empty content.
    assert_eq!(
        Compression::Snappy.decompress(&XERIAL[..16], 100).unwrap(),
        b""
    );
}

#[test]
fn our_snappy_uses_xerial_framing() {
    let data = vec![42u8; 100_000];
    let mut out = Vec::new();
    Compression::Snappy.compress(&data, &mut out).unwrap();
    assert_eq!(&out[..16], &XERIAL[..16]);
    // Blocks of at most 32 KiB of input, as Java's SnappyOutputStream writes.
    let mut pos = 16;
    let mut blocks = 0;
    while pos < out.len() {
        let len = u32::from_be_bytes(out[pos..pos + 4].try_into().unwrap()) as usize;
        let block = &out[pos + 4..pos + 4 + len];
        assert!(snap::raw::decompress_len(block).unwrap() <= 32 * 1024);
        pos += 4 + len;
        blocks += 1;
    }
    assert_eq!(blocks, 4);
}

/// Raw snappy made of literals only: a valid (if useless) compressor written from the format.
fn snappy_literals(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = data.len();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    for chunk in data.chunks(60) {
        out.push(((chunk.len() - 1) as u8) << 2);
        out.extend_from_slice(chunk);
    }
    out
}

fn sample_records() -> BatchBuilder {
    let mut b = BatchBuilder::new(Compression::None).producer(1, 0, 0);
    for i in 0..50u8 {
        let key = [i; 3];
        let value = vec![i; i as usize * 4];
        b.append(
            1000 + i64::from(i),
            Some(&key),
            Some(&value),
            &[Header::new("i", Some(vec![i]))],
        )
        .unwrap();
    }
    b
}

/// Re-wraps an uncompressed batch's records with a foreign compressor, fixing length and CRC.
fn rewrap(plain: &[u8], codec: Compression, payload: &[u8]) -> Bytes {
    let mut out = plain[..61].to_vec();
    out.extend_from_slice(payload);
    let len = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&len.to_be_bytes());
    out[22] = (out[22] & !7) | codec.code() as u8;
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}

fn records_of(bytes: Bytes) -> Vec<Record> {
    let batch = RecordBatches::new(bytes).next().unwrap().unwrap();
    batch.records().unwrap().collect::<Result<_, _>>().unwrap()
}

#[test]
fn batches_with_java_and_librdkafka_style_snappy() {
    let plain = sample_records().build().unwrap();
    let expected = records_of(plain.clone());
    let body = &plain[61..];

    // librdkafka: raw snappy.
    let raw = rewrap(&plain, Compression::Snappy, &snappy_literals(body));
    assert_eq!(records_of(raw), expected);

    // Java: xerial header and blocks, here of 1,000 bytes.
    let mut xerial = XERIAL[..16].to_vec();
    for chunk in body.chunks(1000) {
        let block = snappy_literals(chunk);
        xerial.extend_from_slice(&(block.len() as u32).to_be_bytes());
        xerial.extend_from_slice(&block);
    }
    assert_eq!(
        records_of(rewrap(&plain, Compression::Snappy, &xerial)),
        expected
    );
}

/// XXH32 of a short input (< 16 bytes), written from the xxHash specification: what the LZ4
/// frame format uses for its header checksum.
fn xxh32_short(input: &[u8], seed: u32) -> u32 {
    const P1: u32 = 2_654_435_761;
    const P2: u32 = 2_246_822_519;
    const P3: u32 = 3_266_489_917;
    const P4: u32 = 668_265_263;
    const P5: u32 = 374_761_393;
    assert!(input.len() < 16);
    let mut acc = seed.wrapping_add(P5).wrapping_add(input.len() as u32);
    let mut lanes = input.chunks_exact(4);
    for lane in &mut lanes {
        let v = u32::from_le_bytes(lane.try_into().unwrap());
        acc = acc
            .wrapping_add(v.wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &b in lanes.remainder() {
        acc = acc
            .wrapping_add(u32::from(b).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    acc ^= acc >> 15;
    acc = acc.wrapping_mul(P2);
    acc ^= acc >> 13;
    acc = acc.wrapping_mul(P3);
    acc ^ (acc >> 16)
}

#[test]
fn lz4_frames_have_the_layout_kafka_expects() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 97) as u8).collect();
    let mut out = Vec::new();
    Compression::Lz4.compress(&data, &mut out).unwrap();

    assert_eq!(
        &out[..4],
        &[0x04, 0x22, 0x4d, 0x18],
        "LZ4 frame magic, little-endian"
    );
    let flg = out[4];
    assert_eq!(flg >> 6, 0b01, "version 01");
    assert_eq!(
        flg & 0x20,
        0x20,
        "independent blocks, as Java's KafkaLZ4BlockOutputStream"
    );
    assert_eq!(flg & 0x10, 0, "no block checksums");
    assert_eq!(flg & 0x08, 0, "no content size");
    assert_eq!(flg & 0x01, 0, "no dictionary id");
    assert_eq!(flg & 0x02, 0, "reserved bit clear");
    assert_eq!(out[5], 0x40, "BD: 64 KiB maximum block size");
    assert_eq!(
        u32::from(out[6]),
        (xxh32_short(&out[4..6], 0) >> 8) & 0xff,
        "header checksum"
    );
    assert_eq!(&out[4..7], &[0x60, 0x40, 0x82]);

    // Blocks: little-endian size (high bit = stored uncompressed), then an end mark of 0.
    let content_checksum = flg & 0x04 != 0;
    let mut pos = 7;
    loop {
        let size = u32::from_le_bytes(out[pos..pos + 4].try_into().unwrap());
        pos += 4;
        if size == 0 {
            break;
        }
        assert!((size & 0x7fff_ffff) as usize <= 64 * 1024);
        pos += (size & 0x7fff_ffff) as usize;
    }
    assert_eq!(pos + if content_checksum { 4 } else { 0 }, out.len());
    assert_eq!(Compression::Lz4.decompress(&out, data.len()).unwrap(), data);
}

#[test]
fn hand_built_lz4_frame_decodes() {
    #[rustfmt::skip]
    let frame = [
        0x04, 0x22, 0x4d, 0x18,         // magic
        0x60, 0x40, 0x82,               // FLG, BD, header checksum
        13, 0, 0, 0,                    // block 1: 13 compressed bytes
        0x4c, b'a', b'b', b'c', b'd',   //   4 literals, match of 4 + 12
        0x04, 0x00,                     //   match offset 4
        0x50, b'1', b'2', b'3', b'4', b'5', // last sequence: 5 literals
        3, 0, 0, 0x80,                  // block 2: 3 bytes stored uncompressed
        b'x', b'y', b'z',
        0, 0, 0, 0,                     // end mark
    ];
    let out = Compression::Lz4.decompress(&frame, 1000).unwrap();
    assert_eq!(out, b"abcdabcdabcdabcdabcd12345xyz");
    let mut bad = frame;
    bad[6] ^= 1;
    assert!(
        Compression::Lz4.decompress(&bad, 1000).is_err(),
        "header checksum is verified"
    );
}

/// Panics (with what to do) when the reference tool `name` is not installed.
fn require_tool(name: &str) {
    let ok = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "this test needs the reference `{name}` tool: apt-get install {name}"
    );
}

fn run(name: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(name)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "{name} {args:?} failed");
    out.stdout
}

#[test]
#[ignore = "needs the reference gzip, lz4 and zstd tools; .ci/run installs them and runs it with --include-ignored"]
fn reference_tools_read_ours_and_we_read_theirs() {
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new(), b"x".to_vec()];
    inputs.push(sample_records().build().unwrap()[61..].to_vec());
    inputs.push(
        (0..1_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 28) as u8)
            .collect(),
    );
    for (codec, name, levels) in [
        (Compression::Gzip, "gzip", &["-1", "-9"][..]),
        (
            Compression::Lz4,
            "lz4",
            &["-1", "-9", "--content-size", "-BD"][..],
        ),
        (
            Compression::Zstd,
            "zstd",
            &["-1", "-19", "--no-check", "--long=24"][..],
        ),
    ] {
        require_tool(name);
        for data in &inputs {
            let mut ours = Vec::new();
            codec.compress(data, &mut ours).unwrap();
            assert_eq!(
                &run(name, &["-d", "-c"], &ours),
                data,
                "{name} reads our {codec}"
            );
            for level in levels {
                let theirs = run(name, &["-c", level], data);
                let back = codec.decompress(&theirs, data.len()).unwrap();
                assert_eq!(&back, data, "we read {name} {level}");
            }
        }
    }
}
