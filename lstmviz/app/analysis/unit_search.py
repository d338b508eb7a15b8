"""Unit search panel: rank units by correlation with a probe, a regex or a painted mask."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...analysis import probes, rank_units
from ...engine.trace import TITLES
from ...errors import LstmvizError
from .common import LEGEND_BRUSH, SERIES, Panel, hint, style_plot, time_ticks, zscore

SOURCES = ("Probe", "Regex", "Painted mask")
TOP = 20


def text_tokens(state: Any) -> list[list[str]] | None:
    """Token strings for every batch item (characters as they are, words with a trailing
    space), or None when the model has no text vocabulary."""
    info = state.info
    x = state.x
    if info is None or info.token_kind not in ("chars", "words") or not info.vocab:
        return None
    toks = probes.tokens_from_ids(np.asarray(x), info.vocab)
    if info.token_kind == "words":
        toks = [[t + " " for t in row] for row in toks]
    return toks


def all_labels(state: Any) -> list[list[str]]:
    """A label per step for every batch item (for regexes over non-text inputs)."""
    from ...io.inputs import token_labels

    x = state.x
    n = np.asarray(x[0] if isinstance(x, list) else x).shape[0]
    return [token_labels(state.model, x, state.info, b) for b in range(n)]


DASH = Qt.PenStyle.DashLine


class UnitSearchPanel(Panel):
    """Pick a signal, see every unit ranked by |r| and the best ones overlaid on it."""

    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.painted: dict[int, set[int]] = {}
        self.signal: np.ndarray | None = None
        self.ranked: list[tuple[int, float]] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        self.source = QComboBox()
        self.source.addItems(SOURCES)
        self.source.setToolTip("Where the signal comes from")
        row.addWidget(self.source)
        self.probe = QComboBox()
        self.probe.setToolTip(
            "Built-in signals: position, the adder's carry bit, inside quotes, bracket depth"
        )
        row.addWidget(self.probe, 1)
        self.regex = QLineEdit()
        self.regex.setPlaceholderText(r"regular expression over the text, e.g. \d+ or \"[^\"]*\"")
        self.regex.setToolTip(
            "Text models: 1 on every character/word that overlaps a match in "
            "the text; other inputs: 1 on every step whose label matches "
            "(e.g. ^11$ for the bit pair 1+1). Lowercase patterns ignore "
            "case."
        )
        row.addWidget(self.regex, 2)
        self.paint_btn = QPushButton("Mark step t (M)")
        self.paint_btn.setShortcut("M")
        self.paint_btn.setToolTip(
            "Toggle the current timestep in the painted mask (key M), or "
            "click steps on the plot; unpainted steps of this batch "
            "item count as 0"
        )
        self.paint_btn.clicked.connect(self.toggle_current)
        row.addWidget(self.paint_btn)
        self.clear_btn = QPushButton("Clear")
        self.clear_btn.clicked.connect(self.clear_paint)
        row.addWidget(self.clear_btn)
        lay.addLayout(row)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("Correlate with"))
        self.quantity = QComboBox()
        for q in ("cell", "hidden", "forget_gate", "input_gate", "output_gate", "candidate"):
            self.quantity.addItem(TITLES[q], q)
        row2.addWidget(self.quantity)
        self.status = QLabel()
        row2.addWidget(self.status, 1)
        lay.addLayout(row2)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["#", "unit", "r"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setToolTip(
            "Units ranked by |Pearson r| over every batch item and step; click to select"
        )
        self.table.cellClicked.connect(self._on_row_clicked)
        self.table.setMinimumWidth(170)
        split.addWidget(self.table)
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        style_plot(self.plot, "signal and the best units (z-scored)", "", "t")
        self.legend = self.plot.addLegend(offset=(5, 5), brush=LEGEND_BRUSH)
        self.signal_curve = self.plot.plot(
            pen=pg.mkPen("#ffffff", width=3), name="signal", stepMode=None
        )
        self.unit_curves = [
            self.plot.plot(pen=pg.mkPen(SERIES[k], width=2), name=f"#{k + 1}") for k in range(3)
        ]
        self.step_line = pg.InfiniteLine(0, pen=pg.mkPen("#888888", style=DASH))
        self.plot.addItem(self.step_line)
        self.plot.scene().sigMouseClicked.connect(self._on_plot_click)
        split.addWidget(self.plot_widget)
        split.setStretchFactor(1, 1)
        lay.addWidget(split, 1)
        lay.addWidget(
            hint(
                "Pearson r pools every batch item and timestep (masked steps and "
                "NaN signal values left out). Click a unit to select it."
            )
        )
        self.source.currentIndexChanged.connect(self._on_source)
        self.probe.currentIndexChanged.connect(lambda *_: self.search())
        self.regex.editingFinished.connect(self.search)
        self.quantity.currentIndexChanged.connect(lambda *_: self.search())
        self._on_source(0)

    # --- signal -----------------------------------------------------------------------------
    def _on_source(self, _: int) -> None:
        src = self.source.currentText()
        self.probe.setVisible(src == "Probe")
        self.regex.setVisible(src == "Regex")
        self.paint_btn.setVisible(src == "Painted mask")
        self.clear_btn.setVisible(src == "Painted mask")
        self.search()

    def refresh(self) -> None:
        doc = self.state
        names = probes.available(doc.x, text_tokens(doc))
        current = self.probe.currentData()
        self.probe.blockSignals(True)
        self.probe.clear()
        for n in names:
            self.probe.addItem(probes.PROBES[n], n)
        default = "carry_out" if "carry_out" in names else current
        idx = self.probe.findData(default)
        self.probe.setCurrentIndex(max(idx, 0))
        self.probe.blockSignals(False)
        self.painted = {}
        ticks = time_ticks(doc.token_labels(), self.lt.timesteps)
        self.plot.getAxis("bottom").setTicks([ticks, []])
        self.search()

    def build_signal(self) -> np.ndarray:
        doc = self.state
        lt = self.lt
        src = self.source.currentText()
        if src == "Probe":
            name = self.probe.currentData() or "position"
            if name == "position" and lt.go_backwards:
                return probes.position(lt.batch_size, lt.timesteps, reverse=True)
            return probes.compute(name, np.asarray(doc.x), text_tokens(doc))
        if src == "Regex":
            pat = self.regex.text()
            if not pat:
                raise LstmvizError("type a regular expression")
            flags = re.IGNORECASE if pat.islower() else 0  # smart case
            toks = text_tokens(doc)
            if toks is not None:  # over the running text
                return probes.regex(toks, pat, flags)
            try:  # digits, bit pairs, numbers: token by token
                rx = re.compile(pat, flags)
            except re.error as e:
                raise LstmvizError(f"invalid regular expression {pat!r}: {e}") from None
            return np.array(
                [[1.0 if rx.search(lab) else 0.0 for lab in row] for row in all_labels(doc)]
            )
        sig = np.full((lt.batch_size, lt.timesteps), np.nan)
        b = min(doc.batch, lt.batch_size - 1)
        sig[b] = 0.0
        for bb, ts in self.painted.items():
            if bb < lt.batch_size:
                sig[bb] = 0.0
                sig[bb, [t for t in ts if t < lt.timesteps]] = 1.0
        return sig

    def _on_plot_click(self, ev: Any) -> None:
        """Painted mask: a click on the plot toggles that step."""
        if self.source.currentText() != "Painted mask" or self.lt is None:
            return
        if not self.plot.vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        t = round(self.plot.vb.mapSceneToView(ev.scenePos()).x())
        if 0 <= t < self.lt.timesteps:
            self.toggle_step(t)

    def toggle_step(self, t: int) -> None:
        s = self.painted.setdefault(self.state.batch, set())
        s.symmetric_difference_update({int(t)})
        if self.source.currentText() != "Painted mask":
            self.source.setCurrentText("Painted mask")
        else:
            self.search()

    def toggle_current(self) -> None:
        self.toggle_step(self.state.t)

    def clear_paint(self) -> None:
        self.painted = {}
        self.search()

    # --- ranking ----------------------------------------------------------------------------
    def search(self) -> None:
        if self.lt is None or (self._dirty and not self.isVisible()):
            return
        try:
            sig = self.build_signal()
            if not np.isfinite(sig).any() or np.nanstd(sig) == 0:
                raise LstmvizError(
                    "the signal is constant: paint some steps, or pick another probe or pattern"
                )
            q = self.quantity.currentData() or "cell"
            self.ranked = rank_units(self.lt, sig, q)
        except LstmvizError as e:
            self.signal = None
            self.ranked = []
            self.status.setText(f"<span style='color:#E69F00'>{e}</span>")
            self._fill()
            return
        self.signal = sig
        best = self.ranked[0]
        self.status.setText(f"best: unit {best[0]} (r = {best[1]:+.3f})")
        self._fill()

    def _fill(self) -> None:
        self.table.setRowCount(min(TOP, len(self.ranked)))
        for k, (u, r) in enumerate(self.ranked[:TOP]):
            for c, v in enumerate((str(k + 1), str(u), f"{r:+.3f}")):
                item = QTableWidgetItem(v)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(k, c, item)
        self._draw()

    def _draw(self) -> None:
        lt = self.lt
        if lt is None or self.signal is None:
            self.signal_curve.setData([], [])
            for c in self.unit_curves:
                c.setData([], [])
            return
        b = min(self.state.batch, lt.batch_size - 1)
        x = np.arange(lt.timesteps)
        s = self.signal[b]
        ok = np.isfinite(s)
        self.signal_curve.setData(x[ok], zscore(s[ok]) if ok.any() else [])
        q = self.quantity.currentData() or "cell"
        vals = lt.get(q)[b]  # (T, U)
        for k, curve in enumerate(self.unit_curves):
            if k < len(self.ranked):
                u, r = self.ranked[k]
                y = zscore(vals[:, u]) * (1 if r >= 0 else -1)
                curve.setData(x, y)
                curve.opts["name"] = f"unit {u} ({r:+.2f}){' flipped' if r < 0 else ''}"
            else:
                curve.setData([], [])
        self.legend.clear()
        self.legend.addItem(self.signal_curve, "signal")
        for curve in self.unit_curves[: len(self.ranked)]:
            self.legend.addItem(curve, curve.opts["name"])
        self.on_t(self.state.t)

    def on_t(self, t: int) -> None:
        self.step_line.setValue(t)

    def _on_row_clicked(self, row: int, _col: int) -> None:
        if row < len(self.ranked):
            u = self.ranked[row][0]
            self.state.set_units([u, *[v for v in self.state.selected_units if v != u]])
