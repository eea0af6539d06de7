//! The text format: canonical printing round-trips for every op, and malformed inputs give
//! the right error kind at the right line:col.

use std::path::PathBuf;

use jjt_ir::text::{ParseErrorKind, parse, parse_with_base, print};
use jjt_ir::{Op, Tensor, interp};

fn fixture_dirs() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut v: Vec<PathBuf> = ["ops", "ops_conv"]
        .iter()
        .flat_map(|set| std::fs::read_dir(root.join(set)).unwrap().map(|e| e.unwrap().path()))
        .collect();
    v.sort();
    v
}

/// For every fixture model: print(parse(print(g))) == print(g), and the reparsed graph
/// computes the same values bit for bit; together the models build every name of
/// `Op::all_names` (the generated checklist: a new op without a round-trip case fails here).
#[test]
fn print_parse_print_is_identity_for_every_op() {
    let mut built = std::collections::BTreeSet::new();
    for dir in fixture_dirs() {
        let src = std::fs::read_to_string(dir.join("model.jjt")).unwrap();
        let f = parse_with_base(&src, Some(&dir)).unwrap();
        let p1 = print(&f);
        let g = parse_with_base(&p1, Some(&dir))
            .unwrap_or_else(|e| panic!("{}: reparse failed:\n{e}\n{p1}", dir.display()));
        let p2 = print(&g);
        assert_eq!(p1, p2, "{}", dir.display());
        assert_eq!(f.node_count(), g.node_count(), "{}", dir.display());
        let inputs: Vec<Tensor> = (0..f.params().len())
            .map(|i| {
                Tensor::from_array(jjt_npy::read_file(&dir.join(format!("in{i}.npy"))).unwrap())
            })
            .collect();
        let a = interp::eval(&f, &inputs).unwrap();
        let b = interp::eval(&g, &inputs).unwrap();
        let bits = |t: &Tensor| t.to_f64_vec().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b), "{}", dir.display());
        built.extend(g.node_ids().map(|n| g.node(n).unwrap().op.name()));
    }
    let missing: Vec<&str> = Op::all_names().into_iter().filter(|n| !built.contains(n)).collect();
    assert!(missing.is_empty(), "no text round-trip case builds {missing:?}");
}

#[test]
fn constants_print_exactly() {
    let src = "func f(x: f32[4]) -> f32[4] {
  c = const(f32[4], [0.1, -0.0, inf, nan])
  d = full(f32[4], 1e-45)
  m = full(bool[4], true)
  e = select(m, c, d)
  return e + x
}";
    let f = parse(src).unwrap();
    let p = print(&f);
    assert!(p.contains("const(f32[4], [0.1, -0.0, inf, nan])"), "{p}");
    assert!(p.contains("full(f32[4], 1e-45)"), "{p}");
    assert!(p.contains("full(bool[4], true)"), "{p}");
    assert_eq!(print(&parse(&p).unwrap()), p);
    // 0.1 is read at f32 precision directly (no double rounding through f64).
    let y = interp::eval(&f, &[Tensor::f32([4], vec![0.0; 4]).unwrap()]).unwrap();
    assert_eq!(y.to_f64_vec()[0], f64::from(0.1f32));
}

#[test]
fn names_are_kept_and_collisions_renamed() {
    let src = "func f(x: f64[2]) -> f64[2] {
  _0 = exp(x)
  y = _0 * 2.0
  unused = log(x)
  return y + _0
}";
    let f = parse(src).unwrap();
    let p = print(&f);
    let expected = "func f(x: f64[2]) -> f64[2] {
  _0 = exp(x)
  _1 = full(f64[2], 2.0)
  y = mul(_0, _1)
  _2 = add(y, _0)
  unused = log(x)
  return _2
}
";
    assert_eq!(p, expected);
    assert_eq!(print(&parse(&p).unwrap()), p);
}

#[test]
fn hash_consing_shares_equal_subexpressions() {
    let f = parse("func f(x: f64[3]) -> f64[3] { return exp(x) + exp(x) }").unwrap();
    // x, exp, add: the second exp(x) is the first.
    assert_eq!(f.node_count(), 3);
}

#[test]
fn precedence_follows_python() {
    let f = parse("func f(a: f64[], b: f64[], c: f64[]) -> f64[] { return a - b * c - -a / b }")
        .unwrap();
    let t = |v: f64| Tensor::f64(Vec::<usize>::new(), vec![v]).unwrap();
    let y = interp::eval(&f, &[t(2.0), t(3.0), t(5.0)]).unwrap().to_f64_vec()[0];
    assert_eq!(y, 2.0 - 3.0 * 5.0 - (-2.0) / 3.0);
}

