"""The live LSTM cell diagram (colah's drawing) and the unit's equations, drawn with QPainter.

:class:`DiagramView` paints the scene of :func:`lstmviz.export.diagram.cell_scene` with the
values of :func:`lstmviz.export.diagram.diagram_values` at the state's step ``t``: for the
selected unit a number on every wire (in a chip coloured like the heatmaps), or -- with
``state.options.diagram_layer`` -- a colour strip per wire for the whole layer, with stacked
LSTM layers chained vertically and faded ghosts of the cells at t − 1 and t + 1. It is vector
drawing, sized to the widget: crisp at any resolution, and in presentation mode every text is
at least :data:`PRESENTATION_MIN_PX` pixels.

Stepping animates the values flowing along the wires (``state.options.animate``); clicking a
part highlights its equation and its heatmap row (``state.options.highlight``); hovering a
wire shows its formula with the numbers. :class:`EquationsView` writes the same unit's
equations with their numbers, line by line (the formulas of
:func:`lstmviz.export.diagram.unit_values`), large enough for a lecture hall.

The views only draw: every number comes from the trace through those functions.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from PySide6.QtCore import QEasingCurve, QPointF, QRectF, QSize, Qt, QVariantAnimation
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QHelpEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from ..errors import LstmvizError
from ..export.diagram import (
    GATE_KEYS,
    UNLABELLED,
    Box,
    Scene,
    Wire,
    WireValue,
    cell_scene,
    diagram_values,
    stacked_layers,
    unit_values,
)
from ..state import ViewerState
from .style import NORMAL, QUANTITY_COLORS, Theme, colormap

#: Presentation mode: no text smaller than this (pixels), for the back of a lecture hall.
PRESENTATION_MIN_PX = 28
#: How much farther apart the diagram's parts may be placed across (or down) than their size
#: scale when the view is much wider than tall (or taller than wide).
MAX_STRETCH = 2.6
#: The animation of one step, in milliseconds (short: stepping stays snappy).
ANIMATION_MS = 650

#: wire key -> the quantity it carries (what a click highlights)
WIRE_QUANTITY = {
    "x": "",
    "hx": "",
    "h_prev": "hidden",
    "c_prev": "cell",
    "z_f": "forget_gate",
    "z_i": "input_gate",
    "z_c": "candidate",
    "z_o": "output_gate",
    "f": "forget_gate",
    "i": "input_gate",
    "g": "candidate",
    "o": "output_gate",
    "kept": "kept",
    "written": "written",
    "c": "cell",
    "c_branch": "cell",
    "tanh_c": "tanh_c",
    "h": "hidden",
    "h_up": "hidden",
}
#: the order values flow in: inputs, pre-activations, gates, products, c, tanh(c), h
STAGES = {
    "x": 0,
    "h_prev": 0,
    "c_prev": 0,
    "hx": 1,
    "z_f": 1,
    "z_i": 1,
    "z_c": 1,
    "z_o": 1,
    "f": 2,
    "i": 2,
    "g": 2,
    "o": 2,
    "kept": 3,
    "written": 3,
    "c": 4,
    "c_branch": 4,
    "tanh_c": 5,
    "h": 6,
    "h_up": 6,
}
N_STAGES = 7
#: the wires a question hides until the answer is revealed: the cell's update and its output
ANSWER_KEYS = frozenset({"kept", "written", "c", "c_branch", "tanh_c", "h", "h_up"})
#: which numbers stay when a short view has no room for all of them (first kept first): the
#: cell state in and out, the input, the gates, what is kept and written, then the rest
VALUE_PRIORITY = {
    key: k
    for k, key in enumerate(
        (
            "c_prev",
            "c",
            "h_prev",
            "h",
            "x",
            "f",
            "i",
            "g",
            "o",
            "kept",
            "written",
            "tanh_c",
            "h_up",
            "z_f",
            "z_i",
            "z_c",
            "z_o",
        )
    )
}
GATE_LETTER = {"forget_gate": "f", "input_gate": "i", "candidate": "g", "output_gate": "o"}
#: colah's colours: yellow layers, pink pointwise operations
BOX_FILL = {"gate": "#F6D55C", "activation": "#F6D55C", "multiply": "#F4A7B9", "add": "#F4A7B9"}
WIRE = "#c9ced6"
CELL_FILL = "#1e222a"
CELL_EDGE = "#6b7480"
GHOST_ALPHA = 0.28
HIGHLIGHT = "#56B4E9"


def _luminance(c: QColor) -> float:
    return 0.299 * c.redF() + 0.587 * c.greenF() + 0.114 * c.blueF()


def _cmap_of(level: str) -> str:
    from .style import GATE_CMAP, SIGNED_CMAP

    return GATE_CMAP if level in ("forget_gate", "input_gate", "output_gate") else SIGNED_CMAP


class _Lut:
    """Colour lookup of the heatmaps' colour maps (cached per map name)."""

    def __init__(self) -> None:
        self._luts: dict[str, np.ndarray] = {}

    def colour(self, level: str, value: float, lo: float, hi: float) -> QColor:
        name = _cmap_of(level)
        lut = self._luts.get(name)
        if lut is None:
            lut = colormap(name).getLookupTable(nPts=256, alpha=False)
            self._luts[name] = lut
        if not math.isfinite(value):
            return QColor("#808080")
        k = int(np.clip((value - lo) / (hi - lo), 0.0, 1.0) * 255) if hi > lo else 128
        r, g, b = (int(v) for v in lut[k][:3])
        return QColor(r, g, b)


