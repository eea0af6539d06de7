"""PyTorch modules as jjt models, through ``torch.onnx.export``."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ._jjt import Model, sanitize
from ._wrap import WrappedModel


class TorchModel(WrappedModel):
    """A PyTorch module exported to ONNX for the shapes of its example inputs
    (``from_torch``). Its parameters are inputs named as in ``module.named_parameters()``
    (``fc1.weight``; a name that starts with a digit gets ``_``: ``0.weight`` →
    ``_0.weight``) whose defaults are their current values; ``kernel()`` differentiates with
    respect to them by default. An example input with a leading axis of one example (``[1,
    …]``) makes a model that takes batches ``[B, …]``."""

    def __init__(self, model: Model, parameters: list[str]):
        self.model = model
        self.parameters = parameters

    def eval(self, inputs: dict[str, Any] | None = None):
        return self.model.eval(inputs)

    def kernel(self, wrt=None, shared=None, mode="full", examples="all", strategy="auto", dtype=None, output=None):
        """A compiled kernel (see ``Model.kernel``); ``wrt`` and ``shared`` default to the
        module's parameters (buffers such as batch-norm statistics are constants)."""
        return self.model.kernel(
            wrt=self.parameters if wrt is None else wrt,
            shared=self.parameters if shared is None else shared,
            mode=mode,
            examples=examples,
            strategy=strategy,
            dtype=dtype,
            output=output,
        )


def from_torch(module: Any, *example_inputs: Any) -> TorchModel:
    """The PyTorch module ``module`` as a jjt model, exported by ``torch.onnx.export`` for the
    shapes and dtypes of ``example_inputs`` (``module.double()`` gives an f64 model). Export one
    example with a leading axis of one (``x[:1]``) and call the kernel on batches::

        model = jjt.from_torch(net.double().eval(), torch.from_numpy(x[:1]))
        K = model.kernel(mode="trace")(x1, x2)          # [B1, B2]
    """
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("from_torch needs PyTorch: pip install torch onnx onnxscript") from e
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch takes a torch.nn.Module, got {type(module).__name__}")
    args = tuple(torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x for x in example_inputs)
    training = module.training
    try:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "model.onnx")
            torch.onnx.export(module.eval(), args, path)
            model = Model.load(path)
    finally:
        module.train(training)
    names = {i[0] for i in model.inputs}
    params = [
        sanitize(n) for n, p in module.named_parameters() if p.requires_grad and sanitize(n) in names
    ]
    return TorchModel(model, params)
