#!/usr/bin/env python3
"""jjt from Python (the `jjt` package, built from this repository and installed in this Python)
on the seed and on the model zoo (benches/models), timed as the Rust `jjt bench` times them, for
benches/python.py.

  seed       the seed kernel (examples/models/seed.jjt, wrt x, full 5x5 K, f32): the median of
             single calls `kernel(x1, x2)` (each timed on its own, like `jjt bench`'s reps).
  NAME ...   zoo models on the data benches/models/gen.py wrote to target/zoo/NAME/: `jjt.load`
             of the hand-written model, `model.kernel(wrt=params, shared=params)` (strategy auto),
             called as `kernel(x1, x2, params)` with NumPy arrays; first call (compile + run) and
             steady median; rel. error against target/zoo/NAME/K_ref.npy.
Usage:  python zoo_jjt.py seed|NAME [NAME ...] [--reps N]
Prints one human-readable line and one `JSON:` line per measurement (zoo_common.report).
"""
import argparse, os, statistics, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import zoo_common as zc

import jjt

ap = argparse.ArgumentParser()
ap.add_argument("names", nargs="+")
ap.add_argument("--reps", type=int, default=10)
args = ap.parse_args()

for name in args.names:
    if name == "seed":
        k = jjt.load(os.path.join(zc.ROOT, "examples", "models", "seed.jjt")).kernel(wrt="x")
        rng = np.random.default_rng(0)
        x1, x2 = rng.random(10000, dtype=np.float32), rng.random(10000, dtype=np.float32)
        t = time.perf_counter(); k(x1, x2); first = time.perf_counter() - t
        for _ in range(1000):
            k(x1, x2)
        ts = []
        clock = time.perf_counter
        for _ in range(args.reps):
            t = clock(); k(x1, x2); ts.append(clock() - t)
        # No reference here: the seed's K is checked by the tests; rel_err is left NaN.
        zc.report("jjt-python", "seed", "auto", first * 1e3, statistics.median(ts) * 1e3, min(ts) * 1e3,
                  args.reps, float("nan"))
        continue
    _, params, x1, x2, meta = zc.load(name)
    model = jjt.load(meta["model"])
    kernel = model.kernel(wrt=meta["params"], shared=meta["params"])
    first, median, mn, n, k = zc.bench(lambda: kernel(x1, x2, params), lambda r: None, args.reps)
    zc.report("jjt-python", name, "auto", first, median, mn, n, zc.rel_err(k, zc.load_ref(name)))
