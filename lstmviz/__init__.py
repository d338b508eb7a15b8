"""lstmviz: open up an LSTM and watch it think.

>>> import lstmviz
>>> model = lstmviz.load_model("digit_sum.keras")
>>> trace = model.trace(x)          # every gate, cell and hidden state, (batch, T, units)
>>> trace.layer("lstm").forget_gate
>>> trace = lstmviz.trace(torch_or_keras_model, x)   # a live model, any architecture
>>> viewer = lstmviz.show(torch_or_keras_model, x)   # the window (non-blocking in Jupyter)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__
from .engine import LayerTrace, Model, Trace
from .errors import LstmvizError
from .io import load_model

if TYPE_CHECKING:
    from .io.session import Session

__all__ = [
    "LayerTrace",
    "LstmvizError",
    "Model",
    "Session",
    "Trace",
    "__version__",
    "load_model",
    "show",
    "trace",
]


#: subpackages reachable as attributes of ``lstmviz`` without importing them first (loaded on
#: first use; the app's Qt stays behind ``lstmviz.show``)
_SUBPACKAGES = frozenset({"analysis", "bridge", "examples", "export", "state", "train"})


def __getattr__(name: str) -> object:
    # live models and the notebook viewer, imported on first use (torch, Keras and Qt stay
    # unloaded until a model or a window needs them)
    if name == "trace":
        from .bridge import trace

        return trace
    if name == "Session":  # the session file format (zip, hashes), loaded when first used
        from .io.session import Session

        return Session
    if name == "show":
        from .app.viewer import show

        return show
    if name in _SUBPACKAGES:
        # ``import lstmviz`` then ``lstmviz.bridge.live_model(...)`` or
        # ``lstmviz.analysis.rank_units(...)``, as the README writes them
        from importlib import import_module

        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'lstmviz' has no attribute {name!r}")
