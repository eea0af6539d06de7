//! Property test: random graphs (a structure-aware generator over the whole op set), and the
//! JVP, VJP and kernel graphs derived from them, give the same values compiled in strict mode
//! as in the interpreter, bit for bit (NaNs as "both NaN"); in the default (fast) mode within
//! a relative 1e-9 of the largest magnitude (only summation order may differ, on f64 values of
//! order 1 and sums of at most a few hundred terms).
//!
//! 256 cases by default; set `PROPTEST_CASES` to run more (e.g. `PROPTEST_CASES=20000`).

use jjt_ad::{KernelSpec, jvp, vjp};
use jjt_ir::ops::{Pad, ReduceKind};
use jjt_ir::{
    Binary, Compare, DType, Function, FunctionBuilder, NodeId, Op, Shape, Tensor, TensorType,
    Unary, interp,
};
use jjt_jit::{Options, compile_with};
use proptest::prelude::*;

use jjt_ir::random::XorShift64 as Rng;

fn random_graph(rng: &mut Rng) -> Function {
    let mut b = FunctionBuilder::new("g");
    let shapes: [&[usize]; 5] = [&[3], &[2, 3], &[3, 1], &[4], &[]];
    let n_in = 1 + rng.below(3);
    let mut pool: Vec<NodeId> = (0..n_in)
        .map(|i| {
            b.input(
                &format!("x{i}"),
                TensorType::new(DType::F64, shapes[rng.below(shapes.len())].to_vec()),
            )
            .unwrap()
        })
        .collect();
    let steps = 3 + rng.below(8);
    for _ in 0..steps {
        let a = pool[rng.below(pool.len())];
        let c = pool[rng.below(pool.len())];
        let sa = b.ty(a).unwrap().shape.clone();
        let sc = b.ty(c).unwrap().shape.clone();
        let r = sa.rank();
        let out = match rng.below(14) {
            0 | 1 => Some(b.unary(Unary::ALL[rng.below(Unary::ALL.len())], a)),
            2 | 3 => Some(b.binary(Binary::ALL[rng.below(Binary::ALL.len())], a, c)),
            4 => b.compare(Compare::ALL[rng.below(5)], a, c).ok().map(|p| b.select(p, a, c)),
            5 if r >= 1
                && sa.dims()[r - 1] == sc.dims().first().copied().unwrap_or(0)
                && sc.rank() <= 2
                && sc.rank() >= 1 =>
            {
                Some(b.matmul(a, c))
            }
            6 if r >= 1 => {
                Some(b.reduce(ReduceKind::ALL[rng.below(3)], a, Some(&[rng.below(r) as i64])))
            }
            7 if r == 2 => Some(b.transpose(a, &[1, 0])),
            8 if r >= 1 => Some(b.reshape(a, [sa.numel()])),
            9 if r >= 1 && sa.dims()[0] >= 2 => {
                let mut stop = sa.0.clone();
                stop[0] -= 1;
                let mut step = vec![1; r];
                step[0] = 2;
                Some(b.slice(a, &vec![0; r], &stop, &step))
            }
            10 => Some(
                b.add(Op::Pad(Pad { lo: vec![1; r], hi: vec![0; r], interior: vec![1; r] }), &[a]),
            ),
            11 if sa == sc && r >= 1 => Some(b.concat(&[a, c], 0)),
            12 => Some(b.broadcast_to(a, &Shape([vec![2], sa.0.clone()].concat()))),
            _ => Some(b.binary_scalar(Binary::Mul, a, 0.5, jjt_ir::ScalarSide::Right)),
        };
        if let Some(Ok(n)) = out {
            pool.push(n);
        }
    }
    let last = *pool.last().unwrap();
    // Keep outputs small for the kernel.
    let n = b.ty(last).unwrap().numel();
    let out = if n > 6 { b.reduce(ReduceKind::Sum, last, None).unwrap() } else { last };
    b.finish(out).unwrap()
}

fn args(rng: &mut Rng, f: &Function) -> Vec<Tensor> {
    f.params()
        .iter()
        .map(|p| {
            Tensor::from_f64(
                &p.ty,
                &(0..p.ty.numel()).map(|_| rng.uniform(-2.0, 2.0)).collect::<Vec<_>>(),
            )
            .unwrap()
        })
        .collect()
}

fn compare(f: &Function, inputs: &[Tensor]) -> Result<(), TestCaseError> {
    let want = interp::eval_outputs(f, inputs).unwrap();
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let strict = compile_with(f, Options { strict: true, ..Options::default() })
        .unwrap()
        .call(&refs)
        .unwrap();
    let fast = compile_with(f, Options::default()).unwrap().call(&refs).unwrap();
    for ((w, s), q) in want.iter().zip(&strict).zip(&fast) {
        let (w, s, q) = (w.to_f64_vec(), s.to_f64_vec(), q.to_f64_vec());
        let scale = w.iter().filter(|v| v.is_finite()).fold(1.0f64, |m, v| m.max(v.abs()));
        for i in 0..w.len() {
            let same = w[i].to_bits() == s[i].to_bits() || (w[i].is_nan() && s[i].is_nan());
            prop_assert!(
                same,
                "strict: element {i}: JIT {:e} vs interpreter {:e}\n{}",
                s[i],
                w[i],
                jjt_ir::text::print(f)
            );
            let close = (q[i] - w[i]).abs() <= 1e-9 * scale
                || q[i].to_bits() == w[i].to_bits()
                || (q[i].is_nan() && w[i].is_nan());
            prop_assert!(
                close,
                "fast: element {i}: JIT {:e} vs interpreter {:e}\n{}",
                q[i],
                w[i],
                jjt_ir::text::print(f)
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
    ))]
    #[test]
    fn jit_equals_interpreter(seed in any::<u64>()) {
        let mut rng = Rng(seed | 1);
        let f = random_graph(&mut rng);
        let x = args(&mut rng, &f);
        compare(&f, &x)?;
        let names: Vec<String> = f.params().iter().map(|p| p.name.clone()).collect();
        let j = jvp(&f, &names).unwrap();
        let mut ja = x.clone();
        ja.extend(args(&mut rng, &f));
        compare(&j, &ja)?;
        let v = vjp(&f, &names).unwrap();
        let mut va = x.clone();
        let out = f.output_type().unwrap().clone();
        va.push(Tensor::from_f64(&out, &(0..out.numel()).map(|_| rng.uniform(-2.0, 2.0)).collect::<Vec<_>>()).unwrap());
        compare(&v, &va)?;
        let spec = KernelSpec { wrt: vec![names[0].clone()], shared: names[1..].to_vec(), ..Default::default() };
        let k = spec.kernel(&f).unwrap();
        let layout = spec.layout(&f, false).unwrap();
        let ka: Vec<Tensor> = layout.iter().map(|(_, _, t)| Tensor::from_f64(t, &(0..t.numel()).map(|_| rng.uniform(-2.0, 2.0)).collect::<Vec<_>>()).unwrap()).collect();
        compare(&k, &ka)?;
    }
}
