"""The trace: every internal value of every LSTM layer at every timestep, frozen.

A :class:`LayerTrace` keeps its arrays time-major (``(T, batch, ...)``, the order the
recurrence writes them) and hands them out batch-major, ``(batch, T, units)``, as read-only
views. Index ``t`` is always the position in the *input* sequence, also for a layer that runs
backwards (``go_backwards`` or the backward half of a Bidirectional).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ArgumentError
from .reprs import short

if TYPE_CHECKING:
    from .cell import LSTMWeights

#: The six quantities shown everywhere, in display order, with their symbols.
QUANTITIES: tuple[str, ...] = (
    "forget_gate",
    "input_gate",
    "output_gate",
    "candidate",
    "cell",
    "hidden",
)
SYMBOLS = {
    "input_gate": "i",
    "forget_gate": "f",
    "candidate": "g",
    "output_gate": "o",
    "cell": "c",
    "hidden": "h",
}
TITLES = {
    "input_gate": "input gate i",
    "forget_gate": "forget gate f",
    "candidate": "candidate g",
    "output_gate": "output gate o",
    "cell": "cell state c",
    "hidden": "hidden state h",
}
GATES = ("input_gate", "forget_gate", "output_gate")

# Column blocks of the internal (T, B, 4U) buffers: i, f, o (the recurrent activation,
# contiguous so one call covers them), then the candidate g.
_BLOCK = {"input_gate": 0, "forget_gate": 1, "output_gate": 2, "candidate": 3}


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class LayerTrace:
    """Everything one LSTM layer (or one direction of a Bidirectional) computed.

    Public arrays, each ``(batch, T, units)`` float32 and read-only:
    ``input_gate``, ``forget_gate``, ``candidate``, ``output_gate``, ``cell``, ``hidden``,
    and the pre-activations ``z_i``, ``z_f``, ``z_c``, ``z_o``.
    """

    name: str
    weights: LSTMWeights
    pre: np.ndarray  # (T, B, 4U) pre-activations, blocks i, f, o, c
    act: np.ndarray  # (T, B, 4U) activations, blocks i, f, o, g
    c: np.ndarray  # (T, B, U)
    h: np.ndarray  # (T, B, U)
    h0: np.ndarray  # (B, U) initial hidden state
    c0: np.ndarray  # (B, U) initial cell state
    x: np.ndarray  # (B, T, F) the layer's input sequence
    mask: np.ndarray | None = None  # (B, T) bool, True where the step counts
    go_backwards: bool = False
    layer_name: str = ""  # the model layer this belongs to (the Bidirectional's name)
    direction: str = "forward"  # "forward" or "backward"
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        b, t, u = self.batch_size, self.timesteps, self.units
        extra = ", go_backwards=True" if self.go_backwards else ""
        if self.mask is not None:
            extra += f", masked steps={int(np.size(self.mask) - np.count_nonzero(self.mask))}"
        return f"LayerTrace({self.name!r}, batch={b}, T={t}, units={u}{extra})"

    def __post_init__(self) -> None:
        for a in (self.pre, self.act, self.c, self.h, self.h0, self.c0, self.x):
            _readonly(a)

    # --- shapes -------------------------------------------------------------------------
    @property
    def units(self) -> int:
        return int(self.c.shape[2])  # c, not h: h has P columns with a projection

    @property
    def hidden_units(self) -> int:
        """Columns of ``hidden``: ``units``, or P for a projected (proj_size) LSTM."""
        return int(self.h.shape[2])

    @property
    def projected(self) -> bool:
        """True for an LSTM with a projection (proj_size): ``hidden`` is not per unit."""
        return self.hidden_units != self.units

    @property
    def unit_hidden(self) -> np.ndarray:
        """Each unit's own output ``o * tanh(c)``, ``(batch, T, units)``.

        The same array as :attr:`hidden`, except for a projected LSTM, whose ``hidden`` is this
        times the projection (P columns, not one per unit).
        """
        if not self.projected:
            return self.hidden
        cached = self.meta.get("_unit_hidden")
        if cached is None:
            from . import activations

            m = activations.get(self.weights.activation)(self.c, np.empty_like(self.c))
            m *= self.act[:, :, 2 * self.units : 3 * self.units]  # o, (T, B, U)
            cached = self.meta["_unit_hidden"] = _readonly(m).transpose(1, 0, 2)
        return cached

    def per_unit(self, quantity: str) -> np.ndarray:
        """Like :meth:`get`, but ``hidden`` is :attr:`unit_hidden`: one column per unit."""
        if quantity in ("hidden", "h") and self.projected:
            return self.unit_hidden
        return self.get(quantity)

    def at_unit(self, quantity: str, t: int, b: int = 0) -> np.ndarray:
        """Like :meth:`at`, but ``hidden`` is :attr:`unit_hidden`: ``(units,)``."""
        if quantity in ("hidden", "h") and self.projected:
            return np.asarray(self.unit_hidden[b, t])
        return self.at(quantity, t, b)

    @property
    def batch_size(self) -> int:
        return int(self.h.shape[1])

    @property
    def timesteps(self) -> int:
        return int(self.h.shape[0])

    def _block(self, buf: np.ndarray, k: int) -> np.ndarray:
        u = self.units
        return buf[:, :, k * u : (k + 1) * u].transpose(1, 0, 2)

    # --- the six quantities, (batch, T, units) ------------------------------------------
    @property
    def input_gate(self) -> np.ndarray:
        return self._block(self.act, 0)

    @property
    def forget_gate(self) -> np.ndarray:
        return self._block(self.act, 1)

    @property
    def output_gate(self) -> np.ndarray:
        return self._block(self.act, 2)

    @property
    def candidate(self) -> np.ndarray:
        return self._block(self.act, 3)

    @property
    def cell(self) -> np.ndarray:
        return self.c.transpose(1, 0, 2)

    @property
    def hidden(self) -> np.ndarray:
        return self.h.transpose(1, 0, 2)

    # --- pre-activations ----------------------------------------------------------------
    @property
    def z_i(self) -> np.ndarray:
        return self._block(self.pre, 0)

    @property
    def z_f(self) -> np.ndarray:
        return self._block(self.pre, 1)

    @property
    def z_o(self) -> np.ndarray:
        return self._block(self.pre, 2)

    @property
    def z_c(self) -> np.ndarray:
        return self._block(self.pre, 3)

    def get(self, quantity: str) -> np.ndarray:
        """One quantity by name (``"forget_gate"``, ``"cell"``, ``"z_f"``, ...)."""
        aliases = {
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
        quantity = aliases.get(quantity, quantity)
        if quantity not in (*QUANTITIES, "z_i", "z_f", "z_c", "z_o"):
            raise ArgumentError(
                f"unknown quantity {quantity!r}; expected one of {', '.join(QUANTITIES)}"
            )
        return np.asarray(getattr(self, quantity))

    def at(self, quantity: str, t: int, b: int = 0) -> np.ndarray:
        """``quantity`` of batch item ``b`` at input position ``t``: ``(units,)``."""
        if quantity in _BLOCK:
            u = self.units
            k = _BLOCK[quantity]
            return np.asarray(self.act[t, b, k * u : (k + 1) * u])
        if quantity == "cell":
            return np.asarray(self.c[t, b])
        if quantity == "hidden":
            return np.asarray(self.h[t, b])
        return np.asarray(self.get(quantity)[b, t])

    # --- the step before t, in processing order ------------------------------------------
    def prev_index(self, t: int) -> int | None:
        """Input position of the step processed just before ``t`` (None: the initial state)."""
        if self.go_backwards:
            return t + 1 if t + 1 < self.timesteps else None
        return t - 1 if t > 0 else None

    @property
    def processing_order(self) -> np.ndarray:
        order = np.arange(self.timesteps)
        return order[::-1] if self.go_backwards else order

    @property
    def cell_prev(self) -> np.ndarray:
        """``c_{t-1}`` in processing order for every position t: ``(batch, T, units)``."""
        return self._shift(self.c, self.c0)

    @property
    def hidden_prev(self) -> np.ndarray:
        """``h_{t-1}`` in processing order for every position t: ``(batch, T, units)``."""
        return self._shift(self.h, self.h0)

    def _shift(self, buf: np.ndarray, first: np.ndarray) -> np.ndarray:
        out = np.empty_like(buf)
        if self.go_backwards:
            out[:-1] = buf[1:]
            out[-1] = first
        else:
            out[1:] = buf[:-1]
            out[0] = first
        return _readonly(out.transpose(1, 0, 2))

    def position(self, t: Any, b: Any = 0) -> tuple[int, int]:
        """``(t, b)`` as indices into this trace: integers, negative values counted from the
        end as in NumPy (``t=-1`` is the last input position). Raises
        :class:`~lstmviz.errors.ArgumentError` naming the range for anything else."""
        out = []
        for key, v, n in (("t", t, self.timesteps), ("b", b, self.batch_size)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ArgumentError(
                    f"layer {self.name!r}: {key} must be an integer; found "
                    f"{type(v).__name__} {v!r:.40}"
                )
            i = int(v) + n if v < 0 else int(v)
            if not 0 <= i < n:
                what = "timestep" if key == "t" else "batch item"
                raise ArgumentError(
                    f"layer {self.name!r}: {what} {key}={int(v)} is out of range; the trace has "
                    f"{n} {'timesteps' if key == 't' else 'batch items'} ({key} = 0..{n - 1}, or "
                    f"-{n}..-1 from the end)"
                )
            out.append(i)
        return out[0], out[1]

    def prev_state(self, t: int, b: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(h_{t-1}, c_{t-1})`` of batch item ``b`` before the step at position ``t``
        (``t=-1``: the last position, as in NumPy)."""
        t, b = self.position(t, b)
        p = self.prev_index(t)
        if p is None:
            return self.h0[b], self.c0[b]
        return self.h[p, b], self.c[p, b]

    def contributions(
        self, t: int, b: int = 0, units: Any = None
    ) -> dict[str, dict[str, np.ndarray]]:
        """Each gate's pre-activation split into ``W·x``, ``U·h`` and ``b`` for step ``t``.

        Returns ``{gate: {"Wx": (n,), "Uh": (n,), "b": (n,), "z": (n,)}}`` with gate in
        ``("input_gate", "forget_gate", "candidate", "output_gate")``, for every unit
        (``n = units``) or only for ``units`` (a sequence of unit indices, in that order):
        a view of one unit reads four columns of the weights instead of all of them.
        ``t=-1`` is the last input position, as in NumPy; a ``t``, ``b`` or unit out of
        range raises :class:`~lstmviz.errors.ArgumentError`.
        """
        w = self.weights
        u = self.units
        t, b = self.position(t, b)
        h_tm1, _ = self.prev_state(t, b)
        x_t = self.x[b, t]
        gates = ("input_gate", "forget_gate", "candidate", "output_gate")
        bias = w.bias if w.bias is not None else np.zeros(4 * u, np.float32)
        if units is not None:
            try:
                idx = np.asarray([int(v) for v in np.atleast_1d(units)], np.int64)
            except (TypeError, ValueError):
                raise ArgumentError(
                    f"layer {self.name!r}: units must be unit indices; found {units!r:.60}"
                ) from None
            bad = idx[(idx < 0) | (idx >= u)]
            if bad.size:
                raise ArgumentError(
                    f"layer {self.name!r}: unit {int(bad[0])} is out of range; the layer has "
                    f"{u} units (0..{u - 1})"
                )
            cols = (np.arange(4)[:, None] * u + idx[None, :]).ravel()  # (4 * n,) gate-major
            n = idx.size
            wx = x_t @ w.kernel[:, cols]
            uh = h_tm1 @ w.recurrent_kernel[:, cols]
            bias = bias[cols]
        else:
            n = u
            wx = x_t @ w.kernel  # (4U,) Keras order i, f, c, o
            uh = h_tm1 @ w.recurrent_kernel  # (4U,)
        out = {}
        for k, gate in enumerate(gates):
            sl = slice(k * n, (k + 1) * n)
            out[gate] = {"Wx": wx[sl], "Uh": uh[sl], "b": bias[sl], "z": wx[sl] + uh[sl] + bias[sl]}
        return out

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.pre, self.act, self.c, self.h))


