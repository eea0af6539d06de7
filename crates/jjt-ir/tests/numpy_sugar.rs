//! The text format's NumPy spellings: `keepdims`, the `min` reduction, `where`, `transpose`
//! without `perm`, `reshape` with a `-1`, and `**`. Each is parsed, evaluated by the interpreter
//! and compared with the same computation written as plain loops over the input values.

use jjt_ir::text::{ParseErrorKind as K, parse};
use jjt_ir::{Tensor, interp};

/// Deterministic values in (-2, 2), none repeated (so `min` has no ties).
fn values(n: usize, seed: usize) -> Vec<f64> {
    (0..n).map(|i| (((i * 7 + seed * 13) % 97) as f64 - 48.0) / 24.5 + i as f64 * 1e-3).collect()
}

fn run(src: &str, args: &[Tensor]) -> Tensor {
    let f = parse(src).unwrap_or_else(|e| panic!("{src}\n{e}"));
    interp::eval(&f, args).unwrap()
}

#[test]
fn softmax_with_keepdims_normalises_each_row() {
    // The trap of the NumPy spelling without keepdims: on a square input the row maxima
    // would broadcast along the wrong axis. With keepdims each row sums to 1.
    let src = "func f(z: f64[4,4]) -> f64[4,4] {\n\
               \x20 e = exp(z - max(z, axes=[1], keepdims=true))\n\
               \x20 return e / sum(e, axes=[1], keepdims=true)\n}";
    let z = values(16, 1);
    let got = run(src, &[Tensor::f64(vec![4, 4], z.clone()).unwrap()]).to_f64_vec();
    for r in 0..4 {
        let row = &z[4 * r..4 * r + 4];
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let total: f64 = got[4 * r..4 * r + 4].iter().sum();
        // Four terms of at most 1, each within a few ulps: 1e-15 is a few roundings.
        assert!((total - 1.0).abs() < 1e-15, "row {r} sums to {total}");
        for c in 0..4 {
            assert!((got[4 * r + c] - e[c] / s).abs() < 1e-15);
        }
    }
}

#[test]
fn min_reduces_with_and_without_keepdims() {
    let x = values(24, 2);
    let t = Tensor::f64(vec![2, 3, 4], x.clone()).unwrap();
    let got = run(
        "func f(x: f64[2,3,4]) -> f64[2,1,4] {\n  return min(x, axes=[1], keepdims=true)\n}",
        std::slice::from_ref(&t),
    );
    assert_eq!(got.shape.dims(), &[2, 1, 4]);
    let mut want = vec![f64::INFINITY; 8];
    for (i, &v) in x.iter().enumerate() {
        let (a, c) = (i / 12, i % 4);
        want[a * 4 + c] = want[a * 4 + c].min(v);
    }
    assert_eq!(got.to_f64_vec(), want);
    let all = run("func f(x: f64[2,3,4]) -> f64[] {\n  return min(x)\n}", std::slice::from_ref(&t));
    assert_eq!(all.to_f64_vec(), vec![x.iter().cloned().fold(f64::INFINITY, f64::min)]);
    // Negative axes count from the end; keepdims on every axis keeps the rank.
    let last = run(
        "func f(x: f64[2,3,4]) -> f64[1,1,1] {\n  return sum(x, keepdims=true)\n}",
        std::slice::from_ref(&t),
    );
    let total: f64 = x.iter().sum();
    assert!((last.to_f64_vec()[0] - total).abs() < 1e-13);
    // keepdims with a negative axis, on mean: [2,3,1].
    let src =
        "func f(x: f64[2,3,4]) -> f64[2,3,1] {\n  return mean(x, axes=[-1], keepdims=true)\n}";
    let got = run(src, std::slice::from_ref(&t)).to_f64_vec();
    for (r, g) in got.iter().enumerate() {
        let want = x[4 * r..4 * r + 4].iter().sum::<f64>() / 4.0;
        assert!((g - want).abs() < 1e-15, "{g} vs {want}");
    }
    // keepdims on the bool reductions too: any over axis 1 of x > 0, kept as [2,1,4].
    let src =
        "func f(x: f64[2,3,4]) -> bool[2,1,4] {\n  return any(x > 0.0, axes=[1], keepdims=true)\n}";
    let got = run(src, std::slice::from_ref(&t)).to_f64_vec();
    let mut want = vec![0.0; 8];
    for (i, &v) in x.iter().enumerate() {
        if v > 0.0 {
            want[(i / 12) * 4 + i % 4] = 1.0;
        }
    }
    assert_eq!(got, want);
}

