"""Models from files, from JAX and from PyTorch: kernels against the frameworks' own dense
Jacobians in f64.

Tolerances: K is a sum of at most a few thousand f64 products per entry on each side
(u = 1.1e-16), so 1e-10 of the largest entry bounds the rounding and fails any wrong value;
forward passes are the same f64 operations in another order (1e-12).
"""

import os

import numpy as np
import pytest

import jjt

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JAX_DIR = os.path.join(ROOT, "tests", "fixtures", "jax")
TORCH_DIR = os.path.join(ROOT, "tests", "fixtures", "torch")
MODELS = ["mlp", "cnn", "transformer", "embed", "ops"]


def close(actual, expected, rtol=1e-10):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(np.max(np.abs(expected)), 1e-300)
    err = np.max(np.abs(actual - expected)) / scale
    assert err <= rtol, f"relative error {err:.3e}"


@pytest.mark.parametrize("name", MODELS)
def test_jax_export_files(name):
    model = jjt.load(os.path.join(JAX_DIR, f"{name}.mlir"))
    params = dict(np.load(os.path.join(JAX_DIR, f"{name}.npz")))
    x1 = np.load(os.path.join(JAX_DIR, f"{name}_x1.npy"))
    x2 = np.load(os.path.join(JAX_DIR, f"{name}_x2.npy"))
    want = np.load(os.path.join(JAX_DIR, f"{name}_K.npy"))
    side = [i[0] for i in model.inputs if not i[0].startswith("params.")]
    assert len(side) == 1
    y = model.eval({**params, side[0]: x1[0]})
    close(y, np.load(os.path.join(JAX_DIR, f"{name}_y.npy")), 1e-12)
    for strategy in ["auto", "jc", "ntvp"]:
        k = model.kernel(wrt="params.*", shared="params.*", strategy=strategy)
        close(k(x1, x2, params), want)
    trace = model.kernel(wrt="params.*", shared="params.*", mode="trace")
    close(trace(x1, x2, params), np.einsum("abii->ab", want))
    diag = model.kernel(wrt="params.*", shared="params.*", mode="diagonal")
    close(diag(x1, x2, params), np.einsum("abii->abi", want))


@pytest.mark.parametrize("name", MODELS)
def test_pytorch_export_files(name):
    """ONNX weights are inputs with defaults: the kernel w.r.t. all of them needs no arrays
    but the examples; the examples arrive as [B, 1, ...] for a [1, ...] export."""
    model = jjt.load(os.path.join(TORCH_DIR, f"{name}.onnx"))
    x1 = np.load(os.path.join(TORCH_DIR, f"{name}_x1.npy"))
    x2 = np.load(os.path.join(TORCH_DIR, f"{name}_x2.npy"))
    want = np.load(os.path.join(TORCH_DIR, f"{name}_K.npy"))
    k = model.kernel()
    close(k(x1, x2), want)
    # The same examples without their axis of one: [B, ...].
    close(k(x1[:, 0], x2[:, 0]), want)
    y = model.eval({model.inputs[[i[3] for i in model.inputs].index(False)][0]: x1[0]})
    close(y, np.load(os.path.join(TORCH_DIR, f"{name}_y.npy")), 1e-12)


def dense_jax_kernel(f, params, x1, x2):
    """Σ_p ∂f(params, x1[a])/∂p · ∂f(params, x2[b])/∂p by jax.jacobian: [B1, B2, O, O]."""
    import jax

    def jac(x):
        j = jax.vmap(lambda e: jax.jacobian(f)(params, e))(x)
        return [a.reshape(a.shape[0], a.shape[1], -1) for a in jax.tree_util.tree_leaves(j)]

    return sum(np.einsum("aip,bjp->abij", a, b) for a, b in zip(jac(x1), jac(x2)))


