"""The part of ``JaxModel`` and ``TorchModel`` that only forwards to the ``Model`` inside."""

from __future__ import annotations

from ._jjt import Model


class WrappedModel:
    """A ``Model`` made by an exporter, with the exporter's defaults for ``kernel``."""

    model: Model

    @property
    def inputs(self):
        """``(name, dtype, shape, has_default)`` of each input, in order."""
        return self.model.inputs

    @property
    def outputs(self):
        """``(name, dtype, shape)`` of each output, in order."""
        return self.model.outputs

    @property
    def defaults(self):
        """The default values of inputs (the weights), by name."""
        return self.model.defaults

    def text(self) -> str:
        """The graph in jjt's text format."""
        return self.model.text()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model!r})"
