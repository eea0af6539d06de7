"""JAX functions as jjt models, through ``jax.export`` and its StableHLO text."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._jjt import InputError, Kernel, Model, sanitize
from ._wrap import WrappedModel


def _jax():
    try:
        import jax
        import jax.export  # noqa: F401  (a submodule imported on demand)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("from_jax needs JAX: pip install jax") from e
    return jax


class Exported:
    """A JAX function exported for the shapes and dtypes of ``args``: the jjt model, and the
    jjt input name of each leaf of ``args`` (``None`` for leaves the function does not use,
    which ``jax.export`` drops)."""

    def __init__(self, fn, args: Sequence[Any], arg_names: Sequence[str] | None = None):
        jax = _jax()
        specs = jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct(np.shape(a), _dtype_of(a)), tuple(args)
        )
        exp = jax.export.export(jax.jit(fn))(*specs)
        self.model = Model.from_text(exp.mlir_module(), format="stablehlo", name=_name(fn))
        leaves, self.treedef = jax.tree_util.tree_flatten(tuple(args))
        kept = list(exp.module_kept_var_idx)
        inputs = [i[0] for i in self.model.inputs]
        if len(inputs) != len(kept):
            raise InputError(
                f"the exported module has {len(inputs)} inputs for {len(kept)} arguments kept"
            )
        self.model_names = set(inputs)
        self.names: list[str | None] = [None] * len(leaves)
        for k, i in enumerate(kept):
            self.names[i] = inputs[k]
        # Which top-level argument each leaf belongs to.
        self.arg_of: list[int] = []
        for a, sub in enumerate(args):
            self.arg_of += [a] * len(jax.tree_util.tree_leaves(sub))
        self.n_args = len(args)

    def leaf_names(self, arg: int) -> list[str]:
        """The jjt names of argument ``arg``'s leaves (those the function uses)."""
        return [n for n, a in zip(self.names, self.arg_of) if a == arg and n is not None]

    def bind(self, arg: int, value: Any) -> dict[str, Any]:
        """Argument ``arg``'s value (a pytree of its structure) as a dict from jjt name to leaf."""
        jax = _jax()
        leaves = jax.tree_util.tree_leaves(value)
        names = [n for n, a in zip(self.names, self.arg_of) if a == arg]
        if len(leaves) != len(names):
            raise InputError(
                f"argument {arg}: expected a pytree of {len(names)} arrays like the example, "
                f"got {len(leaves)}"
            )
        return {n: leaf for n, leaf in zip(names, leaves) if n is not None}


def _dtype_of(a: Any):
    d = getattr(a, "dtype", None)
    if d is not None:
        return d
    return np.asarray(a).dtype


def _name(fn) -> str:
    n = getattr(fn, "__name__", "f")
    n = "".join(c if c.isalnum() or c == "_" else "_" for c in n)
    return n if n and not n[0].isdigit() else "f"


class JaxModel(WrappedModel):
    """A JAX function exported for the shapes of its example arguments (``from_jax``).

    Its inputs are named after the function's arguments and the paths of their pytrees
    (``params.l0.w``); ``model.inputs`` lists them."""

    def __init__(self, exported: Exported):
        self._e = exported
        self.model: Model = exported.model

    def eval(self, *args: Any):
        """The function on ``args`` (pytrees shaped like the example arguments), by jjt."""
        named: dict[str, Any] = {}
        for a, v in enumerate(args):
            named.update(self._e.bind(a, v))
        return self.model.eval(named)

    def kernel(
        self,
        wrt: str | Sequence[str] | None = None,
        shared: str | Sequence[str] | None = None,
        mode: str = "full",
        examples: str = "all",
        strategy: str = "auto",
        dtype: Any = None,
        output: int | str | None = None,
    ) -> "JaxKernel":
        """A compiled kernel; by default J is taken with respect to the first argument's
        leaves, which are also the shared inputs (the parameters), and the other arguments
        are per-side. See ``Model.kernel`` for the rest."""
        first = self._e.leaf_names(0)
        if not first and (wrt is None or shared is None):
            raise InputError("the first argument has no array the function uses: give wrt= and shared=")
        # The example arguments are one example, whatever their leading axis: the `[1, …]`
        # rule of exports of a batch of one does not apply.
        k = self.model.kernel(
            wrt=first if wrt is None else wrt,
            shared=first if shared is None else shared,
            mode=mode,
            examples=examples,
            strategy=strategy,
            dtype=dtype,
            output=output,
            batch_of_one=False,
        )
        return JaxKernel(k, self._e)


