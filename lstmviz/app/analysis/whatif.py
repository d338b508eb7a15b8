"""What-if panel: change the input at one step, see every quantity diverge downstream."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...analysis import WhatIf, what_if
from ...engine.trace import QUANTITIES, SYMBOLS, TITLES
from ...errors import LstmvizError
from ..fit_label import FitLabel
from ..stagger import draw_then_paint
from ..workers import TaskRunner
from .common import (
    LARGE_TYPE_PX,
    PLOT_MIN_LARGE_PX,
    PLOT_MIN_PX,
    Panel,
    PlotStack,
    hint,
    show_image,
    style_plot,
    time_ticks,
)

#: what the blue line on every plot means (under the plots; in large type their tooltip)
BLUE_LINE = (
    "Blue line: the changed step. A forward LSTM cannot change before it; a backward one "
    "changes only before it."
)


def token_choices(state: Any) -> list[tuple[str, Any]]:
    """``(label, value)`` for every input a step can be changed to (vocabulary, digits, bit
    pairs); empty for free-form feature vectors."""
    model, info = state.model, state.info
    if model.takes_tokens:
        n = model.embedding.input_dim
        vocab = info.vocab if info is not None and info.vocab else []
        out = []
        for i in range(n):
            tok = vocab[i] if i < len(vocab) else str(i)
            out.append(({" ": "␣", "\n": "⏎", "\t": "⇥"}.get(tok, tok) + f"  (id {i})", i))
        return out
    f = model.input_features
    if f == 10 and info is not None and info.token_kind == "digits":
        return [(str(d), np.eye(10, dtype=np.float32)[d]) for d in range(10)]
    if f == 2 and info is not None and info.token_kind == "bits":
        return [(f"{a}{b}", np.array([a, b], np.float32)) for a in (0, 1) for b in (0, 1)]
    return []


class WhatIfPanel(Panel):
    """Pick a step and a new input; see the divergence of every quantity over time (max over
    units), the difference heatmap of one quantity, and how the output changes."""

    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.result: WhatIf | None = None
        self._images: dict[str, Any] | None = None  # what _draw shows, made in the worker
        self.runner = TaskRunner(self)
        self._choices: list[tuple[str, Any]] = []
        self._large = False  # presentation mode's large type (see changeEvent)
        self._dock_title: str | None = None  # the dock's own title, before a summary
        self._short = ""  # the summary as the dock's title shows it
        self._result_of: tuple[Any, int] | None = None  # (trace, batch item) of the result
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.row = row = QHBoxLayout()
        row.addWidget(QLabel("At step"))
        self.step = QSpinBox()
        self.step.setToolTip("The timestep whose input changes (defaults to the current one)")
        self.step.valueChanged.connect(self._fill_values)
        row.addWidget(self.step)
        row.addWidget(QLabel("use"))
        self.token = QComboBox()
        self.token.setToolTip("The new input at that step")
        row.addWidget(self.token, 1)
        self.values = QLineEdit()
        self.values.setPlaceholderText("feature values, e.g. 0.5 -1 2")
        row.addWidget(self.values, 1)
        self.run_btn = QPushButton("Compare")
        self.run_btn.setToolTip("Retrace with the changed input and diff everything (Ctrl+W)")
        self.run_btn.setShortcut("Ctrl+W")
        self.run_btn.clicked.connect(self.run)
        row.addWidget(self.run_btn)
        self.apply_btn = QPushButton("Use this input")
        self.apply_btn.setToolTip("Make the changed input the state's input")
        self.apply_btn.setEnabled(False)
        self.apply_btn.clicked.connect(self.apply)
        row.addWidget(self.apply_btn)
        lay.addLayout(row)
        self.row2 = row2 = QHBoxLayout()
        self.quantity_label = QLabel("difference of")
        row2.addWidget(self.quantity_label)
        self.quantity = QComboBox()
        for q in QUANTITIES:
            self.quantity.addItem(TITLES[q], q)
        self.quantity.setCurrentIndex(QUANTITIES.index("hidden"))
        self.quantity.setToolTip("The quantity whose difference the maps show")
        self.quantity.currentIndexChanged.connect(lambda *_: self._on_quantity())
        row2.addWidget(self.quantity)
        # one line that never widens the window: a shorter sentence when the panel is narrow
        # (presentation mode's large type on a 1280 px projector), the whole one in its tooltip
        self.summary = FitLabel()
        row2.addWidget(self.summary, 1)
        lay.addLayout(row2)
        self.view = pg.GraphicsLayoutWidget()
        self.stack = PlotStack(
            self.view,
            "Pick a step and the input it should have instead, then press Compare: "
            "every quantity before and after the change, and how the output moves.",
        )
        lay.addWidget(self.stack, 1)
        # side by side (stacked, each got a few pixels in a bottom dock): how much each
        # quantity changes over time, how much the output changes, then one quantity's
        # units x time before, after and their difference
        self.div_plot = self.view.addPlot(row=0, col=0)
        style_plot(self.div_plot, "max |after − before| over units", "", "t")
        self.div_plot.vb.invertY(True)
        self.div_image = pg.ImageItem(axisOrder="row-major")
        self.div_image.setColorMap(pg.colormap.get("inferno"))
        self.div_plot.addItem(self.div_image)
        self.div_plot.getAxis("left").setTicks(
            [[(k + 0.5, SYMBOLS[q]) for k, q in enumerate(QUANTITIES)], []]
        )
        inner = self.view.addLayout(row=0, col=2)
        inner.setContentsMargins(0, 0, 0, 0)  # its maps as tall as the plots beside them
        self.side_plots = []
        self.side_images = []
        for k, title in enumerate(("before", "after")):
            p = inner.addPlot(row=0, col=k)
            style_plot(p, title, "unit" if k == 0 else "", "t")
            p.vb.invertY(True)
            im = pg.ImageItem(axisOrder="row-major")
            im.setColorMap(pg.colormap.get("CET-D1"))
            p.addItem(im)
            self.side_plots.append(p)
            self.side_images.append(im)
        self.diff_plot = inner.addPlot(row=0, col=2)
        style_plot(self.diff_plot, "after − before", "", "t")
        self.diff_plot.vb.invertY(True)
        self.diff_image = pg.ImageItem(axisOrder="row-major")
        self.diff_image.setColorMap(pg.colormap.get("CET-D1"))
        self.diff_plot.addItem(self.diff_image)
        for p in self.side_plots:
            p.setYLink(self.diff_plot)
        self.out_plot = self.view.addPlot(row=0, col=1)
        style_plot(self.out_plot, "output change (max over classes)", "", "t")
        self.out_plot.setXLink(self.div_plot)
        self.out_curve = self.out_plot.plot(
            pen=pg.mkPen("#E69F00", width=2), symbol="o", symbolSize=5
        )
        self.marks = []
        for p in (self.div_plot, *self.side_plots, self.diff_plot, self.out_plot):
            line = pg.InfiniteLine(0, pen=pg.mkPen("#56B4E9", width=2))
            p.addItem(line)
            self.marks.append(line)
        self.view.ci.layout.setColumnStretchFactor(0, 2)
        self.view.ci.layout.setColumnStretchFactor(1, 2)
        self.view.ci.layout.setColumnStretchFactor(2, 6)
        self.hint = hint(BLUE_LINE)
        lay.addWidget(self.hint)

    def changeEvent(self, ev: QEvent) -> None:
        super().changeEvent(ev)
        if ev.type() in (QEvent.Type.StyleChange, QEvent.Type.FontChange):
            # presentation mode's large type: the panel shares a 720 px projector with the big
            # view above it -- lower plots without the time axes' name "t" (their ticks are
            # the steps' inputs), and the two-line note on the blue line becomes the plots'
            # tooltip (at its full size the panel grew the window to 1601 x 787)
            big = self.font().pixelSize() >= LARGE_TYPE_PX
            self.stack.setMinimumHeight(PLOT_MIN_LARGE_PX if big else PLOT_MIN_PX)
            for p in (self.div_plot, self.out_plot, *self.side_plots, self.diff_plot):
                p.showLabel("bottom", not big)
            self.hint.setVisible(not big)
            self.stack.plots.setToolTip(BLUE_LINE if big else "")
            # one row of controls, not two: the quantity at the end of the first row and the
            # summary in the dock's title bar (with the big view above, the second row left
            # the cell diagram too little height for its large type)
            self._large = big
            self.row.removeWidget(self.quantity)
            self.row2.removeWidget(self.quantity)
            if big:
                self.row.addWidget(self.quantity)
            else:
                self.row2.insertWidget(1, self.quantity)
            self.quantity_label.setVisible(not big)
            self.summary.setVisible(not big)
            self._title_summary()

    def _dock(self) -> QDockWidget | None:
        w = self.parentWidget()
        while w is not None and not isinstance(w, QDockWidget):
            w = w.parentWidget()
        return w

    def _title_summary(self) -> None:
        """In large type the summary line is the dock's title ("What-if · step 3 → 3, ...")."""
        dock = self._dock()
        if dock is None:
            return
        if self._dock_title is None:
            self._dock_title = dock.windowTitle()
        text = self.summary.full_text if self._large else ""
        dock.setWindowTitle(f"{self._dock_title} · {self._short}" if text else self._dock_title)

    def refresh(self) -> None:
        doc = self.state
        lt = self.lt
        of = self._result_of
        if self.result is not None and of is not None and of[0] is doc.trace and of[1] == doc.batch:
            # another layer of the same trace: the what-if holds every layer, so show this
            # one's difference (it was dropped, and Compare had to be pressed again)
            self._on_quantity()
            return
        self.step.setRange(0, lt.timesteps - 1)
        self.step.setValue(min(doc.t, lt.timesteps - 1))
        self._choices = token_choices(doc)
        self.token.clear()
        for label, _ in self._choices:
            self.token.addItem(label)
        self.token.setVisible(bool(self._choices))
        self.values.setVisible(not self._choices)
        self._fill_values()
        self.result = None
        self.apply_btn.setEnabled(False)
        self._draw()

    def _fill_values(self, *_: object) -> None:
        """Free-form features: start from the step's current values (edit them)."""
        doc = self.state
        if self._choices or doc.x is None or isinstance(doc.x, list):
            return
        a = np.asarray(doc.x)
        if a.ndim == 3:
            t = min(self.step.value(), a.shape[1] - 1)
            self.values.setText(" ".join(f"{v:.4g}" for v in a[doc.batch, t]))

    def on_t(self, t: int) -> None:
        if self.result is None:
            self.step.setValue(t)

    def new_value(self) -> Any:
        if self._choices:
            k = self.token.currentIndex()
            if k < 0:
                raise LstmvizError("pick the new input")
            return self._choices[k][1]
        try:
            vals = [float(v) for v in self.values.text().replace(",", " ").split()]
        except ValueError:
            raise LstmvizError(
                f"could not read numbers from {self.values.text()!r}; type "
                "the new feature values separated by spaces"
            ) from None
        if not vals:
            raise LstmvizError("type the new feature values of the step, separated by spaces")
        return np.asarray(vals, np.float32)

    def run(self) -> None:
        """Retrace with the changed input (from the changed step on) and diff everything:
        computed in the panel's worker, so a long trace never stalls the window."""
        doc = self.state
        if doc.model is None or doc.trace is None:
            return
        try:
            value = self.new_value()
        except LstmvizError as e:
            self.error.emit(str(e))
            return
        # the shown trace may come from elsewhere (a training snapshot): then retrace both
        own = doc.engine == "NumPy"
        model, x, t, batch = doc.model, doc.x, self.step.value(), doc.batch
        before = doc.trace if own else None
        layer, q = doc.layer, self.quantity.currentData()

        def job(progress: Any, should_stop: Any) -> Any:
            r = what_if(model, x, t, value, batch=batch, before=before)
            return r, images(r, layer, q)

        of = (doc.trace, batch)

        def done(result: Any) -> None:
            self.result, self._images = result
            self._result_of = of
            self.apply_btn.setEnabled(True)
            draw_then_paint(self.state, self.stack, self._draw)  # a big trace: paint next turn

        self.runner.start(job, done, "What-if", on_failed=self.error.emit)

    def apply(self) -> None:
        if self.result is not None:
            x = self.result.x_after
            self.result = None
            self.state.set_input(x)

    def shutdown(self) -> None:
        """The window closes: drop a what-if still being computed."""
        self.runner.shutdown(200)

    def _on_quantity(self) -> None:
        r, lt = self.result, self.lt
        if r is None or lt is None:
            return
        layer, q = lt.name, self.quantity.currentData()

        def done(imgs: dict[str, Any]) -> None:
            self._images = imgs
            self._draw()

        self.runner.start(
            lambda p, s: images(r, layer, q), done, "What-if", on_failed=self.error.emit
        )

    def _labels(self, r: WhatIf) -> tuple[list[str], list[str], list[str]]:
        """The time axes' tokens before and after the change, and both ("old→new" at the
        changed step)."""
        old = list(self.state.token_labels())
        new, both = list(old), list(old)
        label = _changed_label(self.state, r)
        if label is not None and 0 <= r.t < len(old) and label != old[r.t]:
            new[r.t] = label
            both[r.t] = f"{old[r.t]}→{label}"
        return old, new, both

    def _draw(self) -> None:
        r = self.result
        lt = self.lt
        imgs = self._images
        if r is None or lt is None or imgs is None or imgs["layer"] != lt.name:
            for im in (self.div_image, self.diff_image, *self.side_images):
                im.clear()
            self.out_curve.setData([], [])
            self.summary.set_texts("")
            self._title_summary()
            self.stack.show_empty()
            return
        self.stack.show_plots()
        q = imgs["quantity"]
        steps, units = lt.timesteps, lt.units
        hi = imgs["hi"]
        show_image(self.div_plot, self.div_image, imgs["divergence"], (0, hi), extent=(6, steps))
        m = imgs["m"]
        show_image(self.diff_plot, self.diff_image, imgs["diff"], (-m, m), extent=(units, steps))
        lv = self.state.color_levels(q, lt)
        cmap = "viridis" if q in ("input_gate", "forget_gate", "output_gate") else "CET-D1"
        for p, im, key in zip(self.side_plots, self.side_images, ("before", "after"), strict=True):
            im.setColorMap(pg.colormap.get(cmap))
            show_image(p, im, imgs[key], lv, extent=(units, steps))
        self.diff_plot.setTitle(f"after − before (±{m:.2g})", color="#e8e8ea")
        self.side_plots[0].setTitle(f"before: {TITLES[q]}", color="#e8e8ea")
        self.side_plots[1].setTitle(f"after: {TITLES[q]}", color="#e8e8ea")
        # the before map reads the old input, the after and difference maps the new one, the
        # plots over time both ("old→new" at the changed step)
        old_labels, new_labels, both = self._labels(r)
        for plots, labels in (
            ((self.side_plots[0],), old_labels),
            ((self.side_plots[1], self.diff_plot), new_labels),
            ((self.div_plot, self.out_plot), both),
        ):
            ticks = time_ticks(labels, lt.timesteps, offset=0.5)
            for p in plots:
                p.getAxis("bottom").setTicks([clear_around(ticks, r.t + 0.5, p), []])
        for line in self.marks:
            line.setValue(r.t + 0.5)
        if imgs.get("out") is not None:
            x, y, dense = imgs["out"]
            if dense:  # a min/max envelope per bin of a long sequence: thin, no symbols
                self.out_curve.setData(x, y, connect="pairs", symbol=None, antialias=False)
            else:  # every step, a dot each
                self.out_curve.setData(x, y, connect="all", symbol="o", antialias=True)
        else:
            self.out_curve.setData([], [])
        first = r.first_affected(lt.name)
        before = np.asarray(r.before.output)
        after = np.asarray(r.after.output)
        out_txt = short_out = ""
        if before.shape == after.shape and before.ndim >= 2:
            bo, ao = before[r.batch], after[r.batch]
            where = "final output"
            if bo.ndim == 2 and bo.shape[0] == lt.timesteps:  # one output per step
                bo, ao, where = bo[-1], ao[-1], f"output at the last step ({lt.timesteps - 1})"
            elif bo.ndim == 1 and bo.shape[0] == lt.timesteps and lt.timesteps > 1:
                bo, ao, where = bo[-1:], ao[-1:], f"output at the last step ({lt.timesteps - 1})"
            if bo.ndim == 1 and bo.shape[-1] > 1:
                change = f"class {int(np.argmax(bo))} → {int(np.argmax(ao))}"
            else:
                b0, a0 = float(np.ravel(bo)[0]), float(np.ravel(ao)[0])
                change = f"{b0:.3f} → {a0:.3f}"
            out_txt, short_out = f" · {where}: {change}", f" · output {change}"
        self.summary.set_texts(
            f"changed step {r.t}: first affected step {first}, largest change {hi:.3g}{out_txt}",
            f"step {r.t}: first affected {first}, largest change {hi:.3g}{short_out}",
            f"step {r.t} → {first}, max {hi:.3g}{short_out}",
        )
        self._short = (
            f"step {r.t} changed: first affected {first}, largest change {hi:.3g}{short_out}"
        )
        self._title_summary()


