"""Running the LSTM recurrence with interventions on its units (NumPy only).

An :class:`Intervention` replaces one quantity of some units -- a gate (``input_gate``,
``forget_gate``, ``output_gate``, ``candidate``), the cell state ``cell`` or the hidden state
``hidden`` -- over a window of timesteps, *inside* the recurrence: the replaced value is what
the next step reads, so the change propagates through time as it would in the network::

    i, f, o, g = gates(x_t, h_tm1)           # a gate intervention replaces i, f, o or g here
    c = f * c_tm1 + i * g                    # a cell intervention replaces c here
    h = o * tanh(c)                          # a hidden intervention replaces h here

Modes: ``"zero"`` (ablate), ``"clamp"`` (a fixed value), ``"mean"`` (each unit's mean over a
corpus, computed by :func:`lstmviz.analysis.mean_values`) and ``"patch"`` (values taken from the
trace of another input: resampling and activation patching).

:func:`run_lstm_intervened` is the plain NumPy step loop (the reference recurrence of
:mod:`lstmviz.engine.cell`, written again here so that the compiled kernel and the fast loop stay
untouched) with the interventions applied; with none it is an LSTM in any float dtype, which
:mod:`lstmviz.engine.backward` uses for its float64 path. :func:`trace_with_interventions` runs a
whole model with interventions and returns an ordinary :class:`~lstmviz.engine.trace.Trace`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError, LstmvizError
from . import activations
from .trace import LayerTrace

if TYPE_CHECKING:
    from .cell import LSTMWeights
    from .model import Model
    from .trace import Trace

#: Quantities an intervention can replace, and their column block in the (i, f, o, g) buffer.
INTERVENABLE: dict[str, int | None] = {
    "input_gate": 0,
    "forget_gate": 1,
    "output_gate": 2,
    "candidate": 3,
    "cell": None,
    "hidden": None,
}
_ALIASES = {
    "i": "input_gate",
    "f": "forget_gate",
    "o": "output_gate",
    "g": "candidate",
    "c": "cell",
    "h": "hidden",
    "input": "input_gate",
    "forget": "forget_gate",
    "output": "output_gate",
}
MODES = ("zero", "clamp", "mean", "patch")
FORMAT_VERSION = 1


def quantity_name(q: str) -> str:
    """The full name of an intervenable quantity (``"f"`` -> ``"forget_gate"``)."""
    name = _ALIASES.get(q, q)
    if name not in INTERVENABLE:
        raise InputError(
            f"quantity {q!r} cannot be intervened on; expected one of "
            f"{', '.join(INTERVENABLE)} (or i, f, o, g, c, h)"
        )
    return name


def time_window(t: int | slice | tuple[int, int] | None) -> tuple[int | None, int | None]:
    """``t`` (a step, a slice, ``(start, stop)`` or None for every step) as ``(start, stop)``."""
    if t is None:
        return None, None
    if isinstance(t, slice):
        if t.step not in (None, 1):
            raise InputError(f"t: a time window must be contiguous; got step {t.step}")
        return t.start, t.stop
    if isinstance(t, tuple) and len(t) == 2:
        return t[0], t[1]
    if isinstance(t, (int, np.integer)) and not isinstance(t, bool):
        return int(t), (None if int(t) == -1 else int(t) + 1)
    raise InputError(f"t must be a step, a slice, (start, stop) or None; got {t!r}")


@dataclass(frozen=True, eq=False)
class Intervention:
    """Replace one quantity of some units of one LSTM layer over a window of steps.

    Parameters
    ----------
    layer : str
        The LSTM trace name (``"lstm"``, ``"bidi/forward"``).
    units : tuple of int
        The units changed (indices into the layer's units).
    quantity : str
        ``"cell"`` (default), ``"hidden"``, ``"input_gate"``, ``"forget_gate"``,
        ``"output_gate"`` or ``"candidate"`` (``i f o g c h`` work too).
    mode : str
        ``"zero"``, ``"clamp"`` (to ``value``), ``"mean"`` (to ``values``, one per unit) or
        ``"patch"`` (to ``values`` per step: ``(T, n_units)``, or ``(batch, T, n_units)``;
        NaN leaves that value as the network computed it).
    value : float
        The clamp value.
    values : ndarray, optional
        ``mean``: ``(n_units,)``; ``patch``: ``(T, n_units)`` or ``(batch, T, n_units)``.
    start, stop : int, optional
        The input positions changed, ``start <= t < stop`` (None: from the first / to the
        last step; negative values count from the end).
    label : str
        A name shown in the app and stored in sessions.

    Notes
    -----
    Frozen and serialisable: :meth:`to_dict` / :meth:`from_dict` round-trip through JSON.
    """

    layer: str
    units: tuple[int, ...]
    quantity: str = "cell"
    mode: str = "zero"
    value: float = 0.0
    values: np.ndarray | None = None
    start: int | None = None
    stop: int | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.layer, str) or not self.layer:
            raise InputError(f"Intervention.layer must be an LSTM layer name; got {self.layer!r}")
        try:
            units = tuple(int(u) for u in np.atleast_1d(np.asarray(self.units)).ravel())
        except (TypeError, ValueError):
            raise InputError(
                f"Intervention.units must be unit indices; got {self.units!r}"
            ) from None
        if not units:
            raise InputError("Intervention.units is empty: name at least one unit")
        if min(units) < 0:
            raise InputError(f"Intervention.units: unit {min(units)} is negative")
        if len(set(units)) != len(units):
            raise InputError(f"Intervention.units repeats a unit: {units}")
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "quantity", quantity_name(self.quantity))
        if self.mode not in MODES:
            raise InputError(
                f"Intervention.mode must be one of {', '.join(MODES)}; got {self.mode!r}"
            )
        v = float(self.value)
        if not np.isfinite(v):
            raise InputError(f"Intervention.value must be finite; got {self.value!r}")
        object.__setattr__(self, "value", v)
        for name in ("start", "stop"):
            s = getattr(self, name)
            if s is not None:
                if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
                    raise InputError(f"Intervention.{name} must be an int or None; got {s!r}")
                object.__setattr__(self, name, int(s))
        if self.mode in ("mean", "patch"):
            if self.values is None:
                raise InputError(
                    f"Intervention mode {self.mode!r} needs values (mean: one per unit; patch: "
                    "(T, units) from another input's trace)"
                )
            vals = np.array(self.values, dtype=np.float64)
            want = {"mean": (1,), "patch": (2, 3)}[self.mode]
            if vals.ndim not in want or vals.shape[-1] != len(units):
                shape = "(n_units,)" if self.mode == "mean" else "(T, n_units) or (B, T, n_units)"
                raise InputError(
                    f"Intervention mode {self.mode!r}: values must be {shape} with "
                    f"n_units = {len(units)}; found shape {vals.shape}"
                )
            bad = np.isinf(vals) if self.mode == "patch" else ~np.isfinite(vals)
            if bad.any():
                raise InputError(
                    "Intervention.values contains "
                    + ("inf" if self.mode == "patch" else "NaN or inf")
                    + (
                        " (NaN in patch values means: leave unchanged)"
                        if self.mode == "patch"
                        else ""
                    )
                )
            vals.flags.writeable = False
            object.__setattr__(self, "values", vals)
        elif self.values is not None:
            raise InputError(f"Intervention mode {self.mode!r} takes no values array")

    # ---- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (see :meth:`from_dict`)."""
        d: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "layer": self.layer,
            "units": list(self.units),
            "quantity": self.quantity,
            "mode": self.mode,
            "value": self.value,
            "start": self.start,
            "stop": self.stop,
            "label": self.label,
        }
        if self.values is not None:
            d["values"] = np.asarray(self.values).tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Intervention:
        """The intervention :meth:`to_dict` described; bad or unknown fields raise."""
        if not isinstance(d, dict):
            raise InputError(f"an intervention must be a JSON object; found {type(d).__name__}")
        version = d.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise InputError(
                f"intervention format_version {version!r} is not supported (this lstmviz "
                f"reads version {FORMAT_VERSION})"
            )
        known = {"format_version", "layer", "units", "quantity", "mode", "value", "values"}
        known |= {"start", "stop", "label"}
        extra = set(d) - known
        if extra:
            raise InputError(f"intervention has unknown fields: {', '.join(sorted(extra))}")
        if "layer" not in d or "units" not in d:
            raise InputError("an intervention needs at least 'layer' and 'units'")
        vals = d.get("values")
        return cls(
            layer=d["layer"],
            units=tuple(d["units"]),
            quantity=d.get("quantity", "cell"),
            mode=d.get("mode", "zero"),
            value=d.get("value", 0.0),
            values=None if vals is None else np.asarray(vals, np.float64),
            start=d.get("start"),
            stop=d.get("stop"),
            label=str(d.get("label", "")),
        )

    def describe(self) -> str:
        """``"lstm: cell of units 2, 5 := 0 at t 3..7"``."""
        what = {
            "zero": ":= 0",
            "clamp": f":= {self.value:g}",
            "mean": ":= corpus mean",
            "patch": ":= patched",
        }[self.mode]
        when = ""
        if self.start is not None or self.stop is not None:
            a = "start" if self.start is None else str(self.start)
            b = "end" if self.stop is None else str(self.stop - 1)
            when = f" at t {a}..{b}"
        units = ", ".join(str(u) for u in self.units)
        return (
            f"{self.label + ': ' if self.label else ''}{self.layer}: {self.quantity} of unit"
            + (f"s {units}" if len(self.units) > 1 else f" {units}")
            + f" {what}{when}"
        )

    # ---- application -----------------------------------------------------------------------
    def steps(self, steps: int) -> range:
        """The input positions this intervention changes in a sequence of ``steps``."""
        return range(steps)[slice(self.start, self.stop)]

    def check(self, units: int, steps: int, batch: int, hidden_units: int | None = None) -> None:
        """Raise :class:`InputError` unless this fits a layer of ``units`` units run on
        ``batch`` sequences of ``steps`` steps."""
        top = units
        if max(self.units) >= top:
            raise InputError(
                f"intervention on {self.layer!r}: unit {max(self.units)} does not exist (the "
                f"layer has {top} units, 0..{top - 1})"
            )
        if self.mode == "patch":
            vals = np.asarray(self.values)
            if vals.shape[-2] != steps:
                raise InputError(
                    f"intervention on {self.layer!r}: patch values cover {vals.shape[-2]} steps; "
                    f"the input has {steps} (patching needs inputs of the same length)"
                )
            if vals.ndim == 3 and vals.shape[0] not in (1, batch):
                raise InputError(
                    f"intervention on {self.layer!r}: patch values are for {vals.shape[0]} "
                    f"sequences; the input has {batch}"
                )

    def value_at(self, t: int, batch: int, dtype: Any) -> np.ndarray | float:
        """What the units are set to at input position ``t``: a scalar or ``(B|1, n)``."""
        if self.mode == "zero":
            return 0.0
        if self.mode == "clamp":
            return self.value
        vals = np.asarray(self.values)
        if self.mode == "mean":
            return vals.astype(dtype)[None, :]
        v = vals[t] if vals.ndim == 2 else vals[:, t]
        return np.asarray(v, dtype).reshape(-1 if vals.ndim == 3 else 1, len(self.units))


