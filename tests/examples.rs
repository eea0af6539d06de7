//! The example programs' computations, checked: the Gauss–Newton fit converges and its
//! matrix-free step equals the dense one.

#[path = "../examples/gauss_newton.rs"]
#[allow(dead_code)]
mod gauss_newton;

#[test]
fn gauss_newton_converges_and_matches_the_dense_solve() {
    let r = gauss_newton::fit(40, 30).unwrap();
    let (first, last) = (r.residuals[0], *r.residuals.last().unwrap());
    assert!(first / last.max(1e-300) >= 1e6, "residual {first:e} -> {last:e}");
    // The step by CG on J·Jᵀ + λI (via K·v) and the dense (JᵀJ + λI)⁻¹Jᵀr are the same vector;
    // CG converges to 1e-15 in a few iterations here (rank 3 plus λI), so they agree far below
    // the 1e-8 asserted.
    assert!(r.step_vs_dense <= 1e-8, "{}", r.step_vs_dense);
    for (got, want) in r.theta.iter().zip([2.0, 1.3, 0.5]) {
        assert!((got - want).abs() <= 1e-8, "{:?}", r.theta);
    }
}

#[path = "../examples/mlp_ntk.rs"]
#[allow(dead_code)]
mod mlp_ntk;

/// The example's NTK against the dense Jacobian built from one-hot JVPs (f64, width 5, 3 and 2
/// examples): sums of ~50 products, so 1e-10 of the largest entry is far above rounding.
#[test]
fn mlp_ntk_matches_the_dense_jacobian() {
    use jjt::{CompileExt, Tensor};
    let width = 5;
    let f = mlp_ntk::mlp(width);
    let theta = mlp_ntk::params(width, 1);
    let x1 = Tensor::f64([3, 2], vec![0.1, -0.4, 0.7, 0.2, -0.9, 0.5]).unwrap();
    let x2 = Tensor::f64([2, 2], vec![0.3, 0.8, -0.6, -0.1]).unwrap();
    let k = mlp_ntk::ntk(&f, &theta, &x1, &x2).unwrap().to_f64_vec();
    let names = ["w0", "b0", "w1", "b1", "w2", "b2"];
    let jvp = jjt::jvp(&f, &names).unwrap().compile().unwrap();
    let jacobian = |x: &[f64]| -> Vec<f64> {
        let xt = Tensor::f64([2], x.to_vec()).unwrap();
        let mut row = Vec::new();
        for (i, p) in theta.iter().enumerate() {
            for e in 0..p.numel() {
                let tangents: Vec<Tensor> = theta
                    .iter()
                    .enumerate()
                    .map(|(j, q)| {
                        let mut v = vec![0.0; q.numel()];
                        if j == i {
                            v[e] = 1.0;
                        }
                        Tensor::f64(q.shape.clone(), v).unwrap()
                    })
                    .collect();
                let mut args: Vec<&Tensor> = vec![&xt];
                args.extend(theta.iter());
                args.extend(tangents.iter());
                row.push(jvp.call(&args).unwrap()[1].to_f64_vec()[0]);
            }
        }
        row
    };
    let j1: Vec<Vec<f64>> = x1.to_f64_vec().chunks(2).map(jacobian).collect();
    let j2: Vec<Vec<f64>> = x2.to_f64_vec().chunks(2).map(jacobian).collect();
    let scale = k.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for a in 0..3 {
        for b in 0..2 {
            let want: f64 = j1[a].iter().zip(&j2[b]).map(|(p, q)| p * q).sum();
            assert!(
                (k[a * 2 + b] - want).abs() <= 1e-10 * scale,
                "K[{a},{b}] = {} vs {want}",
                k[a * 2 + b]
            );
        }
    }
    // And the regression runs and beats predicting zero.
    let (ntk_mse, rbf_mse) = mlp_ntk::regression(16, 8, 8).unwrap();
    assert!(ntk_mse < 0.1 && rbf_mse < 0.1, "{ntk_mse} {rbf_mse}");
}
