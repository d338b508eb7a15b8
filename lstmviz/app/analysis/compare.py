"""Compare panel: two models, or two training snapshots, on the same input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...analysis import Comparison, align_units
from ...engine.trace import GATES, QUANTITIES, TITLES
from ...errors import LstmvizError
from .. import dialogs
from .common import Panel, PlotStack, hint, show_image, style_plot, time_ticks


class ComparePanel(Panel):
    """A: a pinned trace (a snapshot) or the current model; B: another model file or the
    current trace. B's units are aligned to A's by the best correlation; heatmaps of A,
    aligned B and their difference for the current batch item."""

    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.pinned: Any = None  # a Trace
        self.pinned_label = ""
        self.other_model: Any = None
        self.other_label = ""
        self.comparison: Comparison | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        self.pin_btn = QPushButton("Pin current as A")
        self.pin_btn.setToolTip(
            "Keep the current trace (e.g. this training snapshot) as A; "
            "then train on, scrub to another snapshot or open another "
            "model: B follows the state"
        )
        self.pin_btn.clicked.connect(self.pin_current)
        row.addWidget(self.pin_btn)
        self.open_btn = QPushButton("Open model B…")
        self.open_btn.setToolTip(
            "A second .keras/.h5 model with the same input, traced on the current input"
        )
        self.open_btn.clicked.connect(self.choose_model)
        row.addWidget(self.open_btn)
        self.clear_btn = QPushButton("Clear")
        self.clear_btn.clicked.connect(self.clear)
        row.addWidget(self.clear_btn)
        row.addWidget(QLabel("quantity"))
        self.quantity = QComboBox()
        for q in QUANTITIES:
            self.quantity.addItem(TITLES[q], q)
        self.quantity.setCurrentIndex(QUANTITIES.index("hidden"))
        self.quantity.currentIndexChanged.connect(lambda *_: self._changed())
        row.addWidget(self.quantity)
        row.addStretch(1)
        lay.addLayout(row)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        split = QSplitter()
        self.view = pg.GraphicsLayoutWidget()
        self.plots: list[pg.PlotItem] = []
        self.images: list[pg.ImageItem] = []
        for k, title in enumerate(("A", "B (aligned to A)", "A − B")):
            p = self.view.addPlot(row=0, col=k)  # side by side: the dock is wide and short
            style_plot(p, title, "unit", "t")
            p.vb.invertY(True)
            im = pg.ImageItem(axisOrder="row-major")
            im.setColorMap(pg.colormap.get("CET-D1"))
            p.addItem(im)
            if self.plots:
                p.setXLink(self.plots[0])
                p.setYLink(self.plots[0])
            self.plots.append(p)
            self.images.append(im)
        self.stack = PlotStack(
            self.view,
            "Pin what is on screen as A (a model, a training snapshot), then change the "
            "input or open a second model as B: their units are aligned and compared.",
        )
        split.addWidget(self.stack)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["A unit", "B unit", "r"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setToolTip(
            "Each unit of A and the unit of B whose time course matches it "
            "best (|r|, one-to-one); a negative r is a flipped unit"
        )
        self.table.cellClicked.connect(self._on_row)
        split.addWidget(self.table)
        split.setStretchFactor(0, 1)
        lay.addWidget(split, 1)
        lay.addWidget(
            hint(
                "Units of two networks are only defined up to order and sign: B is "
                "reordered (and flipped where r < 0) before differencing."
            )
        )

    # --- choosing A and B ---------------------------------------------------------------------
    def pin_current(self) -> None:
        doc = self.state
        if doc.trace is None:
            return
        self.pinned = doc.trace
        name = Path(doc.model_path).name if doc.model_path else doc.model.name
        self.pinned_label = f"pinned {name} ({doc.engine})"
        self._changed()

    def choose_model(self) -> None:
        from ..main_window import model_suffixes

        pattern = " ".join(f"*{s}" for s in model_suffixes())
        path = dialogs.ask_open_file(self, "Model B", f"Models ({pattern});;All files (*)")
        if path:
            self.open_model(path)

    def open_model(self, path: str) -> None:
        from ...io import load_model

        try:
            self.other_model = load_model(path)
        except LstmvizError as e:
            self.error.emit(str(e))
            return
        self.other_label = Path(path).name
        self._changed()

    def clear(self) -> None:
        self.pinned = None
        self.other_model = None
        self.comparison = None
        self._changed()

    def traces(self) -> tuple[Any, Any, str, str] | None:
        """``(trace A, trace B, label A, label B)`` or None when there is nothing to compare."""
        doc = self.state
        if doc.trace is None:
            return None
        if self.other_model is not None:
            tb = self.other_model.trace(doc.x)
            ta = self.pinned if self.pinned is not None else doc.trace
            la = self.pinned_label if self.pinned is not None else "current model"
            return ta, tb, la, self.other_label
        if self.pinned is not None:
            return self.pinned, doc.trace, self.pinned_label, f"current ({doc.engine})"
        return None

    # --- computing --------------------------------------------------------------------------
    def refresh(self) -> None:
        pair = self.traces()
        if pair is None:
            self.comparison = None
            for im in self.images:
                im.clear()
            self.table.setRowCount(0)
            self.summary.setText("")
            self.stack.show_empty()
            return
        ta, tb, la, lb = pair
        q = self.quantity.currentData()
        doc = self.state
        try:
            name = doc.layer
            lta = ta.layer(name) if name in ta.layer_names else ta.layer(0)
            ltb = tb.layer(name) if name in tb.layer_names else tb.layer(0)
            order, r = align_units(lta, ltb, q)
        except LstmvizError as e:
            self.summary.setText(f"<span style='color:#E69F00'>Cannot compare: {e}</span>")
            self.comparison = None
            return
        self.stack.show_plots()
        self.comparison = Comparison(
            a=ta, b=tb, layer_a=lta.name, layer_b=ltb.name, order=order, r=r, quantity=q
        )
        b = min(doc.batch, lta.batch_size - 1)
        a_img = np.asarray(lta.get(q)[b], np.float32).T  # (Ua, T)
        b_img = self.comparison.aligned(q)[b].T  # (Ua, T)
        d_img = a_img - b_img
        if q in GATES:
            lv = (0.0, 1.0)
        else:
            m = float(np.nanmax(np.abs(np.concatenate([a_img, np.nan_to_num(b_img)]))))
            lv = (-max(m, 1e-6), max(m, 1e-6))
        dm = float(max(np.nanmax(np.abs(d_img)) if np.isfinite(d_img).any() else 0, 1e-6))
        for p, im, img, levels in zip(
            self.plots,
            self.images,
            (a_img, np.nan_to_num(b_img), np.nan_to_num(d_img)),
            (lv, lv, (-dm, dm)),
            strict=True,
        ):
            show_image(p, im, img, levels)
            im.setColorMap(
                pg.colormap.get("viridis" if q in GATES and im is not self.images[2] else "CET-D1")
            )
        ticks = time_ticks(doc.token_labels(), lta.timesteps, offset=0.5)
        for p in self.plots:
            p.getAxis("bottom").setTicks([ticks, []])
        self.plots[0].setTitle(f"A: {la} — {lta.name}", color="#e8e8ea")
        self.plots[1].setTitle(f"B: {lb} — {ltb.name}, aligned", color="#e8e8ea")
        self.plots[2].setTitle(f"A − B (±{dm:.2g})", color="#e8e8ea")
        self.table.setRowCount(len(order))
        for k, (j, rr) in enumerate(zip(order, r, strict=True)):
            for c, v in enumerate((str(k), "–" if j < 0 else str(int(j)), f"{rr:+.3f}")):
                self.table.setItem(k, c, QTableWidgetItem(v))
        matched = r[order >= 0]
        out = self.comparison.output_difference
        out_s = f" · max output difference {float(np.max(out)):.3g}" if out is not None else ""
        self.summary.setText(
            f"{TITLES[q]}: median |r| of aligned units {np.median(np.abs(matched)):.2f}, "
            f"{int((np.abs(matched) > 0.9).sum())} of {len(order)} units match with |r| > 0.9"
            f"{out_s}"
        )

    def _on_row(self, row: int, _col: int) -> None:
        if self.lt is not None and row < self.lt.units:
            self.state.set_units([row, *[u for u in self.state.selected_units if u != row]])
