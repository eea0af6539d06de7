//! A fuzz harness that runs on stable Rust (cargo-fuzz needs nightly, which this project does
//! not use): each target is a function of a byte string that must never panic; a driver feeds
//! it random byte strings and mutations of a seed corpus for a time budget, catches panics,
//! and saves the input that caused one. Inputs found this way are committed under
//! `crates/jjt-fuzz/regressions/<target>/` and replayed by `cargo test`.
//!
//! Targets:
//! - `parse`: model text (arbitrary bytes as UTF-8-lossy text), and if it parses, the printed
//!   form must parse back to the same text;
//! - `print`: structure-aware text: a random graph built from the bytes (`jjt_ir::testgen`,
//!   the generator every test shares: every op, f32 and f64) prints, parses back to the same
//!   text, and computes the same values;
//! - `npy`: `.npy` bytes (random and mutated valid files): read must return an array or an
//!   error, and a successful read must write back to bytes that read again to the same shape,
//!   dtype and elements (bit for bit);
//! - `mlir`: StableHLO text (arbitrary bytes and mutations of JAX's exports): the import
//!   returns a graph or an error, and a graph prints to text that parses back to the same
//!   text;
//! - `onnx`: ONNX protobuf bytes (arbitrary bytes and mutations of PyTorch's exports): the
//!   import returns a graph or an error (every float initializer selected, so the defaults are
//!   built too), and a graph prints to text that parses back to the same text;
//! - `diff`: a random graph built from the bytes: the JIT in strict mode equals the
//!   interpreter bit for bit, in fast mode within a rounding bound (1e-9 of the largest finite
//!   magnitude in f64, 1e-4 in f32 or in a graph computing in f32: summation order and the
//!   inline `exp`/`tanh`/`sigmoid` differ) with the same count of finite
//!   outputs; and when the first byte is odd (every op kept in its domain), the optimised graph
//!   equals the unoptimised one within the same bound.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use jjt_ir::testgen::{self, Config, Draw};
use jjt_ir::{DType, Function, Tensor, interp, text};

/// A target: must not panic on any input; returns an error message for a wrong result.
pub type Target = fn(&[u8]) -> Result<(), String>;

/// The targets by name.
pub const TARGETS: [(&str, Target); 7] = [
    ("parse", parse),
    ("print", print),
    ("npy", npy),
    ("npz", npz),
    ("mlir", mlir),
    ("onnx", onnx),
    ("diff", diff),
];

/// ONNX protobuf: the import never panics; what imports prints and parses back to itself.
/// (External data is not read: the fuzzer's bytes name no folder.)
pub fn onnx(data: &[u8]) -> Result<(), String> {
    match jjt_import::import_onnx(data, None, "m", &|_, _| true) {
        Ok(m) => round_trip(&m.function),
        Err(_) => Ok(()),
    }
}

/// An imported graph prints to text that parses back to the same text.
fn round_trip(f: &Function) -> Result<(), String> {
    let printed = text::print(f);
    let again = text::parse(&printed)
        .map_err(|e| format!("the imported graph's text does not parse: {e}\n{printed}"))?;
    if text::print(&again) != printed {
        return Err(format!("print(parse(print(g))) != print(g):\n{printed}"));
    }
    Ok(())
}

/// StableHLO text: the import never panics; what imports prints and parses back to itself.
pub fn mlir(data: &[u8]) -> Result<(), String> {
    let src = String::from_utf8_lossy(data);
    match jjt_import::import_stablehlo(&src, "m") {
        Ok(f) => round_trip(&f),
        Err(_) => Ok(()),
    }
}

/// Model text.
pub fn parse(data: &[u8]) -> Result<(), String> {
    let src = String::from_utf8_lossy(data);
    if let Ok(f) = text::parse(&src) {
        let printed = text::print(&f);
        let again = text::parse(&printed)
            .map_err(|e| format!("printed text does not parse: {e}\n{printed}"))?;
        if text::print(&again) != printed {
            return Err(format!("print(parse(print(g))) != print(g):\n{printed}"));
        }
    }
    Ok(())
}

