"""State-space panel: the PCA of h or c (over the current input, random inputs or a traced
corpus) with the input's trajectory and the step cursor; the fixed and slow points of the
LSTM's step map for a constant input, drawn on the same PCA, with their stability from the
Jacobian's eigenvalues (:func:`lstmviz.analysis.state_pca`,
:func:`lstmviz.analysis.fixed_points`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...errors import LstmvizError
from .common import LEGEND_BRUSH, Panel, hint, result_pane, style_plot
from .targets import TaskBar, open_traced_corpus, side_by_side

SOURCES = (
    ("input", "this input"),
    ("random", "random inputs"),
    ("corpus", "a traced corpus…"),
)
AXES = ((0, 1), (0, 2), (1, 2))
#: How each kind of point is drawn: (symbol, colour, name).
KINDS = {
    "stable": ("o", "#009E73", "stable (attractor)"),
    "saddle": ("x", "#E69F00", "saddle"),
    "unstable": ("t", "#D55E00", "unstable"),
    "slow": ("s", "#9aa0a6", "slow point"),
}
RANDOM_SEQUENCES = 128
EMPTY = "The PCA of the layer's state appears here once a model is open."


class StateSpacePanel(Panel):
    """PCA trajectory with the step cursor; fixed points and their eigenvalues."""

    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.pca: Any = None
        self.points: list[Any] = []
        self.points_for: tuple[str, str] | None = None  # (layer, what the input was)
        self.selected = -1
        self.searched = False  # a search ran for this layer (it may have found nothing)
        self._model_id: int | None = None
        self.corpus: Any = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)

        left = QWidget()
        v = QVBoxLayout(left)
        v.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        row.addWidget(QLabel("PCA of"))
        self.quantity = QComboBox()
        self.quantity.addItem("hidden state h", "hidden")
        self.quantity.addItem("cell state c", "cell")
        self.quantity.currentIndexChanged.connect(lambda *_: self._fit())
        row.addWidget(self.quantity)
        row.addWidget(QLabel("over"))
        self.source = QComboBox()
        for key, label in SOURCES:
            self.source.addItem(label, key)
        self.source.setToolTip(
            "The states the components are fitted to: this input's, those of random inputs of "
            "the same length, or a corpus traced in the Corpus panel (a folder)"
        )
        self.source.activated.connect(self._on_source)
        row.addWidget(self.source, 1)
        v.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Axes"))
        self.axes = QComboBox()
        for a, b in AXES:
            self.axes.addItem(f"PC{a + 1} × PC{b + 1}", (a, b))
        self.axes.currentIndexChanged.connect(lambda *_: self._draw())
        row.addWidget(self.axes)
        row.addStretch(1)
        v.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Fixed points for the input"))
        self.const = QComboBox()
        self.const.addItem("zero (no input)", "zero")
        self.const.addItem("at the current step", "step")
        self.const.setToolTip(
            "The constant input the step map is iterated with: zeros (a token model: id 0), or "
            "the input at the current step held forever"
        )
        row.addWidget(self.const, 1)
        v.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("starts"))
        self.n_init = QSpinBox()
        self.n_init.setRange(8, 4096)
        self.n_init.setValue(128)
        self.n_init.setToolTip(
            "How many starting states (half from the input's trajectory, half spread around it)"
        )
        row.addWidget(self.n_init)
        self.find_btn = QPushButton("Find fixed points")
        self.find_btn.setToolTip(
            "Minimise ½‖F(s) − s‖² from many starts; classify each point by its Jacobian's "
            "eigenvalues"
        )
        self.find_btn.clicked.connect(self.find_points)
        row.addWidget(self.find_btn)
        v.addLayout(row)
        self.bar = TaskBar()
        self.bar.runner.failed.connect(self.error)
        v.addWidget(self.bar)
        self.fit_bar = TaskBar()
        self.fit_bar.runner.failed.connect(self.error)
        v.addWidget(self.fit_bar)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["kind", "speed q", "max |λ|", "unstable"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("Click a point to see its eigenvalues")
        self.table.cellClicked.connect(lambda r, c: self.select_point(r))
        self.table.setMinimumHeight(60)
        v.addWidget(self.table, 1)

        pane = result_pane(EMPTY)
        right, rl = pane.widget, pane.layout
        self.summary, self.view, self.stack = pane.summary, pane.view, pane.stack
        rl.addWidget(
            hint(
                "Line: the input's trajectory (blue dot: the current step). Green: stable "
                "fixed points (memories); orange ×: saddles; grey: slow points."
            )
        )
        lay.addWidget(side_by_side(left, right), 1)

        self.pca_plot = self.view.addPlot(row=0, col=0)
        style_plot(self.pca_plot, "", "PC2", "PC1")
        self.pca_plot.showGrid(x=True, y=True, alpha=0.15)
        self.pca_plot.addLegend(offset=(-4, 4), brush=LEGEND_BRUSH, labelTextColor="#e8e8ea")
        self.traj = self.pca_plot.plot(
            pen=pg.mkPen("#56B4E9", width=1.5),
            symbol="o",
            symbolSize=4,
            symbolBrush="#56B4E9",
            symbolPen=None,
        )
        self.now = pg.ScatterPlotItem(size=14, brush="#56B4E9", pen=pg.mkPen("#ffffff", width=2))
        self.pca_plot.addItem(self.now)
        self.fp_items: list[Any] = []
        self.sel_item = pg.ScatterPlotItem(
            size=22, brush=None, pen=pg.mkPen("#F0E442", width=2), symbol="o"
        )
        self.pca_plot.addItem(self.sel_item)
        self.eig_plot = self.view.addPlot(row=0, col=1)
        style_plot(self.eig_plot, "", "imaginary", "real")
        self.eig_plot.setTitle("eigenvalues of the selected point", color="#e8e8ea", size="13px")
        self.eig_plot.setAspectLocked(True)
        self.eig_plot.showGrid(x=True, y=True, alpha=0.15)
        circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
        self.eig_plot.plot(circle.real, circle.imag, pen=pg.mkPen("#9aa0a6", width=1))
        self.eig_scatter = pg.ScatterPlotItem(size=8, brush="#E69F00", pen=None)
        self.eig_plot.addItem(self.eig_scatter)
        self.view.ci.layout.setColumnStretchFactor(0, 3)
        self.view.ci.layout.setColumnStretchFactor(1, 2)

    def shutdown(self) -> None:
        """Stop the background work (the window is closing)."""
        self.bar.shutdown()
        self.fit_bar.shutdown()

    # --- state ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        st = self.state
        if self._model_id != id(st.model):
            self._model_id = id(st.model)
            lt = self.lt
            dim = 2 * lt.units if lt is not None else 0
            # the search solves a (2U x 2U) system per start and step: fewer starts for big
            # layers keep it to seconds (the user can ask for more)
            self.n_init.setValue(128 if dim <= 64 else 32)
            self.searched = False
            self._set_points([])
        if self.points_for is not None and self.points_for[0] != st.layer:
            self.searched = False
            self._set_points([])
        if self.source.currentData() == "input" or self.pca is None:
            self._fit()
        else:
            self._draw()

    def on_t(self, t: int) -> None:
        self._draw_now()

    def _on_source(self, *_: Any) -> None:
        if self.source.currentData() == "corpus":
            try:
                got = open_traced_corpus(self, self.state)
            except LstmvizError as e:
                self.error.emit(str(e))
                got = None
            if got is None:
                self.source.setCurrentIndex(0)
                return
            self.corpus, name = got
            self.source.setItemText(self.source.currentIndex(), f"the corpus {name}")
        self._fit()

    def _fit(self) -> None:
        from ...analysis import state_pca

        st = self.state
        lt = self.lt
        if lt is None:
            return
        q = self.quantity.currentData()
        src = self.source.currentData()
        layer = lt.name
        if src == "input":
            try:
                self.pca = state_pca(st.trace, layer, q, k=3)
            except LstmvizError as e:
                self.pca = None
                self.stack.show_empty(f"No PCA for this input: {e}")
                return
            self._draw()
            return
        model = self.engine_model_or_say_why()
        if model is None:
            return
        corpus = self.corpus
        if src == "corpus" and (corpus is None or layer not in corpus.layers):
            self.error.emit(f"the corpus has no layer {layer!r}; trace this model's corpus first")
            return
        info, steps = st.info, max(lt.timesteps, 2)

        def job(progress: Any, should_stop: Any) -> Any:
            if src == "corpus":
                return state_pca(corpus, layer, q, k=3)
            from .corpus import random_corpus

            xs = random_corpus(model, info, RANDOM_SEQUENCES, steps)
            return state_pca(model.trace(xs, step_outputs=False), layer, q, k=3)

        self.fit_bar.start(job, self._on_fitted, "Fitting the PCA")

    def _on_fitted(self, pca: Any) -> None:
        self.pca = pca
        self._draw()

    # --- fixed points -----------------------------------------------------------------------
    def find_points(self) -> None:
        from ...analysis import fixed_points

        st = self.state
        model = self.engine_model_or_say_why()
        if model is None:
            return
        layer, trace, n = st.layer, st.trace, self.n_init.value()
        x_const: Any = None
        what = "zero input"
        if self.const.currentData() == "step":
            x = np.asarray(st.x)
            x_const = int(x[st.batch, st.t]) if model.takes_tokens else x[st.batch, st.t]
            labels = st.token_labels()
            what = f"the input {labels[st.t] if st.t < len(labels) else st.t!r} held"

        def job(progress: Any, should_stop: Any) -> Any:
            return fixed_points(
                model, layer, x_const, n_init=n, inits=trace, slow=True, progress=progress
            )

        def done(points: Any) -> None:
            self.points_for = (layer, what)
            self.searched = True
            self._set_points(points)

        self.bar.start(job, done, "Finding fixed points")

    def _set_points(self, points: list[Any]) -> None:
        self.points = list(points)
        self.table.setRowCount(len(self.points))
        for r, p in enumerate(self.points):
            cells = (p.kind, f"{p.speed:.2g}", f"{p.spectral_radius:.3f}", str(p.n_unstable))
            for c, text in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.selected = 0 if self.points else -1
        if self.points:
            self.table.selectRow(0)
        self._draw()

    def select_point(self, row: int) -> None:
        if 0 <= row < len(self.points):
            self.selected = row
            self._draw()

    # --- drawing ----------------------------------------------------------------------------
    def _xy(self, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.axes.currentData()
        k = coords.shape[-1]
        xs = coords[..., a] if a < k else np.zeros(coords.shape[:-1])
        ys = coords[..., b] if b < k else np.zeros(coords.shape[:-1])
        return xs, ys

    def _trajectory(self) -> np.ndarray | None:
        lt, pca = self.lt, self.pca
        if lt is None or pca is None or pca.layer != lt.name:
            return None
        vals = np.asarray(lt.per_unit(pca.quantity), np.float64)[self.state.batch]  # (T, D)
        if vals.shape[-1] != pca.mean.shape[0]:
            return None
        return np.asarray(pca.project(vals))

    def _draw(self) -> None:
        for item in self.fp_items:
            self.pca_plot.removeItem(item)
            if self.pca_plot.legend is not None:
                self.pca_plot.legend.removeItem(item)
        self.fp_items = []
        pca, lt = self.pca, self.lt
        traj = self._trajectory()
        if pca is None or lt is None or traj is None:
            self.traj.setData([], [])
            self.now.setData([], [])
            self.stack.show_empty(EMPTY)
            return
        self.stack.show_plots()
        a, b = self.axes.currentData()
        ratio = pca.explained_ratio
        name = {"hidden": "h", "cell": "c"}.get(pca.quantity, pca.quantity)

        def axis_label(i: int) -> str:
            return f"PC{i + 1} ({ratio[i]:.0%})" if i < len(ratio) else f"PC{i + 1}"

        self.pca_plot.setLabel("bottom", axis_label(a), color="#9aa0a6")
        self.pca_plot.setLabel("left", axis_label(b), color="#9aa0a6")
        src = self.source.currentText().rstrip("…")
        self.pca_plot.setTitle(
            f"PCA of {name}, layer {pca.layer}, fitted on {src}", color="#e8e8ea", size="13px"
        )
        xs, ys = self._xy(traj)
        self.traj.setData(xs, ys)
        self._draw_now()
        q = pca.quantity
        counts: dict[str, int] = {}
        for kind, (symbol, colour, label) in KINDS.items():
            pts = [p for p in self.points if p.kind == kind]
            counts[kind] = len(pts)
            if not pts:
                continue
            states = np.array([p.h if q == "hidden" else p.c for p in pts])
            if states.shape[-1] != pca.mean.shape[0]:
                continue
            px, py = self._xy(pca.project(states))
            item = pg.ScatterPlotItem(
                px,
                py,
                symbol=symbol,
                size=13 if kind == "stable" else 10,
                brush=colour if symbol != "x" else None,
                pen=pg.mkPen(colour, width=2),
                name=f"{label} ({len(pts)})",
            )
            self.pca_plot.addItem(item)
            self.fp_items.append(item)
        self._draw_selected()
        if self.searched and self.points_for is not None and not self.points:
            self.summary.setText(
                f"No fixed or slow points of layer {self.points_for[0]} with "
                f"{self.points_for[1]} from {self.n_init.value()} starts (none reached "
                "½‖F(s) − s‖² ≤ 1e-4): try more starts or another constant input."
            )
        elif self.points_for is not None and self.points:
            kinds = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
            self.summary.setText(
                f"Fixed points of layer {self.points_for[0]} with {self.points_for[1]}: "
                f"{kinds}. PCA: {', '.join(f'{r:.0%}' for r in ratio)} of the variance."
            )
        else:
            self.summary.setText(
                f"PCA of {name}: the first components hold "
                f"{', '.join(f'{r:.0%}' for r in ratio)} of the variance. Press Find fixed "
                "points to add the network's memories."
            )

    def _draw_now(self) -> None:
        traj = self._trajectory()
        if traj is None or not len(traj):
            self.now.setData([], [])
            return
        t = min(self.state.t, len(traj) - 1)
        xs, ys = self._xy(traj[t : t + 1])
        self.now.setData(xs, ys)

    def _draw_selected(self) -> None:
        pca = self.pca
        if not 0 <= self.selected < len(self.points) or pca is None:
            self.sel_item.setData([], [])
            self.eig_scatter.setData([], [])
            return
        p = self.points[self.selected]
        s = p.h if pca.quantity == "hidden" else p.c
        if s.shape[-1] == pca.mean.shape[0]:
            xs, ys = self._xy(pca.project(s[None]))
            self.sel_item.setData(xs, ys)
        ev = np.asarray(p.eigenvalues)
        colour = KINDS.get(p.kind, KINDS["slow"])[1]
        self.eig_scatter.setData(ev.real, ev.imag, brush=colour)
        self.eig_plot.setTitle(
            f"eigenvalues of point {self.selected + 1} ({p.kind}, max |λ| {p.spectral_radius:.3f})",
            color="#e8e8ea",
            size="13px",
        )
        self.table.selectRow(self.selected)