def test_from_jax_names_and_kernel():
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    params = {
        "l0": {"w": rng.normal(size=(4, 8)), "b": rng.normal(size=8)},
        "l1": {"w": rng.normal(size=(8, 2)), "b": rng.normal(size=2)},
        "unused": rng.normal(size=3),
    }

    def net(params, x):
        h = jnp.tanh(x @ params["l0"]["w"] + params["l0"]["b"])
        return jnp.sin(h) @ params["l1"]["w"] + params["l1"]["b"]

    x1, x2 = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    model = jjt.from_jax(net, params, x1[0])
    names = sorted(i[0] for i in model.inputs)
    assert names == ["params.l0.b", "params.l0.w", "params.l1.b", "params.l1.w", "x"]
    assert all(i[1] == "float64" for i in model.inputs)
    close(model.eval(params, x1[0]), net(params, x1[0]), 1e-12)
    want = dense_jax_kernel(net, params, x1, x2)
    kernel = model.kernel()
    assert kernel.per_side == ["x"]
    close(kernel(x1, x2, params), want)
    # Glob patterns, and the parameters as a dict by name.
    named = {n: v for n, v in [("params.l0.w", params["l0"]["w"]), ("params.l0.b", params["l0"]["b"]),
                                ("params.l1.w", params["l1"]["w"]), ("params.l1.b", params["l1"]["b"])]}
    part = model.kernel(wrt="params.l1.*", shared="params.*")
    j1 = lambda p, x: net({**params, "l1": p}, x)  # noqa: E731
    close(part(x1, x2, named), dense_jax_kernel(j1, params["l1"], x1, x2))
    # One example per side: [O, O].
    close(kernel(x1[0], x2[1], params), want[0, 1])
    assert jax.config.jax_enable_x64


def test_from_jax_several_per_side_arguments():
    import jax.numpy as jnp

    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 2))

    def f(w, x, s):
        return jnp.tanh(x @ w) * s

    x1, s1 = rng.normal(size=(2, 3)), rng.normal(size=(2, 2))
    x2, s2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    model = jjt.from_jax(f, w, x1[0], s1[0])
    k = model.kernel()
    got = k((x1, s1), (x2, s2), w)
    import jax

    j1 = jax.vmap(jax.jacobian(f), in_axes=(None, 0, 0))(w, x1, s1).reshape(2, 2, -1)
    j2 = jax.vmap(jax.jacobian(f), in_axes=(None, 0, 0))(w, x2, s2).reshape(4, 2, -1)
    close(got, np.einsum("aip,bjp->abij", j1, j2))


def test_from_torch_module():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.LayerNorm(7), torch.nn.Linear(7, 3)
    ).double().eval()
    with torch.no_grad():
        net[2].weight.add_(0.3 * torch.randn(7, dtype=torch.float64))
    x1 = np.random.default_rng(2).normal(size=(3, 5))
    x2 = np.random.default_rng(3).normal(size=(2, 5))
    model = jjt.from_torch(net, torch.from_numpy(x1[:1]))
    assert model.parameters == ["_0.weight", "_0.bias", "_2.weight", "_2.bias", "_3.weight", "_3.bias"]
    params = {k: v.detach() for k, v in net.named_parameters()}

    def jac(x):
        def one(p, e):
            return torch.func.functional_call(net, p, (e[None],))[0]

        j = torch.func.vmap(torch.func.jacrev(one), in_dims=(None, 0))(params, torch.from_numpy(x))
        return [t.reshape(t.shape[0], t.shape[1], -1).numpy() for t in j.values()]

    want = sum(np.einsum("aip,bjp->abij", a, b) for a, b in zip(jac(x1), jac(x2)))
    close(model.kernel()(x1, x2), want)
    close(model.kernel(mode="trace")(x1, x2), np.einsum("abii->ab", want))
    # New weights by name: the kernel at other parameters.
    k = model.kernel()
    w = {"_3.weight": np.asarray(net[3].weight.detach().numpy()) * 2.0}
    got = k(x1, x2, w)
    with torch.no_grad():
        net[3].weight.mul_(2.0)
    params = {k: v.detach() for k, v in net.named_parameters()}
    want2 = sum(np.einsum("aip,bjp->abij", a, b) for a, b in zip(jac(x1), jac(x2)))
    close(got, want2)


