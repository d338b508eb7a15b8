"""Small shared helpers of :mod:`lstmviz.analysis` (NumPy only)."""

from __future__ import annotations

import numpy as np

from ..engine.trace import QUANTITIES, LayerTrace
from ..errors import LstmvizError

#: Quantities an analysis may be asked about: the six of the trace and the pre-activations.
ANALYSIS_QUANTITIES = (*QUANTITIES, "z_i", "z_f", "z_c", "z_o")


def valid_mask(lt: LayerTrace) -> np.ndarray:
    """``(batch, T)`` bool: the steps that count (all True when the layer has no mask)."""
    if lt.mask is None:
        return np.ones((lt.batch_size, lt.timesteps), bool)
    return np.asarray(lt.mask, bool)


def quantity(lt: LayerTrace, name: str) -> np.ndarray:
    """``(batch, T, units)`` array of ``name`` with a message that lists the valid names."""
    try:
        return lt.get(name)
    except LstmvizError:
        raise LstmvizError(
            f"unknown quantity {name!r}; expected one of {', '.join(ANALYSIS_QUANTITIES)}"
        ) from None


def check_layer_trace(lt: object, what: str = "layer_trace") -> LayerTrace:
    if not isinstance(lt, LayerTrace):
        raise LstmvizError(
            f"{what} must be a lstmviz LayerTrace (trace.layer(name)); got {type(lt).__name__}"
        )
    return lt
