//! `i32` in compiled code: loads, stores, wrapping arithmetic, signed comparisons, selects and
//! the saturating conversions, bit for bit against the interpreter (integer results are exact,
//! float results of `convert` are correctly rounded in both), in strict and fast mode, over
//! lengths that cover every loop tail.

use jjt_ir::text::parse;
use jjt_ir::{Data, Tensor, interp};
use jjt_jit::{Options, compile_with};

const LENGTHS: [usize; 5] = [0, 1, 5, 17, 130];

/// Integers around the edges of the range and small ones, deterministically spread.
fn ints(n: usize, shift: usize) -> Vec<i32> {
    let table = [0, 1, -1, i32::MAX, i32::MIN, 7, -123_456, 1 << 24, (1 << 24) + 1, 46_341];
    (0..n)
        .map(|k| {
            let k = k + shift;
            if k < table.len() { table[k] } else { (k as i32).wrapping_mul(-1_640_531_527) }
        })
        .collect()
}

/// Floats with the specials the conversion must handle.
fn floats(n: usize) -> Vec<f32> {
    let table = [0.0, -0.0, 1.9, -1.9, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 3e9, -3e9, 0.5];
    (0..n).map(|k| table.get(k).copied().unwrap_or((k as f32 - 60.0) * 1.37)).collect()
}

fn bits(t: &Tensor) -> Vec<u64> {
    match &t.data {
        Data::F32(v) => v.iter().map(|x| u64::from(x.to_bits())).collect(),
        Data::F64(v) => v.iter().map(|x| x.to_bits()).collect(),
        Data::I32(v) => v.iter().map(|&x| u64::from(x as u32)).collect(),
        Data::Bool(v) => v.iter().map(|&x| u64::from(x)).collect(),
    }
}

/// Each model (with `N` standing for the length) against the interpreter.
#[test]
fn integer_maps_equal_the_interpreter() {
    let models = [
        // Wrapping arithmetic, min/max, neg.
        "func f(a: i32[N], b: i32[N]) -> i32[N] {\n  return maximum(a * b - neg(a), minimum(b + 3, a))\n}\n",
        // Signed comparisons choosing between integers.
        "func f(a: i32[N], b: i32[N]) -> i32[N] {\n  return select(le(a, b), a - b, select(eq(a, full(i32[N], 7)), b, a + 1))\n}\n",
        // Integer → float → integer, bools in between.
        "func f(a: i32[N], b: i32[N]) -> f32[N] {\n  return convert(a, to=f32) * 0.5 + convert(convert(b, to=bool), to=f32)\n}\n",
        "func f(a: i32[N], b: i32[N]) -> f64[N] {\n  return convert(a, to=f64) - convert(b, to=f64)\n}\n",
        "func f(a: i32[N], b: i32[N]) -> i32[N] {\n  return convert(gt(a, b), to=i32) + iota(i32[N], axis=0)\n}\n",
    ];
    for src in models {
        for n in LENGTHS {
            let f = parse(&src.replace('N', &n.to_string())).unwrap();
            let args =
                [Tensor::i32([n], ints(n, 0)).unwrap(), Tensor::i32([n], ints(n, 3)).unwrap()];
            check(&f, &args, src);
        }
    }
}

#[test]
fn float_to_int_conversion_saturates_in_compiled_code() {
    for n in LENGTHS {
        let src = format!(
            "func f(x: f32[{n}]) -> i32[{n}] {{\n  return convert(x, to=i32) + convert(convert(x, to=f64) * 2.0, to=i32)\n}}\n"
        );
        let f = parse(&src).unwrap();
        check(&f, &[Tensor::f32([n], floats(n)).unwrap()], &src);
    }
}

/// Strict and fast JIT bit for bit against the interpreter.
fn check(f: &jjt_ir::Function, args: &[Tensor], what: &str) {
    let want = interp::eval(f, args).unwrap();
    for strict in [true, false] {
        let c = compile_with(f, Options { strict, ..Options::default() }).unwrap();
        let refs: Vec<&Tensor> = args.iter().collect();
        let got = c.call(&refs).unwrap().remove(0);
        assert_eq!(got.dtype(), want.dtype(), "{what}");
        assert_eq!(bits(&got), bits(&want), "{what} strict={strict}");
    }
}

/// Deterministic floats for a table or updates.
fn values(n: usize, shift: usize) -> Vec<f32> {
    (0..n).map(|k| (((k + shift) * 37 % 101) as f32 - 50.0) * 0.173).collect()
}