class JaxKernel:
    """A ``Kernel`` of a ``JaxModel`` that also takes its arguments as pytrees:
    ``kernel(x1, x2, params)`` with ``params`` the first argument's pytree and ``x1``/``x2``
    the other arguments (one array, or a tuple of them when there are several)."""

    def __init__(self, kernel: Kernel, exported: Exported):
        self._k = kernel
        self._e = exported

    @property
    def mode(self) -> str:
        return self._k.mode

    @property
    def wrt(self) -> list[str]:
        return self._k.wrt

    @property
    def shared(self) -> list[str]:
        return self._k.shared

    @property
    def per_side(self) -> list[str]:
        return self._k.per_side

    def _by_name(self, x: Any) -> bool:
        """A dict from jjt input names (rather than a pytree that is a dict)."""
        names = self._e.model_names
        return isinstance(x, dict) and all(isinstance(k, str) and k in names for k in x)

    def _side(self, x: Any) -> Any:
        if x is None or self._by_name(x):
            return x
        if self._e.n_args == 2:
            # One per-side argument: `x` is its value, whatever pytree it is.
            named = self._e.bind(1, x)
            return {n: v for n, v in named.items() if n in self._k.per_side}
        if len(self._k.per_side) <= 1 and not isinstance(x, (tuple, list)):
            return x
        args = x if isinstance(x, (tuple, list)) else (x,)
        named: dict[str, Any] = {}
        for a, v in enumerate(args, start=1):
            named.update(self._e.bind(a, v))
        return {n: v for n, v in named.items() if n in self._k.per_side}

    def _shared(self, s: Any) -> Any:
        if s is None or self._by_name(s):
            return s
        named = self._e.bind(0, s)
        return {n: v for n, v in named.items() if n in self._k.shared}

    def __call__(self, x1: Any = None, x2: Any = None, params: Any = None):
        return self._k(self._side(x1), self._side(x2), self._shared(params))

    def apply(self, v: Any, x1: Any = None, x2: Any = None, params: Any = None):
        return self._k.apply(v, self._side(x1), self._side(x2), self._shared(params))

    def _apply_info(self, x1: Any = None, x2: Any = None, params: Any = None):
        return self._k._apply_info(self._side(x1), self._side(x2), self._shared(params))

    def linear_operator(self, x1: Any = None, x2: Any = None, params: Any = None):
        from ._operator import linear_operator

        return linear_operator(self, x1, x2, params)

    def dump(self, stage: str = "optimized", b1: int | None = None, b2: int | None = None) -> str:
        return self._k.dump(stage, b1, b2)

    def __repr__(self) -> str:
        return f"JaxKernel({self._k!r})"


def from_jax(f, *example_args: Any) -> JaxModel:
    """The JAX function ``f`` as a jjt model, exported by ``jax.export`` for the shapes and
    dtypes of ``example_args`` (f64 when ``jax_enable_x64`` is on and the arguments are f64).
    Inputs are named by argument and pytree path (``params.l0.w``, ``params.0.1``); examples
    with one more leading axis than the example arguments make a batched kernel::

        model = jjt.from_jax(lambda params, x: net(params, x), params, x[0])
        K = model.kernel(mode="trace")(x1, x2, params)   # [B1, B2]
    """
    if not callable(f):
        raise TypeError("from_jax takes a function and its example arguments")
    return JaxModel(Exported(f, example_args))


__all__ = ["Exported", "JaxKernel", "JaxModel", "from_jax", "sanitize"]
