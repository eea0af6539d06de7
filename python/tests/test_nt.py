"""`jjt.empirical_ntk_fn` against neural-tangents 0.6.5.

The kernels in `fixtures/nt/*.npz` were computed by neural-tangents 0.6.5 under jax 0.4.23
(`fixtures/nt/gen_nt.py`); here jjt runs under the current JAX on plain-JAX versions of the
same networks (`fixtures/nt/nets.py`) with the saved parameters. Everything is f64; the
tolerance 1e-10 (relative to the kernel's largest entry) leaves room for the different order
of summation in the two programs, whose rounding errors are ~1e-15 relative.
"""

import numpy as np
import pytest

import jjt
import nets

CASES = [(net, case) for net in nets.NETS for case in nets.cases(net)]


def close(actual, expected, rtol=1e-10):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    scale = max(np.max(np.abs(expected)), 1e-300)
    err = np.max(np.abs(actual - expected)) / scale if expected.size else 0.0
    assert err <= rtol, f"relative error {err:.3e}"


@pytest.mark.parametrize("net,case", CASES, ids=[f"{n}-{c}" for n, c in CASES])
def test_matches_neural_tangents(net, case):
    params, x1, x2, kernels = nets.load(net)
    c = nets.cases(net)[case]
    fn = jjt.empirical_ntk_fn(
        getattr(nets, net),
        trace_axes=c["trace_axes"],
        diagonal_axes=c["diagonal_axes"],
        vmap_axes=c["vmap_axes"],
    )
    k = fn(x1, None if c["x2_none"] else x2, params)
    assert k.dtype == np.float64
    close(k, kernels[case])


@pytest.mark.parametrize("impl", [None, 0, 1, 2, 3, jjt.NtkImplementation.NTK_VECTOR_PRODUCTS])
def test_implementations_agree(impl):
    params, x1, x2, kernels = nets.load("mlp")
    fn = jjt.empirical_ntk_fn(nets.mlp, trace_axes=(), vmap_axes=0, implementation=impl)
    close(fn(x1, x2, params), kernels["full_vmap0"])


def test_dense_jacobian_reference_f64():
    """Against JAX's own dense Jacobians (independent of the stored fixtures)."""
    import jax

    params, x1, x2, _ = nets.load("cnn")
    for trace, diag in [((), ()), ((-1,), ()), ((), (-1,))]:
        want = nets.reference_ntk(nets.cnn, params, x1, x2, trace, diag)
        got = jjt.empirical_ntk_fn(nets.cnn, trace_axes=trace, diagonal_axes=diag, vmap_axes=0)(
            x1, x2, params
        )
        close(got, np.asarray(want))
    assert jax.config.jax_enable_x64


def test_f32_follows_inputs():
    """f32 parameters and inputs give an f32 kernel, as in neural-tangents; its error against
    the f64 kernel is a few f32 roundings of sums of ~100 terms (≲1e-5 relative)."""
    import jax.numpy as jnp

    params, x1, x2, kernels = nets.load("mlp")
    p32 = [tuple(jnp.asarray(a, jnp.float32) for a in layer) for layer in params]
    k = jjt.empirical_ntk_fn(nets.mlp, vmap_axes=0)(
        np.asarray(x1, np.float32), np.asarray(x2, np.float32), p32
    )
    assert k.dtype == np.float32
    close(k, kernels["trace_vmap0"], rtol=1e-5)


def test_interacting_examples_need_vmap_none():
    """With examples that interact (centering over the batch), vmap_axes=None is exact and
    vmap_axes=0 is the kernel of the per-example function, as in neural-tangents."""
    import jax

    params, x1, x2, _ = nets.load("mlp")

    def centered(p, x):
        return nets.mlp(p, x - x.mean(0))

    full = jjt.empirical_ntk_fn(centered, trace_axes=(), vmap_axes=None)(x1, x2, params)
    close(full, np.asarray(nets.reference_ntk(centered, params, x1, x2, (), ())))
    per = jjt.empirical_ntk_fn(centered, trace_axes=(), vmap_axes=0)(x1, x2, params)

    def one(p, x):
        return jax.vmap(lambda e: centered(p, e[None])[0])(x)

    close(per, np.asarray(nets.reference_ntk(one, params, x1, x2, (), ())))
    assert not np.allclose(full, per)


def test_kwargs_split_between_sides():
    """A 2-tuple keyword argument gives each side its own value (neural-tangents' rule)."""
    import jax.numpy as jnp

    params, x1, x2, _ = nets.load("mlp")

    def scaled(p, x, scale=1.0):
        return nets.mlp(p, x) * scale

    got = jjt.empirical_ntk_fn(scaled, trace_axes=())(x1, x2, params, scale=(2.0, 3.0))
    want = nets.reference_ntk(lambda p, x: nets.mlp(p, x), params, x1, x2, (), ()) * 6.0
    close(got, np.asarray(want))
    same = jjt.empirical_ntk_fn(scaled, trace_axes=(), vmap_axes=0)(x1, x2, params, scale=2.0)
    close(same, np.asarray(want) * 4.0 / 6.0)
    assert jnp.asarray(got).shape == (4, 3, 3, 3)