class DiagramView(QWidget):
    """The LSTM cell diagram of the state at step ``t`` (see the module docstring).

    After each paint, :attr:`drawn` maps every wire id to the text drawn on it and
    :attr:`drawn_strips` to the values drawn as a colour strip (the whole-layer mode), so a
    test can compare what is on screen with the trace.
    """

    def __init__(
        self, state: ViewerState, parent: QWidget | None = None, *, big: bool = False
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.theme: Theme = NORMAL
        #: the presentation copy: its text is never smaller than PRESENTATION_MIN_PX
        self.big = big
        self.scene: Scene | None = None
        self.values: dict[str, Any] = {}
        self.layer_names: list[str] = []
        self.units: list[int | None] = []
        self.message = ""
        self.drawn: dict[str, str] = {}
        self.drawn_strips: dict[str, np.ndarray] = {}
        self.text_px: list[int] = []  # pixel sizes of the text of the last paint
        #: wire id -> where its number was drawn (widget coordinates) in the last paint
        self.value_rects: dict[str, QRectF] = {}
        #: the name labels (cₜ₋₁, hₜ, ...) and box texts of the last paint, in widget
        #: coordinates: ``(text, rect)``
        self.text_rects: list[tuple[str, QRectF]] = []
        #: wire ids whose number had no room in the last paint (their tooltip shows it)
        self.dropped: list[str] = []
        self._k = (1.0, 1.0)  # the stretch of the last _transform
        self._shift = QPointF(0.0, 0.0)
        self._lut = _Lut()
        self._scene_key: Any = None
        self._dirty = True
        self._progress = 1.0  # the flow animation: 0 -> 1
        self._anim = QVariantAnimation(self)
        self._anim.setStartValue(0.0)
        self._anim.setEndValue(1.0)
        self._anim.setDuration(ANIMATION_MS)
        self._anim.setEasingCurve(QEasingCurve.Type.Linear)
        self._anim.valueChanged.connect(self._on_anim)
        self._anim.finished.connect(self._on_anim_done)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setToolTip("")
        ev = state.events
        for sig in (ev.trace, ev.layer, ev.batch, ev.selection):
            sig.connect(self._invalidate)
        ev.t.connect(self._on_t)
        opts = state.options.events
        for name in ("hide_answer", "diagram_layer", "highlight", "hide_future"):
            getattr(opts, name).connect(self._invalidate)

    # --- state -> view ---------------------------------------------------------------------
    @property
    def animating(self) -> bool:
        """A step's flow animation is running."""
        return self._anim.state() == QVariantAnimation.State.Running

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.update()

    def _invalidate(self, *_: Any) -> None:
        self._dirty = True
        self.update()

    def _on_t(self, t: int) -> None:
        self._dirty = True
        if self.state.options.animate and self.isVisible() and not self.state.options.diagram_layer:
            self._anim.stop()
            self._progress = 0.0
            self._anim.start()
        self.update()

    def _on_anim(self, v: Any) -> None:
        self._progress = float(v)
        self.update()

    def _on_anim_done(self) -> None:
        self._progress = 1.0
        self.update()

    def refresh(self) -> None:
        """Recompute the scene and the values from the state (done lazily before a paint)."""
        self._dirty = False
        st = self.state
        tr, lt = st.trace, st.layer_trace
        self.values = {}
        self.message = ""
        if tr is None or lt is None:
            self.scene = None
            self.message = "Open a model to see its LSTM cell."
            return
        layer_mode = bool(st.options.diagram_layer)
        lts = [lt]
        if layer_mode:  # the whole layer: stacked layers chain, layer 0 at the bottom
            stack = stacked_layers(tr)
            if any(x.name == lt.name for x in stack):
                lts = stack
        names = [x.name for x in lts]
        acts = [x.weights.activation for x in lts]
        key = (tuple(names), tuple(acts))
        if key != self._scene_key:
            self.scene = cell_scene(names, activations=acts, ghosts=True)
            self._scene_key = key
        self.layer_names = names
        b = min(st.batch, lt.batch_size - 1)
        t = min(st.t, lt.timesteps - 1)
        labels = st.token_labels()
        x_labels = labels if len(labels) == lts[0].timesteps else None
        units: int | list[int] | None
        if layer_mode:
            units, self.units = None, [None] * len(lts)
        else:
            u = st.unit if st.unit < lt.units else 0
            units, self.units = [u], [u]
        try:
            self.values = diagram_values(tr, t, b, units, names, x_labels)
        except LstmvizError as e:
            self.scene = None
            self.message = str(e)

    # --- geometry --------------------------------------------------------------------------
    def _header_px(self) -> int:
        return self._px(0.62, self._scale_for(self.rect()), role="header")

    def _fits(self, r: QRectF | Any) -> tuple[float, float]:
        """The scales (pixels per scene unit) at which the drawing fills the width and the
        height under the header."""
        assert self.scene is not None
        x0, y0, x1, y1 = self.scene.bounds
        head = 1.7 * max(self.theme.font_px, PRESENTATION_MIN_PX if self.big else 12)
        return r.width() / (x1 - x0), (r.height() - head) / (y1 - y0)

    def _scale_for(self, r: QRectF | Any) -> float:
        """The size scale: text, boxes and line widths (the smaller of the two fits)."""
        if self.scene is None:
            return 1.0
        return max(min(self._fits(r)), 1.0)

    def _stretch(self, r: QRectF | Any) -> tuple[float, float]:
        """``(kx, ky)``: how much farther apart than the size scale the parts are placed
        across and down. A wide, short view (presentation mode with a panel under it)
        spreads the parts across its width, so the numbers -- whose type may not shrink --
        keep room between them; at most :data:`MAX_STRETCH` times."""
        s = self._scale_for(r)
        fx, fy = self._fits(r)
        return min(max(fx / s, 1.0), MAX_STRETCH), min(max(fy / s, 1.0), MAX_STRETCH)

    def _transform(self) -> tuple[float, float, float]:
        """``(scale, dx, dy)``: widget = scene * scale * (kx, ky) + (dx, dy), with the
        stretch ``(kx, ky)`` of :meth:`_stretch` (kept in :attr:`_k` for the painters)."""
        assert self.scene is not None
        r = self.rect()
        s = self._scale_for(r)
        self._k = kx, ky = self._stretch(r)
        x0, y0, x1, y1 = self.scene.bounds
        head = r.height() - s * ky * (y1 - y0)
        head = max(head, 0.0)
        dx = (r.width() - s * kx * (x1 - x0)) / 2 - s * kx * x0
        dy = head - s * ky * y0 - max(0.0, head - 2.2 * self._min_px()) / 2
        return s, dx, dy

    def _at(self, x: float, y: float, s: float) -> QPointF:
        """Where the scene point ``(x, y)`` is drawn (before the ``(dx, dy)`` shift)."""
        kx, ky = self._k
        return QPointF(x * s * kx, y * s * ky)

    def _min_px(self) -> int:
        return PRESENTATION_MIN_PX if self.big else 11

    def _px(self, factor: float, s: float, role: str = "") -> int:
        """A text size proportional to the drawing, never below the minimum."""
        px = round(factor * s)
        if role == "header":
            px = max(px, self.theme.font_px)
        return max(px, self._min_px())

    def _font(self, px: int, bold: bool = False, italic: bool = False) -> QFont:
        f = QFont("DejaVu Sans")
        f.setPixelSize(px)
        f.setBold(bold)
        f.setItalic(italic)
        return f

    def sizeHint(self) -> QSize:
        return QSize(760, 380)

    # --- painting ----------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        if self._dirty:
            self.refresh()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        p.fillRect(self.rect(), QColor(self.theme.bg))
        self.drawn = {}
        self.drawn_strips = {}
        self.text_px = []
        self.value_rects = {}
        self.text_rects = []
        self.dropped = []
        if self.scene is None:
            self._text(
                p,
                QRectF(self.rect()),
                self.message,
                self._font(max(self.theme.font_px, self._min_px())),
                QColor(self.theme.muted),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
            )
            p.end()
            return
        s, dx, dy = self._transform()
        self._shift = QPointF(dx, dy)
        self._paint_header(p, s)
        p.translate(dx, dy)
        self._paint_cells(p, s)
        self._paint_wires(p, s)
        self._paint_boxes(p, s)
        self._paint_labels(p, s)
        self._paint_values(p, s)
        if self._progress < 1.0:
            self._paint_flow(p, s)
        p.end()

    def _text(
        self, p: QPainter, r: QRectF, text: str, font: QFont, colour: QColor, flags: Any
    ) -> None:
        if not text:
            return
        p.setFont(font)
        p.setPen(colour)
        p.drawText(r, flags, text)
        self.text_px.append(font.pixelSize())

    def header_text(self) -> str:
        st = self.state
        lt = st.layer_trace
        if lt is None:
            return ""
        t = min(st.t, lt.timesteps - 1)
        labels = st.token_labels()
        tok = f" · input {labels[t]}" if t < len(labels) else ""
        if self.units and self.units[0] is not None:
            who = f"unit {self.units[0]} of layer {self.layer_names[0]}"
        elif len(self.layer_names) > 1:
            who = f"every unit of layers {', '.join(self.layer_names)}"
        else:
            who = f"every unit of layer {self.layer_names[0]} (one cell per unit)"
        return f"{who} · t = {t}{tok}"

    def _paint_header(self, p: QPainter, s: float) -> None:
        f = self._font(self._header_px(), bold=True)
        fm = QFontMetricsF(f)
        h = fm.height()
        text = self.header_text()
        width = min(fm.horizontalAdvance(text), self.width() - 16.0)
        self.text_rects.append((text, QRectF(8, 4, width, h + 4)))
        self._text(
            p,
            QRectF(8, 4, self.width() - 16, h + 4),
            text,
            f,
            QColor(self.theme.fg),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
        )

    def _paint_cells(self, p: QPainter, s: float) -> None:
        assert self.scene is not None
        sel = self.state.layer
        for cf in self.scene.cells:
            p.setOpacity(GHOST_ALPHA if cf.ghost else 1.0)
            edge = CELL_EDGE
            width = max(1.5, 0.05 * s)
            if not cf.ghost and len(self.layer_names) > 1 and self.layer_names[cf.layer] == sel:
                edge, width = self.theme.accent, max(2.5, 0.08 * s)
            p.setPen(QPen(QColor(edge), width))
            p.setBrush(QColor(CELL_FILL))
            p.drawRoundedRect(
                QRectF(self._at(cf.x, cf.y, s), self._at(cf.x + cf.w, cf.y + cf.h, s)),
                0.6 * s,
                0.6 * s,
            )
        p.setOpacity(1.0)

    def _wire_pen(self, s: float, colour: str = WIRE, width: float = 0.075) -> QPen:
        pen = QPen(QColor(colour), max(2.0, width * s))
        pen.setCapStyle(Qt.PenCapStyle.FlatCap)
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        return pen

    def _paint_wires(self, p: QPainter, s: float) -> None:
        assert self.scene is not None
        hl = self.state.options.highlight
        for w in self.scene.wires:
            p.setOpacity(GHOST_ALPHA if w.ghost else 1.0)
            lit = bool(hl) and not w.ghost and WIRE_QUANTITY.get(w.key) == hl
            pen = self._wire_pen(s, HIGHLIGHT if lit else WIRE, 0.14 if lit else 0.075)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            pts = [self._at(x, y, s) for x, y in w.points]
            path = QPainterPath(pts[0])
            for q in pts[1:]:
                path.lineTo(q)
            p.drawPath(path)
            if w.arrow and len(pts) >= 2:
                self._arrow(p, pts[-2], pts[-1], s, HIGHLIGHT if lit else WIRE)
        p.setOpacity(1.0)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(WIRE))
        for j in self.scene.junctions:
            p.setOpacity(GHOST_ALPHA if j.ghost else 1.0)
            p.drawEllipse(self._at(j.x, j.y, s), 0.13 * s, 0.13 * s)
        p.setOpacity(1.0)

    def _arrow(self, p: QPainter, a: QPointF, b: QPointF, s: float, colour: str) -> None:
        d = b - a
        n = math.hypot(d.x(), d.y())
        if n < 1e-6:
            return
        ux, uy = d.x() / n, d.y() / n
        size = 0.32 * s
        tip = b
        base = QPointF(tip.x() - ux * size, tip.y() - uy * size)
        left = QPointF(base.x() - uy * size * 0.55, base.y() + ux * size * 0.55)
        right = QPointF(base.x() + uy * size * 0.55, base.y() - ux * size * 0.55)
        p.save()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(colour))
        p.drawPolygon(QPolygonF([tip, left, right]))
        p.restore()

    def _box_font(self, bx: Box, s: float) -> QFont:
        factor = 0.62 if len(bx.text) <= 2 else 0.5
        return self._font(self._px(factor, s), bold=bx.kind != "activation")

    def _box_size(self, bx: Box, s: float) -> tuple[float, float]:
        """The box's size in pixels: the scene's, grown to fit its text when the text may
        not shrink (presentation mode's smallest type on a small drawing)."""
        w, h = bx.w * s, bx.h * s
        if bx.ghost:
            return w, h
        fm = QFontMetricsF(self._box_font(bx, s))
        # as large as the glyphs' ink (σ, ⊙, tanh have no descenders), not as the font's
        # line: presentation mode's large type in a short view otherwise grew neighbours
        # into each other
        ink = fm.tightBoundingRect(bx.text)
        tw = fm.horizontalAdvance(bx.text) + 0.3 * fm.height()
        th = min(ink.height() + 8, fm.height() * 0.95)
        if bx.shape == "circle":
            d = max(w, min(tw, max(ink.width(), ink.height()) + 8), th)
            return d, d
        if bx.shape == "ellipse":
            tw *= 1.25
        return max(w, tw), max(h, th)

    def _box_path(self, bx: Box, s: float, grow: float = 0.0) -> QPainterPath:
        path = QPainterPath()
        w, h = self._box_size(bx, s)
        w, h = w + grow * s, h + grow * s
        c = self._at(bx.x, bx.y, s)
        r = QRectF(c.x() - w / 2, c.y() - h / 2, w, h)
        if bx.shape == "rect":
            path.addRoundedRect(r, 0.15 * s, 0.15 * s)
        else:
            path.addEllipse(r)
        return path

    def _paint_boxes(self, p: QPainter, s: float) -> None:
        assert self.scene is not None
        hl = self.state.options.highlight
        drawn = [self._box_path(bx, s).boundingRect() for bx in self.scene.boxes if not bx.ghost]
        for bx in self.scene.boxes:
            p.setOpacity(GHOST_ALPHA if bx.ghost else 1.0)
            lit = bool(hl) and not bx.ghost and bx.quantity == hl
            if lit:
                p.setPen(QPen(QColor(HIGHLIGHT), max(3.0, 0.12 * s)))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawPath(self._box_path(bx, s, grow=0.35))
            gate = GATE_LETTER.get(bx.quantity) if bx.shape == "rect" else None
            if gate and not bx.ghost:  # the gate's border in its heatmap title's colour
                p.setPen(QPen(QColor(QUANTITY_COLORS[bx.quantity]), max(2.0, 0.08 * s)))
            else:
                p.setPen(QPen(QColor("#202020"), max(1.2, 0.04 * s)))
            p.setBrush(QColor(BOX_FILL[bx.kind]))
            path = self._box_path(bx, s)
            p.drawPath(path)
            if bx.ghost:
                continue
            r = path.boundingRect()
            self._text(
                p,
                r,
                bx.text,
                self._box_font(bx, s),
                QColor("#111111"),
                Qt.AlignmentFlag.AlignCenter,
            )
            self.text_rects.append((bx.text, r.translated(self._shift)))
            if gate:  # which gate this is, in its colour, where there is room for the letter
                lf = self._font(self._px(0.55, s), bold=True)
                lw = QFontMetricsF(lf).horizontalAdvance(gate) + 4
                lr = QRectF(r.left() - lw - 0.1 * s, r.top(), lw, r.height())
                if not any(lr.intersects(o) for o in drawn):
                    colour = QColor(QUANTITY_COLORS[bx.quantity])
                    self._text(p, lr, gate, lf, colour, Qt.AlignmentFlag.AlignCenter)
                    self.text_rects.append((gate, lr.translated(self._shift)))
        p.setOpacity(1.0)

    def _paint_labels(self, p: QPainter, s: float) -> None:
        assert self.scene is not None
        for lab in self.scene.labels:
            if lab.role == "title" and len(self.layer_names) == 1:
                continue  # the header names the layer
            if lab.role == "title":
                f = self._font(self._px(0.42, s), italic=True)
                colour = QColor(self.theme.muted)
            elif lab.role == "ghost":
                f = self._font(self._px(0.5, s))
                colour = QColor(self.theme.muted)
            else:
                f = self._font(self._px(0.52, s), bold=True)
                colour = QColor(self.theme.fg)
            fm = QFontMetricsF(f)
            w = fm.horizontalAdvance(lab.text) + 4
            h = fm.height()
            at = self._at(lab.x, lab.y, s)
            x, y = at.x(), at.y()
            if lab.role == "title":  # inside the cell's bottom edge, under the gates' bus
                r = QRectF(x + 0.5 * s, y - 0.25 * s, w, h)
                flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
            elif lab.anchor == "right":
                r = QRectF(x - w, y - h / 2, w, h)
                flags = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            elif lab.anchor == "left":
                r = QRectF(x, y - h / 2, w, h)
                flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
            else:
                r = QRectF(x - w / 2, y - h, w, h)
                flags = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom
            p.setOpacity(GHOST_ALPHA * 2 if lab.role == "ghost" else 1.0)
            self._text(p, r, lab.text, f, colour, flags)
            if lab.role != "ghost":
                self.text_rects.append((lab.text, r.translated(self._shift)))
        p.setOpacity(1.0)

    def _shown(self, w: Wire) -> bool:
        """Whether the wire's value is shown now (the flow animation reveals stage by
        stage; a question hides the cell's update)."""
        if self.state.options.hide_answer and w.key in ANSWER_KEYS:
            return False
        return self._progress >= 1.0 or STAGES.get(w.key, 0) < self._progress * N_STAGES

    def wire_text(self, w: Wire, v: WireValue) -> str:
        """The text on a wire: ``f = 0.80`` on a gate, ``xₜ = 7`` on the input, else the
        number (the wires are named by the labels at their ends)."""
        if w.key == "x":
            text = v.text if len(v.text) <= 40 else v.text[:39] + "…"
            return f"xₜ: {text}" if " values" in text else f"xₜ = {text}"
        if w.key in GATE_KEYS or w.key == "g":
            return f"{w.key} = {v.text}"
        return v.text

    def _level(self, w: Wire) -> tuple[float, float]:
        tr = self.state.trace
        if tr is None:  # nothing is drawn without a trace
            return (-1.0, 1.0)
        return self.state.color_levels(w.level, tr.layer(self.layer_names[w.layer]))

    def _label_rect(self, w: Wire, width: float, height: float, s: float) -> QRectF:
        at = self._at(w.label_at[0], w.label_at[1], s)
        x, y = at.x(), at.y()
        if w.label_side == "right":
            return QRectF(x, y - height / 2, width, height)
        if w.label_side == "left":
            return QRectF(x - width, y - height / 2, width, height)
        if w.label_side == "above":
            return QRectF(x - width / 2, y - height, width, height)
        return QRectF(x - width / 2, y, width, height)

    def _segment_rect(self, seg: Any, s: float) -> QRectF:
        (x0, y0), (x1, y1) = seg
        return QRectF(
            self._at(min(x0, x1), min(y0, y1), s), self._at(max(x0, x1), max(y0, y1), s)
        ).adjusted(-1, -1, 1, 1)

    @staticmethod
    def _nudged(r: QRectF, side: str) -> list[QRectF]:
        """Where a number may go, best first: its place beside the wire, then up or down
        by half or all its height, then moved away from the wire by half its width (a
        number a whole chip away from its wire would read as another wire's)."""
        w, h = r.width(), r.height()
        away = -1.0 if side == "left" else 1.0
        return [
            r.translated(away * dx * w, dy * h)
            for dx in (0.0, 0.5)
            for dy in (0.0, -0.5, 0.5, -1.0, 1.0)
        ]

    def _paint_values(self, p: QPainter, s: float) -> None:
        assert self.scene is not None
        f = self._font(self._px(0.5, s), bold=True)
        fm = QFontMetricsF(f)
        pad = 0.18 * fm.height()

        def chip(w: Wire, text: str) -> QRectF:
            return self._label_rect(w, fm.horizontalAdvance(text) + 2 * pad, fm.height(), s)

        # "f = 0.80" on a gate where it fits; the bare number where the longer text would
        # cover a neighbour (a box, a wire, another number)
        obstacles = [
            self._box_path(bx, s).boundingRect() for bx in self.scene.boxes if not bx.ghost
        ]
        for o in self.scene.wires:
            if o.ghost:
                continue
            obstacles += [self._segment_rect(q, s) for q in itertools.pairwise(o.points)]
        own: dict[str, QRectF] = {}
        for o in self.scene.wires:
            v = self.values.get(o.id)
            if not o.ghost and o.key not in UNLABELLED and isinstance(v, WireValue):
                own[o.id] = chip(o, v.text)

        chips: list[tuple[Wire, WireValue, str, QRectF]] = []
        for w in self.scene.wires:
            if w.ghost or w.key in UNLABELLED or w.id not in self.values:
                continue
            v = self.values[w.id]
            shown = self._shown(w)
            if isinstance(v, WireValue):
                asked = bool(self.state.options.hide_answer) and w.key in ANSWER_KEYS
                text = self.wire_text(w, v) if shown else ("?" if asked else "")
                if not text:
                    continue
                r = chip(w, text)
                if shown and text != v.text and w.key != "x":
                    mine = [self._segment_rect(q, s) for q in itertools.pairwise(w.points)]
                    hits = [q for q in obstacles if q.intersects(r) and q not in mine]
                    hits += [q for k, q in own.items() if k != w.id and q.intersects(r)]
                    if hits:
                        text = v.text
                        r = chip(w, text)
                chips.append((w, v, text, r))
            else:
                if not shown:
                    continue
                vals = np.asarray(v, dtype=np.float64)
                self.drawn_strips[w.id] = vals
                self._strip(p, w, vals, s)

        # the numbers never run into each other, a name or a box, nor leave the view: where
        # there is no room (a short view whose type may not shrink) the less telling ones
        # (pre-activations first) are left out; hovering the wire still shows its value
        room = QRectF(self.rect()).translated(-self._shift)
        taken = [q.translated(-self._shift) for _, q in self.text_rects]
        order = sorted(chips, key=lambda c: VALUE_PRIORITY.get(c[0].key, len(VALUE_PRIORITY)))
        for w, v, text, want in order:
            spot = next(
                (
                    q
                    for q in self._nudged(want, w.label_side)
                    if room.contains(q) and not any(o.intersects(q) for o in taken)
                ),
                None,
            )
            if spot is None:
                self.dropped.append(w.id)
                continue
            r = spot
            taken.append(r)
            self.drawn[w.id] = text
            self.value_rects[w.id] = r.translated(self._shift)
            if w.key == "x" or not self._shown(w):
                fill = QColor("#f2f2f2") if w.key == "x" else QColor("#3a3f4b")
            else:
                lo, hi = self._level(w)
                fill = self._lut.colour(w.level, float(v.value), lo, hi)
            p.setPen(QPen(QColor("#0b0b0b"), max(1.0, 0.03 * s)))
            p.setBrush(fill)
            p.drawRoundedRect(r, 0.25 * fm.height(), 0.25 * fm.height())
            ink = QColor("#000000") if _luminance(fill) > 0.5 else QColor("#ffffff")
            self._text(p, r, text, f, ink, Qt.AlignmentFlag.AlignCenter)

    def _strip(self, p: QPainter, w: Wire, vals: np.ndarray, s: float) -> None:
        """One small cell per unit at the wire's label position."""
        n = max(1, vals.shape[0])
        width, height = 2.0 * s, 0.42 * s
        r = self._label_rect(w, width, height, s)
        if w.key == "x":  # the layer's input features: their own symmetric scale
            m = float(np.nanmax(np.abs(vals))) if vals.size and np.isfinite(vals).any() else 1.0
            lo, hi = -(m or 1.0), m or 1.0
        else:
            lo, hi = self._level(w)
        cw = r.width() / n
        p.setPen(Qt.PenStyle.NoPen)
        for k in range(n):
            p.setBrush(self._lut.colour(w.level, float(vals[k]), lo, hi))
            p.drawRect(QRectF(r.left() + k * cw, r.top(), cw + 0.5, r.height()))
        p.setPen(QPen(QColor("#0b0b0b"), 1.0))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(r)

    def _paint_flow(self, p: QPainter, s: float) -> None:
        """A dot travelling along each wire of the current stage, coloured by its value."""
        assert self.scene is not None
        stage_f = self._progress * N_STAGES
        stage = int(stage_f)
        frac = stage_f - stage
        for w in self.scene.wires:
            if w.ghost or STAGES.get(w.key, -1) != stage:
                continue
            if self.state.options.hide_answer and w.key in ANSWER_KEYS:
                continue
            pt = _along(w.points, frac)
            v = self.values.get(w.id)
            colour = QColor("#ffffff")
            if isinstance(v, WireValue) and w.key != "x":
                lo, hi = self._level(w)
                colour = self._lut.colour(w.level, float(v.value), lo, hi)
            p.setPen(QPen(QColor("#ffffff"), max(1.5, 0.05 * s)))
            p.setBrush(colour)
            p.drawEllipse(self._at(pt[0], pt[1], s), 0.26 * s, 0.26 * s)

    # --- mouse -------------------------------------------------------------------------------
    def _to_scene(self, pos: QPointF) -> tuple[float, float]:
        s, dx, dy = self._transform()
        kx, ky = self._k
        return (pos.x() - dx) / (s * kx), (pos.y() - dy) / (s * ky)

    def part_at(self, pos: QPointF) -> Box | Wire | None:
        """The box or wire of the current cell under a widget position, or None."""
        if self._dirty:
            self.refresh()
        if self.scene is None:
            return None
        s, dx, dy = self._transform()
        q = QPointF(pos) - QPointF(dx, dy)  # where the painter drew (before its shift)
        for bx in self.scene.boxes:
            grow = 0.1 * s
            if not bx.ghost and self._box_path(bx, s).boundingRect().adjusted(
                -grow, -grow, grow, grow
            ).contains(q):
                return bx
        best: tuple[float, Wire | None] = (0.35 * s, None)
        for w in self.scene.wires:
            if w.ghost:
                continue
            pts = tuple((a.x(), a.y()) for a in (self._at(x, y, s) for x, y in w.points))
            d = _distance(pts, (q.x(), q.y()))
            if d < best[0]:
                best = (d, w)
        return best[1]

    def widget_pos(self, scene_xy: tuple[float, float]) -> QPointF:
        """Widget coordinates of a scene point (for tests and tools)."""
        if self._dirty:
            self.refresh()
        s, dx, dy = self._transform()
        return self._at(scene_xy[0], scene_xy[1], s) + QPointF(dx, dy)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        part = self.part_at(event.position())
        q = ""
        if isinstance(part, Box):
            q = part.quantity
        elif isinstance(part, Wire):
            q = WIRE_QUANTITY.get(part.key, "")
        opts = self.state.options
        opts.highlight = "" if q == opts.highlight else q
        if q and len(self.layer_names) > 1 and part is not None:
            name = self.layer_names[part.layer]
            if name != self.state.layer:
                self.state.set_layer(name)
        event.accept()

    def tooltip_at(self, pos: QPointF) -> str:
        """The formula, with its numbers, of the part under ``pos`` ("" for none)."""
        part = self.part_at(pos)
        if part is None:
            return ""
        if isinstance(part, Box):
            key = {
                "forget_gate": "f",
                "input_gate": "i",
                "candidate": "g",
                "output_gate": "o",
                "kept": "kept",
                "written": "written",
                "cell": "c",
                "tanh_c": "tanh_c",
                "hidden": "h",
            }.get(part.quantity, "")
            v = self.values.get(f"{part.layer}/{key}")
            if isinstance(v, WireValue) and not self._hidden_key(key):
                return v.formula
            return part.formula
        v = self.values.get(part.id)
        if isinstance(v, WireValue) and not self._hidden_key(part.key):
            return v.formula
        if v is not None and not isinstance(v, WireValue) and not self._hidden_key(part.key):
            a = np.asarray(v, dtype=np.float64)
            fin = a[np.isfinite(a)]
            rng = f"{fin.min():.2f} … {fin.max():.2f}" if fin.size else "—"
            return f"{part.symbol}: {part.formula}\n{a.size} values, from {rng}"
        return f"{part.symbol}: {part.formula}"

    def _hidden_key(self, key: str) -> bool:
        return bool(self.state.options.hide_answer) and key in ANSWER_KEYS

    def event(self, ev: Any) -> bool:
        if ev.type() == ev.Type.ToolTip:
            he: QHelpEvent = ev
            text = self.tooltip_at(QPointF(he.pos()))
            if text:
                QToolTip.showText(he.globalPos(), text, self)
            else:
                QToolTip.hideText()
                ev.ignore()
            return True
        return super().event(ev)


