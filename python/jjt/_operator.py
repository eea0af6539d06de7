"""K as a SciPy ``LinearOperator``, for conjugate gradients in Gauss–Newton and kernel
regression."""

from __future__ import annotations

from typing import Any

import numpy as np


def linear_operator(kernel: Any, x1: Any = None, x2: Any = None, shared: Any = None):
    """K(x1, x2) as a ``scipy.sparse.linalg.LinearOperator`` of shape (B1·O, B2·O), row-major
    (O: the output's size; without a batch axis, (O, O)). ``matvec`` runs ``kernel.apply``,
    which never builds J; ``rmatvec`` applies K(x2, x1) (the sides swapped), which is Kᵀ.
    Works for ``Kernel`` and ``JaxKernel`` in mode 'full'."""
    try:
        from scipy.sparse.linalg import LinearOperator
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("linear_operator needs SciPy: pip install scipy") from e
    if kernel.mode != "full":
        raise ValueError(f"linear_operator needs a kernel of mode 'full', this one is '{kernel.mode}'")
    x2 = x1 if x2 is None else x2
    v_shape, out_shape, dtype = kernel._apply_info(x1, x2, shared)
    rows, cols = int(np.prod(out_shape)), int(np.prod(v_shape))
    dtype = np.dtype(dtype)

    def matvec(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=dtype).reshape(v_shape)
        return np.asarray(kernel.apply(v, x1, x2, shared)).reshape(rows)

    def rmatvec(u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=dtype).reshape(out_shape)
        return np.asarray(kernel.apply(u, x2, x1, shared)).reshape(cols)

    def matmat(m: np.ndarray) -> np.ndarray:
        return np.stack([matvec(m[:, j]) for j in range(m.shape[1])], axis=1)

    return LinearOperator(
        (rows, cols), matvec=matvec, rmatvec=rmatvec, matmat=matmat, dtype=dtype
    )

