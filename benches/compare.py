#!/usr/bin/env python3
"""Run jjt and the peer baselines (../shared/peers) on the same workloads in one run, on this
machine, and print the ratios (jjt / peer; below 1 means jjt is faster).

Usage:  benches/compare [--peers DIR] [--skip-mlp] [--seed-large] [--zoo NAMES|all|none] [--only-zoo] [--reps N]
                        [--rounds R]
Pythons: PY_JAX (jax 0.10.2), PY_NT (jax 0.4.23 + neural-tangents 0.6.5); see the peers' README
for how to make them. A peer whose Python is missing is skipped (and said so).
Workloads:
  seed: f(x) = sqrt(A x / N), N = 10000, M = 5, f32, full 5x5 K, jjt strategy auto,
        vs JAX jit of the seed answer's indirect method (vmap over jvp(vjp)).
  seed-large (--seed-large): N = 1e6, M = 32, vs JAX jit indirect with A a constant.
  mlp:  784-512-512-10 tanh, B1 = B2 = 32, f32, wrt all parameters, full kernel, jjt auto,
        vs neural-tangents STRUCTURED_DERIVATIVES (jjt and it in --rounds interleaved rounds, the median
        of the rounds' medians) and NTK_VECTOR_PRODUCTS (once), with vmap_axes=0;
        and row mlp-ntvp: jjt with --strategy ntvp (no choice of strategy) vs NTK_VECTOR_PRODUCTS.
  zoo (--zoo NAMES, default all): the models of benches/models (mlp, transformer, deep, mixer, cnn, embed), see
        benches/models/gen.py. For each: jjt with --strategy auto, ntvp and jc and neural-tangents
        STRUCTURED_DERIVATIVES in --rounds interleaved rounds (median of the rounds' steady medians and first calls,
        rel. error of K against the float64 reference of benches/peers/zoo_jax.py --ref), then once neural-tangents
        NTK_VECTOR_PRODUCTS and JACOBIAN_CONTRACTION (vmap_axes=0; benches/peers/zoo_nt.py)
        and plain JAX jit of jvp∘vjp (benches/peers/zoo_jax.py); and jjt (auto) on the same model exported from
        JAX (benches/peers/zoo_export.py: StableHLO text), column `imported`, ratio imp/auto against the
        hand-written model; and one `jjt bench --profile` of auto: the strategy it picks (`auto picks`) and
        the rate of its slowest contraction step of at least 10^7 multiply-adds (`min GF/s`).
        Data and K's are written to target/zoo/NAME/.
        `--zoo transformer,mixer` runs a subset, `--zoo none` none; `--only-zoo` skips seed and mlp above.
Pythons: PY_JAX and PY_NT default to ~/venvs/jax/bin/python and ~/venvs/nt/bin/python when those exist.
Only stdlib here (the zoo's data and peers run in those Pythons); stdout is tables and JSON lines.
"""
import argparse, array, ast, json, os, re, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, env=None, timeout=1800):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return p.stdout


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def jjt_bench(jjt, args):
    out = run([jjt, "bench", *args])
    return json.loads(out.strip().splitlines()[-1])