/// Structure-aware text: a random graph built from the bytes prints to text that parses back
/// to the same text, and the reparsed graph computes the same values bit for bit.
pub fn print(data: &[u8]) -> Result<(), String> {
    // No `npy` constants: their file does not exist for the parser to read.
    let case =
        testgen::generate(&mut Draw::bytes(data), &Config { npy: false, ..Config::default() });
    let f = &case.f;
    let printed = text::print(f);
    let again = text::parse(&printed)
        .map_err(|e| format!("printed graph does not parse: {e}\n{printed}"))?;
    if text::print(&again) != printed {
        return Err(format!("print(parse(print(g))) != print(g):\n{printed}"));
    }
    let (a, b) = (interp::eval_outputs(f, &case.args), interp::eval_outputs(&again, &case.args));
    match (a, b) {
        (Ok(a), Ok(b)) if all_bits(&a) == all_bits(&b) => Ok(()),
        (Err(a), Err(b)) if a.to_string() == b.to_string() => Ok(()),
        _ => Err(format!("the reparsed graph computes something else:\n{printed}")),
    }
}

fn all_bits(ts: &[Tensor]) -> Vec<u64> {
    ts.iter().flat_map(|t| bits(&t.to_f64_vec())).collect()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| if x.is_nan() { u64::MAX } else { x.to_bits() }).collect()
}

/// `.npy` bytes.
pub fn npy(data: &[u8]) -> Result<(), String> {
    let _ = jjt_npy::read_header(data);
    if let Ok(a) = jjt_npy::read(data) {
        let bytes = jjt_npy::write(&a);
        let b =
            jjt_npy::read(&bytes).map_err(|e| format!("written array does not read back: {e}"))?;
        if b.shape != a.shape || b.data.dtype() != a.data.dtype() {
            return Err("written array reads back with another shape or dtype".into());
        }
        if data_bits(&b.data) != data_bits(&a.data) {
            return Err("written array reads back with other elements".into());
        }
    }
    Ok(())
}

/// `.npz` archives: read (never a panic); what reads is written and reads back the same.
pub fn npz(data: &[u8]) -> Result<(), String> {
    if let Ok(arrays) = jjt_npy::read_npz(data) {
        let named: Vec<(&str, &jjt_npy::Array)> =
            arrays.iter().map(|(n, a)| (n.as_str(), a)).collect();
        let bytes = jjt_npy::write_npz(&named).map_err(|e| format!("cannot write back: {e}"))?;
        let back =
            jjt_npy::read_npz(&bytes).map_err(|e| format!("written archive does not read: {e}"))?;
        if back.len() != arrays.len() {
            return Err("written archive reads back with another member count".into());
        }
        for ((_, a), (_, b)) in arrays.iter().zip(&back) {
            if a.shape != b.shape || data_bits(&a.data) != data_bits(&b.data) {
                return Err("written archive reads back with other arrays".into());
            }
        }
    }
    Ok(())
}

fn data_bits(d: &jjt_npy::Data) -> Vec<u64> {
    match d {
        jjt_npy::Data::F32(v) => v.iter().map(|x| u64::from(x.to_bits())).collect(),
        jjt_npy::Data::F64(v) => v.iter().map(|x| x.to_bits()).collect(),
        jjt_npy::Data::I32(v) => v.iter().map(|&x| u64::from(x as u32)).collect(),
        jjt_npy::Data::Bool(v) => v.iter().map(|&x| u64::from(x)).collect(),
    }
}

/// Whether `got` is within the rounding bound of `want`: `tol(output)` of the output's largest
/// finite magnitude, or the same bits, or both NaN.
fn within(got: &[Tensor], want: &[Tensor], tol: impl Fn(&Tensor) -> f64) -> bool {
    let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    got.len() == want.len()
        && got.iter().zip(want).all(|(g, w)| {
            let tol = tol(w);
            let (g, w) = (g.to_f64_vec(), w.to_f64_vec());
            let scale = w.iter().filter(|v| v.is_finite()).fold(1.0f64, |m, v| m.max(v.abs()));
            g.len() == w.len()
                && g.iter()
                    .zip(&w)
                    .all(|(a, b)| same(*a, *b) || (tol > 0.0 && (a - b).abs() <= tol * scale))
        })
}