def _plan(
    interventions: Sequence[Intervention], units: int, steps: int, batch: int
) -> dict[str, list[tuple[Intervention, set[int]]]]:
    """Interventions grouped by quantity, each with the set of steps it touches."""
    out: dict[str, list[tuple[Intervention, set[int]]]] = {}
    for iv in interventions:
        iv.check(units, steps, batch)
        out.setdefault(iv.quantity, []).append((iv, set(iv.steps(steps))))
    return out


def _apply(
    plan: dict[str, list[tuple[Intervention, set[int]]]],
    quantity: str,
    t: int,
    target: np.ndarray,
    batch: int,
) -> None:
    for iv, when in plan.get(quantity, ()):
        if t in when:
            v = iv.value_at(t, batch, target.dtype)
            cols = list(iv.units)
            if iv.mode == "patch":
                v = np.broadcast_to(v, (batch, len(cols)))
                keep = np.isnan(v)
                if keep.any():
                    v = np.where(keep, target[:, cols], v)
            target[:, cols] = v


def run_lstm_intervened(
    x: np.ndarray,
    weights: LSTMWeights,
    *,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    go_backwards: bool = False,
    name: str = "lstm",
    layer_name: str | None = None,
    direction: str = "forward",
    interventions: Sequence[Intervention] = (),
    dtype: Any = np.float32,
) -> LayerTrace:
    """:func:`~lstmviz.engine.cell.run_lstm` as a plain step loop, with interventions.

    Parameters
    ----------
    x : ndarray
        ``(batch, T, F)``.
    weights : LSTMWeights
        Any LSTM the engine runs, also with a projection (``hidden`` interventions then act on
        each unit's ``o * tanh(c)`` before the projection).
    h0, c0, mask, go_backwards, name, layer_name, direction
        As for :func:`~lstmviz.engine.cell.run_lstm`.
    interventions : sequence of Intervention
        Applied in order at every step they cover (later ones win on shared units).
    dtype : numpy dtype
        ``np.float32`` (the engine's precision) or ``np.float64`` (finite-difference checks).

    Returns
    -------
    LayerTrace
        The recorded values *after* the interventions (a clamped gate shows its clamp value);
        ``meta["interventions"]`` lists their descriptions.
    """
    dt = np.dtype(dtype)
    x = np.asarray(x, dtype=dt)
    if x.ndim != 3:
        raise InputError(f"LSTM {name!r} expects input (batch, T, features); found shape {x.shape}")
    batch, steps, feats = x.shape
    if feats != weights.input_dim:
        raise InputError(f"LSTM {name!r} expects {weights.input_dim} input features; found {feats}")
    units, pdim = weights.units, weights.output_units
    proj = None if weights.projection is None else np.asarray(weights.projection, dt)

    def state(what: str, s: np.ndarray | None, n: int) -> np.ndarray:
        if s is None:
            return np.zeros((batch, n), dt)
        a = np.asarray(s, dt)
        if a.ndim == 1:
            a = np.broadcast_to(a, (batch, a.shape[0]))
        if a.shape != (batch, n):
            raise InputError(f"initial {what} has shape {a.shape}; expected ({batch}, {n})")
        if not np.all(np.isfinite(a)):
            raise InputError(f"initial {what} contains NaN or inf")
        return np.array(a, dtype=dt, copy=True)

    h_tm1 = state("hidden state h0", h0, pdim)
    c_tm1 = state("cell state c0", c0, units)
    h0_, c0_ = h_tm1.copy(), c_tm1.copy()
    m = None
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != (batch, steps):
            raise InputError(f"mask has shape {m.shape}; expected ({batch}, {steps})")
        if m.all():
            m = None
    for iv in interventions:
        if iv.layer not in (name, layer_name or name):
            raise LstmvizError(
                f"intervention for layer {iv.layer!r} given to LSTM {name!r}"
            )  # an invariant of the callers
    plan = _plan(interventions, units, steps, batch)
    kernel, rec, bias = (None if a is None else np.asarray(a, dt) for a in weights._internal())
    assert kernel is not None and rec is not None
    sig = activations.get(weights.recurrent_activation)
    act_fn = activations.get(weights.activation)
    per_gate = weights.recurrent_activation in ("softmax", "log_softmax")

    pre = np.empty((steps, batch, 4 * units), dt)  # (T, B, 4U) blocks i, f, o, c
    np.matmul(x.transpose(1, 0, 2), kernel, out=pre)  # (T, B, F) @ (F, 4U): x W for all steps
    if bias is not None:
        pre += bias
    act = np.empty_like(pre)  # (T, B, 4U) i, f, o, g
    cs = np.empty((steps, batch, units), dt)
    hs = np.empty((steps, batch, pdim), dt)
    rec_z = np.empty((batch, 4 * units), dt)
    hu = np.empty((batch, units), dt)  # o * tanh(c), before a projection
    hus = None if proj is None else np.empty((steps, batch, units), dt)
    g3 = 3 * units
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    for t in order:
        z = pre[t]  # (B, 4U)
        np.matmul(h_tm1, rec, out=rec_z)  # h_tm1 U
        z += rec_z
        a = act[t]
        if per_gate:
            for k in range(3):
                sig(z[:, k * units : (k + 1) * units], a[:, k * units : (k + 1) * units])
        else:
            sig(z[:, :g3], a[:, :g3])  # i, f, o
        act_fn(z[:, g3:], a[:, g3:])  # g
        for q in ("input_gate", "forget_gate", "output_gate", "candidate"):
            block = INTERVENABLE[q]
            if q in plan and block is not None:
                _apply(plan, q, t, a[:, block * units : (block + 1) * units], batch)
        i, f, o, g = (a[:, :units], a[:, units : 2 * units], a[:, 2 * units : g3], a[:, g3:])
        c = cs[t]
        np.multiply(f, c_tm1, out=c)  # c = f * c_tm1 + i * g
        c += i * g
        _apply(plan, "cell", t, c, batch)
        act_fn(c, hu)  # h = o * tanh(c)
        hu *= o
        h = hs[t]
        if proj is None:
            _apply(plan, "hidden", t, hu, batch)
            h[...] = hu
        else:
            _apply(plan, "hidden", t, hu, batch)
            np.matmul(hu, proj, out=h)  # (B, U) @ (U, P)
            assert hus is not None
            hus[t] = hu
        if m is not None:
            keep = ~m[:, t]
            if keep.any():  # masked step: carry the state over
                c[keep] = c_tm1[keep]
                h[keep] = h_tm1[keep]
        h_tm1, c_tm1 = h, c
    meta: dict[str, Any] = {"engine": "numpy-intervened" if interventions else "numpy-reference"}
    if interventions:
        meta["interventions"] = [iv.describe() for iv in interventions]
    if proj is not None:
        meta["projection"] = pdim
        assert hus is not None
        if m is not None:  # a masked step carries the previous step's per-unit output over
            for t in order:
                p = t + 1 if go_backwards else t - 1
                keep = ~m[:, t]
                if keep.any():
                    hus[t][keep] = 0.0 if not 0 <= p < steps else hus[p][keep]
        hus.flags.writeable = False
        meta["_unit_hidden"] = hus.transpose(1, 0, 2)  # what LayerTrace.unit_hidden hands out
    return LayerTrace(
        name=name,
        weights=weights,
        pre=pre,
        act=act,
        c=cs,
        h=hs,
        h0=h0_,
        c0=c0_,
        x=np.array(x, copy=True),
        mask=None if mask is None else np.asarray(mask, dtype=bool),
        go_backwards=go_backwards,
        layer_name=layer_name or name,
        direction=direction,
        meta=meta,
    )


