"""lstmviz: open up an LSTM and watch it think.

>>> import lstmviz
>>> model = lstmviz.load_model("digit_sum.keras")
>>> trace = model.trace(x)          # every gate, cell and hidden state, (batch, T, units)
>>> trace.layer("lstm").forget_gate
"""

from __future__ import annotations

from .engine import LayerTrace, Model, Trace
from .errors import LstmvizError
from .io import load_model
from .io.session import Session

__version__ = "0.1.0"

__all__ = ["LayerTrace", "LstmvizError", "Model", "Session", "Trace", "__version__", "load_model"]