def _along(points: tuple[tuple[float, float], ...], frac: float) -> tuple[float, float]:
    """The point a fraction ``frac`` of the way along a polyline."""
    segs = [(a, b, math.hypot(b[0] - a[0], b[1] - a[1])) for a, b in itertools.pairwise(points)]
    total = sum(n for _, _, n in segs) or 1.0
    left = min(max(frac, 0.0), 1.0) * total
    for a, b, n in segs:
        if left <= n or n == segs[-1][2]:
            k = left / n if n else 0.0
            k = min(k, 1.0)
            return a[0] + (b[0] - a[0]) * k, a[1] + (b[1] - a[1]) * k
        left -= n
    return points[-1]


def _distance(points: tuple[tuple[float, float], ...], q: tuple[float, float]) -> float:
    """Distance from ``q`` to a polyline."""
    best = math.inf
    for a, b in itertools.pairwise(points):
        dx, dy = b[0] - a[0], b[1] - a[1]
        n2 = dx * dx + dy * dy
        k = 0.0 if n2 == 0 else max(0.0, min(1.0, ((q[0] - a[0]) * dx + (q[1] - a[1]) * dy) / n2))
        px, py = a[0] + k * dx, a[1] + k * dy
        best = min(best, math.hypot(q[0] - px, q[1] - py))
    return best