def clear_around(
    ticks: list[tuple[float, str]], x: float, plot: pg.PlotItem
) -> list[tuple[float, str]]:
    """``ticks`` without those whose labels would run into the label at ``x`` (the changed
    step's "old→new" is wider than its neighbours: "Sa→⏎l" on the text-generation example)
    at the plot's current width."""
    axis = plot.getAxis("bottom")
    vb = plot.vb
    lo, hi = vb.viewRange()[0]
    if vb.width() <= 0 or hi <= lo:
        return ticks
    px = vb.width() / (hi - lo)  # pixels per step
    font = axis.style.get("tickFont") or QFont()
    fm = QFontMetrics(font)
    at = [lab for pos, lab in ticks if pos == x]
    if not at:
        return ticks
    half = fm.horizontalAdvance(at[0]) / 2
    gap = fm.horizontalAdvance(" ")
    return [
        (pos, lab)
        for pos, lab in ticks
        if pos == x or abs(pos - x) * px >= half + fm.horizontalAdvance(lab) / 2 + gap
    ]


def _changed_label(state: Any, r: WhatIf) -> str | None:
    """The label of the input the what-if put at step ``r.t`` (None when it cannot be told)."""
    from ...io.inputs import token_labels

    x = r.x_after
    if isinstance(x, list) or state.model is None:
        return None
    step = np.asarray(x)[r.batch : r.batch + 1, r.t : r.t + 1]
    try:
        labels = token_labels(state.model, step, state.info, 0)
    except (LstmvizError, ValueError, IndexError):
        return None
    return labels[0] if labels else None


