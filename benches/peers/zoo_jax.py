#!/usr/bin/env python3
"""The model zoo (benches/models) in plain JAX, on the data benches/models/gen.py wrote to target/zoo/NAME/.

  --ref      the float64 reference K[a, b, i, j] = sum_p J(x1)[a, i, p] J(x2)[b, j, p] from dense Jacobians
             (jax x64, jacrev of one example vmapped over the batch, contracted parameter by parameter),
             saved as target/zoo/NAME/K_ref.npy; every zoo peer and benches/compare measure against it.
  (default)  variant `jit-ntvp`: jax.jit of the jvp∘vjp program in f32 (the VJP of f(θ, x2) on each of the B2·O
             output basis vectors, vmapped, then one JVP of f(θ, x1) per basis vector), timed: first call (trace +
             compile + first run) and the median of further calls; rel. error against K_ref.npy.
Runs with current JAX (measured with jax 0.10.2); any jax >= 0.4 works. On this machine jax 0.10.2 in f32 gives the
mixer 1.5e-3 relative error with its default CPU fusion (the same program in f64 is exact to 1.6e-15, and
XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= brings f32 back to 3.4e-7); the peer is measured as users get it.
Usage:  python zoo_jax.py NAME [NAME ...] [--ref] [--reps N]
"""
import argparse, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import zoo_common as zc

ap = argparse.ArgumentParser()
ap.add_argument("names", nargs="+")
ap.add_argument("--ref", action="store_true")
ap.add_argument("--reps", type=int, default=10)
args = ap.parse_args()

import jax, jax.numpy as jnp  # noqa: E402
if args.ref:
    jax.config.update("jax_enable_x64", True)


def batched(forward):
    return jax.vmap(lambda p, x: forward(p, x, jnp), (None, 0))


def reference(name):
    forward, params, x1, x2, meta = zc.load(name)
    p64 = {n: jnp.asarray(v, jnp.float64) for n, v in params.items()}
    jac = jax.jit(jax.vmap(jax.jacrev(lambda p, x: forward(p, x, jnp)), (None, 0)))
    j1 = jac(p64, zc.side(x1, jnp.float64))
    j2 = jac(p64, zc.side(x2, jnp.float64))
    K = 0.0
    for n in meta["params"]:
        a, b = j1[n], j2[n]
        K = K + np.einsum("aip,bjp->abij", np.asarray(a).reshape(a.shape[0], a.shape[1], -1),
                          np.asarray(b).reshape(b.shape[0], b.shape[1], -1))
    np.save(zc.ref_path(name), K)
    # A spot check that the parameters' Jacobian is the derivative: a central difference along a random
    # direction of the parameters, at example 0 of side 1 (f64, step 1e-5; the truncation error h^2 |d|^3 |f'''| with
    # |d| ~ sqrt(#params) leaves ~1e-8 relative: a wrong Jacobian is off by O(1)).
    rng = np.random.default_rng(0)
    d = {n: jnp.asarray(rng.standard_normal(v.shape)) for n, v in p64.items()}
    h = 1e-5
    f0 = lambda p: forward(p, zc.side(x1[0], jnp.float64), jnp)  # noqa: E731
    fd = (f0({n: p64[n] + h * d[n] for n in d}) - f0({n: p64[n] - h * d[n] for n in d})) / (2 * h)
    jd = sum(np.einsum("ip,p->i", np.asarray(j1[n][0]).reshape(j1[n].shape[1], -1), np.asarray(d[n]).ravel())
             for n in d)
    fd_err = float(np.max(np.abs(np.asarray(fd) - jd)) / np.max(np.abs(jd)))
    print(f"reference {name}: K {list(K.shape)} f64 written to {zc.ref_path(name)}; "
          f"Jacobian vs central difference {fd_err:.1e}", flush=True)


def ntvp(forward):
    fb = batched(forward)

    def k(params, x1, x2):
        out2, vjp2 = jax.vjp(lambda p: fb(p, x2), params)
        b2, o = out2.shape
        basis = jnp.eye(b2 * o, dtype=out2.dtype).reshape(b2 * o, b2, o)

        def column(ct):
            (v,) = vjp2(ct)
            return jax.jvp(lambda p: fb(p, x1), (params,), (v,))[1]  # [B1, O]
        return jax.vmap(column)(basis)  # [B2 * O, B1, O]
    return jax.jit(k)


def timed(name):
    forward, params, x1, x2, meta = zc.load(name)
    kref = zc.load_ref(name)
    p = {n: jnp.asarray(v) for n, v in params.items()}
    a, b = jnp.asarray(x1), jnp.asarray(x2)
    jf = ntvp(forward)
    try:
        first, med, mn, n, K = zc.bench(lambda: jf(p, a, b), jax.block_until_ready, reps=args.reps)
    except Exception as e:  # e.g. XLA RESOURCE_EXHAUSTED
        zc.report("jax", name, "jit-ntvp", status="FAILED: " + repr(e)[:300])
        return
    b1, b2, o = x1.shape[0], x2.shape[0], meta["outputs"]
    std = np.asarray(K, np.float64).reshape(b2, o, b1, o).transpose(2, 0, 3, 1)  # [b, j, a, i] -> [a, b, i, j]
    zc.report("jax", name, "jit-ntvp", first, med, mn, n, zc.rel_err(std, kref), jax_version=jax.__version__)


for nm in args.names:
    reference(nm) if args.ref else timed(nm)
