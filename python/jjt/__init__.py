"""jjt: a compiler for products of Jacobians.

K = J(p1)·J(p2)ᵀ and v ↦ J(p1)·J(p2)ᵀ·v, compiled to native code without building J — the
empirical neural tangent kernel of a model, the Gauss–Newton matrix of a least-squares fit.

    import jjt
    model = jjt.load("mlp.onnx")                  # or jjt.from_jax(f, params, x), jjt.from_torch(...)
    kernel = model.kernel(wrt="*", mode="trace")  # compiled on first call, per batch sizes
    K = kernel(x1, x2)                            # NumPy in, NumPy out: [B1, B2]

and neural-tangents' interface, for JAX functions:

    ntk_fn = jjt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0)
    K = ntk_fn(x1, x2, params)
"""

from __future__ import annotations

import os
from typing import Any

from . import _jjt
from ._jjt import (
    CompileError,
    InputError,
    JjtError,
    Kernel,
    Model,
    ModelError,
    ShapeError,
    TransformError,
    __version__,
)
from ._jax import JaxKernel, JaxModel, from_jax
from ._nt import NtkImplementation, empirical_ntk_fn
from ._operator import linear_operator
from ._torch import from_torch

__all__ = [
    "CompileError",
    "InputError",
    "JaxKernel",
    "JaxModel",
    "JjtError",
    "Kernel",
    "Model",
    "ModelError",
    "NtkImplementation",
    "ShapeError",
    "TransformError",
    "__version__",
    "empirical_ntk_fn",
    "from_jax",
    "from_torch",
    "linear_operator",
    "load",
]


def load(path: str | os.PathLike[str]) -> Model:
    """Read a model file: jjt text (``.jjt``), StableHLO text (``.mlir``, from ``jax.export``)
    or ONNX (``.onnx``), recognised by content. ONNX weights (initializers of rank ≥ 1) become
    inputs whose default values are the weights: ``model.kernel()`` differentiates with
    respect to them unless told otherwise."""
    return Model.load(os.fspath(path))


def _kernel_linear_operator(self: Kernel, x1: Any = None, x2: Any = None, shared: Any = None):
    return linear_operator(self, x1, x2, shared)


_kernel_linear_operator.__doc__ = linear_operator.__doc__
# Kernel is a native class: the operator (which needs SciPy) is attached from Python.
_jjt.Kernel.linear_operator = _kernel_linear_operator  # type: ignore[attr-defined]
