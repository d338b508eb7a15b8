"""Interventions on units: ablate, clamp or resample a unit's h, c or one gate, see what the
output does, rank every unit by its effect, and steer text generation (NumPy only).

The mechanics live in :mod:`lstmviz.engine.intervene` (an :class:`Intervention` is applied
inside the recurrence, so the change propagates through time); this module gives the
questions an analysis asks:

=======================  ==================================================================
ablate                   the trace with some units zeroed, set to their mean, or clamped
intervene                the trace with any list of interventions
intervention_effect      the difference heatmaps and the output's change
ablation_scan            every unit ranked by what ablating it does to one output
mean_values              each unit's mean over a corpus (for mode="mean")
sample_with_intervention text generation with a clamped unit: does it steer the sampling?
=======================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.backward import record
from ..engine.intervene import (
    Intervention,
    quantity_name,
    time_window,
    trace_with_interventions,
)
from ..engine.model import Model
from ..engine.reprs import dataclass_repr
from ..engine.trace import QUANTITIES, Trace
from ..errors import InputError, LstmvizError
from ._util import engine_model
from .gradients import Target, output_seed, seed_in_space

__all__ = [
    "AblationScan",
    "Generated",
    "Intervention",
    "InterventionEffect",
    "ablate",
    "ablation_scan",
    "intervene",
    "intervention_effect",
    "mean_values",
    "sample_with_intervention",
]


def _layer_name(model: Model, layer: str | int) -> str:
    names = model.lstm_trace_names
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if not 0 <= int(layer) < len(names):
            raise InputError(f"layer index {layer} out of range: LSTM layers {', '.join(names)}")
        return names[int(layer)]
    if layer in names:
        return str(layer)
    if f"{layer}/forward" in names:
        return f"{layer}/forward"
    raise InputError(f"no LSTM layer named {layer!r}; LSTM layers: {', '.join(names)}")


def _units(units: Any, n: int, layer: str) -> tuple[int, ...]:
    if isinstance(units, (int, np.integer)) and not isinstance(units, bool):
        units = [int(units)]
    try:
        out = tuple(int(u) for u in np.atleast_1d(np.asarray(units)).ravel())
    except (TypeError, ValueError):
        raise InputError(f"units must be unit indices; got {units!r}") from None
    for u in out:
        if not 0 <= u < n:
            raise InputError(f"layer {layer!r} has {n} units (0..{n - 1}); unit {u} does not exist")
    return out


def mean_values(
    model: Model,
    reference: Any,
    layer: str | int,
    units: Any,
    quantity: str = "cell",
) -> np.ndarray:
    """Each unit's mean ``quantity`` over a reference corpus: ``(len(units),)`` float64.

    ``reference`` is an input array (traced here), a :class:`Trace`, or a
    :class:`~lstmviz.analysis.CorpusStore` (its stored float16 values); masked steps are left
    out.
    """
    engine_model(model, "mean_values", live_ok=True)
    name = _layer_name(model, layer)
    q = quantity_name(quantity)
    if isinstance(reference, Trace):
        lt = reference.layer(name)
    elif type(reference).__name__ == "CorpusStore":
        return _corpus_mean(reference, name, units, q)
    else:
        lt = model.trace(reference, step_outputs=False).layer(name)
    us = _units(units, lt.units, name)
    vals = np.asarray(lt.per_unit(q), np.float64)[..., list(us)]  # (B, T, n)
    if lt.mask is not None:
        vals = vals[np.asarray(lt.mask, bool)]
    return vals.reshape(-1, len(us)).mean(axis=0)


def _corpus_mean(store: Any, layer: str, units: Any, quantity: str) -> np.ndarray:
    us = list(_units(units, int(store.units[layer]), layer))
    arr = store.array(layer, quantity)  # (U, N) memory-mapped
    n = int(store.n_steps)
    if n == 0:
        raise LstmvizError("the corpus is empty: no steps to average")
    total = np.zeros(len(us))
    for lo in range(0, n, 1 << 18):
        total += np.asarray(arr[us, lo : min(n, lo + (1 << 18))], np.float64).sum(axis=1)
    return total / n


def make_intervention(
    model: Model,
    x: Any,
    layer: str | int,
    units: Any,
    quantity: str = "cell",
    mode: Any = "zero",
    t: int | slice | tuple[int, int] | None = None,
    *,
    reference: Any = None,
    source: Any = None,
    label: str = "",
) -> Intervention:
    """An :class:`Intervention` from the arguments :func:`ablate` takes.

    ``mode``: ``"zero"``; ``"mean"`` (over ``reference``, default ``x`` itself); a number (clamp);
    ``"resample"`` (the values the units take on ``source``, another input of the same length).
    """
    name = _layer_name(model, layer)
    q = quantity_name(quantity)
    n_units = model.lstm(name).weights.units
    us = _units(units, n_units, name)
    start, stop = time_window(t)
    if isinstance(mode, (int, float, np.floating, np.integer)) and not isinstance(mode, bool):
        return Intervention(name, us, q, "clamp", float(mode), None, start, stop, label)
    if mode == "zero":
        return Intervention(name, us, q, "zero", 0.0, None, start, stop, label)
    if mode == "mean":
        vals = mean_values(model, x if reference is None else reference, name, us, q)
        return Intervention(name, us, q, "mean", 0.0, vals, start, stop, label)
    if mode in ("resample", "patch"):
        if source is None:
            raise InputError(f"mode={mode!r} needs source=: another input of the same length")
        src = model.trace(source, step_outputs=False).layer(name)
        vals = np.asarray(src.per_unit(q), np.float64)[..., list(us)]  # (B, T, n)
        return Intervention(name, us, q, "patch", 0.0, vals, start, stop, label)
    raise InputError(f"mode must be 'zero', 'mean', 'resample' or a number (clamp); got {mode!r}")


def ablate(
    model: Model,
    x: Any,
    layer: str | int,
    units: Any,
    quantity: str = "cell",
    mode: Any = "zero",
    t: int | slice | tuple[int, int] | None = None,
    **kwargs: Any,
) -> Trace:
    """The trace of ``x`` with ``units`` of ``layer`` ablated.

    Parameters
    ----------
    model : Model
    x : array_like
        The input.
    layer : str or int
        An LSTM trace name (``"lstm"``, ``"bidi/forward"``) or its index.
    units : int or sequence of int
    quantity : str
        ``"cell"``, ``"hidden"``, ``"input_gate"``, ``"forget_gate"``, ``"output_gate"`` or
        ``"candidate"``.
    mode : "zero", "mean" or float
        Set to 0, to each unit's mean over ``reference=`` (default: ``x``'s own trace), or
        clamp to the number. ``"resample"`` with ``source=`` takes the values the units have
        on another input.
    t : int, slice or None
        The step (an int), the steps (a slice) or every step (None).

    Returns
    -------
    Trace
        As :meth:`Model.trace` returns, under the intervention (``trace.output`` is the model's
        output; the intervened quantity shows the values it was set to).
    """
    engine_model(model, "ablate")
    iv = make_intervention(model, x, layer, units, quantity, mode, t, **kwargs)
    return trace_with_interventions(model, x, [iv])


def intervene(
    model: Model,
    x: Any,
    interventions: Sequence[Intervention],
    *,
    initial_state: dict[str, Any] | None = None,
) -> Trace:
    """The trace of ``x`` with every intervention applied (see :class:`Intervention`)."""
    engine_model(model, "intervene")
    return trace_with_interventions(model, x, interventions, initial_state=initial_state)


# ------------------------------------------------------------------------------------------
# what changed
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class InterventionEffect:
    """The clean and the intervened trace, and what differs.

    Attributes
    ----------
    before, after : Trace
    diffs : dict
        ``{layer: {quantity: (batch, T, units) after - before}}`` for the six quantities.
    output_diff : ndarray or None
        ``(batch, T, K)`` change of the model's head at every step (``Trace.step_output``), or
        None when the model has no per-step output.
    final_diff : ndarray
        The change of the model's output itself.
    """

    before: Trace
    after: Trace
    diffs: dict[str, dict[str, np.ndarray]]
    output_diff: np.ndarray | None
    final_diff: np.ndarray

    __repr__ = dataclass_repr  # arrays by dtype and shape, not every value

    def max_change(self, layer: str, quantity: str) -> np.ndarray:
        """``(T,)``: the largest absolute change over units and batch at every step."""
        return np.abs(self.diffs[layer][quantity]).max(axis=(0, 2))


def intervention_effect(before: Trace, after: Trace) -> InterventionEffect:
    """Compare a clean trace with an intervened one of the same input."""
    if before.layer_names != after.layer_names:
        raise InputError("the two traces come from different models (their LSTM layers differ)")
    diffs: dict[str, dict[str, np.ndarray]] = {}
    for la, lb in zip(after.layers, before.layers, strict=True):
        if la.cell.shape != lb.cell.shape:
            raise InputError(f"layer {lb.name!r}: the traces have different shapes")
        diffs[lb.name] = {
            q: np.asarray(la.per_unit(q), np.float32) - np.asarray(lb.per_unit(q), np.float32)
            for q in QUANTITIES
        }
    out_diff = None
    if before.step_output is not None and after.step_output is not None:
        out_diff = np.asarray(after.step_output, np.float32) - before.step_output
    fa = after.output if not isinstance(after.output, list) else after.output[0]
    fb = before.output if not isinstance(before.output, list) else before.output[0]
    return InterventionEffect(
        before=before,
        after=after,
        diffs=diffs,
        output_diff=out_diff,
        final_diff=np.asarray(fa, np.float32) - np.asarray(fb, np.float32),
    )


# ------------------------------------------------------------------------------------------
# ablation scan
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class AblationScan:
    """Every unit (or unit group) of a layer ranked by its effect on one output.

    Attributes
    ----------
    groups : list of tuple of int
        The units ablated together, in scan order.
    effect : ndarray
        ``(n_groups,)``: mean over the batch of ``|target(ablated) - target(clean)|`` (the
        ranking's measure: a unit that pushes some items up and others down still counts).
    signed_effect : ndarray
        ``(n_groups,)``: mean over the batch of ``target(ablated) - target(clean)``.
    clean : ndarray
        ``(batch,)`` the target's clean value.
    ablated : ndarray
        ``(n_groups, batch)`` its value with each group ablated.
    layer, quantity, mode : str
    """

    groups: list[tuple[int, ...]]
    effect: np.ndarray
    signed_effect: np.ndarray
    clean: np.ndarray
    ablated: np.ndarray
    layer: str
    quantity: str
    mode: str
    target: str

    __repr__ = dataclass_repr  # arrays by dtype and shape, not every value

    @property
    def order(self) -> np.ndarray:
        """Group indices sorted by ``|effect|``, largest first."""
        return np.argsort(-np.abs(self.effect), kind="stable")

    def ranking(self) -> list[tuple[tuple[int, ...], float]]:
        """``[(units, effect), ...]`` largest ``|effect|`` first."""
        return [(self.groups[i], float(self.effect[i])) for i in self.order]


def by_layer(model: Model, interventions: Sequence[Intervention]) -> dict[str, list[Intervention]]:
    """``{trace name: [interventions]}`` with every LSTM of ``model`` named (all run in the
    reference loop: see :func:`~lstmviz.engine.intervene.trace_with_interventions`)."""
    out: dict[str, list[Intervention]] = {name: [] for name in model.lstm_trace_names}
    for iv in interventions:
        out[_layer_name(model, iv.layer)].append(iv)
    return out


def evaluate(
    model: Model,
    x: Any,
    interventions: Sequence[Intervention],
    target: Target,
    space: str = "output",
) -> np.ndarray:
    """The target's value per batch item ``(batch,)`` with ``interventions`` applied."""
    tape = record(model, x, interventions=by_layer(model, interventions))
    _, v = seed_in_space(model, tape, output_seed(model, tape, target), space)
    return np.asarray(v, np.float64)


def ablation_scan(
    model: Model,
    x: Any,
    target: Target,
    layer: str | int = 0,
    quantity: str = "cell",
    mode: Any = "zero",
    t: int | slice | tuple[int, int] | None = None,
    *,
    units: Sequence[Any] | None = None,
    space: str = "output",
    reference: Any = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> AblationScan:
    """Ablate every unit of ``layer`` in turn and measure one output.

    Parameters
    ----------
    target : (t, k), int, array or callable
        The output measured (see :mod:`lstmviz.analysis.gradients`).
    units : sequence, optional
        The units (or groups of units, as tuples) to ablate one after the other; every unit by
        default.
    mode : "zero", "mean" or float
        As for :func:`ablate`.
    progress, should_stop : callable, optional
        ``progress(done, total)`` after every group; the scan ends early (with the groups done
        so far) when ``should_stop()`` is true.
    """
    engine_model(model, "ablation_scan")
    from ..analysis.gradients import describe_target

    name = _layer_name(model, layer)
    q = quantity_name(quantity)
    n_units = model.lstm(name).weights.units
    groups: list[tuple[int, ...]]
    if units is None:
        groups = [(u,) for u in range(n_units)]
    else:
        groups = [_units(g, n_units, name) for g in units]
    if not groups:
        raise InputError("units: nothing to scan")
    clean_v = evaluate(model, x, [], target, space)
    ref = x if reference is None else reference
    means = None
    if mode == "mean":
        means = mean_values(model, ref, name, list(range(n_units)), q)
    start, stop = time_window(t)
    values = []
    for i, grp in enumerate(groups):
        if should_stop is not None and should_stop():
            break
        if means is not None:
            iv = Intervention(name, grp, q, "mean", 0.0, means[list(grp)], start, stop)
        else:
            iv = make_intervention(model, x, name, grp, q, mode, t)
        values.append(evaluate(model, x, [iv], target, space))
        if progress is not None:
            progress(i + 1, len(groups))
    ablated = np.array(values).reshape(len(values), len(clean_v))
    desc = describe_target(model, record(model, x), target)
    return AblationScan(
        groups=groups[: len(values)],
        effect=np.abs(ablated - clean_v[None]).mean(axis=1),
        signed_effect=(ablated - clean_v[None]).mean(axis=1),
        clean=clean_v,
        ablated=ablated,
        layer=name,
        quantity=q,
        mode=str(mode),
        target=desc,
    )


# ------------------------------------------------------------------------------------------
# text generation with an intervention
# ------------------------------------------------------------------------------------------
def _temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    p = np.clip(np.asarray(probs, np.float64), 1e-12, None)
    if temperature <= 0:
        q = np.zeros_like(p)
        q[np.argmax(p)] = 1.0
        return q
    logp = np.log(p) / float(temperature)
    logp -= logp.max()
    e = np.exp(logp)
    return e / e.sum()


def _step_interventions(ivs: Sequence[Intervention], pos: int) -> list[Intervention]:
    """The interventions active at absolute position ``pos``, as one-step interventions."""
    out = []
    for iv in ivs:
        if iv.mode == "patch":
            raise InputError("text generation takes zero, clamp or mean interventions, not patches")
        lo = 0 if iv.start is None else iv.start
        hi = None if iv.stop is None else iv.stop
        if lo < 0 or (hi is not None and hi < 0):
            raise InputError("text generation needs a time window counted from the start (>= 0)")
        if pos >= lo and (hi is None or pos < hi):
            out.append(Intervention(iv.layer, iv.units, iv.quantity, iv.mode, iv.value, iv.values))
    return out


@dataclass(frozen=True)
class Generated:
    """Text sampled with and without an intervention, from the same random numbers."""

    seed_text: str
    text: str
    tokens: list[int]
    probs: np.ndarray  # (n, V) the distribution each token was sampled from


def sample_with_intervention(
    model: Model,
    info: Any,
    seed_text: str,
    interventions: Sequence[Intervention] = (),
    n: int = 100,
    temperature: float = 0.7,
    rng: np.random.Generator | int | None = 0,
) -> Generated:
    """Generate text from a language model with interventions applied at every step.

    The window of an intervention counts positions from the first token of ``seed_text``
    (None: every step, the seed text's and the generated ones). With the same ``rng`` seed,
    the text with and without the intervention share their random numbers: whatever differs
    is the intervention's doing.

    Parameters
    ----------
    model : Model
        A language model over token ids (Embedding first, a distribution over the next token).
    info : ModelInfo
        Its vocabulary and token kind (``"chars"`` or ``"words"``), from the ``.lstmviz.json``.
    """
    engine_model(model, "sample_with_intervention")
    from ..io.inputs import encode_text

    if info is None or info.token_kind not in ("chars", "words") or not info.vocab:
        raise LstmvizError(
            "text generation needs a model with a character or word vocabulary (its .lstmviz.json)"
        )
    if not model.takes_tokens:
        raise LstmvizError("text generation needs a model that reads token ids (Embedding)")
    if temperature < 0:
        raise InputError(f"temperature must be >= 0; got {temperature}")
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"n must be a non-negative integer; got {n!r}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    ivs = list(interventions)
    for iv in ivs:
        _layer_name(model, iv.layer)
    ids = encode_text(model, seed_text, info)  # (1, T)
    state: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    probs = None
    for pos in range(ids.shape[1]):  # the seed text, one step at a time (windows are per step)
        probs, state = _next(model, ids[:, pos : pos + 1], state, _step_interventions(ivs, pos))
    tokens: list[int] = []
    dists = []
    sep = "" if info.token_kind == "chars" else " "
    for i in range(int(n)):
        assert probs is not None
        q = _temperature(probs, temperature)
        dists.append(q)
        tok = int(gen.choice(len(q), p=q))
        tokens.append(tok)
        pos = ids.shape[1] + i
        probs, state = _next(model, np.array([[tok]]), state, _step_interventions(ivs, pos))
    words = [info.vocab[k] for k in tokens]
    text = seed_text + (sep if words and sep else "") + sep.join(words)
    return Generated(
        seed_text=seed_text,
        text=text,
        tokens=tokens,
        probs=np.array(dists) if dists else np.zeros((0, len(info.vocab))),
    )


def _next(
    model: Model,
    x: np.ndarray,
    state: dict[str, tuple[np.ndarray, np.ndarray]],
    ivs: list[Intervention],
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    tr = trace_with_interventions(model, x, ivs, initial_state=state or None, step_outputs=False)
    out = np.asarray(tr.output)
    probs = out[0, -1] if out.ndim == 3 else out[0]
    new: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for lt in tr.layers:
        if lt.go_backwards:
            raise LstmvizError(
                f"text generation needs a forward LSTM; this model has a backward layer {lt.name!r}"
            )
        new[lt.name] = (np.array(lt.h[-1]), np.array(lt.c[-1]))
    return probs.astype(np.float64), new