def test_cache_per_shape():
    params, x1, x2, kernels = nets.load("mlp")
    fn = jjt.empirical_ntk_fn(nets.mlp, vmap_axes=0)
    close(fn(x1, x2, params), kernels["trace_vmap0"])
    close(fn(x1[:2], x2, params), kernels["trace_vmap0"][:2])
    close(fn(x1, x2, params), kernels["trace_vmap0"])


@pytest.mark.parametrize(
    "kwargs,error",
    [
        (dict(trace_axes=(-1,), diagonal_axes=(-1,)), ValueError),
        (dict(trace_axes=(5,)), ValueError),
        (dict(trace_axes=(-1, -1)), ValueError),
        (dict(vmap_axes=1), ValueError),
        (dict(vmap_axes=(0, 0, {})), ValueError),
        (dict(implementation=7), ValueError),
        (dict(implementation="fast"), ValueError),
        (dict(trace_axes="x"), TypeError),
    ],
)
def test_arguments_it_cannot_honour(kwargs, error):
    params, x1, x2, _ = nets.load("mlp")
    with pytest.raises(error):
        jjt.empirical_ntk_fn(nets.mlp, **kwargs)(x1, x2, params)


def test_diagonal_examples_need_equal_batches():
    params, x1, x2, _ = nets.load("mlp")
    with pytest.raises(jjt.ShapeError):
        jjt.empirical_ntk_fn(nets.mlp, diagonal_axes=(0,), vmap_axes=0)(x1, x2, params)


def test_leading_axes_of_one_are_axes_like_any_other():
    """One example `[1, 3]` with the default vmap_axes=None, and a 1-D regression whose
    examples and outputs are `[N, 1]`: neural-tangents' shapes, not an export of a batch of one."""
    import jax.numpy as jnp

    rng = np.random.default_rng(3)
    w, v = rng.normal(size=(3, 4)), rng.normal(size=(4, 1))

    def f(p, x):
        return jnp.tanh(x @ p[0]) @ p[1]

    x = rng.normal(size=(1, 3))
    for trace in [(), (-1,)]:
        got = jjt.empirical_ntk_fn(lambda p, x: jnp.tanh(x @ p[0]) @ jnp.ones((4, 4)), trace_axes=trace)(
            x, None, (w, v)
        )
        want = nets.reference_ntk(lambda p, x: jnp.tanh(x @ p[0]) @ jnp.ones((4, 4)), (w, v), x, None, trace, ())
        close(got, np.asarray(want))
    xs = rng.normal(size=(6, 3))
    for vmap in [None, 0]:
        got = jjt.empirical_ntk_fn(f, trace_axes=(), vmap_axes=vmap)(xs, None, (w, v))
        assert got.shape == (6, 6, 1, 1)
        close(got, np.asarray(nets.reference_ntk(f, (w, v), xs, None, (), ())))


def test_keyword_arguments_are_keyed_by_value():
    """A keyword argument is compiled into the kernel: a new value, even in the same list or
    in an object at a reused address, gives a new kernel; an unhashable leaf is refused."""
    params, x1, x2, _ = nets.load("mlp")

    def scaled(p, x, scales=(1.0,)):
        return nets.mlp(p, x) * scales[0]

    fn = jjt.empirical_ntk_fn(scaled, trace_axes=(), vmap_axes=0)
    base = fn(x1, x2, params, scales=[1.0])
    for s in [2.0, 3.0, 2.0]:
        close(fn(x1, x2, params, scales=[s]), base * s * s)
    close(fn(x1, x2, params, scales=[np.float64(3.0)]), base * 9.0)

    class Opaque:
        __hash__ = None

    with pytest.raises(TypeError, match="keyword argument `cfg`"):
        jjt.empirical_ntk_fn(lambda p, x, cfg=None: nets.mlp(p, x))(x1, x2, params, cfg=Opaque())


def test_float64_arrays_with_x64_off_compute_in_float32(tmp_path):
    """With JAX's default (x64 off) f64 NumPy arrays are computed in f32, as neural-tangents
    computes them through JAX: the same kernel as f32 arrays, bit for bit."""
    import subprocess
    import sys

    script = tmp_path / "x32.py"
    script.write_text(
        "import numpy as np, jax.numpy as jnp, jjt\n"
        "rng = np.random.default_rng(0)\n"
        "p = (rng.normal(size=(5, 7)), rng.normal(size=(7, 2)))\n"
        "x1, x2 = rng.normal(size=(3, 5)), rng.normal(size=(4, 5))\n"
        "f = lambda p, x: jnp.tanh(x @ p[0]) @ p[1]\n"
        "for vmap in [None, 0]:\n"
        "    fn = jjt.empirical_ntk_fn(f, trace_axes=(), vmap_axes=vmap)\n"
        "    a = fn(x1, x2, p)\n"
        "    b = fn(x1.astype(np.float32), x2.astype(np.float32), tuple(q.astype(np.float32) for q in p))\n"
        "    assert a.dtype == np.float32 and a.shape == (3, 4, 2, 2), (a.dtype, a.shape)\n"
        "    assert np.array_equal(a, b)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
