//! The reader must never panic: truncated files, flipped bytes, random
//! mutations and random headers all give `Ok` or an error. Sizes taken from
//! the header are checked before anything is allocated.

mod common;

use common::npy_files;
use jjt_npy::{Array, Data, NpyError, read, read_header, write};

/// Small valid files from the corpus plus a few written by us.
fn samples() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = npy_files("valid")
        .into_iter()
        .map(|(name, path)| (name, std::fs::read(path).unwrap()))
        .filter(|(_, bytes)| bytes.len() <= 400)
        .collect();
    assert!(out.len() >= 10, "corpus missing? {} small files", out.len());
    let ours = Array::new(vec![2, 2], Data::Bool(vec![true, false, false, true])).unwrap();
    out.push(("ours_bool".into(), write(&ours)));
    out
}

#[test]
fn every_truncation_is_an_error() {
    for (name, bytes) in samples() {
        let data_offset = read_header(&bytes).unwrap().data_offset;
        for n in 0..bytes.len() {
            let cut = &bytes[..n];
            let result = read(cut);
            if n < data_offset {
                assert!(
                    matches!(result, Err(NpyError::Truncated { actual, .. }) if actual == n),
                    "{name} cut at {n}: {result:?}"
                );
                assert!(read_header(cut).is_err(), "{name} cut at {n}");
            } else {
                assert!(
                    matches!(result, Err(NpyError::DataShort { actual, .. }) if actual == n - data_offset),
                    "{name} cut at {n}: {result:?}"
                );
                assert!(read_header(cut).is_ok(), "{name} cut at {n}");
            }
        }
    }
}

#[test]
fn flipping_any_byte_never_panics() {
    let mut ok = 0;
    let mut err = 0;
    for (name, bytes) in samples() {
        let clean = read(&bytes).unwrap();
        let data_offset = read_header(&bytes).unwrap().data_offset;
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x02, 0x20, 0x80, 0xff] {
                let mut flipped = bytes.clone();
                flipped[i] ^= mask;
                let result = read(&flipped);
                if i < 6 {
                    assert!(matches!(result, Err(NpyError::BadMagic)), "{name}[{i}]^{mask}");
                }
                if i >= data_offset {
                    // A data byte: floats still read (to a different value),
                    // bools only if the byte stays 0 or 1, int64 only if it stays in i32's range.
                    match (&clean.data, &result) {
                        (Data::I32(_), Err(NpyError::IntOutOfRange { .. })) => {}
                        (Data::Bool(_), Err(NpyError::InvalidBool { .. })) => {}
                        (Data::Bool(_), Ok(_)) => assert_eq!(mask, 0x01, "{name}[{i}]"),
                        (_, Ok(a)) => assert_ne!(&a.data, &clean.data, "{name}[{i}]^{mask}"),
                        _ => panic!("{name}[{i}]^{mask}: {result:?}"),
                    }
                }
                if result.is_ok() { ok += 1 } else { err += 1 }
            }
        }
    }
    assert!(ok > 0 && err > 0, "ok={ok} err={err}");
}

/// xorshift64*, deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_mutations_never_panic() {
    const ALPHABET: &[u8] = b"(){}[],:'\"-0 1Tx\n\\";
    let samples = samples();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut errors = 0;
    for _ in 0..20_000 {
        let (_, original) = &samples[rng.below(samples.len())];
        let mut bytes = original.clone();
        for _ in 0..1 + rng.below(6) {
            if bytes.is_empty() {
                bytes.push(rng.next() as u8);
            }
            let i = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[i] = rng.next() as u8,
                1 => bytes[i] = ALPHABET[rng.below(ALPHABET.len())],
                2 => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, rng.next() as u8),
            }
        }
        match read(&bytes) {
            Ok(a) => assert_eq!(
                Some(a.data.len()),
                a.shape.iter().try_fold(1usize, |p, &d| p.checked_mul(d))
            ),
            Err(_) => errors += 1,
        }
    }
    assert!(errors > 10_000, "only {errors} of 20000 mutations were rejected");
}

/// Builds a version 1.0 file around arbitrary header text and data.
fn file(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&u16::try_from(header.len()).unwrap().to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    out
}

/// A random Python literal, biased towards things that appear in headers.
fn random_literal(rng: &mut Rng, depth: usize, out: &mut String) {
    const ATOMS: &[&str] = &[
        "'<f8'",
        "'<f4'",
        "'|b1'",
        "'>f8'",
        "'<i8'",
        "\"<f4\"",
        "True",
        "False",
        "None",
        "0",
        "1",
        "3",
        "-2",
        "1.5",
        "18446744073709551616",
        "'shape'",
    ];
    let ws = |rng: &mut Rng, out: &mut String| out.push_str([" ", "", "\n", "  "][rng.below(4)]);
    match if depth >= 3 { 0 } else { rng.below(4) } {
        0 => out.push_str(ATOMS[rng.below(ATOMS.len())]),
        1 => {
            out.push('(');
            let n = rng.below(4);
            for k in 0..n {
                ws(rng, out);
                if rng.below(3) == 0 {
                    random_literal(rng, depth + 1, out);
                } else {
                    out.push_str(&rng.below(5).to_string());
                }
                if k + 1 < n || n == 1 || rng.below(2) == 0 {
                    out.push(',');
                }
            }
            out.push(')');
        }
        2 => {
            out.push('[');
            random_literal(rng, depth + 1, out);
            out.push(']');
        }
        _ => {
            out.push('{');
            random_literal(rng, depth + 1, out);
            out.push(':');
            random_literal(rng, depth + 1, out);
            out.push('}');
        }
    }
}

