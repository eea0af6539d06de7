"""neural-tangents' ``empirical_ntk_fn``, compiled by jjt, for JAX functions ``f(params, x)``."""

from __future__ import annotations

import enum
import string
from typing import Any, Callable, Sequence

import numpy as np

from ._jax import Exported, _jax


class NtkImplementation(enum.IntEnum):
    """neural-tangents' ``NtkImplementation`` values, which ``implementation=`` also accepts
    as plain integers. jjt maps them to its strategies: ``JACOBIAN_CONTRACTION`` → 'jc',
    ``NTK_VECTOR_PRODUCTS`` → 'ntvp', ``STRUCTURED_DERIVATIVES`` and ``AUTO`` → 'auto' (the
    optimiser finds the structure; the cost model picks the strategy)."""

    AUTO = 0
    JACOBIAN_CONTRACTION = 1
    NTK_VECTOR_PRODUCTS = 2
    STRUCTURED_DERIVATIVES = 3


_STRATEGY = {0: "auto", 1: "jc", 2: "ntvp", 3: "auto"}


def _strategy(implementation: Any) -> str:
    if implementation is None:
        return "auto"
    try:
        key = int(implementation)
    except (TypeError, ValueError):
        key = None
    if key not in _STRATEGY or isinstance(implementation, float):
        raise ValueError(
            f"implementation must be None or one of neural-tangents' NtkImplementation values "
            f"(0 AUTO, 1 JACOBIAN_CONTRACTION, 2 NTK_VECTOR_PRODUCTS, 3 STRUCTURED_DERIVATIVES), "
            f"got {implementation!r}"
        )
    return _STRATEGY[key]


def _axes(name: str, axes: Any) -> tuple[int, ...]:
    if isinstance(axes, (int, np.integer)):
        return (int(axes),)
    if isinstance(axes, (str, bytes)) or not hasattr(axes, "__iter__"):
        raise TypeError(f"{name} must be a tuple of ints, got {axes!r}")
    items = tuple(axes)
    if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in items):
        raise TypeError(f"{name} must be a tuple of ints, got {axes!r}")
    return tuple(int(a) for a in items)


def empirical_ntk_fn(
    f: Callable[..., Any],
    trace_axes: Sequence[int] = (-1,),
    diagonal_axes: Sequence[int] = (),
    vmap_axes: Any = None,
    implementation: Any = None,
) -> Callable[..., Any]:
    """neural-tangents' ``empirical_ntk_fn``, with its semantics, compiled by jjt.

    Returns ``ntk_fn(x1, x2, params, **apply_fn_kwargs)``: the empirical NTK of
    ``f(params, x)`` (a function of a *batch* ``x``) with respect to ``params``, in
    neural-tangents' layout. For an output of shape ``[N, O]`` and ``trace_axes=()``,
    ``K[a, b, i, j] = Σ_p ∂f(x1)[a, i]/∂p · ∂f(x2)[b, j]/∂p``, shape ``[N1, N2, O, O]``; the
    output axes of the two sides are interleaved (``[N1, N2, H1, H2, W1, W2, …]``), an axis in
    ``trace_axes`` is averaged over (the trace is a mean), an axis in ``diagonal_axes`` keeps
    i = j once. ``x2=None`` means ``x1``.

    ``vmap_axes=None`` differentiates ``f`` on the whole batch (exact when examples interact,
    e.g. batch norm); ``vmap_axes=0`` declares the examples independent, so jjt compiles the
    kernel of one example batched over both sides, which is much faster. ``implementation``
    takes neural-tangents' values (``NtkImplementation`` or 0–3) or ``None`` (jjt's cost
    model picks). Keyword arguments reach ``f``; a 2-tuple gives side 1 its first item and
    side 2 its second, as in neural-tangents. A kernel is compiled per input shapes, dtypes
    and keyword arguments, and cached.
    """
    if not callable(f):
        raise TypeError("empirical_ntk_fn takes the function f(params, x)")
    trace = _axes("trace_axes", trace_axes)
    diag = _axes("diagonal_axes", diagonal_axes)
    strategy = _strategy(implementation)
    if vmap_axes is not None and (
        isinstance(vmap_axes, bool) or not isinstance(vmap_axes, (int, np.integer)) or int(vmap_axes) != 0
    ):
        raise ValueError(
            f"vmap_axes={vmap_axes!r}: jjt supports None (the batch as a whole) and 0 (a "
            "leading axis of independent examples); move the example axis to the front"
        )
    cache: dict[Any, Any] = {}

    def ntk_fn(x1: Any, x2: Any = None, params: Any = None, **apply_fn_kwargs: Any):
        if params is None:
            raise TypeError("ntk_fn(x1, x2, params): params is missing")
        jax = _jax()
        x2_none = x2 is None
        kw1, kw2 = _split_kwargs(apply_fn_kwargs)
        if x2_none:
            x2 = x1
        x1a, x2a = _canonical(x1), _canonical(x2)
        params = _canonical(params)
        p_leaves, p_def = jax.tree_util.tree_flatten(params)
        p_spec = tuple((np.shape(a), str(_dtype(a))) for a in p_leaves)
        key = (
            x1a.shape, str(x1a.dtype), x2a.shape, str(x2a.dtype), x2_none, p_def, p_spec,
            _kw_key(kw1), _kw_key(kw2),
        )
        plan = cache.get(key)
        if plan is None:
            plan = _Plan(f, params, x1a, x2a, kw1, kw2, x2_none, trace, diag, vmap_axes, strategy)
            cache[key] = plan
        return plan(x1a, x2a, params)

    ntk_fn.__doc__ = "ntk_fn(x1, x2, params, **apply_fn_kwargs): the empirical NTK (jjt)."
    return ntk_fn


