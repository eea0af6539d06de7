#!/usr/bin/env python3
"""The model zoo (benches/models) in neural-tangents 0.6.5 (`nt.empirical_ntk_fn`, jax 0.4.23), on the data
benches/models/gen.py wrote to target/zoo/NAME/, full kernel (trace_axes=()), vmap_axes=0, f32.
Variants: SD = STRUCTURED_DERIVATIVES, NTVP = NTK_VECTOR_PRODUCTS, JC = JACOBIAN_CONTRACTION.
Each is jax.jit(ntk_fn), timed: first call (trace + compile + first run) and the median of further calls;
rel. error against the float64 reference target/zoo/NAME/K_ref.npy (zoo_jax.py --ref).
nt returns K as [B1, B2, O, O], the layout of the reference. (With the default trace_axes=(-1,) it would
return the MEAN over outputs, trace / O; the full kernel used here is not scaled: the error check confirms it.)
The apply function is the model's plain-jnp forward (gen.py), vmapped over the batch; not nt.stax.
nt's top-level import pulls in its TensorFlow-based `experimental` subpackage; TensorFlow is not installed, so that
subpackage is replaced by an empty module before the import (nothing used here depends on it).
Usage:  python zoo_nt.py NAME [NAME ...] [--variant SD,NTVP,JC] [--reps N]
"""
import argparse, os, sys, types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import zoo_common as zc

ap = argparse.ArgumentParser()
ap.add_argument("names", nargs="+")
ap.add_argument("--variant", default="SD,NTVP,JC")
ap.add_argument("--reps", type=int, default=10)
args = ap.parse_args()

IMPLS = {"JC": "JACOBIAN_CONTRACTION", "NTVP": "NTK_VECTOR_PRODUCTS", "SD": "STRUCTURED_DERIVATIVES"}
sys.modules.setdefault("neural_tangents.experimental", types.ModuleType("neural_tangents.experimental"))
import jax, jax.numpy as jnp  # noqa: E402
import neural_tangents as nt  # noqa: E402


def run(name, variant):
    forward, params, x1, x2, meta = zc.load(name)
    kref = zc.load_ref(name)
    f = jax.vmap(lambda p, x: forward(p, x, jnp), (None, 0))
    ntk_fn = nt.empirical_ntk_fn(f, trace_axes=(), vmap_axes=0,
                                 implementation=getattr(nt.NtkImplementation, IMPLS[variant]))
    jf = jax.jit(ntk_fn)
    p = {n: jnp.asarray(v) for n, v in params.items()}
    a, b = jnp.asarray(x1), jnp.asarray(x2)
    try:
        first, med, mn, n, K = zc.bench(lambda: jf(a, b, p), jax.block_until_ready, reps=args.reps)
    except Exception as e:  # e.g. XLA RESOURCE_EXHAUSTED
        zc.report("nt", name, variant, status="FAILED: " + repr(e)[:300])
        return
    zc.report("nt", name, variant, first, med, mn, n, zc.rel_err(np.asarray(K), kref), jax_version=jax.__version__,
              nt_version=nt.__version__, native_shape=list(np.shape(K)))


for nm in args.names:
    for v in args.variant.split(","):
        run(nm, v)