def jjt_profile(jjt, args):
    """One `jjt bench --profile` run: the strategy auto picked (None for a fixed one) and the
    slowest contraction step of at least 10^7 multiply-adds as (GFLOP/s, multiply-adds, label),
    or None. A step's multiply-adds are its measured time times its rate over two."""
    p = subprocess.run([jjt, "bench", *args, "--profile"], capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"jjt bench --profile failed:\n{p.stderr[-2000:]}")
    text = p.stdout + p.stderr
    pick = re.search(r"^strategy auto: (\w+)", text, re.M)
    worst = None
    for line in text.splitlines():
        m = re.match(r"\s*\d+\s+[0-9.]+\s+([0-9.]+)\s+[0-9.]+%\s+([0-9.]+) GFLOP/s\s+(dot .*)", line)
        if m:
            ms, rate, what = float(m[1]), float(m[2]), m[3].strip()
            macs = rate * 1e9 * ms / 1e3 / 2
            if macs >= 1e7 and (worst is None or rate < worst[0]):
                worst = (rate, macs, what)
    return (pick[1] if pick else None), worst


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
    ap.add_argument("--zoo", default="all", help=f"zoo models, comma-separated ({','.join(ZOO)}), all or none")
    ap.add_argument("--only-zoo", action="store_true", help="skip the seed and mlp rows")
    ap.add_argument("--reps", type=int, default=5, help="timed calls per zoo measurement (after the first)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="interleaved rounds of jjt's strategies and nt SD per zoo model (median of the rounds' medians)")
    a = ap.parse_args()
    if a.rounds < 1 or a.reps < 1:
        ap.error("--reps and --rounds must be at least 1")
    names = ZOO if a.zoo == "all" else [] if a.zoo == "none" else a.zoo.split(",")
    for n in names:
        if n not in ZOO:
            sys.exit(f"error: no zoo model `{n}` (the zoo has {', '.join(ZOO)})")
    t0 = time.time()
    for var, venv in (("PY_JAX", "jax"), ("PY_NT", "nt")):
        default = os.path.expanduser(f"~/venvs/{venv}/bin/python")
        if not os.environ.get(var) and os.path.exists(default):
            os.environ[var] = default
        if not os.path.exists(os.environ.get(var, "")):
            log(f"{var}={os.environ.get(var) or '(not set)'} is not a Python (nor is ~/venvs/{venv}/bin/python): "
                f"the {'JAX' if venv == 'jax' else 'neural-tangents'} peers are skipped"
                + (" (and the zoo's reference is jjt's own f64 kernel)" if venv == "jax" else ""))
            os.environ.pop(var, None)
    run(["cargo", "build", "--release", "-q", "-p", "jjt-cli"], timeout=3600)
    jjt = os.path.join(ROOT, "target", "release", "jjt")
    rows = []
    if a.only_zoo:
        a.skip_mlp = True
    seed = None if a.only_zoo else jjt_bench(jjt, [os.path.join(ROOT, "examples/models/seed.jjt"), "--wrt", "x", "--reps", "1000"])
    py_jax = os.environ.get("PY_JAX")
    if seed is None:
        pass
    elif py_jax and os.path.exists(py_jax) and not os.path.exists(os.path.join(a.peers, "seed_jax.py")):
        print(f"no peer scripts in {a.peers} (--peers DIR): seed peer skipped", file=sys.stderr)
    elif py_jax and os.path.exists(py_jax):
        out = run([py_jax, os.path.join(a.peers, "seed_jax.py")])
        steady = float(re.search(r"^jit_indirect\s+([0-9.]+) ms", out, re.M).group(1))
        first = float(re.search(r"^jit_indirect_first_call\s+([0-9.]+) ms", out, re.M).group(1))
        rows.append(("seed", "JAX jit indirect", seed["median_ms"], steady, seed["first_call_ms"], first))
    else:
        print("PY_JAX not set: seed peer skipped", file=sys.stderr)

    if a.seed_large:
        big = jjt_bench(jjt, [os.path.join(ROOT, "examples/models/seed_large.jjt"), "--wrt", "x", "--reps", "20"])
        if py_jax and os.path.exists(py_jax) and os.path.exists(os.path.join(a.peers, "seed_large_jax.py")):
            out = run([py_jax, os.path.join(a.peers, "seed_large_jax.py"), "--variant", "jit_indirect_constA", "--reps", "10"])
            d = [json.loads(l[5:]) for l in out.splitlines() if l.startswith("JSON:") and "indirect" in l][-1]
            rows.append(("seedlarge", "JAX jit indirect (A constant)", big["median_ms"], d["median_ms"], big["first_call_ms"], d["first_ms"]))
        print(f"seed-large: jjt peak RSS {big['peak_rss_mb']} MB", file=sys.stderr)

    if not a.skip_mlp:
        params = "w0,b0,w1,b1,w2,b2"
        model = [os.path.join(ROOT, "examples/models/mlp.jjt"), "--wrt", params, "--shared", params,
                 "--batch", "32,32", "--reps", "5"]
        py_nt = os.environ.get("PY_NT")
        have_nt = py_nt and os.path.exists(py_nt) and os.path.exists(os.path.join(a.peers, "nt_mlp_ntk.py"))
        if py_nt and os.path.exists(py_nt) and not have_nt:
            print(f"no peer scripts in {a.peers} (--peers DIR): mlp peers skipped", file=sys.stderr)
        # jjt (auto) and nt SD in --rounds interleaved rounds, as the zoo's models: one run of a few
        # milliseconds lands in whichever phase of the shared machine's speed it meets.
        jjt_rounds, sd_rounds = [], []
        for _ in range(a.rounds):
            jjt_rounds.append(jjt_bench(jjt, model))
            if have_nt:
                out = run([py_nt, os.path.join(a.peers, "nt_mlp_ntk.py"), "--variant", "SD:full:vmap0", "--reps", "5"])
                sd_rounds.append([json.loads(l[5:]) for l in out.splitlines() if l.startswith("JSON:")][-1])
        mlp = over_rounds(jjt_rounds, "first_call_ms")
        mlp_ntvp = jjt_bench(jjt, model + ["--strategy", "ntvp"])
        if have_nt:
            out = run([py_nt, os.path.join(a.peers, "nt_mlp_ntk.py"), "--variant", "NTVP:full:vmap0", "--reps", "5"])
            ntvp = [json.loads(l[5:]) for l in out.splitlines() if l.startswith("JSON:")][-1]
            for v, d in (("NTVP:full:vmap0", ntvp), ("SD:full:vmap0", over_rounds(sd_rounds, "first_ms"))):
                rows.append(("mlp", f"neural-tangents {v}", mlp["median_ms"], d["median_ms"], mlp["first_call_ms"], d["first_ms"]))
                if v.startswith("NTVP"):
                    rows.append(("mlp-ntvp", f"neural-tangents {v}", mlp_ntvp["median_ms"], d["median_ms"],
                                 mlp_ntvp["first_call_ms"], d["first_ms"]))
        elif not py_nt or not os.path.exists(py_nt):
            print("PY_NT not set: neural-tangents peers skipped", file=sys.stderr)
        rows.append(("mlp", "(jjt alone)", mlp["median_ms"], float("nan"), mlp["first_call_ms"], float("nan")))

    if rows:
        print(f"{'workload':8} {'peer':34} {'jjt ms':>10} {'peer ms':>10} {'ratio':>7} {'jjt 1st':>9} {'peer 1st':>9} {'ratio':>7}")
    for w, p, js, ps, jf, pf in rows:
        print(f"{w:8} {p:34} {js:10.4f} {ps:10.4f} {js / ps:7.3f} {jf:9.1f} {pf:9.1f} {jf / pf:7.3f}")
    for w, p, js, ps, jf, pf in rows:
        print("JSON:" + json.dumps({"workload": w, "peer": p, "jjt_median_ms": js, "peer_median_ms": ps,
                                    "jjt_first_ms": jf, "peer_first_ms": pf}))
    if names:
        zoo_table(zoo(a, jjt, os.environ.get("PY_JAX"), os.environ.get("PY_NT"), names))
    log(f"benches/compare took {time.time() - t0:.0f} s")