def check_interventions(model: Model, interventions: Sequence[Intervention]) -> list[Intervention]:
    """``interventions`` as a list, each naming an LSTM layer of ``model`` (else raise)."""
    out = []
    names = model.lstm_trace_names
    for iv in interventions:
        if not isinstance(iv, Intervention):
            raise InputError(
                f"expected Intervention objects; got {type(iv).__name__} (build one with "
                "lstmviz.engine.intervene.Intervention(layer, units, ...))"
            )
        if iv.layer not in names:
            raise InputError(
                f"intervention names layer {iv.layer!r}; the model's LSTM layers are "
                f"{', '.join(names)}"
            )
        out.append(iv)
    return out


def trace_with_interventions(
    model: Model,
    x: Any,
    interventions: Sequence[Intervention],
    *,
    initial_state: dict[str, Any] | None = None,
    step_outputs: bool = True,
) -> Trace:
    """:meth:`Model.trace <lstmviz.engine.model.Model.trace>` with interventions applied.

    LSTM layers without an intervention run in the engine as usual; those with one run in
    :func:`run_lstm_intervened` (every LSTM runs in that loop, so that ``interventions=[]``
    gives the clean trace to compare with, equal to ``model.trace(x)`` up to float32 rounding).
    Returns an ordinary Trace whose output is the model's output under the interventions.
    """
    from .backward import record

    ivs = check_interventions(model, interventions)
    # every LSTM runs in the reference loop (also those without an intervention, and also with
    # no intervention at all): traces with and without interventions then differ only where
    # an intervention acts, not by the rounding of a different loop
    by_layer: dict[str, list[Intervention]] = {name: [] for name in model.lstm_trace_names}
    for iv in ivs:
        by_layer[iv.layer].append(iv)
    tape = record(model, x, initial_state=initial_state, interventions=by_layer)
    return tape.to_trace(step_outputs=step_outputs)
