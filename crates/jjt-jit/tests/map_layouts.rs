//! Elementwise steps whose loop nest the planner rearranges: transposing copies (run in tiles
//! of the destination's innermost axis and the axis along which the source is contiguous, with
//! ragged edges, on one thread and with the rows split across two), steps reading a transposed
//! operand inside an expression, broadcasts along short trailing axes (merged into one axis and
//! run on vectors), and unit axes. Each is checked against the interpreter bit for bit: copies
//! and the elementwise ops here are exact in both modes, and strict mode is interpreter
//! arithmetic by definition.

use jjt_ir::random::XorShift64;
use jjt_ir::{DType, Function, Tensor, interp, text};
use jjt_jit::{Options, compile_with};

/// Uniform values in [-1, 1); a bool input is false at every third element (a period no
/// vector width divides, so a lane read from the wrong byte shows).
fn inputs(f: &Function) -> Vec<Tensor> {
    let mut g = XorShift64(0x5eed_1234);
    f.params()
        .iter()
        .map(|p| {
            let v: Vec<f64> = if p.ty.dtype == DType::Bool {
                (0..p.ty.numel()).map(|i| f64::from(u8::from(i % 3 != 2))).collect()
            } else {
                (0..p.ty.numel()).map(|_| g.uniform(-1.0, 1.0)).collect()
            };
            Tensor::from_f64(&p.ty, &v).unwrap()
        })
        .collect()
}

/// `src` in f32 and f64, strict and fast, on 1 and 2 threads: every element bit for bit as
/// the interpreter computes it.
fn check(src: &str) {
    for d in [DType::F32, DType::F64] {
        let src = src.replace("f32", if d == DType::F32 { "f32" } else { "f64" });
        let f = text::parse(&src).unwrap();
        let xs = inputs(&f);
        let refs: Vec<&Tensor> = xs.iter().collect();
        let want = interp::eval(&f, &xs).unwrap().to_f64_vec();
        for strict in [false, true] {
            for threads in [1, 2] {
                let c =
                    compile_with(&f, Options { strict, threads, ..Options::default() }).unwrap();
                let got = c.call(&refs).unwrap().remove(0).to_f64_vec();
                assert_eq!(got.len(), want.len());
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g.to_bits(),
                        w.to_bits(),
                        "{src}\nstrict={strict} threads={threads} element {i}: {g:e} vs {w:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn transposing_copies_with_ragged_tiles() {
    // 37 and 45 are not multiples of the 16-element tile; 300·181 elements split into rows.
    check("func f(x: f32[37,45]) -> f32[45,37] {\n  return transpose(x, perm=[1,0])\n}");
    check("func f(x: f32[300,181]) -> f32[181,300] {\n  return transpose(x, perm=[1,0])\n}");
    check(
        "func f(x: f32[6,33,5,17]) -> f32[17,5,6,33] {\n  return transpose(x, perm=[3,2,0,1])\n}",
    );
    check("func f(x: f32[9,3,3,70]) -> f32[70,9,3,3] {\n  return transpose(x, perm=[3,0,1,2])\n}");
}

#[test]
fn transposed_operands_inside_expressions() {
    check(
        "func f(x: f32[40,24], y: f32[24,40]) -> f32[24,40] {\n\
         \x20 return transpose(x, perm=[1,0]) * y + y\n}",
    );
    check(
        "func f(x: f32[1,20,1,35], y: f32[35,20]) -> f32[35,1,20] {\n\
         \x20 t = reshape(transpose(x, perm=[3,2,1,0]), shape=[35,1,20])\n\
         \x20 return select(t > 0.0, t, reshape(y, shape=[35,1,20]))\n}",
    );
}

#[test]
fn broadcasts_along_short_trailing_axes_and_unit_axes() {
    // A 2×2 upsampling as the average pool's transpose writes it: the source broadcast along
    // two trailing axes of 2, merged into one of 4.
    check(
        "func f(x: f32[3,1,16,8], y: f32[3,1,16,8,2,2]) -> f32[3,1,16,8,2,2] {\n\
         \x20 b = broadcast_to(reshape(x, shape=[3,1,16,8,1,1]), shape=[3,1,16,8,2,2])\n\
         \x20 return b * y\n}",
    );
    check("func f(x: f32[1,50,1,3]) -> f32[1,3,1,50] {\n  return transpose(x, perm=[0,3,2,1])\n}");
}

#[test]
fn subscripts_compile_as_views() {
    // Reversed and strided slices, an integer index and a transpose, through the JIT.
    check("func f(x: f32[7,9]) -> f32[4,4] {\n  return x[::-2, 1:8:2] * 2.0\n}");
    check("func f(x: f32[5,6,3]) -> f32[6,3] {\n  return transpose(x[1:4, ::-1, -1]) + 1.0\n}");
}

/// Selects reading a bool input (a mask in memory, as the backward pass of relu reads its
/// forward comparison) with the mask contiguous along the rows, broadcast along them and
/// broadcast across them; rows of 13 (vectors and an overlapping last one), 6 and 3 (too short
/// for f32 vectors; three f64 vectors). Bit for bit as the interpreter, in f32 and f64, strict
/// and fast, on 1 and 2 threads.
#[test]
fn selects_read_bool_masks_in_memory() {
    for n in [13, 6, 3] {
        let broadcast = format!("broadcast_to(m, shape=[40,{n}])");
        let masks = [
            ("m".to_string(), format!("[40,{n}]")),
            (broadcast.clone(), "[40,1]".into()),
            (broadcast, format!("[1,{n}]")),
        ];
        for (mask, shape) in masks {
            check(&format!(
                "func f(m: bool{shape}, x: f32[40,{n}], y: f32[40,{n}]) -> f32[40,{n}] {{\n  return select({mask}, x * y, y)\n}}"
            ));
        }
    }
}