fn err(src: &str) -> (ParseErrorKind, usize, usize) {
    let e = parse(src).expect_err("should not parse");
    // Every message shows the line and a caret under the column.
    let shown = e.to_string();
    assert!(shown.contains(&format!(":{}:{}", e.line, e.col)), "{shown}");
    // The caret line ends the message, or precedes its `= help:` line.
    let caret = shown.lines().rev().find(|l| !l.trim_start().starts_with("= help:")).unwrap();
    assert!(caret.trim_end().ends_with('^'), "{shown}");
    (e.kind, e.line, e.col)
}

#[test]
fn malformed_inputs_report_kind_and_position() {
    use ParseErrorKind as K;
    let sig = "func f(x: f32[3]) -> f32[3] {\n";
    type Case = (String, fn(&K) -> bool, usize, usize);
    let cases: Vec<Case> = vec![
        (
            format!("{sig}  y = x $ 2\n  return y\n}}"),
            |k| matches!(k, K::UnexpectedChar('$')),
            2,
            9,
        ),
        (
            format!("{sig}  y = npy(\"a.npy)\n  return y\n}}"),
            |k| matches!(k, K::UnterminatedString),
            2,
            11,
        ),
        (format!("{sig}  y = x * 1e\n  return y\n}}"), |k| matches!(k, K::BadNumber(_)), 2, 11),
        (format!("{sig}  y = x +* x\n  return y\n}}"), |k| matches!(k, K::Expected { .. }), 2, 10),
        (
            format!("{sig}  y = exp(z)\n  return y\n}}"),
            |k| matches!(k, K::UnknownName(n) if n == "z"),
            2,
            11,
        ),
        (
            format!("{sig}  y = frobnicate(x)\n  return y\n}}"),
            |k| matches!(k, K::UnknownOp(n) if n == "frobnicate"),
            2,
            7,
        ),
        (
            format!("{sig}  y = exp(x)\n  y = log(x)\n  return y\n}}"),
            |k| matches!(k, K::Redefined(n) if n == "y"),
            3,
            3,
        ),
        (
            format!("{sig}  return = exp(x)\n  return x\n}}"),
            |k| matches!(k, K::Expected { .. }),
            2,
            10,
        ),
        (
            "func f(x: f32[3], x: f32[3]) -> f32[3] { return x }".into(),
            |k| matches!(k, K::DuplicateParam(_)),
            1,
            19,
        ),
        (
            "func f(x: f16[3]) -> f32[3] { return x }".into(),
            |k| matches!(k, K::UnknownDType(n) if n == "f16"),
            1,
            11,
        ),
        (
            "func f(x: f32[99999999999999999999999]) -> f32[3] { return x }".into(),
            |k| matches!(k, K::IntOverflow(_)),
            1,
            15,
        ),
        (
            format!("{sig}  y = matmul(x, exp(x), x)\n  return y\n}}"),
            |k| matches!(k, K::Attr { .. }),
            2,
            7,
        ),
        (
            format!("{sig}  y = x + reshape(x, shape=[2,2])\n  return y\n}}"),
            |k| matches!(k, K::Type(_)),
            2,
            11,
        ),
        (
            format!("{sig}  y = sum(x, axis=[0])\n  return y\n}}"),
            |k| matches!(k, K::UnusedArg { arg, .. } if arg == "axis"),
            2,
            7,
        ),
        (format!("{sig}  y = reshape(x)\n  return y\n}}"), |k| matches!(k, K::Attr { .. }), 2, 7),
        (
            format!("{sig}  c = 2.0 * 3.0\n  return x\n}}"),
            |k| matches!(k, K::UntypedLiteral),
            2,
            11,
        ),
        (format!("{sig}  y = sum(x)\n  return y\n}}"), |k| matches!(k, K::ReturnType { .. }), 3, 3),
        (format!("{sig}  f32 = exp(x)\n  return x\n}}"), |k| matches!(k, K::Reserved(_)), 2, 3),
        (format!("{sig}  y = exp(x)\n"), |k| matches!(k, K::Expected { .. }), 3, 1),
        (format!("{sig}  return x\n}}\nfunc"), |k| matches!(k, K::Expected { .. }), 4, 1),
        (format!("{sig}  y = x / (x\n  return y\n}}"), |k| matches!(k, K::Unclosed { .. }), 2, 11),
        (
            format!("{sig}  y = uniform(f32[3], seed=-1)\n  return y\n}}"),
            |k| matches!(k, K::Attr { .. }),
            2,
            7,
        ),
        (
            format!("{sig}  y = npy(\"/nonexistent/w.npy\")\n  return y\n}}"),
            |k| matches!(k, K::Attr { .. }),
            2,
            7,
        ),
        (
            format!("{sig}  y = {}x{}\n  return y\n}}", "(".repeat(500), ")".repeat(500)),
            |k| matches!(k, K::TooDeep),
            2,
            71,
        ),
    ];
    assert!(cases.len() >= 15);
    for (src, is_kind, line, col) in &cases {
        let (kind, l, c) = err(src);
        assert!(is_kind(&kind), "wrong kind {kind:?} for:\n{src}");
        assert_eq!((l, c), (*line, *col), "wrong position for {kind:?} in:\n{src}");
    }
}