#[test]
fn where_transpose_reshape_and_power() {
    let x = values(6, 3);
    let y = values(6, 4);
    let tx = Tensor::f64(vec![2, 3], x.clone()).unwrap();
    let ty = Tensor::f64(vec![2, 3], y.clone()).unwrap();
    // where(c, a, b) is select.
    let got = run(
        "func f(x: f64[2,3], y: f64[2,3]) -> f64[2,3] {\n  return where(x > y, x, y)\n}",
        &[tx.clone(), ty],
    );
    let want: Vec<f64> = x.iter().zip(&y).map(|(a, b)| if a > b { *a } else { *b }).collect();
    assert_eq!(got.to_f64_vec(), want);
    // transpose(x) reverses the axes.
    let got = run(
        "func f(x: f64[2,3]) -> f64[3,2] {\n  return transpose(x)\n}",
        std::slice::from_ref(&tx),
    );
    let want: Vec<f64> = (0..6).map(|i| x[(i % 2) * 3 + i / 2]).collect();
    assert_eq!(got.to_f64_vec(), want);
    // reshape with -1.
    let got = run(
        "func f(x: f64[2,3]) -> f64[3,2] {\n  return reshape(x, shape=[-1, 2])\n}",
        std::slice::from_ref(&tx),
    );
    assert_eq!(got.shape.dims(), &[3, 2]);
    assert_eq!(got.to_f64_vec(), x);
    // `**` is pow: right-associative, tighter than unary minus on its left.
    let got = run(
        "func f(x: f64[2,3]) -> f64[2,3] {\n  return -x ** 2.0 + x ** -1.0\n}",
        std::slice::from_ref(&tx),
    );
    for (g, v) in got.to_f64_vec().iter().zip(&x) {
        let want = -(v.powf(2.0)) + v.powf(-1.0);
        assert!((g - want).abs() <= 4.0 * f64::EPSILON * want.abs().max(1.0), "{g} vs {want}");
    }
    let ty = Tensor::f64(vec![2, 3], y.clone()).unwrap();
    let got = run(
        "func f(x: f64[2,3], y: f64[2,3]) -> f64[2,3] {\n  return abs(x) ** y ** 2.0\n}",
        &[tx, ty],
    );
    for ((g, a), b) in got.to_f64_vec().iter().zip(&x).zip(&y) {
        // Right-associative: |a| ** (b ** 2), not (|a| ** b) ** 2.
        let want = a.abs().powf(b.powf(2.0));
        assert!((g - want).abs() <= 4.0 * f64::EPSILON * want.abs().max(1.0), "{g} vs {want}");
    }
    // Between two literals there is no dtype to take, as for every infix op.
    let e = parse("func f(x: f64[2]) -> f64[2] {\n  return x * 2.0 ** 3.0\n}").unwrap_err();
    assert!(matches!(e.kind, K::UntypedLiteral), "{e}");
}

#[test]
fn sugar_errors_are_typed() {
    let sig = "func f(x: f32[2,6]) -> f32[12] {\n";
    for (body, what) in [
        ("  return reshape(x, shape=[-1, -1])\n}", "at most one -1"),
        ("  return reshape(x, shape=[-1, 5])\n}", "cannot infer"),
        ("  return sum(x, axes=[0], keepdims=1)\n}", "true or false"),
    ] {
        let e = parse(&format!("{sig}{body}")).unwrap_err();
        assert!(
            matches!(&e.kind, K::Attr { message, .. } if message.contains(what)),
            "{body}: {e}"
        );
    }
    let e = parse(&format!("{sig}  return min(x, axes=[2])\n}}")).unwrap_err();
    assert!(e.to_string().contains("axis"), "{e}");
    let e = parse(&format!("{sig}  return sum(x, keep=true)\n}}")).unwrap_err();
    assert!(matches!(&e.kind, K::UnusedArg { arg, .. } if arg == "keep"), "{e}");
}

