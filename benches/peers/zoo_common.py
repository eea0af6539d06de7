"""Shared helpers of the zoo peers (zoo_jax.py, zoo_nt.py); NumPy only, imported, not run.

- `load(name)`: the model's forward function (benches/models/gen.py) and the f32 data gen.py wrote to
  target/zoo/NAME/ (the same files jjt reads), as (forward, params dict, x1, x2, meta).
- `bench`: first call (trace + compile + first run) timed on its own, then warm-up, then the median over repeats.
- `report`: one human-readable line and one `JSON:` line per measurement (`median_ms`, `min_ms`, `first_ms`,
  `rel_err` against the float64 reference K of shape [B1, B2, O, O]).
"""
import json, os, resource, statistics, sys, time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "benches", "models"))
import gen  # noqa: E402  (the zoo's models)

DATA = os.environ.get("JJT_ZOO_DIR", os.path.join(ROOT, "target", "zoo"))


def zoo_dir(name):
    return os.path.join(DATA, name)


def load(name):
    d = zoo_dir(name)
    if not os.path.exists(os.path.join(d, "meta.json")):
        sys.exit(f"error: no data in {d}: run benches/models/gen.py {name} first")
    with open(os.path.join(d, "meta.json")) as fh:
        meta = json.load(fh)
    params = {n: np.load(os.path.join(d, f"{n}.npy")) for n in meta["params"]}
    x1, x2 = np.load(os.path.join(d, "x1.npy")), np.load(os.path.join(d, "x2.npy"))
    return gen.MODELS[name]["forward"], params, x1, x2, meta


def side(x, float_dtype):
    """A per-side input for JAX: floats in `float_dtype`, integer indices (token ids) as they are."""
    import jax.numpy as jnp
    return jnp.asarray(x) if np.issubdtype(x.dtype, np.integer) else jnp.asarray(x, float_dtype)


def ref_path(name):
    return os.path.join(zoo_dir(name), "K_ref.npy")


def load_ref(name):
    """K_ref.npy; without it (no JAX to compute it), jjt's f64 kernel that benches/compare writes instead."""
    for p in (ref_path(name), os.path.join(zoo_dir(name), "K_ref_jjt_f64.npy")):
        if os.path.exists(p):
            return np.load(p)
    return None


def rel_err(k, kref):
    """max |k - kref| / max |kref| (k in the layout [B1, B2, O, O])."""
    if kref is None:
        return float("nan")
    k = np.asarray(k, dtype=np.float64)
    assert k.shape == kref.shape, (k.shape, kref.shape)
    return float(np.max(np.abs(k - kref)) / np.max(np.abs(kref)))


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench(call, sync, reps=10, budget_s=10.0):
    """call() -> result; sync(result) blocks until done. Returns (first_ms, median_ms, min_ms, reps, result):
    the first call, one warm-up call, then `reps` calls (fewer, at least 3, when they would exceed budget_s)."""
    t = time.perf_counter(); r = call(); sync(r); first = time.perf_counter() - t
    t = time.perf_counter(); r = call(); sync(r); warm = time.perf_counter() - t
    n = max(3, min(reps, int(budget_s / max(warm, 1e-9))))
    ts = []
    for _ in range(n):
        t = time.perf_counter(); r = call(); sync(r); ts.append(time.perf_counter() - t)
    return first * 1e3, statistics.median(ts) * 1e3, min(ts) * 1e3, n, r


def report(peer, workload, variant, first_ms=None, median_ms=None, min_ms=None, reps=None, err=None,
           status="ok", **extra):
    rec = dict(peer=peer, workload=workload, variant=variant, status=status, first_ms=first_ms,
               median_ms=median_ms, min_ms=min_ms, reps=reps, rel_err=err, rss_mb_inproc=round(peak_rss_mb(), 1))
    rec.update(extra)
    if status == "ok":
        print(f"{peer:10s} {workload:12s} {variant:24s} steady {median_ms:11.3f} ms (min {min_ms:.3f}, n={reps})  "
              f"first {first_ms:10.1f} ms  rel_err {err:.2e}", flush=True)
    else:
        print(f"{peer:10s} {workload:12s} {variant:24s} {status}", flush=True)
    print("JSON:" + json.dumps(rec), flush=True)
