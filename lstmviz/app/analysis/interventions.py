"""Interventions panel: ablate or clamp units and see the output change at once; rank every
unit by its effect (an ablation scan); steer text generation with a clamped unit.

The interventions live in the state (:attr:`ViewerState.interventions`, saved in sessions);
this panel edits them and draws what :mod:`lstmviz.analysis` computes: the difference heatmap
(:func:`~lstmviz.analysis.intervention_effect`), the output before and after, the scan's
ranking (:func:`~lstmviz.analysis.ablation_scan`) and sampled text
(:func:`~lstmviz.analysis.sample_with_intervention`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...analysis.outputs import output_spec, predicted
from ...engine.trace import TITLES
from ...errors import InputError, LstmvizError
from ..workers import TaskRunner
from .common import (
    LEGEND_BRUSH,
    Panel,
    PlotStack,
    hint,
    result_pane,
    run_row,
    show_image,
    style_plot,
    time_ticks,
)
from .targets import (
    TargetPicker,
    describe,
    engine_model,
    on_row_clicked,
    open_traced_corpus,
    output_labels,
    output_layout,
    robust_max,
    side_by_side,
    unit_ticks,
)

#: (quantity, label) an intervention can replace, as the menus list them.
QUANTITY_CHOICES = (
    ("cell", "cell state c"),
    ("hidden", "hidden state h"),
    ("forget_gate", "forget gate f"),
    ("input_gate", "input gate i"),
    ("output_gate", "output gate o"),
    ("candidate", "candidate g"),
)
#: (mode, label): how the units are set.
MODE_CHOICES = (
    ("zero", "zero"),
    ("mean", "their mean on this input"),
    ("corpus", "their mean on random inputs"),
    ("store", "their mean on a traced corpus…"),
    ("clamp", "a value"),
    ("resample", "their values on another input"),
)
#: Random sequences the "mean on random inputs" mode averages over.
CORPUS_SEQUENCES = 256
SCAN_EMPTY = (
    "Pick the output to explain and press Scan every unit: each unit of the layer is set in "
    "turn as the Interventions tab says (zero by default), and ranked by how much the output "
    "moves."
)
EMPTY = (
    "Pick units (a heatmap click selects one), what to set (their cell state, hidden state "
    "or a gate) and to what, then press Add: the output's change shows here at once."
)


@dataclass(frozen=True)
class OutputChange:
    """What the interventions did to the model's answer (for the summary line and tests)."""

    text: str
    changed: int  # steps (or 1 for a final answer) whose answer changed
    total: int  # steps compared


def output_change(state: Any, before: Any, after: Any) -> OutputChange:
    """Compare the model's answers before and after, step by step where it answers at every
    step."""
    per_step, steps, n_k = output_layout(state)
    b = state.batch
    ob = np.asarray(before.output[0] if isinstance(before.output, list) else before.output)
    oa = np.asarray(after.output[0] if isinstance(after.output, list) else after.output)
    spec = state.output_spec or output_spec(state.model, state.info, values=ob)
    vb = ob[b].reshape(steps, n_k) if per_step else ob[b].reshape(1, -1)
    va = oa[b].reshape(steps, n_k) if per_step else oa[b].reshape(1, -1)
    if spec.kind == "regression":
        d = float(np.abs(va - vb).max()) if va.size else 0.0
        if per_step:
            return OutputChange(f"largest output change {d:.3g} over {steps} steps", 0, steps)
        return OutputChange(
            f"output {_fmt(vb.ravel())} → {_fmt(va.ravel())} (largest change {d:.3g})",
            0,
            1,
        )
    pb = [np.atleast_1d(predicted(v, spec)) for v in vb]
    pa = [np.atleast_1d(predicted(v, spec)) for v in va]
    changed = [i for i in range(len(pb)) if not np.array_equal(pb[i], pa[i])]
    if spec.kind == "bits" or (spec.kind == "logits" and n_k == 1):
        sep = " " if n_k > 1 else ""
        seq_b = sep.join("".join(str(int(v)) for v in p) for p in pb)
        seq_a = sep.join("".join(str(int(v)) for v in p) for p in pa)
        what = "output bits" if n_k > 1 else "output bit"
        if per_step:
            text = f"{what} per step {seq_b} → {seq_a}: {len(changed)} of {steps} steps change" + (
                f" (t = {', '.join(str(t) for t in changed[:12])})" if changed else ""
            )
        else:
            text = f"{what} {seq_b} → {seq_a}"
        return OutputChange(text, len(changed), len(pb))
    labels = output_labels(state, vb.shape[-1])
    if per_step:
        text = f"the answer changes at {len(changed)} of {steps} steps" + (
            f" (t = {', '.join(str(t) for t in changed[:12])})" if changed else ""
        )
        return OutputChange(text, len(changed), steps)
    kb, ka = int(pb[0][0]), int(pa[0][0])
    text = (
        f"answer {labels[kb]!r} → {labels[ka]!r}; output {labels[kb]!r}: "
        f"{float(vb[0, kb]):.3g} → {float(va[0, kb]):.3g}"
    )
    return OutputChange(text, int(kb != ka), 1)


