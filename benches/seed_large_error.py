#!/usr/bin/env python3
"""Seed-large accuracy: K of examples/models/seed_large.jjt from `jjt kernel` against an f64
reference computed from the same A (NumPy's legacy stream seeded 1701, which jjt's `uniform`
reproduces, rounded to f32) and the same x1, x2 (seeded). Prints max|K - Kref| / max|Kref|.

Usage: python benches/seed_large_error.py [JJT] [extra `jjt kernel` flags, e.g. --backend interp]
(JJT defaults to target/release/jjt; needs NumPy; writes its .npy files to a temporary directory)."""
import os, subprocess, sys, tempfile
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
jjt = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "jjt")
extra = sys.argv[2:]
N, M = 1_000_000, 32
rng = np.random.default_rng(7)
x1 = rng.random(N, dtype=np.float32)
x2 = rng.random(N, dtype=np.float32)
with tempfile.TemporaryDirectory() as d:
    np.save(f"{d}/x1.npy", x1)
    np.save(f"{d}/x2.npy", x2)
    subprocess.run([jjt, "kernel", os.path.join(ROOT, "examples/models/seed_large.jjt"), "--wrt", "x",
                    "--x1", f"x={d}/x1.npy", "--x2", f"x={d}/x2.npy", "-o", f"{d}/K.npy", *extra], check=True)
    K = np.load(f"{d}/K.npy").astype(np.float64).reshape(M, M)
A = np.random.RandomState(1701).random_sample((M, N)).astype(np.float32)
G, y1, y2 = np.zeros((M, M)), np.zeros(M), np.zeros(M)
for s in range(0, N, 1 << 16):
    a = A[:, s:s + (1 << 16)].astype(np.float64)
    G += a @ a.T
    y1 += a @ x1[s:s + (1 << 16)]
    y2 += a @ x2[s:s + (1 << 16)]
d1, d2 = 0.5 / np.sqrt(y1 / N), 0.5 / np.sqrt(y2 / N)
Kref = d1[:, None] * (G / N ** 2) * d2[None, :]
print(f"seed-large: max|K - Kref| / max|Kref| = {np.abs(K - Kref).max() / np.abs(Kref).max():.3e}")