/// The rounding bound of a reassociated result: f32's if the output or anything in `f` is f32
/// (an f64 output may be an f32 value converted, carrying f32's rounding: fast mode's inline
/// `exp`, `tanh` and `sigmoid` differ from libm's by a few f32 ulps), else f64's.
fn rounding(f: &Function) -> impl Fn(&Tensor) -> f64 {
    let f32_inside = f.node_ids().any(|n| f.node(n).is_some_and(|x| x.ty.dtype == DType::F32));
    move |out: &Tensor| if out.dtype() == DType::F32 || f32_inside { 1e-4 } else { 1e-9 }
}

/// Differential: JIT (strict, bit for bit; fast, within rounding) vs interpreter, optimised
/// vs unoptimised. The optimiser may reassociate sums, which can move an overflow, so graphs
/// outside their domains are compared with it only when all their outputs are finite.
pub fn diff(data: &[u8]) -> Result<(), String> {
    let domains = data.first().is_some_and(|b| b & 1 == 1);
    let case = testgen::generate(&mut Draw::bytes(data), &Config { domains, ..Config::default() });
    let (f, args) = (&case.f, &case.args);
    let shown = || text::print(f);
    let want = interp::eval_outputs(f, args).map_err(|e| e.to_string())?;
    let refs: Vec<&Tensor> = args.iter().collect();
    let run = |strict: bool| -> Result<Vec<Tensor>, String> {
        let options = jjt_jit::Options { strict, ..Default::default() };
        let c = jjt_jit::compile_with(f, options).map_err(|e| e.to_string())?;
        c.call(&refs).map_err(|e| e.to_string())
    };
    if !within(&run(true)?, &want, |_| 0.0) {
        return Err(format!("strict JIT differs from the interpreter\n{}", shown()));
    }
    let fast = run(false)?;
    if testgen::finite_count(&fast) != testgen::finite_count(&want)
        || !within(&fast, &want, rounding(f))
    {
        return Err(format!("fast JIT differs from the interpreter\n{}", shown()));
    }
    let all_finite = testgen::finite_count(&want) == want.iter().map(Tensor::numel).sum::<usize>();
    if domains || all_finite {
        let (o, _) = jjt_opt::optimize(f, |_, _| {}).map_err(|e| e.to_string())?;
        let opt = interp::eval_outputs(&o, args).map_err(|e| e.to_string())?;
        if !within(&opt, &want, rounding(f)) {
            return Err(format!("optimised graph differs\n{}", shown()));
        }
    }
    Ok(())
}

/// xorshift64* for the driver.
pub use jjt_ir::random::XorShift64 as Rng;

/// A random input: fresh bytes, or a mutated seed (byte flips, insertions, deletions, splices).
pub fn input(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if seeds.is_empty() || rng.next_u64().is_multiple_of(4) {
        let n = (rng.next_u64() % 256) as usize;
        return (0..n).map(|_| rng.next_u64() as u8).collect();
    }
    let mut v = seeds[(rng.next_u64() % seeds.len() as u64) as usize].clone();
    for _ in 0..1 + rng.next_u64() % 4 {
        let at = if v.is_empty() { 0 } else { (rng.next_u64() % v.len() as u64) as usize };
        match rng.next_u64() % 4 {
            0 if !v.is_empty() => v[at] = rng.next_u64() as u8,
            1 => v.insert(at, rng.next_u64() as u8),
            2 if !v.is_empty() => {
                v.remove(at);
            }
            _ => {
                let other = &seeds[(rng.next_u64() % seeds.len() as u64) as usize];
                if !other.is_empty() {
                    let from = (rng.next_u64() % other.len() as u64) as usize;
                    let len = ((rng.next_u64() % 16) as usize).min(other.len() - from);
                    v.splice(at..at, other[from..from + len].iter().copied());
                }
            }
        }
    }
    v
}

/// Run one input; `Err` holds the panic message or the wrong-result message.
pub fn run_one(target: Target, data: &[u8]) -> Result<(), String> {
    match std::panic::catch_unwind(|| target(data)) {
        Ok(r) => r,
        Err(p) => Err(format!(
            "panic: {}",
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
    }
}