# ------------------------------------------------------------------------------------------------
# The model zoo (benches/models): jjt's three strategies and the peers on each model, one run.

ZOO = ["mlp", "transformer", "deep", "mixer", "cnn", "embed"]
STRATEGIES = ["auto", "ntvp", "jc"]
NT_VARIANTS = ["SD", "NTVP", "JC"]


def read_npy(path):
    """A little-endian f32/f64 .npy file as (shape, flat list), stdlib only (C order)."""
    with open(path, "rb") as fh:
        if fh.read(6) != b"\x93NUMPY":
            raise ValueError(f"{path} is not a .npy file")
        major = fh.read(2)[0]
        hlen = int.from_bytes(fh.read(2 if major == 1 else 4), "little")
        header = ast.literal_eval(fh.read(hlen).decode("latin1"))
        code = {"<f4": "f", "<f8": "d"}[header["descr"]]
        if header["fortran_order"]:
            raise ValueError(f"{path}: Fortran order")
        data = array.array(code)
        data.frombytes(fh.read())
    return tuple(header["shape"]), data


def rel_err_files(path, ref):
    """max |K - K_ref| / max |K_ref|."""
    shape, k = read_npy(path)
    rshape, r = ref
    if shape != rshape:
        raise ValueError(f"{path} has shape {shape}, the reference {rshape}")
    return max(abs(a - b) for a, b in zip(k, r)) / max(abs(b) for b in r)


