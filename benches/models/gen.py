#!/usr/bin/env python3
"""The model zoo: writes benches/models/NAME.jjt and, for each model, seeded f32 parameters and
per-side data as .npy files in target/zoo/NAME/ (not committed), plus meta.json (the kernel's
inputs and batch). NumPy only.

Every model is one example's function: the per-side input is `x` (a batch of examples is given
to jjt as x1.npy / x2.npy with a leading batch axis), every other input is a parameter, shared
between the two sides and differentiated (K is the empirical NTK w.r.t. all parameters).

The same models are written here a second time as Python functions `forward(params, x, xp)`
over an array namespace `xp` (numpy or jax.numpy), used by the peers in benches/peers/ and for
the float64 reference. `benches/compare --zoo ...` checks that both spellings agree: jjt's K is
compared with the float64 reference computed from the Python spelling.

Usage:  benches/models/gen.py [--out DIR] [--check] [NAME ...]
  --check  only verify that the committed .jjt files are what this script writes (exit 1 if not)
"""
import argparse, json, os, sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GELU_C = 0.7978845608028654  # sqrt(2 / pi)


# ---------------------------------------------------------------------------------------------
# Python spellings (xp = numpy or jax.numpy; x is one example, unbatched)

def _layernorm(h, g, b, xp):
    mu = xp.mean(h, axis=-1, keepdims=True)
    c = h - mu
    var = xp.mean(c * c, axis=-1, keepdims=True)
    return c * (1.0 / xp.sqrt(var + 1e-5)) * g + b


def _gelu(z, xp):
    return 0.5 * z * (1.0 + xp.tanh(GELU_C * (z + 0.044715 * z * z * z)))


def mlp_forward(p, x, xp):
    h = xp.tanh(x @ p["w0"] + p["b0"])
    h = xp.tanh(h @ p["w1"] + p["b1"])
    return h @ p["w2"] + p["b2"]


def transformer_forward(p, x, xp):
    h = _layernorm(x, p["g1"], p["e1"], xp)
    q, k, v = h @ p["wq"], h @ p["wk"], h @ p["wv"]
    s = (q @ k.T) * float(1.0 / np.sqrt(q.shape[-1]))
    e = xp.exp(s - xp.max(s, axis=-1, keepdims=True))
    a = e / xp.sum(e, axis=-1, keepdims=True)
    x = x + (a @ v) @ p["wo"]
    h = _layernorm(x, p["g2"], p["e2"], xp)
    x = x + xp.tanh(h @ p["w1"] + p["c1"]) @ p["w2"] + p["c2"]
    return xp.mean(x, axis=0) @ p["wh"] + p["bh"]


DEEP_LAYERS = 8


def deep_forward(p, x, xp):
    h = x
    for i in range(DEEP_LAYERS):
        h = xp.maximum(h @ p[f"w{i}"] + p[f"b{i}"], 0.0)
    return h @ p["wh"] + p["bh"]


def mixer_forward(p, x, xp):
    h = x @ p["wp"] + p["bp"]  # [T, C]
    u = _layernorm(h, p["g1"], p["e1"], xp)
    z = _gelu(u.T @ p["wt1"] + p["bt1"], xp)  # token mixing: contract the token axis, [C, Dt]
    h = h + (z @ p["wt2"]).T + p["bt2"][:, None]  # [T, C]
    u = _layernorm(h, p["g2"], p["e2"], xp)
    h = h + _gelu(u @ p["wc1"] + p["bc1"], xp) @ p["wc2"] + p["bc2"]
    return xp.mean(h, axis=0) @ p["wh"] + p["bh"]


