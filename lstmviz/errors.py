"""The one exception family users see.

Every bad input -- a missing or malformed file, an unsupported layer, input of the wrong
shape -- raises :class:`LstmvizError` (or a subclass) whose message names the file and/or
the offending value, what was expected and what was found.
"""

from __future__ import annotations


class LstmvizError(Exception):
    """Base class of every error lstmviz raises for bad input."""


class ModelFileError(LstmvizError):
    """A model file cannot be read: missing, truncated, malformed, or missing weights."""


class UnsupportedLayerError(LstmvizError):
    """A model holds a layer lstmviz cannot run (GRU, Lambda, a custom class, ...)."""


class UnsafeModelError(UnsupportedLayerError):
    """A model file would need custom code to load (Lambda, custom objects); refused."""


class InputError(LstmvizError):
    """Input to a trace has the wrong rank, feature count, dtype or values."""


class ArgumentError(LstmvizError):
    """A public function or class was called with an argument of the wrong type or value
    (``load_model(None)``, ``Session(batch="x")``, a timestep out of range)."""


class MissingDependencyError(LstmvizError):
    """An optional dependency (TensorFlow, torch, onnx, imageio...) is not installed."""

    def __init__(self, name: str, pip_name: str | None = None, what: str = "This") -> None:
        pip_name = pip_name or name
        super().__init__(
            f"{what} requires the {name} module. You can install it via `pip install {pip_name}`."
        )
        self.module_name = name
        self.pip_name = pip_name


class MemoryBudgetError(LstmvizError):
    """Something a file or an input asks for would exceed lstmviz's memory budget
    (:mod:`lstmviz.budget`); nothing was allocated."""

    def __init__(self, message: str, nbytes: int = -1, budget: int = -1) -> None:
        super().__init__(message)
        self.nbytes = nbytes
        self.budget = budget
