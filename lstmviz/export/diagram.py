"""The LSTM cell diagram (colah's drawing) as a scene, its values from a trace, and a renderer.

Three parts, so that the app can draw the same picture with QPainter and the export with
matplotlib:

1. :func:`cell_scene` builds a **scene**: plain frozen dataclasses in abstract coordinates
   (no Qt, no matplotlib). **Coordinates**: x to the right, **y downwards** (as on a screen and
   in QPainter); one cell's body spans ``(0, 0)`` to ``(CELL_W, CELL_H)`` = ``(14, 8)`` and the
   scene's :attr:`Scene.bounds` say what to show. Primitives:

   - :class:`CellFrame` -- a cell's rounded body (a ghost of the step before/after is faded);
   - :class:`Box` -- a σ / tanh box (``shape="rect"``), a pointwise ⊙ or + (``"circle"``), or
     the activation of c (``"ellipse"``);
   - :class:`Wire` -- a polyline with an arrow at its end, carrying one quantity: ``key``
     (``"kept"``, ``"z_f"``...), ``symbol`` (``"f·cₜ₋₁"``), ``formula`` (the equation), the
     levels quantity that colours it (``level``), and where its number goes (``label_at``,
     ``label_side`` in ``{"left", "right", "above", "below"}``);
   - :class:`Junction` -- a dot where a wire splits;
   - :class:`Label` -- free text (``"x_t"``, ``"layer lstm_1"``, ``"t − 1"``).

   Wire ids are ``"<layer index>/<key>"``; stacked layers chain upwards (layer 0 at the bottom:
   the h_t leaving a cell's top is the x_t entering the next cell's bottom).

2. :func:`unit_values` / :func:`layer_values` / :func:`diagram_values` compute every wire's
   value at step t **from the trace only** (its arrays and
   :meth:`~lstmviz.engine.trace.LayerTrace.contributions`): a :class:`WireValue` per wire for
   one unit (number, text, formula with numbers), or an array over units for the whole layer
   (drawn as a small colour strip). The activation is drawn as the model has it: Keras's
   ``activation=None`` (the adder) is the identity, any other by its name.

3. :class:`DiagramFigure` renders scene + values with matplotlib: PNG, SVG/PDF with real text,
   and frames for GIF/MP4 (:func:`write_diagram_animation`). Colours follow the heatmaps:
   ``viridis`` on [0, 1] for gates, the diverging map for signed values, levels from
   :func:`lstmviz.analysis.levels.levels`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import LstmvizError

if TYPE_CHECKING:
    from ..engine.trace import LayerTrace, Trace

#: horizontal distance between the four gate boxes
GAP = 3.0
CELL_W = 18.0
CELL_H = 8.0
#: vertical distance between stacked cells (a cell's top exit meets the next one's input)
STACK_DY = 12.5
#: horizontal distance to the ghost cells of steps t - 1 and t + 1: the c and h leaving one
#: cell are the c and h entering the next
GHOST_DX = CELL_W + 5.0

Point = tuple[float, float]

#: wire key -> (levels quantity, colour-map quantity)
WIRE_LEVELS: dict[str, str] = {
    "x": "x",
    "h_prev": "hidden_prev",
    "c_prev": "cell",
    "z_f": "z_f",
    "z_i": "z_i",
    "z_c": "z_c",
    "z_o": "z_o",
    "f": "forget_gate",
    "i": "input_gate",
    "g": "candidate",
    "o": "output_gate",
    "kept": "cell",
    "written": "cell",
    "c": "cell",
    "c_branch": "cell",
    "tanh_c": "tanh_c",
    "h": "hidden",
    "h_up": "hidden",
}
#: wire keys drawn without a number of their own (the same value is shown on another wire)
UNLABELLED = frozenset({"c_branch", "hx"})
GATE_KEYS = ("f", "i", "o")


# --- the scene ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellFrame:
    layer: int
    x: float
    y: float
    w: float
    h: float
    ghost: str = ""  # "", "prev" (the step before) or "next" (the step after)
    title: str = ""


@dataclass(frozen=True)
class Box:
    id: str
    layer: int
    shape: str  # "rect" (σ, tanh), "circle" (⊙, +), "ellipse" (the activation of c)
    x: float  # centre
    y: float
    w: float
    h: float
    text: str
    kind: str  # "gate", "activation", "multiply", "add"
    formula: str = ""
    ghost: bool = False
    #: the quantity this part computes (its equation, its heatmap row): "forget_gate",
    #: "input_gate", "candidate", "output_gate", "kept", "cell", "written", "tanh_c", "hidden"
    quantity: str = ""


@dataclass(frozen=True)
class Wire:
    id: str
    layer: int
    key: str
    points: tuple[Point, ...]
    symbol: str
    formula: str
    level: str  # the levels quantity colouring it (lstmviz.analysis.levels)
    label_at: Point = (0.0, 0.0)
    label_side: str = "right"
    arrow: bool = True
    ghost: bool = False


@dataclass(frozen=True)
class Junction:
    x: float
    y: float
    layer: int
    ghost: bool = False


@dataclass(frozen=True)
class Label:
    text: str
    x: float
    y: float
    layer: int
    role: str = "name"  # "name" (x_t, h_t...), "title", "ghost"
    anchor: str = "center"


@dataclass(frozen=True)
class Scene:
    """Everything to draw, in abstract coordinates (x right, y down); see the module doc."""

    bounds: tuple[float, float, float, float]  # x0, y0, x1, y1
    cells: tuple[CellFrame, ...]
    boxes: tuple[Box, ...]
    wires: tuple[Wire, ...]
    junctions: tuple[Junction, ...]
    labels: tuple[Label, ...]
    layer_names: tuple[str, ...] = ()
    activation: tuple[str, ...] = ()  # per layer: the candidate's / c's activation name

    def wire(self, wire_id: str) -> Wire:
        for w in self.wires:
            if w.id == wire_id:
                return w
        raise LstmvizError(f"no wire {wire_id!r} in the diagram")

    def to_dict(self) -> dict[str, Any]:
        """The scene as plain JSON-ready data (for other renderers and the docs)."""
        return asdict(self)


def _act_text(name: str) -> str:
    return {"linear": "id", "tanh": "tanh", "sigmoid": "σ"}.get(name, name)


def _act_formula(name: str, arg: str) -> str:
    if name == "linear":
        return f"{arg} (no activation)"
    return f"{_act_text(name)}({arg})"


def _cell_primitives(
    k: int, dx: float, dy: float, activation: str, ghost: str = ""
) -> tuple[list[Box], list[Wire], list[Junction], list[Label]]:
    """One cell's primitives, offset by (dx, dy). Gates sit GAP apart on the bus (y = 7.2)
    below the conveyor belt (y = 1.2)."""
    g = bool(ghost)
    A = _act_text(activation)
    xf, xi, xg, xo = 3.0, 3.0 + GAP, 3.0 + 2 * GAP, 3.0 + 3 * GAP  # the four gates
    xh = xo + 2.6  # the output multiply, under the activation of c
    xu = xh + 1.8  # h_t leaves through the top here
    right = CELL_W + 2.4  # where c_t and h_t leave the cell
    by, bh = 5.2, 0.95  # gate boxes' centre and height
    r = 0.4  # radius of the pointwise operations

    def P(x: float, y: float) -> Point:
        return (x + dx, y + dy)

    pre = f"{k}/" if not g else f"{k}/{ghost}:"
    boxes = [
        Box(
            pre + "box_f",
            k,
            "rect",
            *P(xf, by),
            1.2,
            bh,
            "σ",
            "gate",
            "f = σ(W_f·xₜ + U_f·hₜ₋₁ + b_f)",
            g,
        ),
        Box(
            pre + "box_i",
            k,
            "rect",
            *P(xi, by),
            1.2,
            bh,
            "σ",
            "gate",
            "i = σ(W_i·xₜ + U_i·hₜ₋₁ + b_i)",
            g,
        ),
        Box(
            pre + "box_g",
            k,
            "rect",
            *P(xg, by),
            1.5,
            bh,
            A,
            "activation",
            "g = " + _act_formula(activation, "W_c·xₜ + U_c·hₜ₋₁ + b_c"),
            g,
        ),
        Box(
            pre + "box_o",
            k,
            "rect",
            *P(xo, by),
            1.2,
            bh,
            "σ",
            "gate",
            "o = σ(W_o·xₜ + U_o·hₜ₋₁ + b_o)",
            g,
        ),
        Box(
            pre + "mul_f",
            k,
            "circle",
            *P(xf, 1.2),
            2 * r,
            2 * r,
            "⊙",
            "multiply",
            "f·cₜ₋₁: what is kept",
            g,
        ),
        Box(
            pre + "add", k, "circle", *P(xg, 1.2), 2 * r, 2 * r, "+", "add", "cₜ = f·cₜ₋₁ + i·g", g
        ),
        Box(
            pre + "mul_i",
            k,
            "circle",
            *P(xg, 3.2),
            2 * r,
            2 * r,
            "⊙",
            "multiply",
            "i·g: what is written",
            g,
        ),
        Box(
            pre + "act_c",
            k,
            "ellipse",
            *P(xh, 2.75),
            1.5,
            0.85,
            A,
            "activation",
            _act_formula(activation, "cₜ"),
            g,
        ),
        Box(
            pre + "mul_o",
            k,
            "circle",
            *P(xh, 4.4),
            2 * r,
            2 * r,
            "⊙",
            "multiply",
            "hₜ = o·" + _act_formula(activation, "cₜ"),
            g,
        ),
    ]
    part = {
        "box_f": "forget_gate",
        "box_i": "input_gate",
        "box_g": "candidate",
        "box_o": "output_gate",
        "mul_f": "kept",
        "add": "cell",
        "mul_i": "written",
        "act_c": "tanh_c",
        "mul_o": "hidden",
    }
    boxes = [replace(b, quantity=part[b.id.rsplit("/", 1)[1].split(":")[-1]]) for b in boxes]
    top = by - bh / 2
    bottom = by + bh / 2
    spec: list[tuple[str, list[Point], str, str, Point, str]] = [
        # key, points, symbol, formula, label position, side
        (
            "c_prev",
            [(-2.6, 1.2), (xf - r, 1.2)],
            "cₜ₋₁",
            "the cell state before this step",
            (-0.2, 0.75),
            "above",
        ),
        (
            "kept",
            [(xf + r, 1.2), (xg - r, 1.2)],
            "f·cₜ₋₁",
            "kept = f·cₜ₋₁",
            ((xf + xg) / 2, 0.75),
            "above",
        ),
        (
            "c",
            [(xg + r, 1.2), (right, 1.2)],
            "cₜ",
            "cₜ = f·cₜ₋₁ + i·g",
            ((xg + xh) / 2, 0.75),
            "above",
        ),
        ("c_branch", [(xh, 1.2), (xh, 2.75 - 0.425)], "cₜ", "cₜ", (xh, 2.0), "right"),
        (
            "tanh_c",
            [(xh, 2.75 + 0.425), (xh, 4.4 - r)],
            f"{A}(cₜ)",
            _act_formula(activation, "cₜ"),
            (xh + 0.3, 3.55),
            "right",
        ),
        (
            "h_prev",
            [(-2.6, 7.2), (1.4, 7.2)],
            "hₜ₋₁",
            "the hidden state before this step",
            (-0.2, 7.6),
            "below",
        ),
        ("x", [(1.4, 10.6), (1.4, 7.2)], "xₜ", "the input at step t", (1.75, 9.7), "right"),
        (
            "hx",
            [(1.4, 7.2), (xo, 7.2)],
            "[hₜ₋₁, xₜ]",
            "what every gate reads",
            ((xf + xo) / 2, 7.2),
            "below",
        ),
        (
            "z_f",
            [(xf, 7.2), (xf, bottom)],
            "z_f",
            "W_f·xₜ + U_f·hₜ₋₁ + b_f",
            (xf + 0.25, 6.45),
            "right",
        ),
        (
            "z_i",
            [(xi, 7.2), (xi, bottom)],
            "z_i",
            "W_i·xₜ + U_i·hₜ₋₁ + b_i",
            (xi + 0.25, 6.45),
            "right",
        ),
        (
            "z_c",
            [(xg, 7.2), (xg, bottom)],
            "z_c",
            "W_c·xₜ + U_c·hₜ₋₁ + b_c",
            (xg + 0.25, 6.45),
            "right",
        ),
        (
            "z_o",
            [(xo, 7.2), (xo, bottom)],
            "z_o",
            "W_o·xₜ + U_o·hₜ₋₁ + b_o",
            (xo + 0.25, 6.45),
            "right",
        ),
        ("f", [(xf, top), (xf, 1.2 + r)], "f", "f = σ(z_f)", (xf + 0.25, 3.1), "right"),
        ("i", [(xi, top), (xi, 3.2), (xg - r, 3.2)], "i", "i = σ(z_i)", (xi + 0.25, 4.0), "right"),
        (
            "g",
            [(xg, top), (xg, 3.2 + r)],
            "g",
            "g = " + _act_formula(activation, "z_c"),
            (xg + 0.25, 4.0),
            "right",
        ),
        (
            "written",
            [(xg, 3.2 - r), (xg, 1.2 + r)],
            "i·g",
            "written = i·g",
            (xg + 0.25, 2.2),
            "right",
        ),
        ("o", [(xo, top), (xo, 4.4), (xh - r, 4.4)], "o", "o = σ(z_o)", (xo + 0.25, 4.05), "above"),
        (
            "h",
            [(xh, 4.4 + r), (xh, 7.2), (right, 7.2)],
            "hₜ",
            "hₜ = o·" + _act_formula(activation, "cₜ"),
            (xu + 1.3, 7.6),
            "below",
        ),
        (
            "h_up",
            [(xu, 7.2), (xu, -2.0)],
            "hₜ",
            "hₜ, to the next layer or the output",
            (xu + 0.35, -1.0),
            "right",
        ),
    ]
    wires = [
        Wire(
            pre + key,
            k,
            key,
            tuple(P(*p) for p in pts),
            sym,
            formula,
            WIRE_LEVELS.get(key, "x"),
            P(*lab),
            side,
            key not in ("hx", "c_branch"),
            g,
        )
        for key, pts, sym, formula, lab, side in spec
    ]
    junctions = [
        Junction(*P(x, y), k, g)
        for x, y in ((1.4, 7.2), (xf, 7.2), (xi, 7.2), (xg, 7.2), (xh, 1.2), (xu, 7.2))
    ]
    labels = [
        Label("cₜ₋₁", *P(-2.9, 1.2), k, "name", "right"),
        Label("hₜ₋₁", *P(-2.9, 7.2), k, "name", "right"),
        Label("cₜ", *P(right + 0.3, 1.2), k, "name", "left"),
        Label("hₜ", *P(right + 0.3, 7.2), k, "name", "left"),
    ]
    if ghost:
        boxes = [b for b in boxes if b.kind != "multiply" or b.id.endswith("mul_f")]
        wires = [w for w in wires if w.key in ("c_prev", "kept", "c", "h_prev", "hx", "x", "h")]
        labels = [Label("t − 1" if ghost == "prev" else "t + 1", *P(CELL_W / 2, -0.6), k, "ghost")]
        junctions = []
    return boxes, wires, junctions, labels


def cell_scene(
    layers: int | Sequence[str] = 1,
    *,
    activations: Sequence[str] | None = None,
    ghosts: bool = True,
) -> Scene:
    """The colah cell diagram for ``layers`` stacked LSTM layers (layer 0 at the bottom).

    Parameters
    ----------
    layers : int or sequence of str
        How many cells to chain vertically, or their layer names (shown beside each cell).
    activations : sequence of str, optional
        Each layer's ``activation`` (``"tanh"`` by default; ``"linear"`` draws the identity).
    ghosts : bool
        Faded cells of steps t − 1 and t + 1 beside every cell.
    """
    names = (
        tuple(layers) if not isinstance(layers, int) else tuple(f"layer {k}" for k in range(layers))
    )
    n = len(names)
    if n < 1:
        raise LstmvizError("the diagram needs at least one LSTM layer")
    acts = tuple(activations) if activations is not None else ("tanh",) * n
    if len(acts) != n:
        raise LstmvizError(f"{len(acts)} activations for {n} layers")
    cells: list[CellFrame] = []
    boxes: list[Box] = []
    wires: list[Wire] = []
    junctions: list[Junction] = []
    labels: list[Label] = []
    for k in range(n):
        dy = -k * STACK_DY
        for ghost, dx in (("prev", -GHOST_DX), ("next", GHOST_DX)) if ghosts else ():
            cells.append(CellFrame(k, dx, dy, CELL_W, CELL_H, ghost))
            b, w, j, lab = _cell_primitives(k, dx, dy, acts[k], ghost)
            boxes += b
            wires += w
            junctions += j
            labels += lab
        cells.append(CellFrame(k, 0.0, dy, CELL_W, CELL_H, "", names[k]))
        b, w, j, lab = _cell_primitives(k, 0.0, dy, acts[k])
        boxes += b
        wires += w
        junctions += j
        labels += lab
        labels.append(Label(names[k], 1.75, dy + CELL_H - 0.35, k, "title", "left"))
    # chain the stack: layer k - 1's h_t turns left above its cell and becomes layer k's x_t
    for k in range(1, n):
        up = next(w for w in wires if w.id == f"{k - 1}/h_up")
        x_in = next(w for w in wires if w.id == f"{k}/x")
        (ux, uy0), (_, uy1) = up.points[0], up.points[-1]
        xx = x_in.points[-1][0]
        link = (ux, uy0), (ux, uy1), (xx, uy1)
        wires[wires.index(up)] = replace(up, points=link, arrow=False)
        wires[wires.index(x_in)] = replace(
            x_in, points=((xx, uy1), x_in.points[-1]), symbol="xₜ = hₜ of the layer below"
        )
    top = -(n - 1) * STACK_DY - 2.6
    right = CELL_W + 2.4
    bounds = (-6.2, top, right + 3.8, 11.2) if ghosts else (-3.8, top, right + 1.6, 11.2)
    return Scene(
        bounds,
        tuple(cells),
        tuple(boxes),
        tuple(wires),
        tuple(junctions),
        tuple(labels),
        names,
        acts,
    )


# --- values ----------------------------------------------------------------------------------
def fmt(v: float) -> str:
    """A number for the diagram: 2 decimals below 10, 1 below 100, none beyond; − for minus."""
    v = float(v)
    if not np.isfinite(v):
        return "—"  # e.g. a projected LSTM's per-unit h_{t-1}, which does not exist
    a = abs(v)
    s = f"{v:.2f}" if a < 10 else f"{v:.1f}" if a < 100 else f"{v:.0f}"
    if s.startswith("-") and float(s) == 0:
        s = s[1:]
    return s.replace("-", "−")


def _paren(v: float) -> str:
    s = fmt(v)
    return f"({s})" if s.startswith("−") else s


@dataclass(frozen=True)
class WireValue:
    """A wire's value for one unit: ``value`` (a float, or the input vector for ``x``),
    ``text`` (the number shown), ``formula`` (the equation with its numbers, for a tooltip)."""

    value: Any
    text: str
    formula: str


def _check_step(lt: LayerTrace, t: int, b: int) -> tuple[int, int]:
    T, B = lt.timesteps, lt.batch_size
    if not isinstance(t, (int, np.integer)) or not 0 <= t < T:
        raise LstmvizError(
            f"step t = {t} is out of range: the input has {T} timesteps (0..{T - 1})"
        )
    if not isinstance(b, (int, np.integer)) or not 0 <= b < B:
        raise LstmvizError(f"batch item {b} is out of range: the input has {B} (0..{B - 1})")
    return int(t), int(b)


def _masked(lt: LayerTrace, t: int, b: int) -> bool:
    return lt.mask is not None and not bool(lt.mask[b, t])


def unit_values(
    lt: LayerTrace,
    t: int,
    b: int = 0,
    unit: int = 0,
    x_labels: Sequence[str] | None = None,
    x_is_input: bool = True,
) -> dict[str, WireValue]:
    """Every wire's value for ``unit`` at step ``t`` (batch item ``b``), keyed by wire key.

    Read from the trace: gates, candidate, cell and hidden state from its arrays, the
    pre-activations and their split from :meth:`LayerTrace.contributions`, cₜ₋₁ and hₜ₋₁
    from :meth:`LayerTrace.prev_state`. ``x_labels``: the input tokens (the x wire then shows
    the token rather than its one-hot vector; ``x_is_input`` False when layers between the
    model's input and the LSTM change it: "16 values from input e").
    """
    t, b = _check_step(lt, t, b)
    if not isinstance(unit, (int, np.integer)) or not 0 <= unit < lt.units:
        raise LstmvizError(
            f"unit {unit} is out of range for layer {lt.name!r}, which has {lt.units} units "
            f"(0..{lt.units - 1})"
        )
    u = int(unit)
    from ..engine import activations

    act = lt.weights.activation
    A = _act_text(act)
    contrib = lt.contributions(t, b, units=[u])  # this unit's four columns only
    h_prev_all, c_prev_all = lt.prev_state(t, b)
    c_prev = float(c_prev_all[u])
    h_prev = float(h_prev_all[u]) if not lt.projected else float("nan")
    f = float(lt.at("forget_gate", t, b)[u])
    i = float(lt.at("input_gate", t, b)[u])
    o = float(lt.at("output_gate", t, b)[u])
    g = float(lt.at("candidate", t, b)[u])
    c = float(lt.at("cell", t, b)[u])
    h = float(lt.at_unit("hidden", t, b)[u])
    tc = float(activations.apply(act, np.asarray([c], np.float32))[0])
    if _masked(lt, t, b):  # a masked step carries the state over: nothing is written
        kept, written = c_prev, 0.0
    else:
        kept = float(np.float32(f) * np.float32(c_prev))
        written = float(np.float32(i) * np.float32(g))
    x = np.asarray(lt.x[b, t])
    out: dict[str, WireValue] = {}
    direct = x_labels is not None and x_is_input
    if x_labels is not None and x.size > 3:
        xt = str(x_labels[t]) if direct else f"{x.size} values from input {x_labels[t]}"
    elif x.size <= 3:
        xt = ", ".join(fmt(v) for v in x)
    else:
        xt = f"{x.size} values"
    out["x"] = WireValue(
        x.copy(),
        xt,
        f"xₜ = [{', '.join(fmt(v) for v in x[:12])}" + (", …]" if x.size > 12 else "]"),
    )
    out["h_prev"] = WireValue(
        h_prev,
        fmt(h_prev),
        f"hₜ₋₁ of unit {u} = {fmt(h_prev)} (the gates read all {h_prev_all.shape[0]} values)",
    )
    out["c_prev"] = WireValue(c_prev, fmt(c_prev), f"cₜ₋₁ = {fmt(c_prev)}")
    names = {"z_i": "input_gate", "z_f": "forget_gate", "z_c": "candidate", "z_o": "output_gate"}
    sub = {"z_i": "i", "z_f": "f", "z_c": "c", "z_o": "o"}
    for key, gate in names.items():
        d = contrib[gate]
        z = float(d["z"][0])
        s = sub[key]
        out[key] = WireValue(
            z,
            fmt(z),
            f"z_{s} = W_{s}·xₜ + U_{s}·hₜ₋₁ + b_{s} = {fmt(d['Wx'][0])} + "
            f"{_paren(float(d['Uh'][0]))} + {_paren(float(d['b'][0]))} = {fmt(z)}",
        )
    out["f"] = WireValue(f, fmt(f), f"f = σ({fmt(out['z_f'].value)}) = {fmt(f)}")
    out["i"] = WireValue(i, fmt(i), f"i = σ({fmt(out['z_i'].value)}) = {fmt(i)}")
    out["o"] = WireValue(o, fmt(o), f"o = σ({fmt(out['z_o'].value)}) = {fmt(o)}")
    gz = fmt(out["z_c"].value)
    out["g"] = WireValue(
        g, fmt(g), f"g = {gz} = {fmt(g)}" if act == "linear" else f"g = {A}({gz}) = {fmt(g)}"
    )
    out["kept"] = WireValue(kept, fmt(kept), f"f·cₜ₋₁ = {fmt(f)}·{_paren(c_prev)} = {fmt(kept)}")
    out["written"] = WireValue(
        written, fmt(written), f"i·g = {fmt(i)}·{_paren(g)} = {fmt(written)}"
    )
    cf = f"cₜ = f·cₜ₋₁ + i·g = {fmt(kept)} + {_paren(written)} = {fmt(c)}"
    out["c"] = WireValue(c, fmt(c), cf)
    out["c_branch"] = WireValue(c, fmt(c), cf)
    out["tanh_c"] = WireValue(
        tc,
        fmt(tc),
        f"cₜ = {fmt(tc)} (no activation)"
        if act == "linear"
        else f"{A}(cₜ) = {A}({fmt(c)}) = {fmt(tc)}",
    )
    hf = (
        f"hₜ = o·{A}(cₜ) = {fmt(o)}·{_paren(tc)} = {fmt(h)}"
        if act != "linear"
        else (f"hₜ = o·cₜ = {fmt(o)}·{_paren(c)} = {fmt(h)}")
    )
    out["h"] = WireValue(h, fmt(h), hf)
    out["h_up"] = WireValue(h, fmt(h), hf)
    return out


def layer_values(lt: LayerTrace, t: int, b: int = 0) -> dict[str, np.ndarray]:
    """Every wire's values over all units at step ``t``: ``{key: (units,)}`` (``x``:
    ``(features,)``), from the trace (see :func:`unit_values`)."""
    t, b = _check_step(lt, t, b)
    from ..engine import activations

    contrib = lt.contributions(t, b)
    h_prev, c_prev = lt.prev_state(t, b)
    f = lt.at("forget_gate", t, b)
    i = lt.at("input_gate", t, b)
    g = lt.at("candidate", t, b)
    c = lt.at("cell", t, b)
    h = lt.at_unit("hidden", t, b)
    if _masked(lt, t, b):
        kept, written = np.array(c_prev), np.zeros_like(c_prev)
    else:
        kept, written = f * c_prev, i * g
    return {
        "x": np.array(lt.x[b, t]),
        "h_prev": np.array(h_prev if not lt.projected else np.full(lt.units, np.nan, np.float32)),
        "c_prev": np.array(c_prev),
        "z_i": np.array(contrib["input_gate"]["z"]),
        "z_f": np.array(contrib["forget_gate"]["z"]),
        "z_c": np.array(contrib["candidate"]["z"]),
        "z_o": np.array(contrib["output_gate"]["z"]),
        "f": np.array(f),
        "i": np.array(i),
        "g": np.array(g),
        "o": np.array(lt.at("output_gate", t, b)),
        "kept": kept,
        "written": written,
        "c": np.array(c),
        "c_branch": np.array(c),
        "tanh_c": activations.apply(lt.weights.activation, np.asarray(c, np.float32)),
        "h": np.array(h),
        "h_up": np.array(h),
    }


def stacked_layers(trace: Trace, layers: Sequence[str | int] | None = None) -> list[LayerTrace]:
    """The layer traces the diagram chains: ``layers`` by name or index, or by default the
    first LSTM layer and every following one that reads the previous one's h sequence."""
    if not trace.layers:
        raise LstmvizError("the trace has no LSTM layer to draw")
    if layers is not None:
        out = [trace.layer(n) for n in layers]
        if not out:
            raise LstmvizError("no layer to draw: pass one or more LSTM layer names")
        return out
    out = [trace.layers[0]]
    for lt in trace.layers[1:]:
        prev = out[-1]
        if (
            lt.x.shape == prev.hidden.shape
            and not lt.go_backwards
            and np.array_equal(lt.x, prev.hidden)
        ):
            out.append(lt)
        else:
            break
    return out