def _fmt(v: np.ndarray) -> str:
    return " ".join(f"{float(a):.3g}" for a in v[:6]) + (" …" if len(v) > 6 else "")


class InterventionsPanel(Panel):
    """Set units to zero, their mean, a value or another input's values over a window of
    steps; the difference heatmap and the output before/after; a scan ranking every unit;
    text generation steered by the interventions."""

    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.effect: Any = None
        self.change: OutputChange | None = None
        self.scan: Any = None
        self.generated: tuple[str, str] | None = None
        self._rects: list[QGraphicsRectItem] = []
        self._units_for: int | None = None
        self.store: Any = None  # a traced corpus ("their mean on a traced corpus…")
        self.store_name = ""
        self.runner = TaskRunner(self)  # the effect of the interventions (quick)
        state.events.interventions.connect(self._changed)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._setup_tab(), "Interventions")
        self.tabs.addTab(self._scan_tab(), "Scan units")
        self.tabs.addTab(self._generate_tab(), "Generate")

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("difference of"))
        self.diff_q = QComboBox()
        for q, _ in QUANTITY_CHOICES:
            self.diff_q.addItem(TITLES[q], q)
        self.diff_q.setToolTip("The quantity whose change (after − before) the heatmap shows")
        self.diff_q.currentIndexChanged.connect(lambda *_: self._draw())
        row.addWidget(self.diff_q)
        row.addStretch(1)
        rl.addLayout(row)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        rl.addWidget(self.summary)
        self.view = pg.GraphicsLayoutWidget()
        self.stack = PlotStack(self.view, EMPTY)
        rl.addWidget(self.stack, 1)
        # the Scan tab draws its ranking on the right instead
        pane = result_pane(SCAN_EMPTY)
        scan_page = pane.widget
        self.scan_summary, self.scan_view, self.scan_stack = pane.summary, pane.view, pane.stack
        self.pages = QStackedWidget()
        self.pages.addWidget(right)
        self.pages.addWidget(scan_page)
        self.tabs.currentChanged.connect(lambda i: self.pages.setCurrentIndex(int(i == 1)))
        lay.addWidget(side_by_side(self.tabs, self.pages), 1)
        self.scan_plot = self.scan_view.addPlot(row=0, col=0)
        style_plot(self.scan_plot, "", "change", "unit")
        on_row_clicked(self.scan_plot, lambda row, x: self._select_unit(round(x)))

        self.diff_plot = self.view.addPlot(row=0, col=0)
        style_plot(self.diff_plot, "after − before", "unit", "t")
        self.diff_plot.vb.invertY(True)
        self.diff_image = pg.ImageItem(axisOrder="row-major")
        self.diff_image.setColorMap(pg.colormap.get("CET-D1"))
        self.diff_plot.addItem(self.diff_image)
        self.out_plot = self.view.addPlot(row=0, col=1)
        style_plot(self.out_plot, "output", "", "t")
        self.out_plot.addLegend(offset=(-4, 4), brush=LEGEND_BRUSH, labelTextColor="#e8e8ea")
        self.view.ci.layout.setColumnStretchFactor(0, 3)
        self.view.ci.layout.setColumnStretchFactor(1, 2)
        self.t_line = pg.InfiniteLine(0, pen=pg.mkPen("#56B4E9", width=1))
        self.diff_plot.addItem(self.t_line)
        on_row_clicked(self.diff_plot, self._on_heatmap_clicked)

    # --- the three tabs ------------------------------------------------------------------------
    def _setup_tab(self) -> QWidget:
        w = QWidget()
        v = QVBoxLayout(w)
        v.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        row.addWidget(QLabel("Units"))
        self.units_edit = QLineEdit()
        self.units_edit.setPlaceholderText("e.g. 2 or 0-3, 7")
        self.units_edit.setToolTip("The units changed together (of the selected layer)")
        row.addWidget(self.units_edit, 1)
        row.addWidget(QLabel("their"))
        self.quantity = QComboBox()
        for q, label in QUANTITY_CHOICES:
            self.quantity.addItem(label, q)
        self.quantity.setToolTip("What is replaced inside the recurrence (the change flows on)")
        row.addWidget(self.quantity)
        v.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("set to"))
        self.mode = QComboBox()
        for m, label in MODE_CHOICES:
            self.mode.addItem(label, m)
        self.mode.setToolTip(
            "zero: ablate; mean: each unit's average (on this input, or on random inputs); a "
            "value: clamp; another input: the values the units take there (same length)"
        )
        self.mode.currentIndexChanged.connect(self._on_mode)
        self.mode.activated.connect(self._on_mode_chosen)
        row.addWidget(self.mode, 1)
        self.value = QDoubleSpinBox()
        self.value.setRange(-100.0, 100.0)
        self.value.setDecimals(3)
        self.value.setSingleStep(0.1)
        self.value.setToolTip("The value the units are clamped to")
        row.addWidget(self.value)
        v.addLayout(row)
        self.source = QLineEdit()
        self.source.setPlaceholderText("the other input, as you would type it (same length)")
        self.source.setToolTip("Resample: the units take the values they have on this input")
        v.addWidget(self.source)
        row = QHBoxLayout()
        self.every = QCheckBox("every step")
        self.every.setChecked(True)
        self.every.setToolTip("Untick to change the units only from one step to another")
        self.every.toggled.connect(self._on_every)
        row.addWidget(self.every)
        self.from_lbl = QLabel("or steps")
        row.addWidget(self.from_lbl)
        self.t_from = QSpinBox()
        self.t_from.setToolTip("First step changed")
        row.addWidget(self.t_from)
        self.to_lbl = QLabel("to")
        row.addWidget(self.to_lbl)
        self.t_to = QSpinBox()
        self.t_to.setToolTip("Last step changed")
        row.addWidget(self.t_to)
        row.addStretch(1)
        v.addLayout(row)
        row = QHBoxLayout()
        self.add_btn = QPushButton("Add")
        self.add_btn.setToolTip("Add this intervention (it applies at once)")
        self.add_btn.clicked.connect(self.add)
        row.addWidget(self.add_btn)
        self.remove_btn = QPushButton("Remove")
        self.remove_btn.setToolTip("Remove the intervention selected in the list")
        self.remove_btn.clicked.connect(self.remove)
        row.addWidget(self.remove_btn)
        self.clear_btn = QPushButton("Clear")
        self.clear_btn.setToolTip("Remove every intervention")
        self.clear_btn.clicked.connect(self.clear)
        row.addWidget(self.clear_btn)
        row.addStretch(1)
        v.addLayout(row)
        self.list = QListWidget()
        self.list.setToolTip("The interventions applied (saved with the session)")
        self.list.setMinimumHeight(40)
        v.addWidget(self.list, 1)
        v.addWidget(
            hint(
                "The main view keeps showing the network as it is; the heatmap on the right "
                "shows what the interventions change."
            )
        )
        self._on_mode()
        self._on_every(True)
        return w

    def _scan_tab(self) -> QWidget:
        w = QWidget()
        v = QVBoxLayout(w)
        v.setContentsMargins(4, 4, 4, 4)
        self.target = TargetPicker(self.state, space="logit")
        v.addWidget(self.target)
        row, self.scan_btn, self.scan_bar = run_row(
            "Scan every unit",
            "Change each unit of the layer in turn, as set on the Interventions tab, and rank "
            "the units by how much the output moves",
            self.run_scan,
            self.error,
        )
        v.addLayout(row)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["unit", "mean |change|", "mean change"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("Click a row to select that unit")
        self.table.cellClicked.connect(self._on_scan_row)
        self.table.setMinimumHeight(60)
        v.addWidget(self.table, 1)
        return w

    def _generate_tab(self) -> QWidget:
        w = QWidget()
        v = QVBoxLayout(w)
        v.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        row.addWidget(QLabel("Start with"))
        self.seed_text = QLineEdit()
        self.seed_text.setToolTip("The text the model continues (default: the current input)")
        row.addWidget(self.seed_text, 1)
        v.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("tokens"))
        self.n_tokens = QSpinBox()
        self.n_tokens.setRange(1, 2000)
        self.n_tokens.setValue(80)
        row.addWidget(self.n_tokens)
        row.addWidget(QLabel("temperature"))
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 5.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(0.7)
        row.addWidget(self.temperature)
        row.addStretch(1)
        v.addLayout(row)
        row, self.gen_btn, self.gen_bar = run_row(
            "Generate with this intervention",
            "Sample text twice from the same random numbers: without the interventions and "
            "with them; whatever differs is their doing",
            self.generate,
            self.error,
        )
        v.addLayout(row)
        self.gen_note = hint("")
        v.addWidget(self.gen_note)
        self.text_without = QPlainTextEdit()
        self.text_without.setReadOnly(True)
        self.text_without.setPlaceholderText("without the interventions")
        self.text_with = QPlainTextEdit()
        self.text_with.setReadOnly(True)
        self.text_with.setPlaceholderText("with the interventions")
        for t in (self.text_without, self.text_with):
            t.setMinimumHeight(36)
            v.addWidget(t, 1)
        return w

    # --- form -----------------------------------------------------------------------------------
    def _on_mode(self, *_: Any) -> None:
        m = self.mode.currentData()
        self.value.setVisible(m == "clamp")
        self.source.setVisible(m == "resample")

    def _on_mode_chosen(self, index: int) -> None:
        """Choosing "a traced corpus…" asks for its folder (cancel: back to the mean on this
        input)."""
        if self.mode.itemData(index) != "store":
            return
        try:
            got = open_traced_corpus(self, self.state)
        except LstmvizError as e:
            self.error.emit(str(e))
            got = None
        if got is None:
            self.mode.setCurrentIndex(self.mode.findData("mean"))
            return
        self.store, self.store_name = got
        self.mode.setItemText(index, f"their mean on the corpus {self.store_name}")

    def _reference(self, mode: str) -> tuple[Any, dict[str, Any]]:
        """``(mode, keyword arguments)`` for :mod:`lstmviz.analysis` from the form's mode."""
        if mode == "clamp":
            return float(self.value.value()), {}
        if mode == "corpus":
            return "mean", {"reference": self._random_inputs()}
        if mode == "store":
            if self.store is None:
                raise InputError("choose the traced corpus again (Set to: a traced corpus…)")
            return "mean", {"reference": self.store}
        return mode, {}

    def _on_every(self, every: bool) -> None:
        for wid in (self.t_from, self.t_to, self.from_lbl, self.to_lbl):
            wid.setEnabled(not every)

    def _window(self) -> tuple[int, int] | None:
        if self.every.isChecked():
            return None
        a, b = self.t_from.value(), self.t_to.value()
        if b < a:
            raise InputError(f"steps {a} to {b}: the last step comes before the first")
        return (a, b + 1)

    def _units(self) -> list[int]:
        text = self.units_edit.text().strip()
        if not text:
            raise InputError("type the units to change, e.g. 2 or 0-3, 7")
        units: list[int] = self.state.parse_units(text)
        return units

    def make(self) -> Any:
        """The intervention the form describes (on the selected layer)."""
        from ...analysis.interventions import make_intervention

        model = engine_model(self.state)
        mode = self.mode.currentData()
        if mode == "resample":
            from ...io.inputs import encode_text

            text = self.source.text().strip()
            if not text:
                raise InputError("type the other input the units' values come from")
            m: Any = "resample"
            kwargs = {"source": model.check_input(encode_text(model, text, self.state.info))}
        else:
            m, kwargs = self._reference(mode)
        iv = make_intervention(
            model,
            self.state.x,
            self.state.layer,
            self._units(),
            self.quantity.currentData(),
            m,
            self._window(),
            **kwargs,
        )
        from dataclasses import replace

        source = {
            "mean": "this input",
            "corpus": f"{CORPUS_SEQUENCES} random inputs",
            "store": f"the corpus {self.store_name}",
            "resample": repr(self.source.text().strip()),
        }
        lt = self.lt
        if lt is not None:  # e.g. resampled from an input of another length
            iv.check(lt.units, lt.timesteps, lt.batch_size)
        return replace(iv, label=source.get(mode, ""))

    def _random_inputs(self) -> Any:
        from .corpus import random_corpus

        return random_corpus(
            self.state.model, self.state.info, CORPUS_SEQUENCES, max(self.state.timesteps, 1)
        )

    def add(self) -> None:
        try:
            self.state.add_intervention(self.make())
        except LstmvizError as e:
            self.error.emit(str(e))

    def remove(self) -> None:
        row = self.list.currentRow()
        if row < 0:
            row = len(self.state.interventions) - 1
        if row >= 0:
            self.state.remove_intervention(row)

    def clear(self) -> None:
        self.state.clear_interventions()

    def shutdown(self) -> None:
        """Stop the background work (the window is closing)."""
        self.runner.shutdown(200)
        self.scan_bar.shutdown()
        self.gen_bar.shutdown()

    # --- the state changed ----------------------------------------------------------------------
    def refresh(self) -> None:
        st = self.state
        n = max(st.timesteps - 1, 0)
        for sp in (self.t_from, self.t_to):
            sp.setRange(0, n)
        if self._units_for != id(st.model) or not self.units_edit.text().strip():
            self.units_edit.setText(str(st.unit))
            self.t_to.setValue(n)
            self._units_for = id(st.model)
        self.list.clear()
        for iv in st.interventions:
            self.list.addItem(describe(iv))
        try:
            self.target.refresh()
        except LstmvizError as e:
            self.error.emit(str(e))
        text_model = (
            st.model is not None
            and getattr(st.model, "takes_tokens", False)
            and st.info is not None
            and st.info.token_kind in ("chars", "words")
        )
        self.gen_btn.setEnabled(bool(text_model))
        self.gen_note.setText(
            ""
            if text_model
            else "Text generation needs a character or word language model (the "
            "character text generation or word language model example)."
        )
        if text_model and not self.seed_text.text().strip():
            self.seed_text.setText(st.input_text()[-200:])
        self._compute()

    def _compute(self) -> None:
        st = self.state
        if not st.interventions:
            self.effect = None
            self.change = None
            self._draw()
            return
        try:
            model = engine_model(st)
        except LstmvizError as e:
            self.effect = None
            self.stack.show_empty(str(e))
            return
        from ...analysis import intervene, intervention_effect

        x, ivs = st.x, list(st.interventions)

        def job(progress: Any, should_stop: Any) -> Any:
            before = intervene(model, x, [])
            return intervention_effect(before, intervene(model, x, ivs))

        def failed(msg: str) -> None:
            self.effect = None
            self.change = None
            self.summary.setText("")
            self.stack.show_empty(f"The interventions cannot be applied to this input: {msg}")

        self.runner.start(job, self._on_effect, "Applying the interventions", on_failed=failed)

    def _on_effect(self, effect: Any) -> None:
        self.effect = effect
        self.change = output_change(self.state, effect.before, effect.after)
        self._draw()

    def on_t(self, t: int) -> None:
        self.t_line.setValue(t + 0.5)

    # --- drawing ----------------------------------------------------------------------------------
    def _draw(self) -> None:
        for r in self._rects:
            self.diff_plot.removeItem(r)
        self._rects = []
        e, lt = self.effect, self.lt
        if e is None or lt is None or lt.name not in e.diffs:
            self.diff_image.clear()
            self.out_plot.clear()
            self.summary.setText("")
            self.stack.show_empty(EMPTY)
            return
        self.stack.show_plots()
        b = self.state.batch
        q = self.diff_q.currentData()
        d = np.asarray(e.diffs[lt.name][q][b], np.float32).T  # (U, T)
        m = max(robust_max(d), 1e-6)
        show_image(self.diff_plot, self.diff_image, d, (-m, m))
        self.diff_plot.setTitle(
            f"{TITLES[q]}: after − before (±{m:.2g}), layer {lt.name}",
            color="#e8e8ea",
            size="13px",
        )
        ticks = time_ticks(self.state.token_labels(), lt.timesteps, offset=0.5)
        self.diff_plot.getAxis("bottom").setTicks([ticks, []])
        self.diff_plot.getAxis("left").setTicks([unit_ticks(lt.units), []])
        pen = QPen(pg.mkColor("#F0E442"))
        pen.setWidthF(0)
        pen.setCosmetic(True)
        pen.setWidth(2)
        for iv in self.state.interventions:
            if iv.layer != lt.name:
                continue
            steps = iv.steps(lt.timesteps)
            if len(steps) == 0:
                continue
            for u in iv.units:
                rect = QGraphicsRectItem(QRectF(steps[0], u, len(steps), 1))
                rect.setPen(pen)
                self.diff_plot.addItem(rect)
                self._rects.append(rect)
        self.t_line.setValue(self.state.t + 0.5)
        self._draw_output(e)
        ch = self.change
        n = len(self.state.interventions)
        self.summary.setText(
            f"{n} intervention{'s' if n != 1 else ''} (yellow boxes): "
            + (ch.text if ch is not None else "")
        )

    def _draw_output(self, e: Any) -> None:
        p = self.out_plot
        p.clear()
        if p.legend is not None:
            p.legend.clear()
        st = self.state
        per_step, steps, n_k = output_layout(st)
        b = st.batch
        ob = np.asarray(
            e.before.output[0] if isinstance(e.before.output, list) else e.before.output
        )
        oa = np.asarray(e.after.output[0] if isinstance(e.after.output, list) else e.after.output)
        grey, orange = pg.mkPen("#9aa0a6", width=2), pg.mkPen("#E69F00", width=2)
        if per_step:
            vb, va = ob[b].reshape(steps, n_k), oa[b].reshape(steps, n_k)
            x = np.arange(steps) + 0.5
            if n_k == 1:
                p.plot(x, vb[:, 0], pen=grey, symbol="o", symbolSize=5, name="before")
                p.plot(x, va[:, 0], pen=orange, symbol="o", symbolSize=5, name="after")
                p.setTitle("output at each step", color="#e8e8ea", size="13px")
            else:
                k = self.target.target()[1]
                p.plot(x, vb[:, k], pen=grey, symbol="o", symbolSize=5, name="before")
                p.plot(x, va[:, k], pen=orange, symbol="o", symbolSize=5, name="after")
                p.setTitle(
                    f"output {self.target.k.currentText().split('  (')[0]!r} at each step",
                    color="#e8e8ea",
                    size="13px",
                )
            ticks = time_ticks(st.token_labels(), steps, offset=0.5)
            p.getAxis("bottom").setTicks([ticks, []])
            p.setLabel("bottom", "t")
            p.enableAutoRange()
            return
        vb, va = ob[b].reshape(-1), oa[b].reshape(-1)
        xs = np.arange(len(vb))
        p.addItem(
            pg.BarGraphItem(x=xs - 0.2, height=vb, width=0.38, brush="#9aa0a6", name="before")
        )
        # named items join the legend by themselves (adding them again listed each twice)
        p.addItem(pg.BarGraphItem(x=xs + 0.2, height=va, width=0.38, brush="#E69F00", name="after"))
        labels = output_labels(st, len(vb))
        step = max(1, -(-len(vb) // 20))
        p.getAxis("bottom").setTicks([[(i, labels[i]) for i in range(0, len(vb), step)], []])
        p.setLabel("bottom", "output")
        p.setTitle("the model's output", color="#e8e8ea", size="13px")
        p.enableAutoRange()

    def _on_heatmap_clicked(self, row: int, x: float) -> None:
        lt = self.lt
        if lt is None or not 0 <= row < lt.units:
            return
        self.state.set_units([row])
        self.units_edit.setText(str(row))
        if 0 <= x < lt.timesteps:
            self.state.set_t(int(x))

    def on_selection(self) -> None:
        if self.tabs.currentIndex() == 0 and not self.units_edit.hasFocus():
            self.units_edit.setText(", ".join(str(u) for u in self.state.selected_units[:1]))

    # --- scan -------------------------------------------------------------------------------------
    def run_scan(self) -> None:
        from ...analysis import ablation_scan

        st = self.state
        try:
            model = engine_model(st)
            mode = self.mode.currentData()
            if mode == "resample":
                raise InputError(
                    "the scan sets each unit to zero, its mean or a value; choose one of those "
                    "on the Interventions tab"
                )
            m, kwargs = self._reference(mode)
            window = self._window()
        except LstmvizError as e:
            self.error.emit(str(e))
            return
        x, layer, q = st.x, st.layer, self.quantity.currentData()
        target, space = self.target.target(), self.target.space_name()

        def job(progress: Any, should_stop: Any) -> Any:
            return ablation_scan(
                model,
                x,
                target,
                layer,
                q,
                m,
                window,
                space=space,
                progress=progress,
                should_stop=should_stop,
                **kwargs,
            )

        self.scan_bar.start(job, self._on_scan, "Scanning units")

    def _on_scan(self, scan: Any) -> None:
        self.scan = scan
        ranking = scan.ranking()
        signed = dict(zip(scan.groups, scan.signed_effect, strict=True))
        self.table.setRowCount(len(ranking))
        for r, (units, eff) in enumerate(ranking):
            cells = (
                ", ".join(str(u) for u in units),
                f"{eff:.4g}",
                f"{float(signed[units]):+.4g}",
            )
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, units[0])
                self.table.setItem(r, c, item)
        what = (
            f"{scan.target} ({self.target.space_name()}) when each unit's "
            f"{scan.quantity.replace('_', ' ')} is set to {scan.mode}"
        )
        self.table.setToolTip(f"{what}: largest change first. Click a row to select that unit.")
        self._draw_scan(what)

    def _draw_scan(self, what: str) -> None:
        scan = self.scan
        p = self.scan_plot
        p.clear()
        units = np.array([g[0] for g in scan.groups])
        vals = np.asarray(scan.signed_effect, np.float64)
        brushes = [pg.mkBrush("#E69F00" if v >= 0 else "#56B4E9") for v in vals]
        p.addItem(pg.BarGraphItem(x=units, height=vals, width=0.8, brushes=brushes))
        p.addLine(y=0, pen=pg.mkPen("#9aa0a6"))
        p.getAxis("bottom").setTicks([[(u - 0.5, s) for u, s in unit_ticks(len(units), 16)], []])
        p.setTitle(f"change of {what}", color="#e8e8ea", size="13px")
        p.enableAutoRange()
        self.scan_stack.show_plots()
        top = ", ".join(f"unit {g[0]} ({e:+.3g})" for g, e in self._signed_top(3))
        self.scan_summary.setText(
            f"Largest changes: {top}. Orange: the output goes up; blue: down. Click a bar or a "
            "row to select the unit."
        )

    def _signed_top(self, n: int) -> list[tuple[tuple[int, ...], float]]:
        scan = self.scan
        signed = dict(zip(scan.groups, scan.signed_effect, strict=True))
        return [(g, float(signed[g])) for g, _ in scan.ranking()[:n]]

    def _on_scan_row(self, row: int, col: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self._select_unit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _select_unit(self, u: int) -> None:
        lt = self.lt
        if lt is None or not 0 <= u < lt.units:
            return
        self.units_edit.setText(str(u))
        try:
            self.state.set_units([u])
        except LstmvizError as e:
            self.error.emit(str(e))

    # --- generation -------------------------------------------------------------------------------
    def generate(self) -> None:
        from ...analysis import sample_with_intervention

        st = self.state
        model = self.engine_model_or_say_why()
        if model is None:
            return
        info, ivs = st.info, list(st.interventions)
        seed = self.seed_text.text() or st.input_text()
        n, temp = self.n_tokens.value(), self.temperature.value()

        def job(progress: Any, should_stop: Any) -> Any:
            plain = sample_with_intervention(model, info, seed, [], n, temp, rng=0)
            if should_stop():
                return None
            steered = sample_with_intervention(model, info, seed, ivs, n, temp, rng=0)
            return plain.text, steered.text

        self.gen_bar.start(job, self._on_generated, "Generating")

    def _on_generated(self, texts: Any) -> None:
        if texts is None:
            return
        self.generated = texts
        plain, steered = texts
        self.text_without.setPlainText(f"without: {plain}")
        self.text_with.setPlainText(
            f"with {len(self.state.interventions)} intervention(s): {steered}"
        )
