//! Random constants equal NumPy's legacy generator bit for bit: `np.random.seed(s)` then
//! `rand`/`randn`, including consecutive draws from one stream. Expected hashes were computed
//! by NumPy (`tests/fixtures/gen_fixtures.py` writes `random.txt`).

use jjt_ir::random::{Distribution, draws};
use jjt_ir::{DType, interp, trace};
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha_f64(v: &[f64]) -> String {
    let mut h = Sha256::new();
    for x in v {
        h.update(x.to_le_bytes());
    }
    hex(&h.finalize())
}

fn sha_f32(v: &[f64]) -> String {
    let mut h = Sha256::new();
    for x in v {
        h.update((*x as f32).to_le_bytes());
    }
    hex(&h.finalize())
}

struct Row {
    label: String,
    dist: Distribution,
    seed: u32,
    offset: u64,
    count: usize,
    sha64: String,
    sha32: String,
}

fn rows() -> Vec<Row> {
    let text = include_str!("fixtures/random.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Row {
                label: w[0].into(),
                dist: if w[1] == "uniform" { Distribution::Uniform } else { Distribution::Normal },
                seed: w[2].parse().unwrap(),
                offset: w[3].parse().unwrap(),
                count: w[4].parse().unwrap(),
                sha64: w[5].into(),
                sha32: w[6].into(),
            }
        })
        .collect()
}

#[test]
fn streams_match_numpy_bit_for_bit() {
    let rows = rows();
    assert!(rows.len() >= 7);
    for r in &rows {
        let v = draws(r.dist, r.seed, r.offset, r.count);
        assert_eq!(
            sha_f64(&v),
            r.sha64,
            "{} offset {}: f64 stream differs from NumPy",
            r.label,
            r.offset
        );
        assert_eq!(
            sha_f32(&v),
            r.sha32,
            "{} offset {}: f32 rounding differs from NumPy",
            r.label,
            r.offset
        );
    }
}

/// The seed example's data: A = rand(5, 10000), then x1, x2 = rand(10000), traced as
/// consecutive draws from one seed and evaluated by the interpreter, in f64 and f32.
#[test]
fn traced_consecutive_draws_match_numpy() {
    let rows = rows();
    let seed_rows: Vec<&Row> = rows.iter().filter(|r| r.label == "seed_A_x1_x2").collect();
    assert_eq!(seed_rows.len(), 3);
    for dtype in [DType::F64, DType::F32] {
        let shapes: [&[usize]; 3] = [&[5, 10000], &[10000], &[10000]];
        for (k, row) in seed_rows.iter().enumerate() {
            let f = trace("draws", |t| {
                let mut last = None;
                for s in &shapes[..=k] {
                    last = Some(t.uniform(dtype, s.to_vec(), 1701));
                }
                last.unwrap()
            })
            .unwrap();
            let v = interp::eval(&f, &[]).unwrap().to_f64_vec();
            let want = if dtype == DType::F64 { &row.sha64 } else { &row.sha32 };
            let got = if dtype == DType::F64 { sha_f64(&v) } else { sha_f32(&v) };
            assert_eq!(&got, want, "draw {k} at {dtype}");
        }
    }
}

/// Skipping uniform draws by words gives the same values as drawing them.
#[test]
fn uniform_skip_equals_drawing() {
    for offset in [0u64, 1, 311, 312, 313, 624, 1000, 5000] {
        let all = draws(Distribution::Uniform, 42, 0, offset as usize + 7);
        assert_eq!(
            draws(Distribution::Uniform, 42, offset, 7),
            all[offset as usize..],
            "offset {offset}"
        );
    }
    let all = draws(Distribution::Normal, 42, 0, 20);
    assert_eq!(draws(Distribution::Normal, 42, 5, 15), all[5..]);
}