#[test]
fn random_headers_never_panic() {
    let mut rng = Rng(42);
    let (mut ok, mut header_errors) = (0, 0);
    for _ in 0..20_000 {
        // A dict with the right keys most of the time, random values.
        let mut header = String::from("{");
        let mut keys = vec!["'descr'", "'fortran_order'", "'shape'", "'extra'"];
        keys.truncate(2 + rng.below(3));
        let turn = rng.below(keys.len());
        keys.rotate_left(turn);
        for key in keys {
            header.push_str(key);
            header.push_str(": ");
            match (key, rng.below(2)) {
                ("'descr'", 0) => header.push_str("'<f8'"),
                ("'fortran_order'", 0) => header.push_str("False"),
                ("'shape'", 0) => header.push_str("(2,)"),
                _ => random_literal(&mut rng, 1, &mut header),
            }
            header.push_str(", ");
        }
        header.push('}');
        if rng.below(10) == 0 {
            // Corrupt one byte.
            let mut bytes = header.into_bytes();
            let i = rng.below(bytes.len());
            bytes[i] = rng.next() as u8;
            header = String::from_utf8_lossy(&bytes).into_owned();
        }
        let data = vec![0u8; rng.below(3) * 8];
        match read(&file(header.as_bytes(), &data)) {
            Ok(a) => {
                ok += 1;
                assert_eq!(a.data.len(), a.shape.iter().product::<usize>(), "{header}");
            }
            Err(NpyError::DataShort { .. } | NpyError::DataTrailing { .. }) => {}
            Err(_) => header_errors += 1,
        }
    }
    assert!(ok > 100 && header_errors > 1000, "ok={ok} header_errors={header_errors}");
}

#[test]
fn huge_declared_shape_with_little_data_is_rejected_before_allocating() {
    let header = |descr: &str, shape: &str| {
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n")
    };
    let data = [0u8; 10];
    // Representable sizes: rejected because the data is short, before any
    // buffer of the declared size is allocated (that would abort the test).
    let max = isize::MAX as usize;
    for (descr, shape, expected) in [
        ("|b1", format!("({max},)"), max),
        ("<f8", "(1000000000, 1000000000)".to_string(), 8_000_000_000_000_000_000),
        ("<f4", format!("({}, 2)", max / 8), max / 8 * 8),
    ] {
        let result = read(&file(header(descr, &shape).as_bytes(), &data));
        assert!(
            matches!(result, Err(NpyError::DataShort { expected: e, actual: 10 }) if e == expected),
            "{shape}: {result:?}"
        );
    }
    // One element more than isize::MAX bytes: overflow.
    for (descr, shape) in [
        ("|b1", format!("({},)", max as u128 + 1)),
        ("<f8", format!("({},)", max / 8 + 1)),
        ("<f4", format!("({}, 3, 0)", u128::from(u64::MAX) + 1)),
    ] {
        let result = read(&file(header(descr, &shape).as_bytes(), &data));
        assert!(matches!(result, Err(NpyError::ShapeOverflow { .. })), "{shape}: {result:?}");
    }
}

#[test]
fn header_length_limit_is_exactly_64_kib() {
    // Version 2.0 file whose header is a valid dict padded to `len` bytes.
    let v2 = |len: usize| {
        let mut header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }".to_vec();
        header.resize(len - 1, b' ');
        header.push(b'\n');
        let mut out = b"\x93NUMPY\x02\x00".to_vec();
        out.extend_from_slice(&u32::try_from(len).unwrap().to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&2.5f32.to_le_bytes());
        out
    };
    assert_eq!(read(&v2(65_536)).unwrap().data, Data::F32(vec![2.5]));
    assert!(matches!(read(&v2(65_537)), Err(NpyError::HeaderTooLong { len: 65_537 })));
    // The length field alone is enough to reject it.
    let mut just_preamble = v2(65_537);
    just_preamble.truncate(12);
    assert!(matches!(read(&just_preamble), Err(NpyError::HeaderTooLong { .. })));
    let mut max = just_preamble;
    max[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(read(&max), Err(NpyError::HeaderTooLong { len: u32::MAX })));
}

#[test]
fn maximal_nesting_in_a_64_kib_header_is_a_syntax_error() {
    for open in ["(", "[", "{'a': "] {
        let header = open.repeat(60_000 / open.len());
        let result = read(&file(header.as_bytes(), &[]));
        assert!(matches!(result, Err(NpyError::HeaderSyntax { .. })), "{open}: {result:?}");
    }
}