def diagram_values(
    trace: Trace,
    t: int,
    b: int = 0,
    units: int | Sequence[int] | None = None,
    layers: Sequence[str | int] | None = None,
    x_labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Every wire's value, keyed by wire id (``"<layer index>/<key>"``).

    ``units`` None: the whole layer (arrays, drawn as colour strips); an int: that unit in
    every layer; a sequence: one unit per layer.
    """
    lts = stacked_layers(trace, layers)
    if units is None:
        per: list[int | None] = [None] * len(lts)
    elif isinstance(units, (int, np.integer)):
        per = [int(units)] * len(lts)
    else:
        per = [int(u) for u in units]
        if len(per) != len(lts):
            raise LstmvizError(f"{len(per)} units for {len(lts)} layers; give one per layer")
    out: dict[str, Any] = {}
    inputs = trace.inputs[0] if isinstance(trace.inputs, list) else trace.inputs
    direct = np.shape(inputs) == lts[0].x.shape  # the LSTM reads the model's input as it is
    for k, (lt, u) in enumerate(zip(lts, per, strict=True)):
        labels = x_labels if k == 0 else None
        vals: Mapping[str, Any] = (
            layer_values(lt, t, b)
            if u is None
            else unit_values(lt, t, b, u, labels, direct and k == 0)
        )
        for key, v in vals.items():
            out[f"{k}/{key}"] = v
    return out


# --- the renderer ------------------------------------------------------------------------------
BOX_FILL = {"gate": "#F6D55C", "activation": "#F6D55C", "multiply": "#F4A7B9", "add": "#F4A7B9"}
WIRE_COLOUR = "#303030"
GHOST_ALPHA = 0.22


def _mpl() -> Any:
    from .figure import _mpl as figure_mpl

    return figure_mpl()


@dataclass
class _Drawn:
    texts: dict[str, Any] = field(default_factory=dict)
    chips: dict[str, Any] = field(default_factory=dict)
    strips: dict[str, Any] = field(default_factory=dict)


class DiagramFigure:
    """The cell diagram of a trace at step ``t``, drawn with matplotlib.

    Parameters
    ----------
    trace : Trace
        The trace.
    t : int
        The step shown.
    batch : int
        Batch item.
    units : int, sequence of int, or None
        A unit (numbers on every wire) or one per stacked layer; None: the whole layer
        (a colour strip on every wire, one cell per unit).
    layers : sequence of str, optional
        Layers to chain (the stack starting at the first LSTM layer by default).
    style : str or Style
        ``"slide"`` (1920 x 1080, large type) or ``"paper"``.
    labels : sequence of str, optional
        The input tokens (title and the x wire).
    model_name, title : str
        Shown in the title.
    ghosts : bool
        Draw the faded cells of steps t − 1 and t + 1.
    levels : mapping or LevelLock, optional
        Colour levels per levels quantity (the trace's own by default).
    size, dpi : optional
        Figure size in inches and pixels per inch.
    """

    def __init__(
        self,
        trace: Trace,
        t: int = 0,
        batch: int = 0,
        units: int | Sequence[int] | None = 0,
        layers: Sequence[str | int] | None = None,
        style: Any = "slide",
        labels: Sequence[str] | None = None,
        model_name: str = "",
        title: str | None = None,
        ghosts: bool = True,
        levels: Any = None,
        size: tuple[float, float] | None = None,
        dpi: float | None = None,
    ) -> None:
        mpl = _mpl()
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from .style import get_style

        self.trace = trace
        self.lts = stacked_layers(trace, layers)
        self.layer_names = [lt.name for lt in self.lts]
        self.batch = batch
        self.units = units
        self.style = get_style(style) if isinstance(style, str) else style
        self.labels = list(labels) if labels is not None else None
        if self.labels is not None and len(self.labels) != self.lts[0].timesteps:
            raise LstmvizError(f"{len(self.labels)} token labels for {self.lts[0].timesteps} steps")
        self.model_name = model_name
        self.custom_title = title
        self._levels = levels
        self.scene = cell_scene(
            self.layer_names,
            activations=[lt.weights.activation for lt in self.lts],
            ghosts=ghosts,
        )
        n = len(self.lts)
        size = size or self.style.fixed_size or ((7.0, 4.6) if n == 1 else (7.0, 4.0 + 2.6 * n))
        self.dpi = float(dpi or self.style.dpi)
        if not 10 <= self.dpi <= 2400:
            raise LstmvizError(f"dpi must be between 10 and 2400; got {self.dpi:g}")
        self._rc = self.style.rc_params()
        # type sizes scale with the drawing: a cell as wide as the figure gets slide type
        x0, y0, x1, y1 = self.scene.bounds
        with mpl.rc_context(self._rc):
            fig = Figure(figsize=size, dpi=self.dpi)
            self.canvas = FigureCanvasAgg(fig)
            ax = fig.add_axes((0.01, 0.01, 0.98, 0.88))
            ax.set_xlim(x0, x1)
            ax.set_ylim(y1, y0)  # y down
            ax.set_aspect("equal", adjustable="box")
            ax.axis("off")
            self.figure = fig
            self.ax = ax
            fig.canvas.draw()  # fixes the axes box (equal aspect) before sizing type
            bbox = ax.get_window_extent()
            self.pt_per_unit = bbox.width / (x1 - x0) * 72 / self.dpi
            self.number_pt = min(self.style.font_size * 1.35, 0.5 * self.pt_per_unit)
            self.symbol_pt = min(self.style.font_size * 1.7, 0.8 * self.pt_per_unit)
            self._drawn = _Drawn()
            self._draw_static()
            self.suptitle = fig.suptitle("", fontweight="bold", fontsize=self.style.title_size)
        self.t = -1
        self.set_step(t)

    # --- levels and colours ----------------------------------------------------------------
    def _lv(self, quantity: str, lt: LayerTrace) -> tuple[float, float]:
        from ..analysis.levels import levels

        lv = self._levels
        if lv is None:
            return levels(quantity, lt)
        if hasattr(lv, "levels") and callable(lv.levels):
            return lv.levels(quantity, lt)
        if quantity in lv:
            lo, hi = lv[quantity]
            return float(lo), float(hi)
        return levels(quantity, lt)

    def _cmap(self, level: str) -> Any:
        from .style import mpl_colormap

        gates = ("forget_gate", "input_gate", "output_gate")
        return mpl_colormap("forget_gate" if level in gates else "cell")

    # --- drawing ------------------------------------------------------------------------------
    def _draw_static(self) -> None:
        from matplotlib.patches import Circle, Ellipse, FancyBboxPatch

        ax = self.ax
        lw = self.style.line_width * 1.4
        for cf in self.scene.cells:
            a = GHOST_ALPHA if cf.ghost else 1.0
            ax.add_patch(
                FancyBboxPatch(
                    (cf.x, cf.y),
                    cf.w,
                    cf.h,
                    boxstyle="round,pad=0.0,rounding_size=0.6",
                    fc="#EEF3F8",
                    ec="#8A9AAB",
                    lw=lw,
                    alpha=a,
                    zorder=0,
                )
            )
        for w in self.scene.wires:
            xs, ys = zip(*w.points, strict=True)
            a = GHOST_ALPHA if w.ghost else 1.0
            ax.plot(xs, ys, color=WIRE_COLOUR, lw=lw, alpha=a, solid_capstyle="butt", zorder=1)
            if w.arrow:
                ax.annotate(
                    "",
                    xy=w.points[-1],
                    xytext=w.points[-2],
                    arrowprops=dict(
                        arrowstyle="-|>",
                        color=WIRE_COLOUR,
                        lw=lw,
                        mutation_scale=8 * lw,
                        shrinkA=0,
                        shrinkB=0,
                        alpha=a,
                    ),
                    zorder=1,
                )
        for j in self.scene.junctions:
            ax.add_patch(
                Circle(
                    (j.x, j.y),
                    0.12,
                    fc=WIRE_COLOUR,
                    ec="none",
                    zorder=2,
                    alpha=GHOST_ALPHA if j.ghost else 1.0,
                )
            )
        for bx in self.scene.boxes:
            a = GHOST_ALPHA if bx.ghost else 1.0
            fc = BOX_FILL[bx.kind]
            p: Any
            if bx.shape == "rect":
                p = FancyBboxPatch(
                    (bx.x - bx.w / 2, bx.y - bx.h / 2),
                    bx.w,
                    bx.h,
                    boxstyle="round,pad=0.0,rounding_size=0.15",
                    fc=fc,
                    ec=WIRE_COLOUR,
                    lw=lw * 0.8,
                    alpha=a,
                    zorder=3,
                )
            elif bx.shape == "circle":
                p = Circle(
                    (bx.x, bx.y), bx.w / 2, fc=fc, ec=WIRE_COLOUR, lw=lw * 0.8, alpha=a, zorder=3
                )
            else:
                p = Ellipse(
                    (bx.x, bx.y), bx.w, bx.h, fc=fc, ec=WIRE_COLOUR, lw=lw * 0.8, alpha=a, zorder=3
                )
            ax.add_patch(p)
            size = self.symbol_pt * (0.75 if len(bx.text) > 2 else 1.0)
            if bx.ghost:
                continue  # a ghost is a faded outline: where c and h come from and go to
            ax.text(
                bx.x,
                bx.y,
                bx.text,
                ha="center",
                va="center_baseline",
                fontsize=size,
                alpha=a,
                zorder=4,
                fontweight="bold" if bx.kind != "activation" else "normal",
                clip_on=True,
            )
        for lab in self.scene.labels:
            if lab.role == "title":
                ax.text(
                    lab.x,
                    lab.y,
                    lab.text,
                    ha="left",
                    va="baseline",
                    fontsize=self.number_pt * 0.85,
                    color="#44525F",
                    style="italic",
                    zorder=4,
                )
            elif lab.role == "ghost":
                ax.text(
                    lab.x,
                    lab.y,
                    lab.text,
                    ha="center",
                    va="baseline",
                    fontsize=self.number_pt,
                    color="#8A9AAB",
                    zorder=4,
                    clip_on=True,
                )
            else:
                ha = {"right": "right", "left": "left"}.get(lab.anchor, "center")
                ax.text(
                    lab.x,
                    lab.y,
                    lab.text,
                    ha=ha,
                    va="center",
                    fontsize=self.number_pt,
                    fontweight="bold",
                    color="#202020",
                    zorder=4,
                )
        # one text (and a colour chip or strip) per labelled wire, filled by set_step
        for w in self.scene.wires:
            if w.ghost or w.key in UNLABELLED:
                continue
            ha, va = {
                "right": ("left", "center"),
                "left": ("right", "center"),
                "above": ("center", "bottom"),
                "below": ("center", "top"),
            }[w.label_side]
            self._drawn.texts[w.id] = ax.text(
                *w.label_at,
                "",
                ha=ha,
                va=va,
                fontsize=self.number_pt,
                zorder=6,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85),
            )

    def _strip(self, w: Wire, vals: np.ndarray, lt: LayerTrace) -> None:
        """A row of one small cell per unit at the wire's label position."""
        old = self._drawn.strips.pop(w.id, None)
        if old is not None:
            old.remove()
        lo, hi = self._lv(w.level, lt)
        n = max(1, vals.shape[0])
        width = 2.0 if n > 1 else 0.5
        height = 0.42
        x, y = w.label_at
        if w.label_side == "right":
            x0 = x
        elif w.label_side == "left":
            x0 = x - width
        else:
            x0 = x - width / 2
        y0 = {"above": y - height, "below": y}.get(w.label_side, y - height / 2)
        img = np.asarray(vals, dtype=np.float64)[None, :]  # (1, n)
        self._drawn.strips[w.id] = self.ax.imshow(
            img,
            cmap=self._cmap(w.level),
            vmin=lo,
            vmax=hi,
            extent=(x0, x0 + width, y0 + height, y0),
            interpolation="nearest",
            zorder=6,
            aspect="auto",
        )

    def set_step(self, t: int) -> None:
        """Show step ``t``: every number (or colour strip) and the title."""
        from ..export.figure import safe_label

        lt0 = self.lts[0]
        t, _ = _check_step(lt0, t, self.batch)
        self.t = t
        values = diagram_values(
            self.trace, t, self.batch, self.units, self.layer_names, self.labels
        )
        self.values = values
        for w in self.scene.wires:
            if w.ghost or w.key in UNLABELLED:
                continue
            lt = self.lts[w.layer]
            v = values[w.id]
            txt = self._drawn.texts[w.id]
            if isinstance(v, WireValue):
                if w.key == "x":
                    txt.set_text(f"xₜ = {safe_label(v.text, limit=24)}")
                    txt.set_color("black")
                    continue
                lo, hi = self._lv(w.level, lt)
                frac = (float(v.value) - lo) / (hi - lo) if hi > lo else 0.5
                colour = self._cmap(w.level)(min(max(frac, 0.0), 1.0))
                txt.set_text(f"{w.symbol} = {v.text}" if w.key in GATE_KEYS else v.text)
                txt.get_bbox_patch().set_edgecolor(colour)
                txt.get_bbox_patch().set_linewidth(self.style.line_width * 2.2)
            else:
                txt.set_text("")
                if w.key == "x":
                    arr = np.asarray(v, dtype=np.float64)
                    self._strip(w, arr, lt)
                else:
                    self._strip(w, np.asarray(v, dtype=np.float64), lt)
        self.suptitle.set_text(safe_label(self.title_text(), limit=400))

    def title_text(self) -> str:
        if self.custom_title is not None:
            return self.custom_title
        parts = [self.model_name or "model"]
        if len(self.lts) == 1:
            parts.append(f"layer {self.layer_names[0]}")
        if self.units is None:
            parts.append("all units")
        elif isinstance(self.units, (int, np.integer)):
            parts.append(f"unit {int(self.units)}")
        else:
            parts.append("units " + ", ".join(str(u) for u in self.units))
        tok = f" (input {self.labels[self.t]})" if self.labels else ""
        parts.append(f"t = {self.t}{tok}")
        return "  ·  ".join(parts)

    # --- output ----------------------------------------------------------------------------
    def rgb(self, even: bool = False) -> np.ndarray:
        """The figure as ``(H, W, 3)`` uint8 (``even``: padded to even sizes)."""
        mpl = _mpl()
        with mpl.rc_context(self._rc):
            self.canvas.draw()
        from .figure import canvas_rgb

        return canvas_rgb(self.canvas, even)

    def pixel_size(self) -> tuple[int, int]:
        w, h = self.figure.get_size_inches()
        return round(w * self.dpi), round(h * self.dpi)

    def save(self, path: str | os.PathLike[str], fmt: str | None = None) -> Path:
        """Write PNG, SVG or PDF atomically (the format from the extension by default)."""
        from .figure import save_mpl_figure

        return save_mpl_figure(self.figure, path, fmt, self.dpi, self._rc, self.title_text())


def diagram_frames(
    fig: DiagramFigure,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    even: bool = False,
) -> Iterator[np.ndarray]:
    """One frame per step of the diagram's first layer, in processing order."""
    from .formats import ExportCancelled

    order = [int(t) for t in fig.lts[0].processing_order]
    for k, t in enumerate(order):
        if should_stop is not None and should_stop():
            raise ExportCancelled(
                f"animation cancelled at frame {k} of {len(order)}; nothing was written"
            )
        fig.set_step(t)
        yield fig.rgb(even)
        if progress is not None:
            progress(k + 1, len(order))


def write_diagram_animation(
    path: str | os.PathLike[str],
    fig: DiagramFigure,
    fps: float = 2.0,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """A GIF or MP4 (by the extension) stepping the diagram through every step."""
    from .animation import write_gif_frames, write_mp4_frames

    p = Path(path)
    ext = p.suffix.lower().lstrip(".")
    if ext == "gif":
        return write_gif_frames(p, diagram_frames(fig, progress, should_stop), fps)
    if ext == "mp4":
        return write_mp4_frames(p, diagram_frames(fig, progress, should_stop, even=True), fps)
    raise LstmvizError(f"{p}: a diagram animation is written as .gif or .mp4, not .{ext}")