#: the output change is drawn from at most this many points (min/max pairs per bin beyond)
OUT_POINTS = 800


def images(r: WhatIf, layer: str, q: str) -> dict[str, Any]:
    """What the panel draws of a what-if, reduced to screen size (block means of long
    traces): the divergence of the six quantities over time, and ``q`` before, after and
    their difference over units x time. Pure NumPy: runs in the panel's worker."""
    from ...analysis.overview import reduce_image
    from ..plots import peak_decimate

    div = r.divergence[layer]
    mat = np.stack([np.asarray(div[k], np.float32) for k in QUANTITIES])  # (6, T)
    before = np.asarray(r.before.layer(layer).per_unit(q)[r.batch], np.float32)  # (T, U)
    after = np.asarray(r.after.layer(layer).per_unit(q)[r.batch], np.float32)
    diff = after - before
    out = None
    if r.output_change is not None:
        # the output change per step as a screen can show it (min/max per bin when longer
        # than OUT_POINTS): 10,000 steps with a dot each cost the window ~40 ms to set and draw
        x, y = peak_decimate(np.asarray(r.output_change, np.float64), OUT_POINTS)
        out = (x + 0.5, y, len(r.output_change) > OUT_POINTS)
    return {
        "layer": layer,
        "quantity": q,
        "divergence": reduce_image(np.ascontiguousarray(mat.T), None),
        "hi": float(max(float(mat.max()) if mat.size else 0.0, 1e-6)),
        "before": reduce_image(before),
        "after": reduce_image(after),
        "diff": reduce_image(diff),
        "m": float(max(float(np.abs(diff).max()) if diff.size else 0.0, 1e-6)),
        "out": out,
    }