def peer_lines(out):
    return [json.loads(l[5:]) for l in out.splitlines() if l.startswith("JSON:")]


def peer_run(cmd, name, variants):
    """A peer script's records, or one failed record per variant when its process dies (the
    system's out-of-memory killer ends neural-tangents SD on the embedding model on a 24 GB
    host before JAX can report it)."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if p.returncode == 0:
        return peer_lines(p.stdout)
    why = (f"killed by signal {-p.returncode} (out of memory?)" if p.returncode < 0
           else f"exit status {p.returncode}")
    log(f"{name}: {' '.join(os.path.basename(c) for c in cmd[1:3])} {why}: {p.stderr.strip()[-300:]}")
    return [{"status": f"FAILED: {why}", "variant": v} for v in variants]


def over_rounds(rs, first):
    """The last round's record with the median over rounds of the steady medians and of the first
    calls (key `first`), and the rounds' medians."""
    r = dict(rs[-1])
    r["median_ms"] = median([x["median_ms"] for x in rs])
    r[first] = median([x[first] for x in rs])
    r["round_medians_ms"] = [x["median_ms"] for x in rs]
    return r


def zoo(a, jjt, py_jax, py_nt, names):
    """Returns one record per model: {"model", "jjt": {strategy: bench}, "peers": {name: record}, "ref"}."""
    py_np = py_jax or py_nt
    if not py_np:
        sys.exit("error: the zoo needs a Python with NumPy to write its data (set PY_JAX or PY_NT)")
    data = os.path.join(ROOT, "target", "zoo")
    run([py_np, os.path.join(ROOT, "benches", "models", "gen.py"), "--out", data, *names])
    records = []
    for name in names:
        d = os.path.join(data, name)
        with open(os.path.join(d, "meta.json")) as fh:
            meta = json.load(fh)
        ref_path = os.path.join(d, "K_ref.npy")
        side = meta.get("per_side", ["x"])[0]
        rec = {"model": name, "jjt": {}, "peers": {}, "n_params": meta["n_params"], "batch": meta["batch"]}
        if py_jax:
            gen_py = os.path.join(ROOT, "benches", "models", "gen.py")
            if not os.path.exists(ref_path) or os.path.getmtime(ref_path) < os.path.getmtime(gen_py):
                log(run([py_jax, os.path.join(ROOT, "benches", "peers", "zoo_jax.py"), "--ref", name]).strip())
            rec["ref"] = "JAX x64 dense Jacobians"
        else:
            # No JAX: jjt's own f64 kernel stands in for the reference (not an independent one),
            # in a file of its own so that it never passes for the JAX reference later.
            ref_path = os.path.join(d, "K_ref_jjt_f64.npy")
            args = [jjt, "kernel", meta["model"], "--f64", "--wrt", ",".join(meta["params"]), "--shared",
                    ",".join(f"{n}={d}/{n}.npy" for n in meta["params"]), "--x1", f"{side}={d}/x1.npy",
                    "--x2", f"{side}={d}/x2.npy", "--quiet", "-o", ref_path]
            run(args)
            rec["ref"] = "jjt --f64 (JAX missing)"
        ref = read_npy(ref_path)
        base = [meta["model"], "--wrt", ",".join(meta["params"]),
                "--shared", ",".join(f"{n}={d}/{n}.npy" for n in meta["params"]),
                "--x1", f"{side}={d}/x1.npy", "--x2", f"{side}={d}/x2.npy", "--reps", str(a.reps)]
        # The strategies in interleaved rounds (auto, ntvp, jc, nt SD, auto, ...), each a separate
        # process: the machine's speed drifts over seconds (phases up to 1.6x slower), so the
        # peer the acceptance ratios are taken against, nt SD, is measured in every round too
        # rather than once in whichever phase it falls. Reported: the median over rounds of
        # each round's median (and of the first calls).
        rounds = {s: [] for s in STRATEGIES}
        sd_rounds = []
        for _ in range(a.rounds):
            for s in STRATEGIES:
                out = os.path.join(d, f"K_jjt_{s}.npy")
                rounds[s].append(jjt_bench(jjt, base + ["--strategy", s, "-o", out]))
            if py_nt:
                sd_rounds += peer_run([py_nt, os.path.join(ROOT, "benches", "peers", "zoo_nt.py"), name,
                                       "--variant", "SD", "--reps", str(a.reps)], name, ["SD"])
        if sd_rounds:
            ok = [p for p in sd_rounds if p.get("status") == "ok"]
            p = over_rounds(ok, "first_ms") if ok else dict(sd_rounds[-1])
            rec["peers"]["nt SD"] = p
            log(out_line(name, "nt SD", p) + (f" (rounds: {', '.join(f'{x:.2f}' for x in p['round_medians_ms'])})"
                                               if ok else ""))
        for s in STRATEGIES:
            r = over_rounds(rounds[s], "first_call_ms")
            r["rel_err"] = rel_err_files(os.path.join(d, f"K_jjt_{s}.npy"), ref)
            rec["jjt"][s] = r
            log(f"{name}: jjt {s}: steady {r['median_ms']:.2f} ms (rounds: "
                f"{', '.join(f'{x:.2f}' for x in r['round_medians_ms'])}), first {r['first_call_ms']:.1f} ms, "
                f"rel. error {r['rel_err']:.1e}")
        # Which strategy auto picks, and its slowest large contraction (the acceptance: none of
        # at least 10^7 multiply-adds below 20 GFLOP/s).
        pick, worst = jjt_profile(jjt, base[:-2] + ["--reps", "3", "--strategy", "auto"])
        rec["pick"], rec["slowest"] = pick, worst
        if worst:
            log(f"{name}: jjt auto picks {pick}; slowest contraction of >= 1e7 multiply-adds: {worst[0]:.1f} GFLOP/s "
                f"({worst[1]:.2e} multiply-adds) {worst[2]}")
        if py_jax:
            # The same model exported from JAX (benches/peers/zoo_export.py) and imported by jjt;
            # the export's per-example argument is `x` whatever the model file calls it.
            run([py_jax, os.path.join(ROOT, "benches", "peers", "zoo_export.py"), name])
            out = os.path.join(d, "K_jjt_imported.npy")
            r = jjt_bench(jjt, [os.path.join(d, f"{name}.mlir"), "--wrt", "params.*", "--shared",
                                os.path.join(d, "params.npz"), "--x1", f"x={d}/x1.npy",
                                "--x2", f"x={d}/x2.npy", "--reps", str(a.reps), "-o", out])
            r["rel_err"] = rel_err_files(out, ref)
            rec["jjt"]["imported"] = r
            log(f"{name}: jjt on the JAX export: steady {r['median_ms']:.2f} ms, first {r['first_call_ms']:.1f} ms, "
                f"rel. error {r['rel_err']:.1e}")
        if py_nt:
            others = [v for v in NT_VARIANTS if v != "SD"]
            for p in peer_run([py_nt, os.path.join(ROOT, "benches", "peers", "zoo_nt.py"), name, "--variant",
                               ",".join(others), "--reps", str(a.reps)], name, others):
                rec["peers"][f"nt {p['variant']}"] = p
                log(out_line(name, f"nt {p['variant']}", p))
        if py_jax:
            out = run([py_jax, os.path.join(ROOT, "benches", "peers", "zoo_jax.py"), name, "--reps", str(a.reps)])
            for p in peer_lines(out):
                rec["peers"]["jax jit-ntvp"] = p
                log(out_line(name, "jax jit-ntvp", p))
        records.append(rec)
    return records


