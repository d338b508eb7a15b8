"""Shared parts of the analysis panels: a base panel that recomputes lazily, plot styling."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QShowEvent
from PySide6.QtWidgets import (
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ...errors import LstmvizError
from ..style import EMPTY_STATE, NORMAL, OKABE_ITO
from .targets import TaskBar, engine_model

MUTED = "#9aa0a6"
KEPT = "#0072B2"  # blue: what the cell keeps
WRITTEN = "#E69F00"  # orange: what it writes
GATE_COLORS = {"input_gate": "#009E73", "forget_gate": "#D55E00", "output_gate": "#CC79A7"}
SERIES = OKABE_ITO


def style_plot(plot: pg.PlotItem, title: str = "", left: str = "", bottom: str = "") -> None:
    """Axes and fonts like the main window's plots."""
    f = QFont()
    f.setPixelSize(NORMAL.tick_px)
    for ax in ("left", "bottom"):
        a = plot.getAxis(ax)
        a.setStyle(tickFont=f, tickLength=-4)
        a.setPen(pg.mkPen(NORMAL.muted))
        a.setTextPen(pg.mkPen(NORMAL.fg))
        a.enableAutoSIPrefix(False)  # no "(x0.001)" on fractions and indices
        a.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    if title:
        plot.setTitle(title, color=NORMAL.fg, size=f"{NORMAL.title_px}px")
    if left:
        plot.setLabel("left", left, color=NORMAL.muted)
    if bottom:
        plot.setLabel("bottom", bottom, color=NORMAL.muted)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.vb.setBackgroundColor(NORMAL.panel)
    plot.showGrid(x=False, y=True, alpha=0.15)


