"""Type stubs of the native module ``jjt._jjt`` (crates/jjt-py)."""

from os import PathLike
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import numpy.typing as npt

__version__: str

Names = str | Sequence[str]
ArrayLike = npt.ArrayLike
Mode = Literal["full", "trace", "diagonal"]
Examples = Literal["all", "diagonal"]
StrategyName = Literal["auto", "ntvp", "jc"]
Stage = Literal["model", "kernel", "optimized", "apply", "clif"]

class JjtError(Exception):
    """Base of jjt's own errors that are neither a ValueError nor a TypeError."""

class ShapeError(ValueError):
    """An array whose shape is not the one the model's input needs."""

class InputError(TypeError):
    """A missing, unknown or duplicated input, or a value of the wrong dtype."""

class ModelError(ValueError):
    """A model file or text jjt cannot read."""

class TransformError(ValueError):
    """A kernel jjt cannot build for this model."""

class CompileError(JjtError):
    """Compiling or running native code failed."""

def sanitize(name: str) -> str:
    """The jjt name an imported model gives a source name (``params['l0']['w']`` →
    ``params.l0.w``, ``0.weight`` → ``_0.weight``)."""

class Model:
    """A model: its graph and the default values of its weights."""

    @staticmethod
    def load(path: str | PathLike[str]) -> Model: ...
    @staticmethod
    def from_text(text: str, format: Literal["jjt", "stablehlo"] = "jjt", name: str = "model") -> Model: ...
    @staticmethod
    def from_onnx(data: bytes, name: str = "model") -> Model: ...
    @property
    def name(self) -> str: ...
    @property
    def inputs(self) -> list[tuple[str, str, tuple[int, ...], bool]]:
        """``(name, dtype, shape, has_default)`` of each input, in order."""
    @property
    def outputs(self) -> list[tuple[str, str, tuple[int, ...]]]: ...
    @property
    def defaults(self) -> dict[str, np.ndarray]: ...
    def text(self) -> str: ...
    def eval(self, inputs: Mapping[str, ArrayLike] | None = None) -> np.ndarray | tuple[np.ndarray, ...]: ...
    def kernel(
        self,
        wrt: Names | None = None,
        shared: Names | None = None,
        mode: Mode = "full",
        examples: Examples = "all",
        strategy: StrategyName = "auto",
        dtype: Any = None,
        output: int | str | None = None,
        batch_of_one: bool = True,
    ) -> Kernel: ...

class Kernel:
    """K = J(p1)·J(p2)ᵀ of a model, compiled per pair of batch sizes."""

    def __call__(
        self,
        x1: ArrayLike | Mapping[str, ArrayLike] | None = None,
        x2: ArrayLike | Mapping[str, ArrayLike] | None = None,
        shared: ArrayLike | Mapping[str, ArrayLike] | None = None,
    ) -> np.ndarray: ...
    def apply(
        self,
        v: ArrayLike,
        x1: ArrayLike | Mapping[str, ArrayLike] | None = None,
        x2: ArrayLike | Mapping[str, ArrayLike] | None = None,
        shared: ArrayLike | Mapping[str, ArrayLike] | None = None,
    ) -> np.ndarray: ...
    def linear_operator(self, x1: Any = None, x2: Any = None, shared: Any = None) -> Any:
        """A ``scipy.sparse.linalg.LinearOperator`` of shape (B1·O, B2·O)."""
    @property
    def per_side(self) -> list[str]: ...
    @property
    def shared(self) -> list[str]: ...
    @property
    def wrt(self) -> list[str]: ...
    @property
    def mode(self) -> Mode: ...
    def layout(self, b1: int | None = None, b2: int | None = None) -> list[tuple[str, str, list[int], str]]: ...
    def dump(self, stage: Stage = "optimized", b1: int | None = None, b2: int | None = None) -> str: ...
    def _apply_info(self, x1: Any = None, x2: Any = None, shared: Any = None) -> tuple[list[int], list[int], str]: ...
