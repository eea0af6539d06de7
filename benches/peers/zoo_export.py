#!/usr/bin/env python3
"""Export the model zoo (benches/models/gen.py) from JAX as StableHLO text, for timing jjt on
imported models against the hand-written `benches/models/NAME.jjt`.

Writes target/zoo/NAME/NAME.mlir (`jax.export` of `f(params, x)` on one example, f32) and
target/zoo/NAME/params.npz (the zoo's parameters keyed `params.NAME`, as the import names
them). Needs the data of benches/models/gen.py and current JAX (measured with jax 0.10.2).
Usage:  python zoo_export.py NAME [NAME ...]
"""
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import zoo_common as zc

import jax, jax.numpy as jnp  # noqa: E402

for name in sys.argv[1:]:
    forward, params, x1, _, _ = zc.load(name)

    def f(params, x):
        return forward(params, x, jnp)

    p = {n: jnp.asarray(v, jnp.float32) for n, v in params.items()}
    exp = jax.export.export(jax.jit(f))(p, zc.side(x1[0], jnp.float32))
    d = zc.zoo_dir(name)
    with open(os.path.join(d, f"{name}.mlir"), "w") as fh:
        fh.write(exp.mlir_module())
    np.savez(os.path.join(d, "params.npz"), **{f"params.{n}": np.asarray(v, np.float32) for n, v in params.items()})
    print(f"{name}: {os.path.join(d, name + '.mlir')}")
