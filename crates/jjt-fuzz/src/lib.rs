//! A fuzz harness that runs on stable Rust (cargo-fuzz needs nightly, which this project does
//! not use): each target is a function of a byte string that must never panic; a driver feeds
//! it random byte strings and mutations of a seed corpus for a time budget, catches panics,
//! and saves the input that caused one. Inputs found this way are committed under
//! `crates/jjt-fuzz/regressions/<target>/` and replayed by `cargo test`.
//!
//! Targets:
//! - `parse`: model text (arbitrary bytes as UTF-8-lossy text), and if it parses, the printed
//!   form must parse back to the same text;
//! - `print`: structure-aware text: a random graph built from the bytes prints, parses back to
//!   the same text, and computes the same values;
//! - `npy`: `.npy` bytes (random and mutated valid files): read must return an array or an
//!   error, and a successful read must write back to bytes that read again equal;
//! - `diff`: a random graph built from the bytes: the JIT in strict mode equals the
//!   interpreter bit for bit, and the optimised graph equals the unoptimised one within
//!   rounding.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use jjt_ir::ops::ReduceKind;
use jjt_ir::{
    Binary, DType, Function, FunctionBuilder, NodeId, Tensor, TensorType, Unary, interp, text,
};

/// A target: must not panic on any input; returns an error message for a wrong result.
pub type Target = fn(&[u8]) -> Result<(), String>;

/// The targets by name.
pub const TARGETS: [(&str, Target); 4] =
    [("parse", parse), ("print", print), ("npy", npy), ("diff", diff)];

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
    let Some(f) = graph(data) else { return Ok(()) };
    let printed = text::print(&f);
    let again = text::parse(&printed)
        .map_err(|e| format!("printed graph does not parse: {e}\n{printed}"))?;
    if text::print(&again) != printed {
        return Err(format!("print(parse(print(g))) != print(g):\n{printed}"));
    }
    let args = args(&f, data)?;
    let (a, b) = (interp::eval(&f, &args), interp::eval(&again, &args));
    match (a, b) {
        (Ok(a), Ok(b)) if bits(&a.to_f64_vec()) == bits(&b.to_f64_vec()) => Ok(()),
        (Err(a), Err(b)) if a.to_string() == b.to_string() => Ok(()),
        _ => Err(format!("the reparsed graph computes something else:\n{printed}")),
    }
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| if x.is_nan() { u64::MAX } else { x.to_bits() }).collect()
}

/// Inputs for `f` from the second half of the bytes.
fn args(f: &Function, data: &[u8]) -> Result<Vec<Tensor>, String> {
    let mut g = Bytes(data, data.len() / 2);
    f.params()
        .iter()
        .map(|p| {
            Tensor::from_f64(
                &p.ty,
                &(0..p.ty.numel()).map(|_| (g.next() as f64 - 128.0) / 32.0).collect::<Vec<_>>(),
            )
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())
}

/// `.npy` bytes.
pub fn npy(data: &[u8]) -> Result<(), String> {
    let _ = jjt_npy::read_header(data);
    if let Ok(a) = jjt_npy::read(data) {
        let bytes = jjt_npy::write(&a);
        let b =
            jjt_npy::read(&bytes).map_err(|e| format!("written array does not read back: {e}"))?;
        if b.shape != a.shape || format!("{:?}", b.data.dtype()) != format!("{:?}", a.data.dtype())
        {
            return Err("written array reads back different".into());
        }
    }
    Ok(())
}

/// A byte-driven generator.
struct Bytes<'a>(&'a [u8], usize);

impl Bytes<'_> {
    fn next(&mut self) -> usize {
        let b = self.0.get(self.1).copied().unwrap_or(0);
        self.1 += 1;
        b as usize
    }
}

fn graph(data: &[u8]) -> Option<Function> {
    let mut g = Bytes(data, 0);
    let mut b = FunctionBuilder::new("g");
    let shapes: [&[usize]; 4] = [&[3], &[2, 3], &[3, 1], &[]];
    let mut pool: Vec<NodeId> = (0..1 + g.next() % 3)
        .map(|i| {
            b.input(&format!("x{i}"), TensorType::new(DType::F64, shapes[g.next() % 4].to_vec()))
        })
        .collect::<Result<_, _>>()
        .ok()?;
    for _ in 0..g.next() % 12 {
        let a = pool[g.next() % pool.len()];
        let c = pool[g.next() % pool.len()];
        let r = match g.next() % 6 {
            0 => b.unary(Unary::ALL[g.next() % Unary::ALL.len()], a),
            1 => b.binary(Binary::ALL[g.next() % Binary::ALL.len()], a, c),
            2 => b.matmul(a, c),
            3 => b.reduce(ReduceKind::ALL[g.next() % 3], a, None),
            4 => b.transpose(a, &(0..b.ty(a).ok()?.rank()).rev().collect::<Vec<_>>()),
            _ => b.binary_scalar(Binary::Mul, a, 0.5, jjt_ir::ScalarSide::Right),
        };
        if let Ok(n) = r {
            pool.push(n);
        }
    }
    let out = *pool.last()?;
    b.finish(out).ok()
}

/// Differential: JIT (strict) vs interpreter, optimised vs unoptimised.
pub fn diff(data: &[u8]) -> Result<(), String> {
    let Some(f) = graph(data) else { return Ok(()) };
    let args = args(&f, data)?;
    let want = interp::eval(&f, &args).map_err(|e| e.to_string())?;
    let refs: Vec<&Tensor> = args.iter().collect();
    let c = jjt_jit::compile_with(&f, jjt_jit::Options { strict: true, ..Default::default() })
        .map_err(|e| e.to_string())?;
    let got = c.call(&refs).map_err(|e| e.to_string())?.remove(0);
    let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    if !want.to_f64_vec().iter().zip(got.to_f64_vec()).all(|(a, b)| same(*a, b)) {
        return Err(format!("JIT differs from the interpreter\n{}", text::print(&f)));
    }
    let (o, _) = jjt_opt::optimize(&f, |_, _| {}).map_err(|e| e.to_string())?;
    let opt = interp::eval(&o, &args).map_err(|e| e.to_string())?.to_f64_vec();
    let w = want.to_f64_vec();
    let scale = w.iter().filter(|v| v.is_finite()).fold(1.0f64, |m, v| m.max(v.abs()));
    for (a, b) in opt.iter().zip(&w) {
        if !(same(*a, *b) || (a - b).abs() <= 1e-9 * scale) {
            return Err(format!("optimised graph differs: {a} vs {b}\n{}", text::print(&f)));
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