def out_line(name, peer, p):
    if p.get("status") != "ok":
        return f"{name}: {peer}: {p.get('status')}"
    return f"{name}: {peer}: steady {p['median_ms']:.2f} ms, first {p['first_ms']:.1f} ms, rel. error {p['rel_err']:.1e}"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) and v == v else "-"


def zoo_table(records):
    peers = [f"nt {v}" for v in NT_VARIANTS] + ["jax jit-ntvp"]

    def pk(rec, peer, key):
        p = rec["peers"].get(peer)
        return p[key] if p and p.get("status") == "ok" else float("nan")

    print("\nModel zoo, steady median ms / first call ms (f32, full K w.r.t. every parameter):")
    cols = [f"jjt {s}" for s in STRATEGIES + ["imported"]] + peers
    print(f"{'model':12}" + "".join(f"{c:>20}" for c in cols))
    for rec in records:
        cells = []
        for s in STRATEGIES + ["imported"]:
            r = rec["jjt"].get(s)
            cells.append(f"{r['median_ms']:.2f} / {r['first_call_ms']:.0f}" if r else "-")
        cells += [f"{fmt(pk(rec, p, 'median_ms'), '.2f')} / {fmt(pk(rec, p, 'first_ms'), '.0f')}" for p in peers]
        print(f"{rec['model']:12}" + "".join(f"{c:>20}" for c in cells))
    print("\nRatios (below 1: jjt faster; SD = neural-tangents STRUCTURED_DERIVATIVES; best = the faster of jjt's ntvp\n"
          "and jc, the strategies auto chooses from) and rel. error of K against the float64 reference:")
    hdr = ["auto/SD", "auto/SD 1st", "auto/best", "best", "auto picks", "min GF/s", "imp/auto", "err auto",
           "err ntvp", "err jc", "err imp", "err nt SD", "err jax"]
    print(f"{'model':12}" + "".join(f"{c:>14}" for c in hdr))
    for rec in records:
        if rec["ref"] != "JAX x64 dense Jacobians":
            print(f"({rec['model']}: the reference is {rec['ref']})")
    for rec in records:
        j = rec["jjt"]
        best = min(("ntvp", "jc"), key=lambda s: j[s]["median_ms"])  # the strategies auto chooses from
        sd_s, sd_f = pk(rec, "nt SD", "median_ms"), pk(rec, "nt SD", "first_ms")
        imp = j.get("imported", {"median_ms": float("nan"), "rel_err": float("nan")})
        cells = [fmt(j["auto"]["median_ms"] / sd_s, ".3f"), fmt(j["auto"]["first_call_ms"] / sd_f, ".3f"),
                 fmt(j["auto"]["median_ms"] / j[best]["median_ms"], ".3f"), best, rec.get("pick") or "-",
                 fmt(rec["slowest"][0] if rec.get("slowest") else float("nan"), ".1f"),
                 fmt(imp["median_ms"] / j["auto"]["median_ms"], ".3f"),
                 *(fmt(j[s]["rel_err"], ".1e") for s in STRATEGIES), fmt(imp["rel_err"], ".1e"),
                 fmt(pk(rec, "nt SD", "rel_err"), ".1e"), fmt(pk(rec, "jax jit-ntvp", "rel_err"), ".1e")]
        print(f"{rec['model']:12}" + "".join(f"{c:>14}" for c in cells))
    for rec in records:
        print("JSON:" + json.dumps({"zoo": rec["model"], "reference": rec["ref"], "auto_picks": rec.get("pick"),
                                    "slowest_large_contraction": rec.get("slowest"), "jjt": {
            s: {k: r[k] for k in ("median_ms", "first_call_ms", "rel_err", "peak_rss_mb")} for s, r in rec["jjt"].items()},
            "peers": {p: {k: r.get(k) for k in ("status", "median_ms", "first_ms", "rel_err")}
                      for p, r in rec["peers"].items()}}))


if __name__ == "__main__":
    main()