/// Random byte strings and mutations of valid models never panic the parser.
mod no_panic {
    use proptest::prelude::*;

    const SEED: &str = include_str!("../../../examples/models/seed.jjt");

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn arbitrary_text(s in "\\PC{0,200}") {
            let _ = jjt_ir::text::parse(&s);
        }

        #[test]
        fn mutated_models(pos in 0usize..400, insert in "[-+*/@(),=\\[\\]{}a-z0-9.\"# \n]{0,6}", del in 0usize..6) {
            let mut chars: Vec<char> = SEED.chars().collect();
            let p = pos.min(chars.len());
            let d = del.min(chars.len() - p);
            chars.splice(p..p + d, insert.chars());
            let s: String = chars.into_iter().collect();
            let _ = jjt_ir::text::parse(&s);
        }
    }
}

#[test]
fn more_malformed_inputs() {
    use ParseErrorKind as K;
    let sig = "func f(x: f32[3], p: bool[3]) -> f32[3] {\n";
    type Case = (String, fn(&K) -> bool);
    let cases: Vec<Case> = vec![
        (
            format!("{sig}  y = foo(2.0)\n  return y\n}}"),
            |k| matches!(k, K::UnknownOp(n) if n == "foo"),
        ),
        (
            format!("{sig}  y = x +\n  return y\n}}"),
            |k| matches!(k, K::Expected { found, .. } if found == "`return`"),
        ),
        (format!("{sig}  y = select(p, 0.5, 1.5)\n  return y\n}}"), |k| {
            matches!(k, K::UntypedLiteral)
        }),
        (
            format!("{sig}  y = sum(x, axes=[0], axes=[0])\n  return y\n}}"),
            |k| matches!(k, K::Attr { message, .. } if message.contains("given twice")),
        ),
        (
            format!("{sig}  y = x * 2_0\n  return y\n}}"),
            |k| matches!(k, K::BadNumber(s) if s == "2_0"),
        ),
        ("func nan(x: f32[3]) -> f32[3] { return x }".into(), |k| matches!(k, K::Reserved(_))),
        (
            format!("{sig}  y = sum(x, [0])\n  return y\n}}"),
            |k| matches!(k, K::UnusedArg { arg, .. } if arg == "[0]"),
        ),
        (
            format!("{sig}  y = uniform(f32[3], seed=1, offset=4294967295)\n  return y + x\n}}"),
            |k| matches!(k, K::Attr { message, .. } if message.contains("limit")),
        ),
    ];
    for (src, is_kind) in &cases {
        let (kind, _, _) = err(src);
        assert!(is_kind(&kind), "wrong kind {kind:?} for:\n{src}");
    }
}

#[test]
fn negative_nan_and_negative_zero_round_trip() {
    let src = "func f(x: f64[3]) -> f64[3] { return x + const(f64[3], [-nan, -0, nan]) }";
    let f = parse(src).unwrap();
    let p = print(&f);
    assert!(p.contains("[-nan, -0.0, nan]"), "{p}");
    assert_eq!(print(&parse(&p).unwrap()), p);
    let y = interp::eval(&f, &[Tensor::f64([3], vec![0.0; 3]).unwrap()]).unwrap().to_f64_vec();
    assert!(y[0].is_nan() && y[2].is_nan());
}

#[test]
fn oversized_values_are_refused_before_allocating() {
    let f =
        parse("func f(x: f64[]) -> f64[] { return sum(zeros(f64[1000000,1000000])) + x }").unwrap();
    let r = interp::eval(&f, &[Tensor::f64(Vec::<usize>::new(), vec![0.0]).unwrap()]);
    assert!(
        matches!(r, Err(jjt_ir::EvalError::TooLarge { needed: Some(n), .. }) if n >= 8_000_000_000_000),
        "{r:?}"
    );
}

