"""Colour levels: one function for every heatmap, diagram and export, and a lock that keeps them.

The rules (:func:`levels`):

- gates (a sigmoid or hard sigmoid recurrent activation) use ``[0, 1]``;
- values bounded by a tanh-like activation (the candidate ``g``, ``tanh(c)`` and the hidden
  state ``h = o·tanh(c)``) use ``[-1, 1]``;
- everything else -- the cell state, pre-activations, inputs, and ``g``/``h`` of an LSTM with an
  unbounded activation such as the adder's ``activation=None`` -- is symmetric around 0 at a
  *robust extent*, rounded up to a readable number.

The robust extent: each unit's extent is the 99.5th percentile of its ``|value|`` over batch
items and timesteps, so a single spike does not set it; the levels then cover every unit but the
``units // 16`` units with the largest extents (none for fewer than 16 units), so one outlier
unit does not wash out the map of all the others (its colours saturate instead). The result is
rounded up to 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten (27.3 -> 30).

:class:`LevelLock` keeps levels fixed across inputs and training snapshots: while locked, a
quantity keeps the levels it had when it was locked (or first seen); :meth:`LevelLock.widen`
grows them to cover a new trace, only when asked. It serialises to a plain dict for sessions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import LstmvizError

if TYPE_CHECKING:
    from ..engine.trace import LayerTrace

Levels = tuple[float, float]

#: The six quantities of a layer, in display order.
SIX: tuple[str, ...] = (
    "forget_gate",
    "input_gate",
    "output_gate",
    "candidate",
    "cell",
    "hidden",
)
GATES = ("input_gate", "forget_gate", "output_gate")
#: Activations whose output lies in [0, 1] (a gate's colour scale is then [0, 1]).
UNIT_INTERVAL = frozenset({"sigmoid", "hard_sigmoid", "hard_sigmoid_keras2"})
#: Activations whose output lies in [-1, 1] (or inside it).
BOUNDED = frozenset({"tanh", "softsign", *UNIT_INTERVAL})

_ALIASES = {
    "f": "forget_gate",
    "i": "input_gate",
    "o": "output_gate",
    "g": "candidate",
    "c": "cell",
    "h": "hidden",
    "forget": "forget_gate",
    "input": "input_gate",
    "output": "output_gate",
}
#: Every quantity :func:`levels` knows: the six, the four pre-activations, the layer's input
#: ``x``, and the diagram's derived wires (``kept = f·c_{t-1}``, ``written = i·g``,
#: ``tanh_c = activation(c)``, ``cell_prev``, ``hidden_prev``).
KNOWN: tuple[str, ...] = (
    *SIX,
    "z_i",
    "z_f",
    "z_c",
    "z_o",
    "x",
    "kept",
    "written",
    "tanh_c",
    "cell_prev",
    "hidden_prev",
)

#: Percentile of |value| over one unit's steps that sets that unit's extent.
UNIT_PERCENTILE = 99.5
#: One unit in this many may be an outlier left outside the levels.
OUTLIER_EVERY = 16
#: Elements read at most per unit column when estimating an extent (a strided sample beyond).
MAX_SAMPLES = 200_000

_LADDER = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


class LevelsError(LstmvizError):
    """Bad arguments to :func:`levels` or a malformed saved :class:`LevelLock`."""


def canonical(quantity: str) -> str:
    """The full name of ``quantity`` (``"c"`` -> ``"cell"``); raises for an unknown name."""
    if not isinstance(quantity, str):
        raise LevelsError(f"quantity must be a name like 'cell'; got {quantity!r}")
    q = _ALIASES.get(quantity, quantity)
    if q not in KNOWN:
        raise LevelsError(f"unknown quantity {quantity!r}; expected one of {', '.join(KNOWN)}")
    return q


def readable(extent: float) -> float:
    """``extent`` rounded *up* to 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten.

    0 (or a non-finite value) gives 1.0: a map of zeros still gets a scale.
    """
    m = float(extent)
    if not math.isfinite(m) or m <= 0:
        return 1.0
    mag = 10.0 ** math.floor(math.log10(m))
    r = m / mag
    for step in _LADDER:
        if r <= step * (1 + 1e-9):
            return float(f"{step * mag:.6g}")
    return float(f"{10 * mag:.6g}")  # pragma: no cover - r < 10 by construction


def robust_extent(values: Any, *, robust: bool = True) -> float:
    """The extent of ``values`` (last axis: units) used for symmetric levels, unrounded.

    ``robust=False`` gives ``max |value|``. Non-finite values are ignored; an empty or
    all-zero array gives 0.
    """
    a = np.asarray(values)
    if a.dtype.kind not in "fiub":
        raise LevelsError(f"values must be numbers; got an array of dtype {a.dtype}")
    if a.size == 0:
        return 0.0
    if a.ndim == 0:
        a = a.reshape(1, 1)
    elif a.ndim == 1:
        a = a.reshape(1, -1)  # one value per unit
    cols = a.reshape(-1, a.shape[-1])  # (steps, units)
    if cols.shape[0] > MAX_SAMPLES:
        cols = cols[:: -(-cols.shape[0] // MAX_SAMPLES)]
    mag = np.abs(cols.astype(np.float64, copy=False))  # (steps, units)
    mag = np.where(np.isfinite(mag), mag, 0.0)
    if not robust:
        return float(mag.max())
    n = mag.shape[0]
    k = min(n - 1, int(n * UNIT_PERCENTILE / 100.0))
    per_unit = np.partition(mag, k, axis=0)[k]  # (units,)
    units = per_unit.shape[0]
    skip = units // OUTLIER_EVERY
    return float(np.sort(per_unit)[units - 1 - skip])


def _level_kind(q: str, activation: str | None, recurrent: str | None) -> str:
    """``"gate"`` ([0, 1]), ``"bounded"`` ([-1, 1]) or ``"signed"`` (robust, symmetric)."""
    rec_unit = (recurrent or "sigmoid") in UNIT_INTERVAL
    act_bounded = (activation or "tanh") in BOUNDED
    if q in GATES:
        return "gate" if rec_unit else "signed"
    if q in ("candidate", "tanh_c"):
        return "bounded" if act_bounded else "signed"
    if q in ("hidden", "hidden_prev"):
        return "bounded" if act_bounded and rec_unit else "signed"
    return "signed"


def _values_of(lt: LayerTrace, q: str) -> np.ndarray:
    if q == "x":
        return np.asarray(lt.x)
    if q in ("hidden", "hidden_prev"):
        return lt.per_unit("hidden")
    if q == "cell_prev":
        return lt.cell
    if q == "kept":
        return lt.forget_gate * lt.cell_prev  # (B, T, U)
    if q == "written":
        return lt.input_gate * lt.candidate  # (B, T, U)
    if q == "tanh_c":
        from ..engine import activations

        return activations.apply(lt.weights.activation, lt.cell)
    return lt.get(q)


def _is_layer_trace(obj: Any) -> bool:
    return hasattr(obj, "weights") and hasattr(obj, "per_unit") and hasattr(obj, "cell")


def levels(
    quantity: str,
    values: Any = None,
    *,
    activation: str | None = None,
    robust: bool = True,
    recurrent_activation: str | None = None,
) -> Levels:
    """The colour levels ``(lo, hi)`` of ``quantity``.

    Parameters
    ----------
    quantity : str
        ``"forget_gate"``, ``"input_gate"``, ``"output_gate"``, ``"candidate"``, ``"cell"``,
        ``"hidden"`` (or ``f i o g c h``), a pre-activation ``"z_i"``/``"z_f"``/``"z_c"``/
        ``"z_o"``, the layer input ``"x"``, or a cell-diagram wire: ``"kept"`` (f·c_{t-1}),
        ``"written"`` (i·g), ``"tanh_c"`` (the activation of c), ``"cell_prev"``,
        ``"hidden_prev"``.
    values : LayerTrace or array_like, optional
        A :class:`~lstmviz.engine.trace.LayerTrace` (its activations are read from its weights
        and the quantity from its arrays; cached on the trace), or the values themselves with
        units on the last axis (``(batch, T, units)``, ``(T, units)`` or ``(units,)``). Needed
        for every quantity whose levels are not fixed by its activation.
    activation : str, optional
        The LSTM's ``activation`` (the candidate's and ``tanh(c)``'s function) when ``values``
        is an array. None means the standard ``"tanh"``; pass ``"linear"`` for Keras's
        ``activation=None`` (the adder), whose candidate and hidden state are unbounded.
    robust : bool
        Symmetric levels at the robust extent (see the module docstring); False: at
        ``max |value|``, rounded up the same way.
    recurrent_activation : str, optional
        The gates' function when ``values`` is an array (None: ``"sigmoid"``).

    Returns
    -------
    (float, float)
        ``(0, 1)`` for sigmoid gates, ``(-1, 1)`` for tanh-bounded values, else ``(-m, m)``
        with ``m`` the robust extent rounded up to a readable number.

    Raises
    ------
    LevelsError
        An unknown quantity, non-numeric values, or values missing where they are needed.
    """
    q = canonical(quantity)
    lt = values if _is_layer_trace(values) else None
    if lt is not None:
        activation = lt.weights.activation
        recurrent_activation = lt.weights.recurrent_activation
    kind = _level_kind(q, activation, recurrent_activation)
    if kind == "gate":
        return (0.0, 1.0)
    if kind == "bounded":
        return (-1.0, 1.0)
    if lt is not None:
        cache: dict[tuple[str, bool], Levels] = lt.meta.setdefault("_levels", {})
        key = (q, bool(robust))
        if key not in cache:
            m = readable(robust_extent(_values_of(lt, q), robust=robust))
            cache[key] = (-m, m)
        return cache[key]
    if values is None:
        raise LevelsError(
            f"the levels of {q!r} depend on its values: pass the layer trace or the values "
            "(units on the last axis)"
        )
    m = readable(robust_extent(values, robust=robust))
    return (-m, m)


def layer_levels(
    lt: LayerTrace, quantities: Iterable[str] = SIX, *, robust: bool = True
) -> dict[str, Levels]:
    """``{quantity: (lo, hi)}`` of one layer trace (the six quantities by default)."""
    return {canonical(q): levels(q, lt, robust=robust) for q in quantities}


def outside(quantity: str, values: Any, lv: Levels) -> float:
    """The fraction of finite ``values`` of ``quantity`` outside ``lv`` (0 when empty).

    ``values`` is a LayerTrace or an array as for :func:`levels`. A locked scale with a
    large fraction outside is worth widening.
    """
    q = canonical(quantity)
    a = _values_of(values, q) if _is_layer_trace(values) else np.asarray(values)
    a = np.asarray(a, dtype=np.float64).ravel()
    a = a[np.isfinite(a)]
    if a.size == 0:
        return 0.0
    lo, hi = lv
    return float(np.count_nonzero((a < lo) | (a > hi)) / a.size)


def _check_levels(v: Any, where: str) -> Levels:
    if (
        not isinstance(v, (list, tuple))
        or len(v) != 2
        or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    ):
        raise LevelsError(f"{where}: levels must be [lo, hi] numbers; found {v!r:.60}")
    lo, hi = float(v[0]), float(v[1])
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise LevelsError(f"{where}: levels must be finite with lo < hi; found [{lo}, {hi}]")
    return (lo, hi)


@dataclass
class LevelLock:
    """Colour levels that stay put across inputs and training snapshots.

    Levels are kept per layer (its trace name) and quantity. Unlocked, :meth:`levels` follows
    each new trace (and remembers what it returned); locked, a quantity keeps the levels it
    had, and only a quantity seen for the first time gets new ones. Widening never happens by
    itself: :meth:`widen` grows the kept levels to cover a trace, when the user asks.

    >>> lock = LevelLock()
    >>> lock.levels("cell", trace_epoch_1.layer("lstm"))   # e.g. (-1.5, 1.5)
    >>> lock.lock()                                         # keep what is shown
    >>> lock.levels("cell", trace_epoch_12.layer("lstm"))  # still (-1.5, 1.5)
    >>> lock.widen(trace_epoch_12.layer("lstm"))            # now e.g. (-20.0, 20.0)
    """

    locked: bool = False
    robust: bool = True
    kept: dict[str, dict[str, Levels]] = field(default_factory=dict)

    FORMAT = "lstmviz-levels"
    VERSION = 1

    def levels(self, quantity: str, lt: LayerTrace, layer: str | None = None) -> Levels:
        """The levels to draw ``quantity`` of ``lt`` with (``layer``: the key, ``lt.name``
        by default)."""
        q = canonical(quantity)
        key = layer or lt.name
        have = self.kept.get(key, {}).get(q)
        if self.locked and have is not None:
            return have
        lv = levels(q, lt, robust=self.robust)
        self.kept.setdefault(key, {})[q] = lv
        return lv

    def layer_levels(
        self, lt: LayerTrace, quantities: Iterable[str] = SIX, layer: str | None = None
    ) -> dict[str, Levels]:
        """:meth:`levels` of each quantity of one layer trace."""
        return {canonical(q): self.levels(q, lt, layer) for q in quantities}

    def lock(self, *traces: LayerTrace, quantities: Iterable[str] = SIX) -> None:
        """Lock. With layer traces given, their levels (of ``quantities``) become the kept
        ones first; without, the levels last shown stay."""
        self.locked = False
        for lt in traces:
            self.layer_levels(lt, quantities)
        self.locked = True

    def unlock(self) -> None:
        """Follow each trace again (the next :meth:`levels` call recomputes)."""
        self.locked = False

    def widen(self, *traces: LayerTrace, quantities: Iterable[str] | None = None) -> bool:
        """Grow the kept levels so they also cover ``traces``' own levels (never shrink).

        ``quantities``: those kept for each layer by default. Returns True when anything grew.
        """
        grew = False
        for lt in traces:
            kept = self.kept.setdefault(lt.name, {})
            qs = [canonical(q) for q in quantities] if quantities is not None else list(kept)
            for q in qs or SIX:
                lo, hi = levels(q, lt, robust=self.robust)
                old = kept.get(q)
                new = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
                if new != old:
                    kept[q] = new
                    grew = True
        return grew

    def set(self, quantity: str, lv: Levels, layer: str) -> None:
        """Keep ``lv`` for ``quantity`` of ``layer`` (typed by the user)."""
        self.kept.setdefault(layer, {})[canonical(quantity)] = _check_levels(
            list(lv), f"levels of {quantity!r}"
        )

    def clear(self) -> None:
        """Forget every kept level (a new model)."""
        self.kept.clear()

    # --- sessions ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"format", "version", "locked", "robust", "levels"}``."""
        return {
            "format": self.FORMAT,
            "version": self.VERSION,
            "locked": self.locked,
            "robust": self.robust,
            "levels": {
                layer: {q: [lo, hi] for q, (lo, hi) in qs.items()}
                for layer, qs in self.kept.items()
            },
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "levels") -> LevelLock:
        """Rebuild a lock from :meth:`to_dict`'s output; every field is checked."""
        if not isinstance(d, Mapping):
            raise LevelsError(f"{source}: expected a JSON object; found {type(d).__name__}")
        if d.get("format") != cls.FORMAT:
            raise LevelsError(f"{source}: format must be {cls.FORMAT!r}; found {d.get('format')!r}")
        if d.get("version") != cls.VERSION:
            raise LevelsError(
                f"{source}: unknown version {d.get('version')!r}; this lstmviz reads "
                f"version {cls.VERSION}"
            )
        flags = {}
        for name in ("locked", "robust"):
            v = d.get(name, name == "robust")
            if not isinstance(v, bool):
                raise LevelsError(f"{source}: {name!r} must be true or false; found {v!r:.40}")
            flags[name] = v
        raw = d.get("levels", {})
        if not isinstance(raw, Mapping):
            raise LevelsError(f"{source}: 'levels' must be an object of layers")
        kept: dict[str, dict[str, Levels]] = {}
        for layer, qs in raw.items():
            if not isinstance(layer, str) or not isinstance(qs, Mapping):
                raise LevelsError(
                    f"{source}: levels of layer {layer!r:.40} must be an object of quantities"
                )
            kept[layer] = {}
            for q, lv in qs.items():
                kept[layer][canonical(q)] = _check_levels(lv, f"{source}: {layer}/{q}")
        return cls(locked=flags["locked"], robust=flags["robust"], kept=kept)
