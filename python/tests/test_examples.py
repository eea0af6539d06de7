"""The Python examples run and reach their results: each runs as a script, in a subprocess,
and its printed numbers are checked against what a correct kernel achieves.

* kernel_regression.py: the NTK's test accuracy on digits is about 0.98; a linear kernel
  gets 0.93 and a wrong or garbage kernel far less, so the bar is 0.96. The
  empirical_ntk_fn cross-check must agree to f32 precision.
* gauss_newton.py: ten Levenberg–Marquardt steps take the loss from about 70 to round-off
  (~1e-29). A wrong J Jᵀ makes the function-space step a poor direction (at best a
  preconditioned gradient step), which cannot gain ten orders of magnitude in ten steps.
"""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples", "python")
TIMEOUT = 300  # seconds; each example takes a few seconds on 2 cores

FLOAT = r"([0-9.]+(?:e[+-]?[0-9]+)?)"


def run_example(name):
    pytest.importorskip("jax")
    pytest.importorskip("scipy")
    proc = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, name)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=ROOT,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def number(pattern, text):
    m = re.search(pattern, text)
    assert m, f"no match for {pattern!r} in:\n{text}"
    return float(m.group(1))


def test_kernel_regression():
    pytest.importorskip("sklearn")
    out = run_example("kernel_regression.py")
    ntk = number(r"NTK test accuracy: " + FLOAT, out)
    rbf = number(r"RBF test accuracy: " + FLOAT, out)
    agree = number(r"relative difference " + FLOAT, out)
    assert ntk > 0.96, out
    assert rbf > 0.96, out
    assert agree < 1e-4, out


def test_gauss_newton():
    out = run_example("gauss_newton.py")
    losses = [float(v) for v in re.findall(r"^step +\d+ +loss " + FLOAT, out, re.M)]
    assert len(losses) == 11, out  # step 0 and ten steps
    initial = number(r"initial loss " + FLOAT, out)
    final = number(r"final loss " + FLOAT, out)
    assert initial == losses[0]
    assert final == min(losses), out  # the loss kept is the best seen
    assert final < initial * 1e-10, out
    # Orders of magnitude within the first few steps already, not only at the end.
    assert losses[5] < initial * 1e-4, out
