#!/usr/bin/env python3
"""jjt from Python against jjt from Rust and against JAX, in one run on this machine.

  seed   the overhead of a Python call: the median of single calls of the seed kernel
         (examples/models/seed.jjt, wrt x, 5x5 K, f32) from Python (`kernel(x1, x2)`, NumPy in and
         out) minus the median of `jjt bench` on the same kernel (Rust, `Compiled::call`).
  zoo    every model of benches/models (or --zoo NAMES): steady median and first call of the
         kernel from Python (benches/peers/zoo_jjt.py: `jjt.load`, `model.kernel(...)`,
         `kernel(x1, x2, params)`), of `jjt bench` (Rust, strategy auto) and of the current
         JAX release's jit of the jvp∘vjp program (benches/peers/zoo_jax.py); ratios
         python/rust and python/JAX, and the rel. error of the Python K against the float64
         reference (target/zoo/NAME/K_ref.npy, JAX x64 dense Jacobians).

Usage:  benches/python.py [--zoo NAMES|all|none] [--reps N] [--seed-reps N] [--build]
Pythons: PY_JJT has the jjt package (default ~/.cache/jjt/venv/bin/python, where scripts/test
installs the wheel it builds; --build builds and installs this checkout's wheel there first);
PY_JAX runs the JAX peer (default ~/venvs/jax/bin/python, else PY_JJT).
"""
import argparse, json, os, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO = ["mlp", "transformer", "deep", "mixer", "cnn", "embed"]


def run(cmd, timeout=3600):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    return p.stdout


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def last_json(out):
    lines = [l for l in out.splitlines() if l.startswith("JSON:")]
    return json.loads(lines[-1][5:]) if lines else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", default="all")
    ap.add_argument("--reps", type=int, default=10, help="timed calls per zoo measurement")
    ap.add_argument("--seed-reps", type=int, default=20000, help="timed calls of the seed kernel")
    ap.add_argument("--build", action="store_true", help="build and install this checkout's wheel in PY_JJT")
    a = ap.parse_args()
    names = ZOO if a.zoo == "all" else [] if a.zoo == "none" else a.zoo.split(",")
    py = os.environ.get("PY_JJT", os.path.expanduser("~/.cache/jjt/venv/bin/python"))
    py_jax = os.environ.get("PY_JAX", os.path.expanduser("~/venvs/jax/bin/python"))
    if not os.path.exists(py_jax):
        py_jax = py
    t0 = time.time()
    run(["cargo", "build", "--release", "-q", "-p", "jjt-cli"])
    if a.build:
        wheels = os.path.join(ROOT, "target", "wheels")
        for w in os.listdir(wheels) if os.path.isdir(wheels) else []:
            os.remove(os.path.join(wheels, w))
        run([os.path.join(os.path.dirname(py), "maturin"), "build", "--release", "--quiet", "--out", wheels])
        whl = sorted(os.path.join(wheels, w) for w in os.listdir(wheels) if w.endswith(".whl"))[-1]
        run([py, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", whl])
    jjt = os.path.join(ROOT, "target", "release", "jjt")
    peers = os.path.join(ROOT, "benches", "peers")
    log(f"jjt package: {run([py, '-c', 'import jjt; print(jjt.__file__, jjt.__version__)']).strip()}")
    log(f"JAX: {run([py_jax, '-c', 'import jax; print(jax.__version__)']).strip()}")

    rust = json.loads(run([jjt, "bench", os.path.join(ROOT, "examples/models/seed.jjt"), "--wrt", "x",
                           "--reps", str(a.seed_reps)]).strip().splitlines()[-1])
    pyr = last_json(run([py, os.path.join(peers, "zoo_jjt.py"), "seed", "--reps", str(a.seed_reps)]))
    over_us = (pyr["median_ms"] - rust["median_ms"]) * 1e3
    print(f"seed kernel, median of single calls: Rust {rust['median_ms'] * 1e3:.2f} µs, "
          f"Python {pyr['median_ms'] * 1e3:.2f} µs: overhead of a Python call {over_us:.2f} µs")
    print("JSON:" + json.dumps({"workload": "seed", "rust_median_ms": rust["median_ms"],
                                "python_median_ms": pyr["median_ms"], "overhead_us": over_us}))

    rows = []
    if names:
        run([py, os.path.join(ROOT, "benches", "models", "gen.py"), "--out", os.path.join(ROOT, "target", "zoo"), *names])
    for name in names:
        d = os.path.join(ROOT, "target", "zoo", name)
        meta = json.load(open(os.path.join(d, "meta.json")))
        if not os.path.exists(os.path.join(d, "K_ref.npy")):
            log(run([py_jax, os.path.join(peers, "zoo_jax.py"), "--ref", name]).strip())
        side = meta.get("per_side", ["x"])[0]
        r = json.loads(run([jjt, "bench", meta["model"], "--wrt", ",".join(meta["params"]), "--shared",
                            ",".join(f"{n}={d}/{n}.npy" for n in meta["params"]), "--x1", f"{side}={d}/x1.npy",
                            "--x2", f"{side}={d}/x2.npy", "--reps", str(a.reps)]).strip().splitlines()[-1])
        p = last_json(run([py, os.path.join(peers, "zoo_jjt.py"), name, "--reps", str(a.reps)]))
        j = last_json(run([py_jax, os.path.join(peers, "zoo_jax.py"), name, "--reps", str(a.reps)]))
        rows.append((name, r, p, j))
        log(f"{name}: rust {r['median_ms']:.2f} ms, python {p['median_ms']:.2f} ms, jax {j['median_ms']:.2f} ms")
    if rows:
        print("\nsteady median ms / first call ms; ratios of the steady medians")
        print(f"{'model':12}{'jjt Rust':>18}{'jjt Python':>18}{'JAX jit-ntvp':>18}{'py/rust':>10}{'py/JAX':>10}{'err py':>10}")
        for name, r, p, j in rows:
            print(f"{name:12}{r['median_ms']:>10.2f} / {r['first_call_ms']:<5.0f}{p['median_ms']:>10.2f} / {p['first_ms']:<5.0f}"
                  f"{j['median_ms']:>10.2f} / {j['first_ms']:<5.0f}{p['median_ms'] / r['median_ms']:>10.3f}"
                  f"{p['median_ms'] / j['median_ms']:>10.3f}{p['rel_err']:>10.1e}")
        for name, r, p, j in rows:
            print("JSON:" + json.dumps({"zoo": name, "rust_median_ms": r["median_ms"], "python_median_ms": p["median_ms"],
                                        "jax_median_ms": j["median_ms"], "python_rel_err": p["rel_err"]}))
    log(f"benches/python.py took {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
