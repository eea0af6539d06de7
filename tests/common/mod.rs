//! What several of the facade's tests share: the dense Jacobian built by the reference
//! interpreter, the independent oracle of the kernel tests.

use jjt::{Function, Tensor};

/// J of one example (f's inputs unbatched) as rows: J[i] = the VJP of the one-hot e_i through
/// the interpreter, the cotangents of the `wrt` inputs (names or globs) concatenated in
/// signature order.
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn dense_jacobian_rows(f: &Function, wrt: &[&str], args: &[Tensor]) -> Vec<Vec<f64>> {
    let g = jjt::vjp(f, wrt).unwrap();
    let out = f.output_type().unwrap().clone();
    (0..out.numel())
        .map(|i| {
            let mut e = vec![0.0; out.numel()];
            e[i] = 1.0;
            let mut a = args.to_vec();
            a.push(Tensor::from_f64(&out, &e).unwrap());
            jjt::ir::interp::eval_outputs(&g, &a)
                .unwrap()
                .iter()
                .flat_map(Tensor::to_f64_vec)
                .collect()
        })
        .collect()
}

/// K[a, b, i, j] = J1[a][i] · J2[b][j] in row-major order, from per-example Jacobian rows
/// (`j1[a]` the rows of side 1's example `a`).
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn kernel_from_rows(j1: &[Vec<Vec<f64>>], j2: &[Vec<Vec<f64>>]) -> Vec<f64> {
    let mut k = Vec::new();
    for ja in j1 {
        for jb in j2 {
            for ri in ja {
                for rj in jb {
                    k.push(ri.iter().zip(rj).map(|(p, q)| p * q).sum());
                }
            }
        }
    }
    k
}

/// |got − want| ≤ tol·max|want|, element by element (a zero reference fails: it would accept
/// anything).
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn assert_within(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{what}: the reference is zero");
    let worst = got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max);
    assert!(
        worst <= tol * scale,
        "{what}: largest difference {worst:e} is above {tol:e} × the largest entry {scale:e}"
    );
}