def test_apply_and_linear_operator():
    scipy = pytest.importorskip("scipy")
    model = jjt.load(os.path.join(JAX_DIR, "mlp.mlir"))
    params = dict(np.load(os.path.join(JAX_DIR, "mlp.npz")))
    rng = np.random.default_rng(4)
    x1, x2 = rng.normal(size=(6, 5)), rng.normal(size=(4, 5))
    k = model.kernel(wrt="params.*", shared="params.*")
    K = k(x1, x2, params)
    v = rng.normal(size=(4, 3))
    close(k.apply(v, x1, x2, params), np.einsum("abij,bj->ai", K, v))
    op = k.linear_operator(x1, x2, params)
    assert op.shape == (18, 12)
    dense = K.transpose(0, 2, 1, 3).reshape(18, 12)
    close(op @ v.reshape(12), dense @ v.reshape(12))
    u = rng.normal(size=18)
    close(op.rmatvec(u), dense.T @ u)
    # Conjugate gradients on K(x, x) + λI: the solution of the dense system.
    sym = k.linear_operator(x1, None, params)
    lam = 1e-2
    a = scipy.sparse.linalg.LinearOperator(sym.shape, matvec=lambda z: sym @ z + lam * z, dtype=np.float64)
    b = rng.normal(size=18)
    sol, info = scipy.sparse.linalg.cg(a, b, rtol=1e-12, maxiter=500)
    assert info == 0
    Kxx = k(x1, x1, params).transpose(0, 2, 1, 3).reshape(18, 18)
    close(sol, np.linalg.solve(Kxx + lam * np.eye(18), b), 1e-6)


def test_inputs_without_copies_and_any_array_like():
    model = jjt.load(os.path.join(JAX_DIR, "mlp.mlir"))
    params = dict(np.load(os.path.join(JAX_DIR, "mlp.npz")))
    x1 = np.load(os.path.join(JAX_DIR, "mlp_x1.npy"))
    x2 = np.load(os.path.join(JAX_DIR, "mlp_x2.npy"))
    k = model.kernel(wrt="params.*", shared="params.*", mode="trace")
    want = k(x1, x2, params)
    close(k(x1.tolist(), x2.tolist(), params), want, 0)  # lists
    strided = np.asfortranarray(x1)  # not C-contiguous: copied
    close(k(strided, x2, params), want, 0)
    import jax.numpy as jnp

    close(k(jnp.asarray(x1), jnp.asarray(x2), {n: jnp.asarray(v) for n, v in params.items()}), want, 0)


def test_examples_diagonal():
    model = jjt.load(os.path.join(TORCH_DIR, "mlp.onnx"))
    x1 = np.load(os.path.join(TORCH_DIR, "mlp_x1.npy"))
    full = model.kernel()(x1, x1)
    diag = model.kernel(examples="diagonal")(x1, x1)
    close(diag, np.einsum("aaij->aij", full))