# --- the equations, for the lecture hall -------------------------------------------------------
#: (wire key, quantity, words) of each line, top to bottom
EQUATION_LINES = (
    ("z_f", "forget_gate", ""),
    ("f", "forget_gate", "keeps old memory"),
    ("z_i", "input_gate", ""),
    ("i", "input_gate", "lets new memory in"),
    ("z_c", "candidate", ""),
    ("g", "candidate", "proposed new memory"),
    ("z_o", "output_gate", ""),
    ("o", "output_gate", "lets memory out"),
    ("kept", "kept", "what is kept"),
    ("written", "written", "what is written"),
    ("c", "cell", "the new memory"),
    ("tanh_c", "tanh_c", ""),
    ("h", "hidden", "the output"),
)


class EquationsView(QWidget):
    """The selected unit's equations at step ``t`` with their numbers, one per line, large.

    The formulas come from :func:`lstmviz.export.diagram.unit_values`; a highlighted quantity
    (a diagram part clicked) gets a band behind its lines; a question hides the cell's update.
    """

    def __init__(
        self, state: ViewerState, parent: QWidget | None = None, *, big: bool = True
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.theme: Theme = NORMAL
        self.big = big
        self.lines: list[tuple[str, str, str, str]] = []  # (text, quantity, words, key)
        self.header = ""
        self.text_px: list[int] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        ev = state.events
        for sig in (ev.trace, ev.layer, ev.batch, ev.selection, ev.t):
            sig.connect(self.refresh)
        for name in ("hide_answer", "highlight"):
            getattr(state.options.events, name).connect(self.refresh)
        self.refresh()

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.update()

    def refresh(self, *_: Any) -> None:
        st = self.state
        lt = st.layer_trace
        self.lines = []
        if lt is None:
            self.header = "Open a model to see a unit's equations."
            self.update()
            return
        b = min(st.batch, lt.batch_size - 1)
        t = min(st.t, lt.timesteps - 1)
        u = st.unit if st.unit < lt.units else 0
        labels = st.token_labels()
        vals = unit_values(lt, t, b, u, labels if len(labels) == lt.timesteps else None)
        tok = f" · input {labels[t]}" if t < len(labels) else ""
        self.header = f"unit {u} of layer {lt.name} · t = {t}{tok}"
        hide = bool(st.options.hide_answer)
        for key, q, words in EQUATION_LINES:
            text = vals[key].formula
            if hide and key in ANSWER_KEYS:
                head = text.partition(" = ")[0]
                text = f"{head} = ?"
            self.lines.append((text, q, words, key))
        self.update()

    @staticmethod
    def _rows(lines: list[tuple[str, str, str, str]]) -> float:
        """The height of ``lines`` in line heights: the header, the lines, the gaps."""
        gaps = sum(0.25 for *_, key in lines if key in ("f", "i", "g", "o", "written", "c"))
        return 1.3 + len(lines) + gaps + 0.3

    def shown_lines(self) -> list[tuple[str, str, str, str]]:
        """Every line, or -- when they do not all fit at the smallest type -- the lines
        without the pre-activations' sums (each gate's line still shows its z)."""
        if self.height() <= 0 or not self.lines:
            return self.lines
        least = PRESENTATION_MIN_PX if self.big else 11
        if self.height() / (self._rows(self.lines) * 1.32) >= least:
            return self.lines
        return [line for line in self.lines if not line[3].startswith("z_")]

    def _font_px(self, lines: list[tuple[str, str, str, str]]) -> int:
        px = int(self.height() / (self._rows(lines) * 1.32)) if self.height() > 0 else 20
        px = min(px, 44 if self.big else 18)
        return max(px, PRESENTATION_MIN_PX if self.big else 11)

    def paintEvent(self, event: QPaintEvent) -> None:
        th = self.theme
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        p.fillRect(self.rect(), QColor(th.bg))
        self.text_px = []
        lines = self.shown_lines()
        px = self._font_px(lines)
        mono = QFont("DejaVu Sans Mono")
        mono.setPixelSize(px)
        bold = QFont(mono)
        bold.setBold(True)
        head = QFont("DejaVu Sans")
        head.setPixelSize(px)
        head.setBold(True)
        line_h = px * 1.32
        y = 8.0
        p.setFont(head)
        p.setPen(QColor(th.fg))
        p.drawText(
            QRectF(12, y, self.width() - 24, line_h), Qt.AlignmentFlag.AlignVCenter, self.header
        )
        self.text_px.append(px)
        y += line_h * 1.3
        hl = self.state.options.highlight
        fm = QFontMetricsF(mono)
        words_x = 12 + max((fm.horizontalAdvance(t) for t, *_ in lines), default=0) + 2 * px
        for text, q, words, key in lines:
            is_result = not key.startswith("z_")
            if hl and q == hl:
                p.fillRect(QRectF(4, y, self.width() - 8, line_h), QColor(86, 180, 233, 70))
            colour = QColor(QUANTITY_COLORS.get(q, th.fg)) if is_result else QColor(th.muted)
            if q in ("kept", "written", "tanh_c"):
                colour = QColor(th.fg)
            p.setFont(bold if is_result else mono)
            p.setPen(colour)
            p.drawText(
                QRectF(12, y, self.width() - 24, line_h), Qt.AlignmentFlag.AlignVCenter, text
            )
            self.text_px.append(px)
            if words and words_x + fm.horizontalAdvance(words) < self.width():
                p.setFont(mono)
                p.setPen(QColor(th.muted))
                p.drawText(
                    QRectF(words_x, y, self.width() - words_x, line_h),
                    Qt.AlignmentFlag.AlignVCenter,
                    words,
                )
                self.text_px.append(px)
            y += line_h
            if key in ("f", "i", "g", "o", "written", "c"):
                y += line_h * 0.25
        p.end()

    def text(self) -> str:
        """The equations as plain text."""
        return "\n".join([self.header, *(t for t, *_ in self.lines)])

    def minimumSizeHint(self) -> QSize:
        return QSize(300, 200)


class DiagramPanel(QWidget):
    """The "Cell diagram" dock: a :class:`DiagramView` with its two switches (the whole
    layer instead of the unit; the flow animation)."""

    def __init__(self, window: Any, parent: QWidget | None = None) -> None:
        from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout

        super().__init__(parent)
        opts = window.state.options
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        bar = QHBoxLayout()
        self.layer_box = QCheckBox("Whole layer")
        self.layer_box.setToolTip(
            "A colour strip per wire, one cell per unit, every stacked layer (instead of "
            "the selected unit's numbers)"
        )
        self.animate_box = QCheckBox("Animate steps")
        self.animate_box.setToolTip("Show the values flowing along the wires at every step")
        self.layer_box.setChecked(opts.diagram_layer)
        self.animate_box.setChecked(opts.animate)
        self.layer_box.toggled.connect(lambda on: setattr(opts, "diagram_layer", bool(on)))
        self.animate_box.toggled.connect(lambda on: setattr(opts, "animate", bool(on)))
        opts.events.diagram_layer.connect(lambda on: self.layer_box.setChecked(bool(on)))
        opts.events.animate.connect(lambda on: self.animate_box.setChecked(bool(on)))
        hint = QLabel("click a part: its equation and heatmap row light up · hover: its formula")
        hint.setStyleSheet("color: #9aa0a6")
        hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar.addWidget(self.layer_box)
        bar.addWidget(self.animate_box)
        bar.addWidget(hint, 1)
        lay.addLayout(bar)
        self.view = DiagramView(window.state)
        self.view.set_theme(window.theme)
        lay.addWidget(self.view, 1)
