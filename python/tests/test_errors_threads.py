"""Errors are typed exceptions with the CLI's messages; a kernel runs on several Python
threads at once, with the GIL released while it compiles and runs."""

import os
import threading
import time

import numpy as np
import pytest

import jjt

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED = os.path.join(ROOT, "examples", "models", "seed.jjt")
JAX_DIR = os.path.join(ROOT, "tests", "fixtures", "jax")


@pytest.fixture(scope="module")
def seed():
    return jjt.load(SEED).kernel(wrt="x")


def x(n=None, dtype=np.float32, size=10000):
    rng = np.random.default_rng(0)
    shape = (size,) if n is None else (n, size)
    return rng.random(shape).astype(dtype)


def test_exception_hierarchy():
    assert issubclass(jjt.ShapeError, ValueError)
    assert issubclass(jjt.InputError, TypeError)
    assert issubclass(jjt.ModelError, ValueError)
    assert issubclass(jjt.CompileError, jjt.JjtError)


def test_wrong_dtype(seed):
    with pytest.raises(jjt.InputError, match=r"expected dtype float32, got float64 \(convert it"):
        seed(x(dtype=np.float64), x())


def test_wrong_shape(seed):
    with pytest.raises(jjt.ShapeError, match=r"expected f32\[10000\] \(one example\) or f32\[B,10000\]"):
        seed(x(size=99), x())
    with pytest.raises(jjt.ShapeError, match="give both sides one example, or both a batch"):
        seed(x(3), x())


def test_unknown_and_missing_inputs(seed):
    with pytest.raises(jjt.InputError, match="no input `y`"):
        seed({"y": x()}, x())
    with pytest.raises(jjt.InputError, match="x1: missing"):
        seed(None, x())
    mlp = jjt.load(os.path.join(JAX_DIR, "mlp.mlir"))
    k = mlp.kernel(wrt="params.*", shared="params.*")
    params = dict(np.load(os.path.join(JAX_DIR, "mlp.npz")))
    del params["params.w1"]
    with pytest.raises(jjt.InputError, match=r"missing input `params.w1`: f64\[16,16\]"):
        k(np.zeros((2, 5)), np.zeros((2, 5)), params)
    with pytest.raises(jjt.InputError, match="did you mean `params.w0`"):
        mlp.kernel(wrt="params.w00")
    with pytest.raises(jjt.InputError, match="matches no floating-point input"):
        mlp.kernel(wrt="weights.*")
    with pytest.raises(jjt.InputError, match="no weights with default values"):
        mlp.kernel()


def test_bad_arguments(seed):
    m = jjt.load(SEED)
    with pytest.raises(ValueError, match="mode must be"):
        m.kernel(wrt="x", mode="sum")
    with pytest.raises(ValueError, match="strategy must be"):
        m.kernel(wrt="x", strategy="fast")
    with pytest.raises(jjt.ShapeError, match="examples='diagonal'"):
        m.kernel(wrt="x", examples="diagonal")(x(2), x(3))
    with pytest.raises(ValueError, match="apply multiplies by the full K"):
        m.kernel(wrt="x", mode="trace").apply(np.zeros(5, np.float32), x(), x())


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        jjt.load(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.jjt"
    bad.write_text("func f(x: f32[3]) -> f32[3] {\n  return frob(x)\n}\n")
    with pytest.raises(jjt.ModelError, match="frob"):
        jjt.load(bad)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07\x12\xff\xff\xff\xff\x0f")
    with pytest.raises(jjt.ModelError):
        jjt.load(garbage)


def test_two_threads_at_once(seed):
    """Both threads get the results of sequential calls while calling one kernel together."""
    a1, a2 = x(8), x(7) * 0.5
    b1, b2 = x(3) + 1.0, x(5)
    want_a, want_b = seed(a1, a2), seed(b1, b2)
    results = {}
    barrier = threading.Barrier(2)

    def run(name, p, q):
        barrier.wait()
        for i in range(50):
            results[(name, i)] = seed(p, q)

    ts = [threading.Thread(target=run, args=("a", a1, a2)), threading.Thread(target=run, args=("b", b1, b2))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for i in range(50):
        np.testing.assert_array_equal(results[("a", i)], want_a)
        np.testing.assert_array_equal(results[("b", i)], want_b)


def test_gil_released_while_running():
    """A Python thread keeps running while another thread is inside a long kernel call: the
    call does not hold the GIL (held, the counter could not move until the call returned)."""
    big = jjt.load(os.path.join(ROOT, "benches", "models", "mlp.jjt"))
    k = big.kernel(wrt=["w*", "b*"], shared=["w*", "b*"])
    rng = np.random.default_rng(0)
    shared = {i[0]: rng.normal(size=i[2]).astype(np.float32) * 0.05 for i in big.inputs if i[0] != "x"}
    xs = rng.random((64, 784)).astype(np.float32)
    k(xs, xs, shared)  # compile first
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.perf_counter())

    calls = []

    def call():
        # One call between the two clock readings: no Python bytecode runs inside, so the
        # counter can only run if the call released the GIL.
        t0 = time.perf_counter()
        k(xs, xs, shared)
        calls.append((t0, time.perf_counter()))

    c = threading.Thread(target=count)
    c.start()
    w = threading.Thread(target=call)
    w.start()
    w.join()
    stop.set()
    c.join()
    t0, t1 = calls[0]
    inside = [t for t in ticks if t0 < t < t1]
    assert len(inside) > 100, f"{len(inside)} ticks during {1e3 * (t1 - t0):.1f} ms of kernel calls"
