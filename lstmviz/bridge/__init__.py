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
from .common import SPOT_MIN_BATCH, TOL, VERIFY, LiveModel, VerificationError, framework_of
from .files import as_model

__all__ = [
    "SPOT_MIN_BATCH",
    "TOL",
    "VERIFY",
    "LiveModel",
    "VerificationError",
    "as_model",
    "framework_of",
    "live_model",
    "trace",
]


def live_model(
    model: Any,
    x: Any,
    *args: Any,
    time_major: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    name: str | None = None,
    verify: str = "auto",
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
    verify : {"auto", "full", "spot"}
        How each LSTM call is made sure of (``LayerTrace.meta["verified"]`` says which ran):

        - ``"full"``: the framework runs its LSTM; the engine recomputes every gate from the
          h the framework computed, and the h and c this implies must equal the
          framework's at every step of every sequence (for a multi-layer ``nn.LSTM``, whose
          lower layers' h torch does not return, the engine runs those layers and their
          final h and c are compared).
        - ``"spot"``: the engine runs the LSTM *in place of* the framework's (a torch
          ``nn.LSTM`` call: every layer and direction; a Keras ``LSTM`` layer), records
          every gate in that one pass, and the framework computes the rest of the model
          from the engine's h: ``trace.output`` is the model's output on that h (equal to
          the framework's own to float rounding). A spot check then runs the framework's
          own LSTM over 4 windows of 16 steps (the first and the last steps included; all
          steps when the input is shorter), each layer and direction starting from the
          engine's state before the window (the real initial state for the first): its h
          at every step of the window, and every layer's h and c after it, must equal the
          engine's to :data:`TOL`, else :class:`VerificationError`. This checks the
          weights, their layout and the cell's equations at those steps; it does not
          compare the steps between the windows with a run of the framework's, so in an
          LSTM whose state amplifies rounding differences the engine's sequence can drift
          from the one the framework would have computed (``"full"`` compares every
          step). LSTM calls the engine cannot replace take the full route: packed
          sequences, ``proj_size``, ``nn.LSTMCell`` in a Python loop, a subclass with its
          own ``forward``, parametrized weights, float64 / bfloat16 / a GPU, a Keras layer
          with a mask, a custom cell, ``stateful`` or ``unroll``.
        - ``"auto"`` (default): ``"spot"`` for a replaceable LSTM call of at least
          :data:`SPOT_MIN_BATCH` (2) sequences, where checking every step costs more than
          the framework's forward pass itself; ``"full"`` otherwise (a single sequence is
          checked in full for less than its forward pass costs).
    """
    fw = framework_of(model)
    if fw == "torch":
        from .torch import live_model as torch_live

        return torch_live(
            model,
            x,
            *args,
            time_major=time_major,
            model_kwargs=model_kwargs,
            name=name,
            verify=verify,
        )
    if fw == "keras":
        from .keras import live_model as keras_live

        return keras_live(
            model,
            x,
            *args,
            time_major=time_major,
            model_kwargs=model_kwargs,
            name=name,
            verify=verify,
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
    verify: str = "auto",
) -> Trace:
    """Run ``model`` on ``x`` in its framework and record every LSTM inside it.

    ``model`` is a live ``torch.nn.Module`` or ``keras.Model`` of any architecture; every
    ``nn.LSTM`` (all layers and directions, ``proj_size``, packed sequences), every
    ``nn.LSTMCell`` called step by step, and every Keras ``LSTM`` / ``LSTMCell`` inside
    ``RNN`` or ``Bidirectional`` is recorded. With ``verify="full"`` the framework computes
    everything; the engine recomputes each LSTM's gates from what it recorded and the h and c
    they imply must equal the framework's at every step to :data:`TOL` (else
    :class:`VerificationError`). With ``verify="spot"`` the engine runs each LSTM it can in
    the framework's place (the framework runs the rest of the model on its h), spot-checked
    against the framework's own LSTM; ``"auto"`` (default) takes that route for batches of
    :data:`SPOT_MIN_BATCH` sequences or more. See :func:`live_model` for exactly what each
    route checks.

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
    live = live_model(
        model, x, *args, time_major=time_major, model_kwargs=model_kwargs, verify=verify
    )
    assert live.example_trace is not None
    return live.example_trace