@dataclass(frozen=True, eq=False)
class Trace:
    """The result of :meth:`lstmviz.engine.model.Model.trace`.

    ``output`` equals Keras's ``model(x)`` (a list for a multi-output model);
    ``layers`` holds one :class:`LayerTrace` per LSTM layer in model order; a Bidirectional
    contributes ``"<name>/forward"`` and ``"<name>/backward"``.
    """

    output: Any
    layers: tuple[LayerTrace, ...]
    inputs: Any
    engine: str = "numpy"
    step_output: np.ndarray | None = None  # (batch, T, K): the head applied to h_t at every t
    layer_outputs: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        out = short(self.output)
        return (
            f"Trace(layers={list(self.layer_names)}, batch={self.batch_size}, "
            f"T={self.timesteps}, output={out}, engine={self.engine!r})"
        )

    @property
    def layer_names(self) -> list[str]:
        return [lt.name for lt in self.layers]

    def layer(self, name: str | int) -> LayerTrace:
        """A :class:`LayerTrace` by its name in the file (or its index)."""
        if isinstance(name, int):
            try:
                return self.layers[name]
            except IndexError:
                raise ArgumentError(
                    f"layer index {name} out of range: the trace has {len(self.layers)} LSTM "
                    "layer(s)"
                ) from None
        for lt in self.layers:
            if lt.name == name:
                return lt
        # a Bidirectional by its own name: its forward half
        for lt in self.layers:
            if lt.layer_name == name:
                return lt
        raise ArgumentError(
            f"no LSTM layer named {name!r} in the trace; LSTM layers: "
            f"{', '.join(self.layer_names) or '(none)'}"
        )

    @property
    def batch_size(self) -> int:
        return self.layers[0].batch_size if self.layers else 0

    @property
    def timesteps(self) -> int:
        return self.layers[0].timesteps if self.layers else 0

    @property
    def nbytes(self) -> int:
        return sum(lt.nbytes for lt in self.layers)

    # --- inline figures for notebooks (lstmviz.export.inline, imported on use) -------------
    def plot(
        self,
        t: int | None = None,
        layer: str | int | None = None,
        units: Any = None,
        **kwargs: Any,
    ) -> Any:
        """The gates of one layer as a ``matplotlib.figure.Figure`` in the export's paper
        style (shown inline in Jupyter); ``t`` boxes a timestep and dims the later ones.

        See :func:`lstmviz.export.inline.plot` for ``batch``, ``quantities``, ``style``...
        """
        from ..export.inline import plot

        return plot(self, t=t, layer=layer, units=units, **kwargs)

    def animate(self, layer: str | int | None = None, units: Any = None, **kwargs: Any) -> Any:
        """An animation stepping through the timesteps of one layer, shown inline in
        Jupyter as HTML5 (:class:`lstmviz.export.inline.InlineAnimation`).

        See :func:`lstmviz.export.inline.animate` for ``steps``, ``fps``, ``mode``...
        """
        from ..export.inline import animate

        return animate(self, layer=layer, units=units, **kwargs)
