"""Small shared helpers of :mod:`lstmviz.analysis` (NumPy only)."""

from __future__ import annotations

import numpy as np

from ..engine.trace import QUANTITIES, LayerTrace
from ..errors import InputError, LstmvizError

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


# ------------------------------------------------------------------------------------------
# which models an analysis can run
# ------------------------------------------------------------------------------------------
def _framework(obj: object) -> str:
    """``"PyTorch"``, ``"Keras"`` or ``""`` from the module names of ``obj``'s classes (nothing
    is imported: an object can only be a torch or Keras model if its framework is loaded)."""
    mods = [getattr(c, "__module__", "") or "" for c in type(obj).__mro__]
    if any(m.split(".")[0] in ("keras", "tf_keras") or m.startswith("tensorflow.") for m in mods):
        return "Keras"
    if any(m.split(".")[0] == "torch" for m in mods):
        return "PyTorch"
    return ""


def torch_options_hint(module: object) -> str:
    """``"lstm_prefix='rnn.', embedding='encoder.', head=['decoder.']"``: the keyword
    arguments of ``load_torch`` that the module's own ``nn.LSTM`` / ``nn.Embedding`` /
    ``nn.Linear`` children suggest (their order in ``forward()`` is the user's to confirm)."""
    named = getattr(module, "named_modules", None)
    if not callable(named):
        return "lstm_prefix=..., embedding=..., head=[...]"
    lstm: list[str] = []
    emb: list[str] = []
    lin: list[str] = []
    for name, sub in named():
        kind = type(sub).__name__
        if not name:
            continue
        if kind == "LSTM":
            lstm.append(name)
        elif kind == "Embedding":
            emb.append(name)
        elif kind == "Linear":
            lin.append(name)
    parts = [f"lstm_prefix={lstm[0] + '.'!r}" if lstm else "lstm_prefix=..."]
    if emb:
        parts.append(f"embedding={emb[0] + '.'!r}")
    parts.append(f"head={[n + '.' for n in lin]!r}" if lin else "head=None")
    return ", ".join(parts)


def engine_model(model: object, what: str, *, live_ok: bool = False) -> object:
    """``model`` if ``what`` can run on it, else an :class:`InputError` saying what to pass.

    Gradients, interventions, patching and attribution run lstmviz's own forward and backward
    pass through every layer, so they need a model lstmviz runs layer by layer (a file from
    :func:`lstmviz.load_model`). A live torch or Keras model (``lstmviz.bridge.live_model``)
    runs in its framework, where lstmviz records the LSTMs only: such a model (or the
    framework object itself) is refused with the route that gets one from it,
    :func:`lstmviz.bridge.as_model`.
    ``live_ok``: ``what`` needs only traces (a live model from ``live_model`` is fine).
    """
    if hasattr(model, "nodes") and hasattr(model, "lstm_trace_names"):
        return model  # an engine Model: every layer is lstmviz's
    live = getattr(model, "framework", "") in ("torch", "keras") and hasattr(model, "module")
    if live and live_ok:
        return model
    inner = getattr(model, "module", model) if live else model
    fw = _framework(inner)
    cls = type(inner).__name__
    if not fw:
        raise InputError(
            f"{what}: model must be a lstmviz model (lstmviz.load_model(path)); got "
            f"{type(model).__module__}.{type(model).__name__}"
        )
    if live_ok:
        raise InputError(
            f"{what}: got the {fw} model {cls} itself; wrap it first so that lstmviz can "
            "trace it: live = lstmviz.bridge.live_model(model, x) (with the model's further "
            f"arguments, as for lstmviz.trace), then {what}(live, ...)"
        )
    if fw == "Keras":
        route = "m = lstmviz.bridge.as_model(model, x) (it saves the model as .keras and opens it"
    else:
        route = (
            f"m = lstmviz.bridge.as_model(model, x, ..., {torch_options_hint(inner)}, "
            "head_on='all' or 'last', batch_first=...) (x and the model's further arguments as "
            "for lstmviz.trace; the modules found in the model, in the order forward() applies "
            "them; add the activation after the head, e.g. 'log_softmax', to head; "
            "mask_zero=True when forward() packs padded batches with pack_padded_sequence, "
            "token id 0 being the padding. It saves the state_dict and opens it"
        )
    raise InputError(
        f"{what}: the live {fw} model {cls} runs in {fw}, where lstmviz records only its "
        f"LSTMs; {what} runs lstmviz's own computation through every layer of the model "
        f"(its forward pass, and for gradients its backward pass), so it needs the model as "
        f"lstmviz runs it. Get it with {route}, and "
        "refuses it unless its LSTMs' h and c and its output equal the live model's on x). "
        f"Then {what}(m, ...), with inputs in lstmviz's layout, (batch, T, ...)"
    )
