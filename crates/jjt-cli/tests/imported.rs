//! Every command on models exported from JAX (StableHLO text) and PyTorch (ONNX), found by
//! content: the empirical NTK w.r.t. all weights equals the frameworks' dense-Jacobian
//! kernels (`tests/fixtures/{jax,torch}`), `--shared FILE.npz` binds JAX's parameters by name,
//! ONNX weights default to the model's own values, a model exported with a batch of one takes
//! `[B, …]` example files and gives `[B1, B2, out, out]`, and `jjt check` passes.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(dir: &str, name: &str) -> String {
    root().join("tests/fixtures").join(dir).join(name).display().to_string()
}

/// `jjt ARGS`, which must succeed.
fn ok(args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_jjt")).args(args).output().expect("run jjt");
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

fn read(path: &str) -> jjt::Tensor {
    jjt::Tensor::from_array(jjt::npy::read_file(path.as_ref()).unwrap())
}

fn tmp(name: &str) -> String {
    let d = std::env::temp_dir().join(format!("jjt-imported-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name).display().to_string()
}

/// Same shape as `want`, every entry within 1e-10 of the largest (f64 sums of at most a few
/// thousand products; see tests/import_jax.rs).
fn assert_kernel(got: &jjt::Tensor, want: &jjt::Tensor) {
    assert_eq!(got.shape, want.shape);
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let scale = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let worst = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst <= 1e-10 * scale, "{worst:e} vs {scale:e}");
}

#[test]
fn jax_export_kernel_with_parameters_from_an_archive() {
    let out = tmp("jax_K.npy");
    let (x1, x2) = (fixture("jax", "cnn_x1.npy"), fixture("jax", "cnn_x2.npy"));
    ok(&[
        "kernel",
        &fixture("jax", "cnn.mlir"),
        "--wrt",
        "params.*",
        "--shared",
        &fixture("jax", "cnn.npz"),
        "--x1",
        &format!("x={x1}"),
        "--x2",
        &format!("x={x2}"),
        "-o",
        &out,
    ]);
    assert_kernel(&read(&out), &read(&fixture("jax", "cnn_K.npy")));
    ok(&["check", &fixture("jax", "cnn.mlir"), "--wrt", "params.*"]);
}

#[test]
fn pytorch_export_kernel_with_its_own_weights_and_batch_of_one() {
    for model in ["cnn", "embed"] {
        // The fixtures hold examples as [B, 1, …]; a user has [B, …].
        let mut files = Vec::new();
        for s in ["x1", "x2"] {
            let t = read(&fixture("torch", &format!("{model}_{s}.npy")));
            let mut dims = t.shape.dims().to_vec();
            dims.remove(1);
            let path = tmp(&format!("{model}_{s}.npy"));
            let flat = jjt::Tensor::new(dims, t.data).unwrap();
            jjt::npy::write_file(path.as_ref(), &flat.into_array()).unwrap();
            files.push(path);
        }
        let out = tmp(&format!("{model}_K.npy"));
        let onnx = fixture("torch", &format!("{model}.onnx"));
        ok(&[
            "kernel", &onnx, "--wrt", "*", "--shared", "*", "--x1", &files[0], "--x2", &files[1],
            "-o", &out,
        ]);
        assert_kernel(&read(&out), &read(&fixture("torch", &format!("{model}_K.npy"))));
    }
}

#[test]
fn check_passes_on_every_imported_fixture() {
    for model in ["mlp", "cnn", "transformer", "embed", "ops"] {
        ok(&["check", &fixture("jax", &format!("{model}.mlir")), "--wrt", "params.*"]);
        ok(&["check", &fixture("torch", &format!("{model}.onnx")), "--wrt", "*"]);
    }
}

#[test]
fn import_writes_text_and_weights_that_every_command_reads() {
    // ONNX → text: the same kernel, bit for bit (the same graph), with the weights' defaults.
    let onnx = fixture("torch", "transformer.onnx");
    let text = tmp("transformer.jjt");
    ok(&["import", &onnx, "-o", &text]);
    let written = std::fs::read_to_string(&text).unwrap();
    assert!(written.contains("head.weight: f64[3,16] = npz(\"transformer.npz\")"), "{written}");
    let (x1, x2) = (fixture("torch", "transformer_x1.npy"), fixture("torch", "transformer_x2.npy"));
    let mut ks = Vec::new();
    for m in [&onnx, &text] {
        let out = tmp(&format!("K_{}.npy", ks.len()));
        let (a, b) = (format!("x={x1}"), format!("x={x2}"));
        ok(&["kernel", m, "--wrt", "*", "--shared", "*", "--x1", &a, "--x2", &b, "-o", &out]);
        ks.push(read(&out));
    }
    assert_eq!(ks[0].to_f64_vec(), ks[1].to_f64_vec());
    // JAX → text with the parameters as defaults: no parameter files needed any more.
    let text = tmp("mlp.jjt");
    ok(&[
        "import",
        &fixture("jax", "mlp.mlir"),
        "-o",
        &text,
        "--defaults",
        &fixture("jax", "mlp.npz"),
    ]);
    let out = tmp("K_mlp.npy");
    let (a, b) = (
        format!("x={}", fixture("jax", "mlp_x1.npy")),
        format!("x={}", fixture("jax", "mlp_x2.npy")),
    );
    ok(&[
        "kernel", &text, "--wrt", "params.*", "--shared", "params.*", "--x1", &a, "--x2", &b, "-o",
        &out,
    ]);
    assert_kernel(&read(&out), &read(&fixture("jax", "mlp_K.npy")));
}

#[test]
fn jax_export_with_a_symbolic_batch_takes_examples_along_it() {
    // `mlp_batch.mlir`: the MLP vmapped over a symbolic batch `b`, x: [b, 5]. The symbolic axis
    // is read as one example, and files of [B, 5] are B examples; K is [B1, B2, 3, 3].
    let out = tmp("batch_K.npy");
    let (a, b) = (
        format!("x={}", fixture("jax", "mlp_x1.npy")),
        format!("x={}", fixture("jax", "mlp_x2.npy")),
    );
    let npz = fixture("jax", "mlp.npz");
    ok(&[
        "kernel",
        &fixture("jax", "mlp_batch.mlir"),
        "--wrt",
        "params.*",
        "--shared",
        &npz,
        "--x1",
        &a,
        "--x2",
        &b,
        "-o",
        &out,
    ]);
    assert_kernel(&read(&out), &read(&fixture("jax", "mlp_K.npy")));
}