def _conv_same(h, k, xp):
    """A 3x3 convolution, stride 1, SAME padding, of one HWC example with an HWIO kernel: JAX's
    lax.conv_general_dilated under jax.numpy (what neural-tangents has rules for), im2col with
    NumPy."""
    if xp is np:
        kh, kw = k.shape[0], k.shape[1]
        p = np.pad(h, ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
        rows, cols = h.shape[0], h.shape[1]
        taps = np.stack([p[i:i + rows, j:j + cols, :] for i in range(kh) for j in range(kw)], axis=2)
        return np.einsum("hwtc,tco->hwo", taps, k.reshape(kh * kw, k.shape[2], k.shape[3]))
    import jax
    y = jax.lax.conv_general_dilated(h[None], k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y[0]


def _avg_pool2(h, xp):
    r, c, ch = h.shape
    return xp.mean(h.reshape(r // 2, 2, c // 2, 2, ch), axis=(1, 3))


def cnn_forward(p, x, xp):
    h = _avg_pool2(xp.maximum(_conv_same(x, p["k1"], xp) + p["c1"], 0.0), xp)
    h = _avg_pool2(xp.maximum(_conv_same(h, p["k2"], xp) + p["c2"], 0.0), xp)
    h = xp.maximum(_conv_same(h, p["k3"], xp) + p["c3"], 0.0)
    return xp.mean(h, axis=(0, 1)) @ p["w4"] + p["b4"]


def embed_forward(p, tok, xp):
    e = xp.mean(p["emb"][tok], axis=0)  # rows of the table by token id, averaged over tokens
    return xp.tanh(e @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]


# ---------------------------------------------------------------------------------------------
# jjt spellings

def _jjt_layernorm(out, h, g, b, rows):
    return [
        f"  {out}_mu = reshape(mean({h}, axes=[1]), shape=[{rows},1])",
        f"  {out}_c = {h} - {out}_mu",
        f"  {out}_var = reshape(mean({out}_c * {out}_c, axes=[1]), shape=[{rows},1])",
        f"  {out} = {out}_c * rsqrt({out}_var + 1e-5) * {g} + {b}",
    ]


def _jjt_gelu(out, z):
    return [f"  {out} = 0.5 * {z} * (1.0 + tanh({GELU_C!r} * ({z} + 0.044715 * {z} * {z} * {z})))"]


def _sig(name, params, x_shape, outputs, side="x", side_dtype="f32"):
    ins = [f"{side}: {side_dtype}[{','.join(map(str, x_shape))}]"]
    ins += [f"{n}: f32[{','.join(map(str, s))}]" for n, s in params]
    return f"func {name}({', '.join(ins)}) -> f32[{outputs}] {{"


def mlp_jjt(m):
    # The same text as examples/models/mlp.jjt.
    return "\n".join([
        "# A 784-512-512-10 MLP with tanh, in the convention z = h @ W + b (W is [fan_in, fan_out]).",
        "# The parameters are inputs, so a kernel can share them between both sides and differentiate",
        "# with respect to them: the empirical NTK.",
        _sig("mlp", m["params"], m["x"], m["outputs"]),
        "  h0 = tanh(x @ w0 + b0)",
        "  h1 = tanh(h0 @ w1 + b1)",
        "  return h1 @ w2 + b2",
        "}",
    ])


def transformer_jjt(m):
    t, d = m["x"]
    return "\n".join([
        f"# A transformer block on {t} tokens of width {d}: pre-layernorm, single-head softmax attention,",
        f"# a tanh MLP of width {m['mlp']}, residuals, the mean over tokens and a linear head to {m['outputs']} outputs.",
        "# Rows are tokens; z = h @ W + b. Written by benches/models/gen.py (see transformer_forward there).",
        _sig("transformer", m["params"], m["x"], m["outputs"]),
        *_jjt_layernorm("h", "x", "g1", "e1", t),
        "  q = h @ wq",
        "  k = h @ wk",
        "  v = h @ wv",
        f"  s = (q @ transpose(k, perm=[1,0])) * {float(1.0 / np.sqrt(d))!r}",
        f"  e = exp(s - reshape(max(s, axes=[1]), shape=[{t},1]))",
        f"  a = e / reshape(sum(e, axes=[1]), shape=[{t},1])",
        "  r = x + (a @ v) @ wo",
        *_jjt_layernorm("u", "r", "g2", "e2", t),
        "  y = r + tanh(u @ w1 + c1) @ w2 + c2",
        "  return mean(y, axes=[0]) @ wh + bh",
        "}",
    ])


def deep_jjt(m):
    lines = [
        f"# A deep narrow MLP: {DEEP_LAYERS} relu layers of width {m['width']} on a {m['x'][0]}-vector, then a linear head to",
        f"# {m['outputs']} outputs. z = h @ W + b. Written by benches/models/gen.py (see deep_forward there).",
        _sig("deep", m["params"], m["x"], m["outputs"]),
    ]
    prev = "x"
    for i in range(DEEP_LAYERS):
        lines.append(f"  h{i} = relu({prev} @ w{i} + b{i})")
        prev = f"h{i}"
    lines += [f"  return {prev} @ wh + bh", "}"]
    return "\n".join(lines)


def mixer_jjt(m):
    t, _ = m["x"]
    c = m["channels"]
    return "\n".join([
        f"# An MLP-Mixer block on {t} patches: a linear patch embedding to {c} channels, a token-mixing MLP",
        "# (contracting the token axis, not the trailing one), a channel MLP, each after a layernorm and",
        "# with a residual, gelu (tanh form), the mean over tokens and a linear head.",
        "# Written by benches/models/gen.py (see mixer_forward there).",
        _sig("mixer", m["params"], m["x"], m["outputs"]),
        "  h = x @ wp + bp",
        *_jjt_layernorm("u", "h", "g1", "e1", t),
        "  z0 = dot_general(u, wt1, contract=[[0],[0]]) + bt1",
        *_jjt_gelu("z", "z0"),
        f"  r = h + dot_general(wt2, z, contract=[[0],[1]]) + reshape(bt2, shape=[{t},1])",
        *_jjt_layernorm("n", "r", "g2", "e2", t),
        "  y0 = n @ wc1 + bc1",
        *_jjt_gelu("y", "y0"),
        "  o = r + y @ wc2 + bc2",
        "  return mean(o, axes=[0]) @ wh + bh",
        "}",
    ])


def cnn_jjt(m):
    hh, ww, c = m["x"]
    conv = 'dims="NHWC,HWIO,NHWC", padding="SAME"'
    pool = 'kind="sum", window=[1,2,2,1], strides=[1,2,2,1]'
    return "\n".join([
        f"# A CNN on {hh}x{ww}x{c} images (HWC): three 3x3 convolutions (stride 1, SAME padding, HWIO kernels)",
        "# with bias and relu, the first two followed by 2x2 average pooling (the window sum / 4), then the",
        f"# mean over the spatial axes and a linear head to {m['outputs']} outputs.",
        "# Written by benches/models/gen.py (see cnn_forward there).",
        _sig("cnn", m["params"], m["x"], m["outputs"]),
        f"  h0 = reshape(x, shape=[1,{hh},{ww},{c}])",
        f"  z1 = conv(h0, k1, {conv}) + c1",
        f"  p1 = reduce_window(relu(z1), {pool}) * 0.25",
        f"  z2 = conv(p1, k2, {conv}) + c2",
        f"  p2 = reduce_window(relu(z2), {pool}) * 0.25",
        f"  z3 = conv(p2, k3, {conv}) + c3",
        "  h = reshape(mean(relu(z3), axes=[0,1,2]), shape=[64])",
        "  return h @ w4 + b4",
        "}",
    ])


def embed_jjt(m):
    (t,) = m["x"]
    v, w = m["vocab"], m["width"]
    return "\n".join([
        f"# An embedding model: {t} token ids index the rows of a {v}x{w} table, averaged over tokens, then",
        f"# tanh(e @ w1 + b1) @ w2 + b2 to {m['outputs']} outputs. Written by benches/models/gen.py (see embed_forward).",
        _sig("embed", m["params"], m["x"], m["outputs"], side="tok", side_dtype="i32"),
        "  e = mean(gather(emb, tok, axis=0), axes=[0])",
        "  return tanh(e @ w1 + b1) @ w2 + b2",
        "}",
    ])


# ---------------------------------------------------------------------------------------------
# The zoo: parameter shapes (in signature order), how each is initialised, batch sizes

def _linear(n_in, n_out, w, b):
    return [(w, (n_in, n_out)), (b, (n_out,))]


def _models():
    ms = {}
    ms["mlp"] = dict(x=(784,), outputs=10, batch=(32, 32), seed=1, forward=mlp_forward, jjt=mlp_jjt,
                     params=_linear(784, 512, "w0", "b0") + _linear(512, 512, "w1", "b1")
                     + _linear(512, 10, "w2", "b2"))
    t, d, f, o = 32, 128, 512, 10
    ms["transformer"] = dict(
        x=(t, d), outputs=o, mlp=f, batch=(16, 16), seed=2, forward=transformer_forward, jjt=transformer_jjt,
        params=[("g1", (d,)), ("e1", (d,)), ("wq", (d, d)), ("wk", (d, d)), ("wv", (d, d)), ("wo", (d, d)),
                ("g2", (d,)), ("e2", (d,))] + _linear(d, f, "w1", "c1") + _linear(f, d, "w2", "c2")
        + _linear(d, o, "wh", "bh"))
    w = 64
    deep = []
    for i in range(DEEP_LAYERS):
        deep += _linear(w, w, f"w{i}", f"b{i}")
    ms["deep"] = dict(x=(w,), width=w, outputs=10, batch=(32, 32), seed=3, forward=deep_forward, jjt=deep_jjt,
                      params=deep + _linear(w, 10, "wh", "bh"))
    t, pd, c, dt, dc = 32, 48, 64, 64, 256
    ms["mixer"] = dict(
        x=(t, pd), channels=c, outputs=10, batch=(16, 16), seed=4, forward=mixer_forward, jjt=mixer_jjt,
        params=_linear(pd, c, "wp", "bp") + [("g1", (c,)), ("e1", (c,))] + _linear(t, dt, "wt1", "bt1")
        + _linear(dt, t, "wt2", "bt2") + [("g2", (c,)), ("e2", (c,))] + _linear(c, dc, "wc1", "bc1")
        + _linear(dc, c, "wc2", "bc2") + _linear(c, 10, "wh", "bh"))
    ms["cnn"] = dict(
        x=(32, 32, 3), outputs=10, batch=(16, 16), seed=5, forward=cnn_forward, jjt=cnn_jjt,
        params=[("k1", (3, 3, 3, 32)), ("c1", (32,)), ("k2", (3, 3, 32, 64)), ("c2", (64,)),
                ("k3", (3, 3, 64, 64)), ("c3", (64,))] + _linear(64, 10, "w4", "b4"))
    ms["embed"] = dict(
        x=(16,), side="tok", vocab=1000, width=64, outputs=10, batch=(32, 32), seed=6,
        forward=embed_forward, jjt=embed_jjt,
        params=[("emb", (1000, 64))] + _linear(64, 64, "w1", "b1") + _linear(64, 10, "w2", "b2"))
    return ms


MODELS = _models()


def data(name):
    """(params dict in signature order, x1, x2), all f32, from the model's NumPy seed.
    Weights (rank 2, and rank-4 HWIO kernels) ~ N(0, 1/fan_in); layernorm gains 1 + 0.1 N(0, 1); every other vector 0.1 N(0, 1);
    the examples x ~ N(0, 1), or token ids uniform in [0, vocab) (int32) for the embedding model."""
    m = MODELS[name]
    rng = np.random.default_rng(m["seed"])
    p = {}
    for n, s in m["params"]:
        r = rng.standard_normal(s)
        if len(s) == 2:
            v = r / np.sqrt(s[0])
        elif len(s) == 4:  # HWIO convolution kernels: fan_in = H·W·I
            v = r / np.sqrt(s[0] * s[1] * s[2])
        elif n.startswith("g"):
            v = 1.0 + 0.1 * r
        else:
            v = 0.1 * r
        p[n] = v.astype(np.float32)
    b1, b2 = m["batch"]
    if "vocab" in m:  # token ids
        x1 = rng.integers(0, m["vocab"], (b1, *m["x"])).astype(np.int32)
        x2 = rng.integers(0, m["vocab"], (b2, *m["x"])).astype(np.int32)
    else:
        x1 = rng.standard_normal((b1, *m["x"])).astype(np.float32)
        x2 = rng.standard_normal((b2, *m["x"])).astype(np.float32)
    return p, x1, x2


def jjt_text(name):
    return MODELS[name]["jjt"](MODELS[name]) + "\n"


def model_path(name):
    return os.path.join(HERE, f"{name}.jjt")


def meta(name):
    m = MODELS[name]
    return {"name": name, "model": model_path(name), "batch": list(m["batch"]), "per_side": [m.get("side", "x")],
            "params": [n for n, _ in m["params"]], "outputs": m["outputs"],
            "n_params": int(sum(np.prod(s) for _, s in m["params"]))}


def write(name, out):
    with open(model_path(name), "w") as fh:
        fh.write(jjt_text(name))
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    p, x1, x2 = data(name)
    for n, v in p.items():
        np.save(os.path.join(d, f"{n}.npy"), v)
    np.save(os.path.join(d, "x1.npy"), x1)
    np.save(os.path.join(d, "x2.npy"), x2)
    with open(os.path.join(d, "meta.json"), "w") as fh:
        json.dump(meta(name), fh, indent=1)
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"models (default: all of {', '.join(MODELS)})")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "zoo"))
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    names = a.names or list(MODELS)
    for n in names:
        if n not in MODELS:
            sys.exit(f"error: no model `{n}` (the zoo has {', '.join(MODELS)})")
    if a.check:
        bad = [n for n in names if not os.path.exists(model_path(n)) or open(model_path(n)).read() != jjt_text(n)]
        for n in bad:
            print(f"{model_path(n)} differs from what gen.py writes", file=sys.stderr)
        sys.exit(1 if bad else 0)
    for n in names:
        print(f"{n}: {model_path(n)}, data in {write(n, a.out)}")


if __name__ == "__main__":
    main()
