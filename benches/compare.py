#!/usr/bin/env python3
"""Run jjt and the peer baselines (../shared/peers) on the same workloads in one run, on this
machine, and print the ratios (jjt / peer; below 1 means jjt is faster).

Usage:  benches/compare [--peers DIR] [--skip-mlp]
Pythons: PY_JAX (jax 0.10.2), PY_NT (jax 0.4.23 + neural-tangents 0.6.5); see the peers' README
for how to make them. A peer whose Python is missing is skipped (and said so).
Workloads:
  seed: f(x) = sqrt(A x / N), N = 10000, M = 5, f32, full 5x5 K, jjt strategy auto,
        vs JAX jit of the seed answer's indirect method (vmap over jvp(vjp)).
  seed-large (--seed-large): N = 1e6, M = 32, vs JAX jit indirect with A a constant.
  mlp:  784-512-512-10 tanh, B1 = B2 = 32, f32, wrt all parameters, full kernel, jjt auto,
        vs neural-tangents NTK_VECTOR_PRODUCTS and STRUCTURED_DERIVATIVES with vmap_axes=0;
        and row mlp-ntvp: jjt with --strategy ntvp (no choice of strategy) vs NTK_VECTOR_PRODUCTS.
Only stdlib; stdout is a table and one JSON line per row.
"""
import argparse, json, os, re, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, env=None, timeout=1800):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return p.stdout


def jjt_bench(jjt, args):
    out = run([jjt, "bench", *args])
    return json.loads(out.strip().splitlines()[-1])


def peer_json(out, name):
    for line in out.splitlines():
        if line.startswith("JSON:"):
            d = json.loads(line[5:])
            if name in (d.get("variant"), d.get("name"), d.get("config")):
                return d
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", default=os.path.join(ROOT, "..", "shared", "peers"))
    ap.add_argument("--skip-mlp", action="store_true")
    ap.add_argument("--seed-large", action="store_true", help="also N=1e6, M=32 (A is 128 MB)")
    a = ap.parse_args()
    run(["cargo", "build", "--release", "-q", "-p", "jjt-cli"], timeout=3600)
    jjt = os.path.join(ROOT, "target", "release", "jjt")
    rows = []

    seed = jjt_bench(jjt, [os.path.join(ROOT, "examples/models/seed.jjt"), "--wrt", "x", "--reps", "1000"])
    py_jax = os.environ.get("PY_JAX")
    if py_jax and os.path.exists(py_jax):
        out = run([py_jax, os.path.join(a.peers, "seed_jax.py")])
        steady = float(re.search(r"^jit_indirect\s+([0-9.]+) ms", out, re.M).group(1))
        first = float(re.search(r"^jit_indirect_first_call\s+([0-9.]+) ms", out, re.M).group(1))
        rows.append(("seed", "JAX jit indirect", seed["median_ms"], steady, seed["first_call_ms"], first))
    else:
        print("PY_JAX not set: seed peer skipped", file=sys.stderr)

    if a.seed_large:
        big = jjt_bench(jjt, [os.path.join(ROOT, "examples/models/seed_large.jjt"), "--wrt", "x", "--reps", "20"])
        if py_jax and os.path.exists(py_jax):
            out = run([py_jax, os.path.join(a.peers, "seed_large_jax.py"), "--variant", "jit_indirect_constA", "--reps", "10"])
            d = [json.loads(l[5:]) for l in out.splitlines() if l.startswith("JSON:") and "indirect" in l][-1]
            rows.append(("seedlarge", "JAX jit indirect (A constant)", big["median_ms"], d["median_ms"], big["first_call_ms"], d["first_ms"]))
        print(f"seed-large: jjt peak RSS {big['peak_rss_mb']} MB", file=sys.stderr)

    if not a.skip_mlp:
        params = "w0,b0,w1,b1,w2,b2"
        mlp = jjt_bench(jjt, [os.path.join(ROOT, "examples/models/mlp.jjt"), "--wrt", params, "--shared", params,
                              "--batch", "32,32", "--reps", "5"])
        mlp_ntvp = jjt_bench(jjt, [os.path.join(ROOT, "examples/models/mlp.jjt"), "--wrt", params, "--shared",
                                   params, "--batch", "32,32", "--strategy", "ntvp", "--reps", "5"])
        py_nt = os.environ.get("PY_NT")
        if py_nt and os.path.exists(py_nt):
            for v in ("NTVP:full:vmap0", "SD:full:vmap0"):
                out = run([py_nt, os.path.join(a.peers, "nt_mlp_ntk.py"), "--variant", v, "--reps", "5"])
                d = [json.loads(l[5:]) for l in out.splitlines() if l.startswith("JSON:")][-1]
                rows.append(("mlp", f"neural-tangents {v}", mlp["median_ms"], d["median_ms"], mlp["first_call_ms"], d["first_ms"]))
                if v.startswith("NTVP"):
                    rows.append(("mlp-ntvp", f"neural-tangents {v}", mlp_ntvp["median_ms"], d["median_ms"],
                                 mlp_ntvp["first_call_ms"], d["first_ms"]))
        else:
            print("PY_NT not set: neural-tangents peers skipped", file=sys.stderr)
        rows.append(("mlp", "(jjt alone)", mlp["median_ms"], float("nan"), mlp["first_call_ms"], float("nan")))

    print(f"{'workload':8} {'peer':34} {'jjt ms':>10} {'peer ms':>10} {'ratio':>7} {'jjt 1st':>9} {'peer 1st':>9} {'ratio':>7}")
    for w, p, js, ps, jf, pf in rows:
        print(f"{w:8} {p:34} {js:10.4f} {ps:10.4f} {js / ps:7.3f} {jf:9.1f} {pf:9.1f} {jf / pf:7.3f}")
    for w, p, js, ps, jf, pf in rows:
        print("JSON:" + json.dumps({"workload": w, "peer": p, "jjt_median_ms": js, "peer_median_ms": ps,
                                    "jjt_first_ms": jf, "peer_first_ms": pf}))


if __name__ == "__main__":
    main()