#[test]
fn several_outputs_round_trip() {
    let src = "func g(x: f64[2], y: f64[]) -> (f64[2], f64[]) {\n  return exp(x), y * 2.0\n}";
    let f = parse(src).unwrap();
    assert_eq!(f.outputs().len(), 2);
    let p = print(&f);
    assert!(p.contains("-> (f64[2], f64[])") && p.contains("return _0, _2"), "{p}");
    assert_eq!(print(&parse(&p).unwrap()), p);
    let e = parse("func g(x: f64[2]) -> (f64[2], f64[2]) { return x }").unwrap_err();
    assert!(matches!(e.kind, ParseErrorKind::ReturnCount { declared: 2, actual: 1 }));
    let t = Tensor::f64([2], vec![0.0, 1.0]).unwrap();
    let s = Tensor::f64(Vec::<usize>::new(), vec![3.0]).unwrap();
    let outs = interp::eval_outputs(&f, &[t.clone(), s.clone()]).unwrap();
    assert_eq!(outs[1].to_f64_vec(), vec![6.0]);
    assert!(matches!(
        interp::eval(&f, &[t, s]),
        Err(jjt_ir::EvalError::OutputCount { outputs: 2, .. })
    ));
}

#[test]
fn comparison_operators_bind_loosest() {
    let f =
        parse("func f(x: f64[3]) -> f64[3] { return select(x + 1.0 > 2.0 * x, x, 0.0) }").unwrap();
    let y =
        interp::eval(&f, &[Tensor::f64([3], vec![0.5, 1.0, 2.0]).unwrap()]).unwrap().to_f64_vec();
    assert_eq!(y, vec![0.5, 0.0, 0.0]);
    let p = print(&f);
    assert!(p.contains("gt("), "{p}");
    for (op, name) in [("<", "lt("), ("<=", "le("), (">=", "ge("), ("==", "eq(")] {
        let src = format!("func f(x: f64[3]) -> bool[3] {{ return x {op} 1.0 }}");
        assert!(print(&parse(&src).unwrap()).contains(name), "{op}");
    }
}

/// Text longer than the byte limit and functions with more nodes than the node limit are
/// typed errors; a file over the limit is rejected from its size, before it is read.
#[test]
fn size_and_node_limits_are_typed_errors() {
    use jjt_ir::text::{Limits, ModelFileError, parse_file_with_limits, parse_with_limits};
    let body: String = (1..=50).map(|i| format!("  a{i} = sin(a{})\n", i - 1)).collect();
    let src = format!("func f(a0: f64[3]) -> f64[3] {{\n{body}  return a50\n}}\n");
    let roomy = Limits { max_bytes: src.len(), max_nodes: 51 };
    assert!(parse_with_limits(&src, None, roomy).is_ok());

    let short = Limits { max_bytes: src.len() - 1, ..roomy };
    let e = parse_with_limits(&src, None, short).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::TooLong { bytes: src.len(), limit: src.len() - 1 });
    assert_eq!((e.line, e.col), (1, 1));

    // 1 input + 50 sines = 51 nodes; with a limit of 40 the 40th statement (line 41) fails.
    let few = Limits { max_nodes: 40, ..roomy };
    let e = parse_with_limits(&src, None, few).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::TooManyNodes { limit: 40 });
    assert_eq!((e.line, e.col), (41, 3));
    assert!(e.to_string().contains("more than 40 nodes"), "{e}");

    let dir = std::env::temp_dir().join(format!("jjt-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.jjt");
    std::fs::write(&path, &src).unwrap();
    match parse_file_with_limits(&path, short) {
        Err(ModelFileError::TooLong { path: p, bytes, limit }) => {
            assert_eq!((p, bytes, limit), (path.clone(), src.len() as u64, src.len() - 1));
        }
        other => panic!("expected TooLong, got {other:?}"),
    }
    assert!(parse_file_with_limits(&path, roomy).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An input's default (`= npz("file")`) is kept by the parser, printed, and parsed back; a
/// default that is not `npz("…")` is an error at its position.
#[test]
fn input_defaults_round_trip() {
    let src = "func f(x: f32[3], w.0: f32[3] = npz(\"weights.npz\")) -> f32[3] {\n  y = mul(x, w.0)\n  return y\n}\n";
    let f = parse(src).unwrap();
    assert_eq!(f.params()[0].default, None);
    assert_eq!(f.params()[1].default.as_deref(), Some("weights.npz"));
    let printed = print(&f);
    assert!(printed.contains("w.0: f32[3] = npz(\"weights.npz\")"), "{printed}");
    assert_eq!(print(&parse(&printed).unwrap()), printed);
    let e = parse("func f(w: f32[3] = npy(\"w.npy\")) -> f32[3] {\n  return w\n}\n").unwrap_err();
    assert_eq!((e.line, e.col), (1, 20), "{e}");
}
