"""A live model as a model lstmviz runs itself, checked against the framework.

Gradients, interventions, activation patching and attribution run lstmviz's own forward and
backward pass through every layer of a model, which a live torch or Keras model (run by its
framework, its LSTMs recorded) does not give. :func:`as_model` saves the live model's weights
to a temporary file, opens it as :func:`lstmviz.load_model` would, and runs both on the
example input: every LSTM's h and c at every real step and the model's output must equal the
framework's to :data:`~lstmviz.bridge.TOL`, else :class:`~lstmviz.bridge.VerificationError`
-- a file that describes another model than the live one is refused, never analysed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.model import Model
from ..engine.trace import Trace
from ..errors import InputError, ModelFileError
from .common import TOL, LiveModel, VerificationError, framework_of, max_excess


def as_model(
    model: Any,
    x: Any,
    *args: Any,
    time_major: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    **torch_options: Any,
) -> Model:
    """The live ``model`` as an :class:`lstmviz.engine.Model`, checked on ``x``.

    Parameters
    ----------
    model : keras.Model or torch.nn.Module
        A Keras model is saved as ``.keras`` and opened (no options needed). A torch model's
        ``state_dict`` holds weights, not ``forward()``: say what ``forward()`` does with the
        keyword arguments of :func:`lstmviz.io.torch_format.load_torch` (``lstm_prefix``,
        ``embedding``, ``head``, ``head_on``, ``batch_first``, ``mask_zero``, ...).
    x, *args, time_major, model_kwargs
        The input and further arguments, as for :func:`lstmviz.trace`.
    **torch_options
        For a torch model: :func:`~lstmviz.io.torch_format.load_torch`'s keyword arguments.

    Returns
    -------
    Model
        Runs as the live model does on ``x``: every LSTM's h and c at every real step
        (masked and packed-away steps left out) and the output equal the framework's to
        :data:`~lstmviz.bridge.TOL` (``|ours - theirs| <= TOL * max(1, |theirs|)``).
        ``model.meta["checked_against"]`` records the check. Pass it to
        :func:`lstmviz.analysis.gradient`, :func:`~lstmviz.analysis.ablate`,
        :func:`~lstmviz.analysis.activation_patching`, ... with inputs in lstmviz's layout
        (``(batch, T, ...)``).

    Raises
    ------
    VerificationError
        The file's model does not compute what the live model computes on ``x`` (the
        options describe another ``forward()``, or its layers are not all known).
    InputError
        Not a live torch or Keras model, or options given for a Keras model.
    """
    from . import live_model

    fw = framework_of(model)
    if fw is None:
        raise InputError(
            "as_model takes a live torch.nn.Module or keras.Model; got "
            f"{type(model).__module__}.{type(model).__name__}"
        )
    if fw == "keras" and torch_options:
        raise InputError(
            f"as_model: options {sorted(torch_options)} describe a torch state_dict; a Keras "
            "model is saved whole (.keras) and needs none"
        )
    if fw == "torch":
        _check_eval_mode(model)
    live = live_model(
        model, x, *args, time_major=time_major, model_kwargs=model_kwargs, verify="full"
    )
    with tempfile.TemporaryDirectory(prefix="lstmviz-as-model-") as d:
        engine = (
            _keras_file(model, Path(d))
            if fw == "keras"
            else _torch_file(model, Path(d), torch_options)
        )
    engine.name = live.name
    engine.source = f"{live.name} (live {live.framework} model)"
    _check(engine, live)
    return engine


def _check_eval_mode(model: Any) -> None:
    """A torch model whose dropout or batch norm is in training mode computes another thing
    at every call (and not what the file will): refused with the fix."""
    named = getattr(model, "named_modules", None)
    if not callable(named):
        return
    busy = [
        name or type(sub).__name__
        for name, sub in named()
        if getattr(sub, "training", False)
        and any(k in type(sub).__name__ for k in ("Dropout", "BatchNorm"))
        and not (isinstance(getattr(sub, "p", None), float) and sub.p == 0.0)
    ]
    if busy:
        raise InputError(
            f"as_model: {type(model).__name__} is in training mode ({', '.join(busy[:4])} "
            "change from call to call; the file runs them as in evaluation): call "
            "model.eval() first"
        )


def _keras_file(model: Any, d: Path) -> Model:
    from ..io import load_model

    path = d / "model.keras"
    try:
        model.save(path)
    except Exception as e:  # Keras raises what a layer's get_config raises; chained below
        raise InputError(
            f"as_model: Keras could not save {getattr(model, 'name', type(model).__name__)} as "
            f".keras ({type(e).__name__}: {str(e)[:200]}); a custom layer needs get_config "
            "and keras.saving.register_keras_serializable"
        ) from e
    return load_model(path)


def _torch_file(model: Any, d: Path, options: dict[str, Any]) -> Model:
    import torch

    from ..io.torch_format import load_torch

    path = d / "model.pt"
    torch.save(model.state_dict(), path)
    try:
        return load_torch(path, **options)
    except TypeError as e:  # an unknown keyword
        raise InputError(f"as_model: {e}; the options are load_torch's keywords") from None
    except ModelFileError as e:
        from ..analysis._util import torch_options_hint

        cls = type(model).__name__
        if not options:
            raise ModelFileError(
                f"as_model: {cls}'s state_dict holds weights, not forward(): say what "
                f"forward() does around the LSTM, e.g. as_model(model, x, ..., "
                f"{torch_options_hint(model)}, head_on='all' or 'last', batch_first=...) "
                "(the modules found in the model, in the order forward() applies them; add "
                "the activation after the head, e.g. 'log_softmax'; mask_zero=True for "
                "packed padded batches); the keys are load_torch's"
            ) from None
        msg = str(e).replace(str(path), f"{cls}.state_dict()")
        raise ModelFileError(f"as_model: {msg}") from None


def _check(engine: Model, live: LiveModel) -> None:
    """Raise :class:`VerificationError` unless ``engine`` computes what ``live`` computed
    on its example input."""
    ref = live.example_trace
    assert ref is not None
    mine = engine.trace(live.example_input)
    what = f"as_model: the file made from {live.name}"
    if len(mine.layers) != len(ref.layers):
        raise VerificationError(
            f"{what} has {len(mine.layers)} LSTM layers ({', '.join(mine.layer_names)}); the "
            f"live model ran {len(ref.layers)} ({', '.join(ref.layer_names)})"
        )
    worst = 0.0
    for a, b in zip(mine.layers, ref.layers, strict=True):
        if b.mask is not None and a.mask is None:
            raise VerificationError(
                f"{what}: the live model's LSTM {b.name!r} skips padded steps (a packed "
                f"sequence or a mask) and the file's {a.name!r} reads every step: for a "
                "forward() that packs a padded batch whose padding is token id 0, pass "
                "mask_zero=True"
            )
        valid = _valid(b)
        t = b.timesteps
        if a.timesteps < t or a.batch_size != b.batch_size or a.units != b.units:
            raise VerificationError(
                f"{what}: LSTM {a.name!r} is (batch, T, units) = "
                f"{(a.batch_size, a.timesteps, a.units)}, the live {b.name!r} "
                f"{(b.batch_size, b.timesteps, b.units)}"
            )
        for q in ("hidden", "cell"):
            ours = np.asarray(a.get(q))[:, :t][valid]
            theirs = np.asarray(b.get(q))[valid]
            err, _ = max_excess(ours, theirs)
            if not err <= TOL:
                raise VerificationError(
                    f"{what}: LSTM {a.name!r}'s {q} differs from the live {b.name!r}'s by "
                    f"{err:.3g} (allowed {TOL:g}): the options do not describe the model's "
                    "forward() (the embedding, the head, head_on, batch_first, or mask_zero "
                    "for packed padded batches)"
                )
            worst = max(worst, err)
        extra = a.timesteps > t and b.mask is not None
        if extra and a.mask is not None and np.any(np.asarray(a.mask)[:, t:]):
            raise VerificationError(
                f"{what}: LSTM {a.name!r} reads steps {t}..{a.timesteps - 1}, which the live "
                "model packed away"
            )
    out = _matching_output(mine, ref.output, live)
    if out is None:
        shapes = [np.shape(o) for o in _arrays(ref.output)]
        raise VerificationError(
            f"{what}: its output {np.shape(mine.output)} matches none of the live model's "
            f"outputs {shapes} to {TOL:g}: the head or its activation (head, head_on, "
            "head_activation) is not the model's, so lstmviz cannot vouch for what it would "
            "differentiate"
        )
    engine.meta["checked_against"] = {
        "framework": live.framework,
        "input_shape": [list(np.shape(a)) for a in _arrays(live.example_input)],
        "largest_difference": max(worst, out),
        "tolerance": TOL,
    }


def _valid(lt: Any) -> np.ndarray:
    if lt.mask is None:
        return np.ones((lt.batch_size, lt.timesteps), bool)
    return np.asarray(lt.mask, bool)


def _arrays(obj: Any) -> list[np.ndarray]:
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, dict):
        return [a for v in obj.values() for a in _arrays(v)]
    if isinstance(obj, (list, tuple)):
        return [a for v in obj for a in _arrays(v)]
    return []


def _matching_output(mine: Trace, theirs: Any, live: LiveModel) -> float | None:
    """The largest difference between the file's output and the live output it equals (the
    same shape; or, for a time-major model, ``(T, batch, ...)`` / ``(T * batch, ...)`` as in
    PyTorch's word_language_model), or None when no live output matches."""
    ours = np.asarray(mine.output[0] if isinstance(mine.output, list) else mine.output)
    time_major = any(lay.time_major for lay in live.layouts)
    for a in _arrays(theirs):
        if a.dtype.kind != "f" or a.size != ours.size:
            continue
        forms = [a] if a.shape == ours.shape else []
        if time_major and ours.ndim >= 2:
            b, t = ours.shape[:2]
            forms.append(a.reshape(t, b, *ours.shape[2:]).swapaxes(0, 1))
        elif not forms:
            forms.append(a.reshape(ours.shape))
        for f in forms:
            err, _ = max_excess(ours, np.asarray(f, np.float32))
            if err <= TOL:
                return err
    return None
