//! Every op, evaluated by the interpreter, against values NumPy computed
//! (`tests/fixtures/gen_fixtures.py`, folder `ops/`) or, for `conv`, JAX
//! (`tests/fixtures/gen_conv_fixtures.py`, folder `ops_conv/`). Each case folder holds a
//! model, its inputs, the reference output and the tolerance class the arithmetic justifies
//! (see the scripts' docstrings).

use std::path::{Path, PathBuf};

use jjt_ir::{Data, Op, Tensor, interp, text};

fn load(path: &Path) -> Tensor {
    Tensor::from_array(
        jjt_npy::read_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
}

fn ulp(x: f64, f32_: bool) -> f64 {
    let x = x.abs();
    if f32_ {
        let e = (x as f32).max(f32::MIN_POSITIVE);
        f64::from(f32::from_bits(e.to_bits() + 1) - e)
    } else {
        let e = x.max(f64::MIN_POSITIVE);
        f64::from_bits(e.to_bits() + 1) - e
    }
}

fn check_case(dir: &Path) -> Result<(), String> {
    let src = std::fs::read_to_string(dir.join("model.jjt")).map_err(|e| e.to_string())?;
    let f = text::parse_with_base(&src, Some(dir)).map_err(|e| format!("parse: {e}"))?;
    let mut inputs = Vec::new();
    for i in 0.. {
        let p = dir.join(format!("in{i}.npy"));
        if !p.exists() {
            break;
        }
        inputs.push(load(&p));
    }
    let got = interp::eval(&f, &inputs).map_err(|e| format!("eval: {e}"))?;
    let want = load(&dir.join("out.npy"));
    if got.ty() != want.ty() {
        return Err(format!("type {} != {}", got.ty(), want.ty()));
    }
    let tol = std::fs::read_to_string(dir.join("tol")).map_err(|e| e.to_string())?;
    let mut words = tol.split_whitespace();
    let kind = words.next().unwrap_or("");
    let n: f64 = words.next().map_or(0.0, |w| w.parse().unwrap_or(0.0));
    let is_f32 = matches!(want.data, Data::F32(_));
    let u = if is_f32 { f64::from(f32::EPSILON) / 2.0 } else { f64::EPSILON / 2.0 };
    let absv = if kind == "sum" { load(&dir.join("abs.npy")).to_f64_vec() } else { vec![] };
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        let ok = match kind {
            "exact" => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            "ulp" => (a - b).abs() <= n * ulp(b, is_f32),
            // Both sides round each of n partial sums: |error| <= n·u·Σ|terms| each.
            "sum" => (a - b).abs() <= 2.0 * n * u * absv[i],
            other => return Err(format!("unknown tolerance class {other}")),
        };
        if !ok {
            return Err(format!("element {i}: got {a:e}, NumPy {b:e} (tolerance {})", tol.trim()));
        }
    }
    Ok(())
}

/// Every case folder of both fixture sets.
fn case_dirs() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs: Vec<PathBuf> = ["ops", "ops_conv"]
        .iter()
        .flat_map(|set| std::fs::read_dir(root.join(set)).unwrap().map(|e| e.unwrap().path()))
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_op_matches_numpy() {
    let dirs = case_dirs();
    assert!(dirs.len() >= 80, "fixture cases missing: {}", dirs.len());
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| {
            check_case(d)
                .err()
                .map(|e| format!("{}: {e}", d.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));
}

/// Every op name of the closed set (`Op::all_names`, the generated checklist) is built by at
/// least one fixture model (a new op without a NumPy case fails here), and `matmul` — a builder
/// convenience that lowers to `dot_general` — is called by one.
#[test]
fn fixtures_cover_every_op() {
    let mut built = std::collections::BTreeSet::new();
    let mut all = String::new();
    for dir in case_dirs() {
        let src = std::fs::read_to_string(dir.join("model.jjt")).unwrap();
        let f = text::parse_with_base(&src, Some(&dir)).unwrap();
        built.extend(f.node_ids().map(|n| f.node(n).unwrap().op.name()));
        all.push_str(&src);
    }
    let missing: Vec<&str> = Op::all_names().into_iter().filter(|n| !built.contains(n)).collect();
    assert!(missing.is_empty(), "no NumPy fixture builds {missing:?}");
    assert!(all.contains("matmul("), "no fixture uses `matmul`");
}

/// The interpreter's contraction sums each output's products in order c = 0, 1, …, k-1 in the
/// operand dtype (the reference the JIT's strict mode matches bit for bit), also when the
/// outputs span several of its internal chunks and the contracted axis is strided.
#[test]
fn contraction_sums_in_order_across_chunks() {
    let (m, k, n) = (70, 37, 90); // 6300 outputs: more than one chunk of 4096
    let mut s = 1u64;
    let mut draw = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
            })
            .collect()
    };
    let (a, b) = (draw(m * k), draw(k * n));
    let src = format!(
        "func f(a: f32[{m},{k}], b: f32[{k},{n}]) -> f32[{m},{n}] {{ return matmul(a, b) }}"
    );
    let f = text::parse(&src).unwrap();
    let out = interp::eval(
        &f,
        &[Tensor::f32(vec![m, k], a.clone()).unwrap(), Tensor::f32(vec![k, n], b.clone()).unwrap()],
    )
    .unwrap();
    let Data::F32(got) = &out.data else { panic!("expected f32") };
    for i in 0..m {
        for j in 0..n {
            let mut acc = a[i * k] * b[j];
            for c in 1..k {
                acc += a[i * k + c] * b[c * n + j];
            }
            assert_eq!(got[i * n + j].to_bits(), acc.to_bits(), "output ({i}, {j})");
        }
    }
}