/// `gather` and `scatter_add` (with out-of-range indices, clamped) along every axis, fused
/// with their neighbours or not, strict and fast, bit for bit against the interpreter: the
/// JIT adds a scatter's terms in the interpreter's order.
#[test]
fn gather_and_scatter_add_equal_the_interpreter() {
    let idx = vec![3, -2, 0, 9, 1, 1, 2, 1_000_000, i32::MIN, 4, 4, 0];
    let models = [
        (
            "func f(t: f32[5,3], i: i32[12]) -> f32[12,3] {\n  return gather(t, i, axis=0)\n}\n",
            [15, 12],
        ),
        (
            "func f(t: f32[2,5,3], i: i32[3,4]) -> f32[2,3,4,3] {\n  return gather(t * 2.0, i + 1, axis=1)\n}\n",
            [30, 12],
        ),
        (
            "func f(t: f32[3,5], i: i32[12]) -> f32[3] {\n  return sum(abs(gather(t, i, axis=1)), axes=[1])\n}\n",
            [15, 12],
        ),
        (
            "func f(u: f32[12,3], i: i32[12]) -> f32[5,3] {\n  return scatter_add(i, u, size=5, axis=0)\n}\n",
            [36, 12],
        ),
        (
            "func f(u: f32[2,3,4,3], i: i32[3,4]) -> f32[2,5,3] {\n  return scatter_add(i, u * u, size=5, axis=1) * 3.0\n}\n",
            [72, 12],
        ),
        (
            "func f(u: f32[3,12], i: i32[12]) -> f32[3,7] {\n  return scatter_add(i - 1, u, size=7, axis=1)\n}\n",
            [36, 12],
        ),
    ];
    // Rows of 8 and 9 elements: read as vectors (and the tail on scalars), in maps and in
    // reductions over the tokens, f32 and f64.
    let wide = [
        (
            "func f(t: f32[5,8], i: i32[12]) -> f32[12,8] {\n  return gather(t, i, axis=0) * 2.0\n}\n",
            [40, 12],
        ),
        (
            "func f(t: f64[5,9], i: i32[12]) -> f64[12,9] {\n  return gather(t, i, axis=0) - 1.0\n}\n",
            [45, 12],
        ),
        (
            "func f(t: f32[5,9], i: i32[2,6]) -> f32[2,9] {\n  return sum(gather(t, i, axis=0), axes=[1])\n}\n",
            [45, 12],
        ),
        (
            "func f(t: f64[5,8], i: i32[2,6]) -> f64[2,8] {\n  return max(gather(t, i, axis=0), axes=[1])\n}\n",
            [40, 12],
        ),
        (
            "func f(t: f32[3,5,8], i: i32[4]) -> f32[4,8] {\n  return mean(gather(t, i, axis=1), axes=[0])\n}\n",
            [120, 4],
        ),
    ];
    for (src, [n, k]) in models.into_iter().chain(wide) {
        let f = parse(src).unwrap();
        let p = f.params();
        let v: Vec<f64> = values(n, 0).into_iter().map(f64::from).collect();
        let t = Tensor::from_f64(&p[0].ty, &v).unwrap();
        let i = Tensor::i32(p[1].ty.shape.clone(), idx[..k].to_vec()).unwrap();
        check(&f, &[t, i], src);
    }
}

/// A reduction over gathered rows runs on vectors along the rows (the index is the same for
/// every lane), as a reduction over stored rows would.
#[test]
fn reductions_over_gathered_rows_use_vectors() {
    let src = "func f(t: f32[50,64], i: i32[3,16]) -> f32[3,64] {\n  return mean(gather(t, i, axis=0), axes=[1])\n}\n";
    let f = parse(src).unwrap();
    for strict in [true, false] {
        let c = compile_with(&f, Options { strict, ..Options::default() }).unwrap();
        let labels = c.step_labels().join("\n");
        assert!(labels.contains("reduce") && labels.contains("vectors"), "{labels}");
    }
}

/// `any` and `all` over each axis set of a `[3, n, 4]` bool tensor (rows all false, all true
/// and mixed; `n = 0` is the empty reduction: false for `any`, true for `all`), from the text
/// format through the interpreter and the JIT, against a direct loop over the bools.
#[test]
fn any_and_all_reduce_bool_tensors() {
    for n in [0, 1, 5] {
        let shape = [3, n, 4];
        // Row 0 all false, row 1 all true, row 2 true at every third element.
        let p: Vec<bool> =
            (0..3 * n * 4).map(|i| i / (n * 4) == 1 || (i / (n * 4) == 2 && i % 3 == 0)).collect();
        let input = Tensor { shape: jjt_ir::Shape(shape.to_vec()), data: Data::Bool(p.clone()) };
        for (axes, kept) in
            [("[1]", vec![0, 2]), ("[0,2]", vec![1]), ("[-1]", vec![0, 1]), ("[]", vec![0, 1, 2])]
        {
            for all in [false, true] {
                let name = if all { "all" } else { "any" };
                let out: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
                let src = format!(
                    "func f(p: bool[3,{n},4]) -> bool{out:?} {{\n  return {name}(p, axes={axes})\n}}"
                );
                let f = parse(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
                // The reference: for each output index, the bools of its reduced elements.
                let mut want = vec![all; out.iter().product()];
                for (i, &v) in p.iter().enumerate() {
                    let idx = [i / (n * 4), i / 4 % n.max(1), i % 4];
                    let o = kept.iter().fold(0, |acc, &a| acc * shape[a] + idx[a]);
                    want[o] = if all { want[o] && v } else { want[o] || v };
                }
                let got = interp::eval(&f, std::slice::from_ref(&input)).unwrap();
                assert_eq!(got.data, Data::Bool(want), "{src}");
                check(&f, std::slice::from_ref(&input), &src);
            }
        }
    }
    // Without `axes`: every axis.
    let f = parse("func f(p: bool[2,3]) -> bool[] {\n  return all(p)\n}").unwrap();
    let t = Tensor { shape: jjt_ir::Shape(vec![2, 3]), data: Data::Bool(vec![true; 6]) };
    assert_eq!(interp::eval(&f, std::slice::from_ref(&t)).unwrap().data, Data::Bool(vec![true]));
}