/// `x[…]` against NumPy (fixtures/gen_index_fixtures.py) on `x = arange(60).reshape(3, 4, 5)`:
/// each result element is the flat index read, so shape and values are exact. `i` and `j`
/// are `i32` index tensors (`[2, 0, 1, 1]` and `[[3, 0], [1, 3]]`), and `k`'s negative entries
/// (`[-1, 0, -3]`) count from the end.
#[test]
fn indexing_matches_numpy() {
    let cases = include_str!("fixtures/index_cases.txt");
    let x = Tensor::f64(vec![3, 4, 5], (0..60).map(f64::from).collect()).unwrap();
    let i = Tensor::i32(vec![4], vec![2, 0, 1, 1]).unwrap();
    let j = Tensor::i32(vec![2, 2], vec![3, 0, 1, 3]).unwrap();
    let k = Tensor::i32(vec![3], vec![-1, 0, -3]).unwrap();
    let mut n = 0;
    for line in cases.lines() {
        let mut parts = line.split('\t');
        let (sub, shape, values) =
            (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let nums = |s: &str| -> Vec<usize> {
            s.split(',').filter(|v| !v.is_empty()).map(|v| v.parse().unwrap()).collect()
        };
        let (shape, values) = (nums(shape), nums(values));
        let out: Vec<String> = shape.iter().map(usize::to_string).collect();
        let src = format!(
            "func f(x: f64[3,4,5], i: i32[4], j: i32[2,2], k: i32[3]) -> f64[{}] {{\n  return x{sub}\n}}",
            out.join(",")
        );
        let got = run(&src, &[x.clone(), i.clone(), j.clone(), k.clone()]);
        assert_eq!(got.shape.dims(), &shape[..], "{sub}");
        let want: Vec<f64> = values.iter().map(|&v| v as f64).collect();
        assert_eq!(got.to_f64_vec(), want, "{sub}");
        n += 1;
    }
    assert_eq!(n, 29);
}

#[test]
fn indexing_errors_are_typed() {
    let sig = "func f(x: f64[3,4], i: i32[2]) -> f64[2] {\n";
    for (body, what) in [
        ("  return x[3, 0:2]\n}", "index 3 is out of range for axis 0 of size 3"),
        ("  return x[0, 0, 0]\n}", "3 indices for a rank-2 value"),
        ("  return x[0, ::0]\n}", "slice step cannot be zero"),
        ("  return x[0, i]\n}", "one tensor index per subscript"),
        ("  return x[0, 1.5:]\n}", "must be an integer"),
    ] {
        let e = parse(&format!("{sig}{body}")).unwrap_err();
        assert!(
            matches!(&e.kind, K::Attr { message, .. } if message.contains(what)),
            "{body}: {e}"
        );
    }
    // Steps at the ends of i64 take one element (no overflow).
    let x = Tensor::f64(vec![3, 4], (0..12).map(f64::from).collect()).unwrap();
    let i = Tensor::i32(vec![2], vec![0, 1]).unwrap();
    let one = |sub: &str| {
        run(
            &format!("func f(x: f64[3,4], i: i32[2]) -> f64[1] {{\n  return x[0, {sub}]\n}}"),
            &[x.clone(), i.clone()],
        )
        .to_f64_vec()
    };
    assert_eq!(one("0:4:9223372036854775807"), vec![0.0]);
    assert_eq!(one("::-9223372036854775808"), vec![3.0]);
    let e = parse(&format!("{sig}  return x[..., 0, ...]\n}}")).unwrap_err();
    assert!(e.to_string().contains("at most one `...`"), "{e}");
    let e = parse("func f(x: f64[3], p: bool[3]) -> f64[3] {\n  return x[p]\n}").unwrap_err();
    assert!(e.to_string().contains("boolean masks are not supported"), "{e}");
    let e = parse(&format!("{sig}  return x[0, 1:\n}}")).unwrap_err();
    assert!(matches!(&e.kind, K::Expected { .. }), "{e}");
}

/// Helper functions are inlined where they are called: a two-layer MLP written with one
/// `dense` helper equals the same model written out, node for node (the printer emits the
/// flat graph), and evaluates the same; helpers may call earlier helpers and take literals.
#[test]
fn helper_functions_inline_into_a_flat_graph() {
    let with_helpers = "# A layer, then the model.\n\
        func dense(h, w, b) {\n  z = h @ w + b\n  return tanh(z)\n}\n\
        func scaled(h, s) {\n  return h * s\n}\n\
        func f(x: f64[3], w0: f64[3,4], b0: f64[4], w1: f64[4,2], b1: f64[2]) -> f64[2] {\n\
        \x20 h = dense(x, w0, b0)\n  return scaled(dense(h, w1, b1), 2.0)\n}\n";
    let flat = "func f(x: f64[3], w0: f64[3,4], b0: f64[4], w1: f64[4,2], b1: f64[2]) -> f64[2] {\n\
        \x20 h = tanh(x @ w0 + b0)\n  return tanh(h @ w1 + b1) * 2.0\n}\n";
    let (g, f) = (parse(with_helpers).unwrap(), parse(flat).unwrap());
    assert_eq!(
        jjt_ir::text::print(&g).replace("z", "_"),
        jjt_ir::text::print(&f).replace("z", "_")
    );
    let args: Vec<Tensor> =
        [(vec![3], 1), (vec![3, 4], 2), (vec![4], 3), (vec![4, 2], 4), (vec![2], 5)]
            .into_iter()
            .map(|(s, seed)| {
                let n = s.iter().product();
                Tensor::f64(s, values(n, seed)).unwrap()
            })
            .collect();
    assert_eq!(run(with_helpers, &args).to_f64_vec(), run(flat, &args).to_f64_vec());
}

#[test]
fn helper_function_errors() {
    let main = "func f(x: f64[3]) -> f64[3] {\n  return g(x)\n}\n";
    for (helpers, what) in [
        ("func g(a) {\n  return g(a)\n}\n", "calls itself"),
        ("func g(a, b) {\n  return a + b\n}\n", "takes 2 operands, got 1"),
        ("func g(a) {\n  return a + x\n}\n", "`x` is not defined"),
        ("func tanh(a) {\n  return a\n}\n", "reserved"),
        ("func g(a, a) {\n  return a\n}\n", "declared twice"),
    ] {
        let e = parse(&format!("{helpers}{main}")).unwrap_err();
        assert!(e.to_string().contains(what), "{helpers}: {e}");
    }
    // A helper defined below the model's function.
    let e = parse("func f(x: f64[3]) -> f64[3] {\n  return g(x)\n}\nfunc g(a) {\n  return a\n}\n")
        .unwrap_err();
    assert!(e.to_string().contains("define helpers before the model's function"), "{e}");
    // NumPy's attribute names get this format's.
    let e = parse("func f(x: f64[2,3]) -> f64[3,2] {\n  return transpose(x, axes=[1,0])\n}\n")
        .unwrap_err();
    assert!(e.to_string().contains("did you mean `perm`?"), "{e}");
    // A type error inside the body says which call it came from.
    let e = parse(
        "func g(a, b) {\n  return a + b\n}\nfunc f(x: f64[3], y: f64[2]) -> f64[3] {\n  z = g(x, x)\n  return g(z, y)\n}\n",
    )
    .unwrap_err();
    assert_eq!((e.line, e.col), (2, 12), "{e}");
    assert!(e.to_string().contains("help: in the call of helper `g` at line 6, column 10"), "{e}");
}

/// Dotted names, as imported models name their inputs (`params.0.w`): parsed as one name,
/// printed as they are, read back to the same text.
#[test]
fn dotted_names_round_trip() {
    let src = "func f(x: f64[3], params.0.w: f64[3,2], params.0.b: f64[2]) -> f64[2] {\n\
               \x20 h.pre = x @ params.0.w + params.0.b\n  return tanh(h.pre)\n}\n";
    let f = parse(src).unwrap();
    let names: Vec<&str> = f.params().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["x", "params.0.w", "params.0.b"]);
    let printed = jjt_ir::text::print(&f);
    assert!(printed.contains("h.pre = "), "{printed}");
    assert_eq!(jjt_ir::text::print(&parse(&printed).unwrap()), printed);
    // A number after a name is still a number: `x * 2.5` is not a name `x.…`.
    assert!(parse("func f(x: f64[2]) -> f64[2] {\n  return x*2.5\n}").is_ok());
}