def time_ticks(
    labels: list[str], n: int, max_labels: int = 24, offset: float = 0.0
) -> list[tuple[float, str]]:
    """Tick ``(x, label)`` pairs for ``n`` steps; ``offset=0.5`` centres them on image
    columns (step t spans ``[t, t + 1)``)."""
    step = max(1, -(-n // max_labels))
    if len(labels) != n:
        return [(t + offset, str(t)) for t in range(0, n, step)]
    return [(t + offset, labels[t]) for t in range(0, n, step)]


def show_image(
    plot: pg.PlotItem,
    image: pg.ImageItem,
    data: np.ndarray,
    levels: tuple[float, float],
    x0: float = 0.0,
    extent: tuple[int, int] | None = None,
) -> None:
    """``data`` (rows, cols) into ``image`` covering ``[x0, x0 + cols) x [0, rows)`` and the
    view fitted to it (linked views follow). ``extent``: ``(rows, cols)`` the image stands
    for when ``data`` is a reduced overview of a larger map."""
    from PySide6.QtCore import QRectF

    rows, cols = extent if extent is not None else data.shape
    image.setImage(np.ascontiguousarray(data, np.float32), autoLevels=False, levels=levels)
    image.setRect(QRectF(x0, 0, max(cols, 1), max(rows, 1)))
    plot.vb.setRange(xRange=(x0, x0 + max(cols, 1)), yRange=(0, max(rows, 1)), padding=0)


#: A legend's background: dark and nearly opaque, so its text stays readable over the data
#: it sits on (curves and points pass under it).
LEGEND_BRUSH = (24, 26, 32, 215)

#: The least height of a panel's plot area: axes, ticks and data stay readable.
PLOT_MIN_PX = 200
#: The same in presentation mode's large type, where a panel shares a projector's 720 px
#: with the big view above it.
PLOT_MIN_LARGE_PX = 150
#: From this type size on (presentation mode) panels make room for the big view above them.
LARGE_TYPE_PX = 20


class PlotStack(QStackedWidget):
    """A panel's plots, or -- until there is something to plot -- a sentence saying what to
    do (an empty state: no placeholder axes)."""

    def __init__(self, plots: QWidget, empty_text: str, min_height: int = PLOT_MIN_PX) -> None:
        super().__init__()
        self.empty_label = QLabel(empty_text)
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setObjectName(EMPTY_STATE)
        self.plots = plots
        self.addWidget(self.empty_label)
        self.addWidget(plots)
        self.setMinimumHeight(min_height)
        self.show_empty()

        self._empty_text = empty_text

    def show_empty(self, text: str | None = None) -> None:
        if text is not None:
            self._empty_text = text
            self.empty_label.setText(text)
            self._fit_empty()
        self.setCurrentWidget(self.empty_label)

    def resizeEvent(self, ev: Any) -> None:
        super().resizeEvent(ev)
        self._fit_empty()

    def _fit_empty(self) -> None:
        """The sentence as a whole where it fits, else its first words that fit with "…"
        (the whole sentence in the tooltip): in presentation mode's large type a low panel
        cut it mid-line."""
        lab, text = self.empty_label, self._empty_text
        r = lab.contentsRect()
        if r.width() <= 0 or r.height() <= 0:
            return
        fm = lab.fontMetrics()
        flags = int(Qt.AlignmentFlag.AlignCenter) | int(Qt.TextFlag.TextWordWrap)

        def fits(t: str) -> bool:
            return fm.boundingRect(0, 0, r.width(), 100_000, flags, t).height() <= r.height()

        shown = text
        if not fits(text):
            words = text.split()
            lo, hi = 1, len(words)  # the most words that fit with "…"
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if fits(" ".join(words[:mid]) + " …"):
                    lo = mid
                else:
                    hi = mid - 1
            shown = " ".join(words[:lo]) + " …"
        if shown != lab.text():
            lab.setText(shown)
        lab.setToolTip(text if shown != text else "")

    def show_plots(self) -> None:
        self.setCurrentWidget(self.plots)

    @property
    def is_empty(self) -> bool:
        return self.currentWidget() is self.empty_label


def run_row(
    text: str, tooltip: str, run: Callable[[], None], error: Any
) -> tuple[QHBoxLayout, QPushButton, TaskBar]:
    """A panel's action row: the button ``text`` that calls ``run`` and, beside it, the
    progress bar and Stop button shown while the computation runs (its errors go to the
    signal ``error``). Returns ``(row, button, bar)``."""
    row = QHBoxLayout()
    button = QPushButton(text)
    button.setToolTip(tooltip)
    button.clicked.connect(run)
    row.addWidget(button)
    bar = TaskBar()
    bar.runner.failed.connect(error)
    row.addWidget(bar, 1)
    return row, button, bar


def hint(text: str) -> QLabel:
    lab = QLabel(text)
    lab.setWordWrap(True)
    lab.setStyleSheet(f"color: {MUTED};")
    return lab


class Panel(QWidget):
    """Base of every analysis panel.

    Connects to the state and recomputes in :meth:`refresh` when the trace, layer or batch
    item changes -- but only while visible (a hidden dock costs nothing); ``t`` changes call
    :meth:`on_t`. Errors go to ``error`` (the window shows them in its dialog).
    """

    error = Signal(str)

    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._dirty = True
        state.events.trace.connect(self._changed)
        state.events.layer.connect(self._changed)
        state.events.batch.connect(self._changed)
        state.events.t.connect(self._on_t_changed)
        state.events.selection.connect(self._on_selection_changed)

    # the state's state, guarded
    @property
    def lt(self) -> Any:
        return self.state.layer_trace

    def engine_model_or_say_why(self) -> Any:
        """The open model when lstmviz's engine runs it (the causal analyses need its
        backward pass and intervened recurrence); else None, after ``error`` said why."""
        try:
            return engine_model(self.state)
        except LstmvizError as e:
            self.error.emit(str(e))
            return None

    def _changed(self, *_: Any) -> None:
        self._dirty = True
        if self.isVisible():
            self._safe_refresh()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._dirty:
            self._safe_refresh()

    def _safe_refresh(self) -> None:
        self._dirty = False
        if self.lt is None:
            return
        try:
            self.refresh()
        except LstmvizError as e:
            self.error.emit(str(e))

    def ensure_fresh(self) -> None:
        """Recompute now if anything changed (tests and screenshots of hidden panels)."""
        if self._dirty:
            self._safe_refresh()

    def _on_t_changed(self, t: int) -> None:
        if self.isVisible() and not self._dirty and self.lt is not None:
            self.on_t(t)

    def _on_selection_changed(self) -> None:
        if self.isVisible() and not self._dirty and self.lt is not None:
            self.on_selection()

    # to override
    def refresh(self) -> None:
        """Recompute from the state's current trace."""

    def on_t(self, t: int) -> None:
        """Move to step ``t``."""

    def on_selection(self) -> None:
        """The selected units changed."""


def zscore(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    sd = a.std()
    return (a - a.mean()) / sd if sd > 1e-12 else a - a.mean()


@dataclass
class ResultPane:
    """A panel's result side: a summary sentence above its plots (or their empty state)."""

    widget: QWidget
    layout: QVBoxLayout
    summary: QLabel
    view: pg.GraphicsLayoutWidget
    stack: PlotStack


def result_pane(empty_text: str) -> ResultPane:
    """The result side of a panel: a word-wrapped summary, then a plot area that shows
    ``empty_text`` until there is something to plot. Add plots to ``view``; widgets added to
    ``layout`` go below them."""
    widget = QWidget()
    layout = QVBoxLayout(widget)
    layout.setContentsMargins(0, 0, 0, 0)
    summary = QLabel("")
    summary.setWordWrap(True)
    layout.addWidget(summary)
    view = pg.GraphicsLayoutWidget()
    stack = PlotStack(view, empty_text)
    layout.addWidget(stack, 1)
    return ResultPane(widget, layout, summary, view, stack)