def test_float64_promotion_of_an_f32_export():
    """dtype='float64' computes the f32 export in f64. Its GELU's constants (√(2/π), 0.044715)
    stay the f32 values the export holds (relative change ≤ 6e-8), so the kernel matches JAX's
    f64 one to a few times that (1e-6 bounds it), and its values are f64 numbers, not f32
    results widened. (The f32 kernel's own error, a few f32 roundings, can be as small as the
    constants' effect: 8.5e-8 against 1.1e-8 in one run, so no ratio between them is asserted.)"""
    model = jjt.load(os.path.join(JAX_DIR, "mlp_f32.mlir"))
    params = dict(np.load(os.path.join(JAX_DIR, "mlp.npz")))
    x1 = np.load(os.path.join(JAX_DIR, "mlp_x1.npy"))
    x2 = np.load(os.path.join(JAX_DIR, "mlp_x2.npy"))
    want = np.load(os.path.join(JAX_DIR, "mlp_K.npy"))
    k64 = model.kernel(wrt="params.*", shared="params.*", dtype="float64")
    got64 = k64(x1, x2, params)
    assert got64.dtype == np.float64
    close(got64, want, 1e-6)
    k32 = model.kernel(wrt="params.*", shared="params.*")
    p32 = {n: v.astype(np.float32) for n, v in params.items()}
    got = k32(x1.astype(np.float32), x2.astype(np.float32), p32)
    assert got.dtype == np.float32
    close(got, want, 1e-5)
    # Computed in f64: nearly every value lies between f32 numbers.
    assert np.mean(got64 != got64.astype(np.float32).astype(np.float64)) > 0.5
    with pytest.raises(jjt.InputError, match="expected dtype float32, got float64"):
        k32(x1, x2, p32)


def test_dump_and_layout():
    model = jjt.load(os.path.join(JAX_DIR, "mlp.mlir"))
    k = model.kernel(wrt="params.*", shared="params.*", mode="trace")
    for stage in ["model", "kernel", "optimized", "apply"]:
        text = k.dump(stage, 2, 3)
        assert text.startswith("func "), stage
    assert "f64[2,3]" in k.dump("optimized", 2, 3).splitlines()[0]
    assert "function" in k.dump("clif") or "block0" in k.dump("clif")
    with pytest.raises(ValueError, match="stage must be"):
        k.dump("parsed")
    roles = [r for _, _, _, r in k.layout(2, 3)]
    assert roles == ["x1", "x2"] + ["shared"] * 5
    assert [d for n, _, d, r in k.layout(2, 3) if r == "x1"] == [[2, 5]]


def test_from_torch_keeps_the_module_mode():
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(3, 2)).double()
    net.train()
    jjt.from_torch(net, torch.zeros(1, 3, dtype=torch.float64))
    assert net.training
    net.eval()
    jjt.from_torch(net, torch.zeros(1, 3, dtype=torch.float64))
    assert not net.training


def test_from_jax_one_per_side_argument_that_is_a_tuple():
    import jax

    rng = np.random.default_rng(5)
    w = rng.normal(size=(3, 2))

    def g(w, xm):
        x, m = xm
        return jax.numpy.tanh(x @ w) * m

    x, m = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    k = jjt.from_jax(g, w, (x[0], m[0])).kernel()
    got = k((x, m), None, w)
    j = jax.vmap(jax.jacobian(g), in_axes=(None, 0))(w, (x, m)).reshape(4, 2, -1)
    close(got, np.einsum("aip,bjp->abij", j, j))


def test_arrays_that_need_a_copy_and_values_that_are_refused():
    model = jjt.load(os.path.join(JAX_DIR, "mlp.mlir"))
    params = dict(np.load(os.path.join(JAX_DIR, "mlp.npz")))
    x1 = np.load(os.path.join(JAX_DIR, "mlp_x1.npy"))
    k = model.kernel(wrt="params.*", shared="params.*", mode="trace")
    want = k(x1, x1, params)
    raw = np.zeros(x1.size * 8 + 1, np.uint8)
    misaligned = np.frombuffer(raw.data, dtype=np.float64, count=x1.size, offset=1).reshape(x1.shape)
    misaligned[...] = x1
    assert not misaligned.flags.aligned
    close(k(misaligned, x1, params), want, 0)
    swapped = x1.astype(">f8")
    close(k(swapped, x1, params), want, 0)
    embed = jjt.load(os.path.join(JAX_DIR, "embed.mlir"))
    side = [i for i in embed.inputs if i[1] == "int32"][0]
    ek = embed.kernel(wrt="params.*", shared="params.*")
    eparams = dict(np.load(os.path.join(JAX_DIR, "embed.npz")))
    with pytest.raises(jjt.InputError, match="expected int32 values, got float64"):
        ek([[0.5] * side[2][0]], None, eparams)
