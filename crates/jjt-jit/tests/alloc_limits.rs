//! Nothing is allocated from a size read from input before it is checked: reading a small
//! file (or model text) that declares an enormous shape allocates at most the file's size plus
//! 1 MiB before the error, measured with a counting allocator.

#[path = "common/counting.rs"]
mod counting;

use counting::{Counting, peak_during};

#[global_allocator]
static A: Counting = Counting;

#[test]
fn oversized_declared_shapes_are_rejected_before_allocating() {
    // A .npy header declaring 2^40 f64 values, with 16 bytes of data.
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }";
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
    bytes.extend_from_slice(h.as_bytes());
    bytes.extend_from_slice(&[0u8; 16]);
    let path = std::env::temp_dir().join(format!("jjt-huge-{}.npy", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let file_size = bytes.len();
    let (r, peak) = peak_during(|| jjt_npy::read_file(&path));
    assert!(matches!(r, Err(jjt_npy::NpyError::DataShort { .. })), "{r:?}");
    assert!(peak <= file_size + (1 << 20), "allocated {peak} bytes for a {file_size}-byte file");
    let (r, peak) = peak_during(|| jjt_npy::read(&bytes));
    assert!(r.is_err());
    assert!(peak <= file_size + (1 << 20), "allocated {peak} bytes");
}

#[test]
fn oversized_shapes_in_model_text_are_rejected_before_allocating() {
    let src = "func f(x: f32[]) -> f32[] {\n  z = zeros(f32[1000000,1000000])\n  u = uniform(f32[1000000,1000], seed=1)\n  return sum(z) + sum(u) + x\n}";
    let (f, peak) = peak_during(|| jjt_ir::text::parse(src));
    let f = f.unwrap();
    assert!(peak <= src.len() + (1 << 20), "parsing allocated {peak} bytes");
    let x = jjt_ir::Tensor::f32(Vec::<usize>::new(), vec![1.0]).unwrap();
    let (r, peak) = peak_during(|| jjt_ir::interp::eval(&f, std::slice::from_ref(&x)));
    assert!(matches!(r, Err(jjt_ir::EvalError::TooLarge { .. })), "{r:?}");
    assert!(peak <= 1 << 20, "the interpreter allocated {peak} bytes");
    let (r, peak) = peak_during(|| jjt_jit::compile(&f));
    assert!(matches!(r, Err(jjt_jit::JitError::TooLarge { .. })), "{r:?}");
    assert!(peak <= 1 << 20, "the JIT allocated {peak} bytes");
}
