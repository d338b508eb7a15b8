"""Live models: let PyTorch or Keras run the user's model and record every LSTM inside it.

>>> trace = lstmviz.trace(model, x)     # a torch.nn.Module or a keras.Model, any architecture
>>> trace.layer("lstm").forget_gate    # (batch, T, units), as from a model file

:func:`trace` and :func:`live_model` pick the framework from the model's type without
importing either; torch or Keras is imported only when such a model is passed.
"""

from __future__ import annotations

from typing import Any

from ..engine.trace import Trace
from ..errors import InputError
from .common import TOL, LiveModel, VerificationError, framework_of

__all__ = ["TOL", "LiveModel", "VerificationError", "framework_of", "live_model", "trace"]


def live_model(
    model: Any,
    x: Any,
    *args: Any,
    time_major: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    name: str | None = None,
) -> LiveModel:
    """Wrap a live ``torch.nn.Module`` or ``keras.Model`` so that lstmviz can trace it.

    The result offers the interface of :class:`lstmviz.engine.Model` (``trace``,
    ``check_input``, ``lstm_trace_names``, ...): the app and :mod:`lstmviz.export` use it
    as they use a model file, and each new input runs the framework again.

    Parameters
    ----------
    model : torch.nn.Module or keras.Model
        The model, in the state to trace (``model.eval()`` for a torch model with dropout
        between LSTM layers).
    x : array_like or tensor
        An example input exactly as the model takes it: ``(batch, T, F)`` floats,
        ``(batch, T)`` token ids or ``(batch, T)`` numbers (one per step). For several
        inputs, a list: a Keras model gets the list, a torch model one argument per array.
    *args
        Further positional arguments passed to the model on every call (``hidden`` of a
        torch language model, say); they stay the same for new inputs.
    time_major : bool
        The model takes ``(T, batch, ...)`` (a torch model built around
        ``nn.LSTM(batch_first=False)``). Checked against the first ``nn.LSTM``'s
        ``batch_first`` where the shapes tell.
    model_kwargs : dict, optional
        Keyword arguments passed to the model on every call.
    name : str, optional
        A display name (default: the model's class name, or a Keras model's name).
    """
    fw = framework_of(model)
    if fw == "torch":
        from .torch import live_model as torch_live

        return torch_live(
            model, x, *args, time_major=time_major, model_kwargs=model_kwargs, name=name
        )
    if fw == "keras":
        from .keras import live_model as keras_live

        return keras_live(
            model, x, *args, time_major=time_major, model_kwargs=model_kwargs, name=name
        )
    raise InputError(
        f"lstmviz.trace takes a live torch.nn.Module or keras.Model (or use "
        f"lstmviz.load_model for a file); got {type(model).__module__}.{type(model).__name__}"
    )


def trace(
    model: Any,
    x: Any,
    *args: Any,
    time_major: bool = False,
    model_kwargs: dict[str, Any] | None = None,
) -> Trace:
    """Run ``model`` on ``x`` in its framework and record every LSTM inside it.

    ``model`` is a live ``torch.nn.Module`` or ``keras.Model`` of any architecture; every
    ``nn.LSTM`` (all layers and directions, ``proj_size``, packed sequences), every
    ``nn.LSTMCell`` called step by step, and every Keras ``LSTM`` / ``LSTMCell`` inside
    ``RNN`` or ``Bidirectional`` is recorded. The framework computes everything; the engine
    recomputes each LSTM's gates from what it recorded and the h and c they imply must equal
    the framework's to :data:`TOL` (else :class:`VerificationError`).

    An :class:`lstmviz.engine.Model` (a loaded file) is traced as usual.

    Returns
    -------
    Trace
        As from a model file: ``trace.layers`` (one :class:`~lstmviz.engine.LayerTrace` per
        LSTM layer and direction, named after the module: ``"lstm"``, ``"encoder.rnn_l1"``,
        ``"bidi/backward"``), ``trace.output`` (the framework's output as NumPy arrays),
        ``trace.inputs`` (``x`` in lstmviz's layout, ``(batch, T, ...)``).

    See :func:`live_model` for the parameters.
    """
    from ..engine.model import Model

    if isinstance(model, Model):
        if args or model_kwargs or time_major:
            raise InputError("a model loaded from a file takes x only (no extra arguments)")
        return model.trace(x)
    live = live_model(model, x, *args, time_major=time_major, model_kwargs=model_kwargs)
    assert live.example_trace is not None
    return live.example_trace