def _dtype(a: Any):
    d = getattr(a, "dtype", None)
    return d if d is not None else np.asarray(a).dtype


def _split_kwargs(kw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    kw1, kw2 = {}, {}
    for k, v in kw.items():
        if isinstance(v, tuple) and len(v) == 2:
            kw1[k], kw2[k] = v
        else:
            kw1[k] = kw2[k] = v
    return kw1, kw2


def _kw_key(kw: dict[str, Any]) -> Any:
    """A cache key for keyword arguments, by value: they are compiled into the kernel. Each is
    a pytree whose leaves are arrays (by shape, dtype and bytes) or hashable values."""
    jax = _jax()
    out = []
    for k in sorted(kw):
        leaves, tree = jax.tree_util.tree_flatten(kw[k])
        items = []
        for leaf in leaves:
            if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
                a = np.asarray(leaf)
                items.append(("array", a.shape, str(a.dtype), a.tobytes()))
                continue
            try:
                hash(leaf)
            except TypeError:
                raise TypeError(
                    f"keyword argument `{k}`: jjt compiles keyword arguments into the kernel, so "
                    f"their leaves must be arrays or hashable values, not {type(leaf).__name__}"
                ) from None
            items.append(("value", type(leaf).__name__, leaf))
        out.append((k, str(tree), tuple(items)))
    return tuple(out)


def _canonical(tree: Any) -> Any:
    """Every array leaf in the dtype JAX computes it in (f32 for f64 arrays when
    `jax_enable_x64` is off), as neural-tangents gets them through JAX."""
    jax = _jax()

    def one(a: Any) -> Any:
        a = np.asarray(a)
        want = jax.dtypes.canonicalize_dtype(a.dtype)
        return a if a.dtype == want else a.astype(want)

    return jax.tree_util.tree_map(one, tree)


class _Plan:
    """One compiled kernel for one set of shapes, and how its output becomes
    neural-tangents' layout."""

    def __init__(self, f, params, x1, x2, kw1, kw2, x2_none, trace, diag, vmap_axes, strategy):
        jax = _jax()
        jnp = jax.numpy
        out1 = jax.eval_shape(lambda p, x: f(p, x, **kw1), params, x1)
        out2 = jax.eval_shape(lambda p, x: f(p, x, **kw2), params, x2)
        leaves1, self.out_def = jax.tree_util.tree_flatten(out1)
        leaves2 = jax.tree_util.tree_leaves(out2)
        self.leaves = len(leaves1)
        self.s1 = [tuple(o.shape) for o in leaves1]
        self.s2 = [tuple(o.shape) for o in leaves2]
        for a, b in zip(self.s1, self.s2):
            if len(a) != len(b):
                raise ValueError(f"f(params, x1) and f(params, x2) have ranks {len(a)} and {len(b)}")
        # Axes of every output leaf, resolved against its rank.
        self.trace, self.diag = [], []
        for s in self.s1:
            n = len(s)
            t = _resolve("trace_axes", trace, n)
            d = _resolve("diagonal_axes", diag, n)
            if set(t) & set(d):
                raise ValueError(
                    f"an axis cannot be both traced and diagonal: trace_axes={trace}, diagonal_axes={diag}"
                )
            self.trace.append(t)
            self.diag.append(d)
        same = kw1.keys() == kw2.keys() and _kw_key(kw1) == _kw_key(kw2)
        batched = (
            vmap_axes == 0 and same and x1.ndim >= 1 and x1.shape[1:] == x2.shape[1:]
            and x1.dtype == x2.dtype
        )
        self.kind = "vmap" if batched else ("one" if same and x1.shape == x2.shape and x1.dtype == x2.dtype else "two")
        self.kernels = []
        if self.kind == "vmap":
            def g(params, x):
                out = f(params, x[None], **kw1)
                return jax.tree_util.tree_map(lambda o: o[0], out)

            self.e = Exported(g, (params, x1[0]))
            names = self.e.leaf_names(0)
            for leaf in range(self.leaves):
                n = len(self.s1[leaf])
                per = set(range(1, n))
                examples = "diagonal" if 0 in self.diag[leaf] or 0 in self.trace[leaf] else "all"
                if per and per <= set(self.trace[leaf]):
                    mode = "trace"
                elif per and per <= set(self.diag[leaf]):
                    mode = "diagonal"
                else:
                    mode = "full"
                k = self.e.model.kernel(
                    wrt=names, shared=names, mode=mode, examples=examples, strategy=strategy,
                    output=leaf if self.leaves > 1 else None, batch_of_one=False,
                )
                # Axis labels of jjt's result: (logical output axis, side) with side 0 = both.
                labels = [(0, 1), (0, 2)] if examples == "all" else [(0, 0)]
                if mode == "full":
                    labels += [(i, 1) for i in range(1, n)] + [(i, 2) for i in range(1, n)]
                elif mode == "diagonal":
                    labels += [(i, 0) for i in range(1, n)]
                self.kernels.append((k, labels))
        elif self.kind == "one":
            self.e = Exported(lambda params, x: f(params, x, **kw1), (params, x1))
            names = self.e.leaf_names(0)
            for leaf in range(self.leaves):
                n = len(self.s1[leaf])
                k = self.e.model.kernel(
                    wrt=names, shared=names, mode="full", strategy=strategy,
                    output=leaf if self.leaves > 1 else None, batch_of_one=False,
                )
                labels = [(i, 1) for i in range(n)] + [(i, 2) for i in range(n)]
                self.kernels.append((k, labels))
        else:
            # Two different functions (keyword arguments or shapes differ between the sides):
            # the kernel of both outputs side by side, K = [J1; J2]·[J1; J2]ᵀ, of which the
            # block J1·J2ᵀ is kept.
            def both(params, xa, xb):
                oa = jax.tree_util.tree_leaves(f(params, xa, **kw1))
                ob = jax.tree_util.tree_leaves(f(params, xb, **kw2))
                return tuple(jnp.concatenate([a.ravel(), b.ravel()]) for a, b in zip(oa, ob))

            self.e = Exported(both, (params, x1, x2))
            names = self.e.leaf_names(0)
            shared = names + self.e.leaf_names(1) + self.e.leaf_names(2)
            for leaf in range(self.leaves):
                k = self.e.model.kernel(
                    wrt=names, shared=shared, mode="full", strategy=strategy,
                    output=leaf if self.leaves > 1 else None, batch_of_one=False,
                )
                n = len(self.s1[leaf])
                labels = [(i, 1) for i in range(n)] + [(i, 2) for i in range(n)]
                self.kernels.append((k, labels))

    def __call__(self, x1, x2, params):
        jax = _jax()
        e = self.e
        shared = e.bind(0, params)
        results = []
        for leaf, (k, labels) in enumerate(self.kernels):
            if self.kind == "two":
                named = dict(shared)
                named.update(e.bind(1, x1))
                named.update(e.bind(2, x2))
                full = np.asarray(k(None, None, {n: v for n, v in named.items() if n in k.shared}))
                n1 = int(np.prod(self.s1[leaf]))
                raw = full[:n1, n1:].reshape(self.s1[leaf] + self.s2[leaf])
            else:
                raw = np.asarray(k(x1, x2, {n: v for n, v in shared.items() if n in k.shared}))
            results.append(self._layout(raw, labels, leaf))
        if self.leaves == 1 and jax.tree_util.treedef_is_leaf(self.out_def):
            return results[0]
        return jax.tree_util.tree_unflatten(self.out_def, results)

    def _layout(self, k: np.ndarray, labels, leaf: int) -> np.ndarray:
        """jjt's result, whose axes carry ``labels``, in neural-tangents' layout."""
        n = len(self.s1[leaf])
        trace, diag = self.trace[leaf], self.diag[leaf]
        letters = iter(string.ascii_letters)
        letter: dict[tuple[int, int], str] = {}
        for i in range(n):
            if i in trace or i in diag:
                letter[(i, 1)] = letter[(i, 2)] = letter[(i, 0)] = next(letters)
            else:
                letter[(i, 1)], letter[(i, 2)] = next(letters), next(letters)
        src = "".join(letter[lab] for lab in labels)
        dst = ""
        for i in range(n):
            if i in trace:
                continue
            dst += letter[(i, 1)] if i in diag else letter[(i, 1)] + letter[(i, 2)]
        out = np.einsum(f"{src}->{dst}", k) if src != dst else k
        size = 1
        for i in trace:
            size *= self.s1[leaf][i]
        if size != 1:
            out = out / np.asarray(size, dtype=out.dtype)
        return np.ascontiguousarray(out)


def _resolve(name: str, axes: tuple[int, ...], n: int) -> tuple[int, ...]:
    out = []
    for a in axes:
        if not -n <= a < n:
            raise ValueError(f"{name}: axis {a} is out of range for an output of rank {n}")
        r = a % n
        if r in out:
            raise ValueError(f"{name}: axis {a} is given twice")
        out.append(r)
    return tuple(sorted(out))
