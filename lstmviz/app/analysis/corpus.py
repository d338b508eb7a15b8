"""Corpus panel: trace thousands of sequences to disk in a worker, then select a pattern of
units over a range and find where else it occurs (LSTMVis-style)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...analysis import (
    CorpusStore,
    PatternResult,
    find_pattern,
    open_corpus,
    select_units,
    trace_corpus,
)
from ...errors import InputError, LstmvizError
from ..workers import TaskRunner
from .common import Panel, hint, show_image, style_plot

SOURCES = ("Random inputs", "Text file…", ".npy file…", "Current input")
WINDOW = 80
SYNC_FIND_LIMIT = 1_000_000  # larger corpora are searched in a worker


def random_corpus(model: Any, info: Any, n: int, length: int, seed: int = 0) -> np.ndarray:
    """``n`` random sequences the model can take (ids, one-hot digits, bit pairs or floats)."""
    rng = np.random.default_rng(seed)
    if model.takes_tokens:
        emb = model.embedding
        lo = 1 if emb.mask_zero else 0
        return rng.integers(lo, emb.input_dim, (n, length))
    f = model.input_features or 1
    kind = info.token_kind if info is not None else ""
    if f == 10 and kind in ("digits", ""):
        return np.eye(10, dtype=np.float32)[rng.integers(0, 10, (n, length))]
    if f == 2 and kind in ("bits", ""):
        return rng.integers(0, 2, (n, length, 2)).astype(np.float32)
    return rng.normal(0, 1, (n, length, f)).astype(np.float32)


def text_corpus(model: Any, info: Any, text: str, length: int) -> np.ndarray:
    """A text cut into sequences of ``length`` tokens with the model's vocabulary."""
    from ...io.inputs import encode_text

    if info is None or info.token_kind not in ("chars", "words"):
        raise InputError("a text corpus needs a character or word model with a vocabulary")
    if info.token_kind == "chars":
        index = {t: i for i, t in enumerate(info.vocab)}
        unk = index.get("<unk>", index.get("<_unk>"))
        ids = [index.get(ch, index.get(ch.lower(), unk)) for ch in text]
        ids = np.asarray([i for i in ids if i is not None], np.int64)
    else:
        ids = encode_text(model, text, info)[0]
    n = len(ids) // length
    if n == 0:
        raise InputError(f"the text has {len(ids)} tokens: fewer than one sequence of {length}")
    return ids[: n * length].reshape(n, length)


class CorpusPanel(Panel):
    """Trace a corpus (progress, Stop) and search it."""

    def __init__(self, state, window: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.window = window
        self.runner = TaskRunner(self)
        self.runner.failed.connect(self.error)
        self.search_runner = TaskRunner(self)
        self.search_runner.failed.connect(self.error)
        self.store: CorpusStore | None = None
        self.result: PatternResult | None = None
        self.position = 0
        self.out_dir: Path | None = None
        self.vocab: list[str] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        self.source = QComboBox()
        self.source.addItems(SOURCES)
        self.source.setToolTip(
            "What to trace: random inputs, a text cut into sequences (text "
            "models), an .npy array (n, T) of ids or (n, T, F) of features"
        )
        row.addWidget(self.source)
        row.addWidget(QLabel("sequences"))
        self.count = QSpinBox()
        self.count.setRange(1, 10_000_000)
        self.count.setValue(2000)
        row.addWidget(self.count)
        row.addWidget(QLabel("× length"))
        self.length = QSpinBox()
        self.length.setRange(2, 1_000_000)
        self.length.setValue(100)
        row.addWidget(self.length)
        self.dir_btn = QPushButton("Store in…")
        self.dir_btn.setToolTip(
            "Directory for the traced corpus (default: a new folder under "
            "the system's temporary directory)"
        )
        self.dir_btn.clicked.connect(self.choose_dir)
        row.addWidget(self.dir_btn)
        self.trace_btn = QPushButton("Trace corpus")
        self.trace_btn.clicked.connect(self.start)
        row.addWidget(self.trace_btn)
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setEnabled(False)
        self.stop_btn.clicked.connect(self.stop)
        row.addWidget(self.stop_btn)
        self.open_btn = QPushButton("Open traced corpus…")
        self.open_btn.clicked.connect(self.choose_store)
        row.addWidget(self.open_btn)
        lay.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m token-steps")
        self.progress.setVisible(False)
        lay.addWidget(self.progress)
        self.info_label = QLabel("No corpus traced yet.")
        self.info_label.setWordWrap(True)
        lay.addWidget(self.info_label)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("position"))
        self.pos_box = QSpinBox()
        self.pos_box.setToolTip("Start of the window shown, in the corpus's token stream")
        self.pos_box.valueChanged.connect(self.show_position)
        row2.addWidget(self.pos_box)
        row2.addWidget(QLabel("layer"))
        self.layer_box = QComboBox()
        self.layer_box.setToolTip("The stored LSTM layer shown and searched (hidden state)")
        self.layer_box.currentIndexChanged.connect(lambda *_: self.show_position(self.position))
        row2.addWidget(self.layer_box)
        row2.addWidget(QLabel("threshold"))
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(-1.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(0.3)
        self.threshold.setToolTip("A unit is 'on' where its hidden state is at least this")
        row2.addWidget(self.threshold)
        row2.addWidget(QLabel("units"))
        self.units_edit = QLineEdit()
        self.units_edit.setPlaceholderText("auto: on over the whole selected range")
        self.units_edit.setToolTip(
            "Units of the pattern (e.g. 3, 17, 40-42); empty: every unit "
            "at or above the threshold over the selected range"
        )
        row2.addWidget(self.units_edit, 1)
        self.find_btn = QPushButton("Find matches")
        self.find_btn.setShortcut("Ctrl+F")
        self.find_btn.setToolTip("Search every position of the corpus (Ctrl+F)")
        self.find_btn.clicked.connect(self.find)
        row2.addWidget(self.find_btn)
        lay.addLayout(row2)
        self.view = pg.GraphicsLayoutWidget()
        self.plot = self.view.addPlot()
        style_plot(
            self.plot,
            "hidden state over the corpus (drag the region to select)",
            "unit",
            "position",
        )
        self.plot.vb.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("CET-D1"))
        self.plot.addItem(self.image)
        self.region = pg.LinearRegionItem(values=(10, 14), brush=pg.mkBrush(86, 180, 233, 50))
        self.region.setZValue(10)
        self.plot.addItem(self.region)
        self.match_marks = pg.ScatterPlotItem(
            symbol="s",
            pxMode=False,
            size=1,
            brush=pg.mkBrush(None),
            pen=pg.mkPen("#E69F00", width=2),
        )
        self.plot.addItem(self.match_marks)
        lay.addWidget(self.view, 2)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["sequence", "t", "length", "mean", "tokens"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setToolTip(
            "Click: show the match; double-click: open that sequence in the main view"
        )
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.cellClicked.connect(self._on_match)
        self.table.cellDoubleClicked.connect(self._open_match)
        lay.addWidget(self.table, 1)
        lay.addWidget(
            hint(
                "Tracing runs in the background and writes float16 memory-mapped "
                "files, so corpora of millions of steps fit on disk, not in RAM. "
                "Matches are ranked by how close their length is to the selection."
            )
        )
        self.source.currentIndexChanged.connect(self._on_source)
        self._on_source(0)

    def _on_source(self, _: int) -> None:
        random = self.source.currentText() == "Random inputs"
        self.count.setEnabled(random)
        self.length.setEnabled(self.source.currentText() in ("Random inputs", "Text file…"))

    # --- tracing ----------------------------------------------------------------------------
    def sequences(self) -> Any:
        doc = self.state
        src = self.source.currentText()
        if src == "Random inputs":
            return random_corpus(doc.model, doc.info, self.count.value(), self.length.value())
        if src == "Current input":
            return np.asarray(doc.x)
        if src == "Text file…":
            path, _ = QFileDialog.getOpenFileName(self, "Text corpus", "", "Text (*.txt *.*)")
            if not path:
                return None
            text = Path(path).read_text(encoding="utf-8", errors="replace")
            return text_corpus(doc.model, doc.info, text, self.length.value())
        path, _ = QFileDialog.getOpenFileName(self, "Sequences", "", "NumPy arrays (*.npy)")
        if not path:
            return None
        from ...io.inputs import read_array

        return read_array(path)

    def choose_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Store the traced corpus in")
        if path:
            self.out_dir = Path(path)
            self.dir_btn.setToolTip(f"Stores in {path}")

    def default_dir(self) -> Path:
        doc = self.state
        name = doc.model.name if doc.model is not None else "model"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return Path(tempfile.gettempdir()) / "lstmviz-corpus" / f"{name}-{stamp}"

    def start(self, sequences: Any = None, out_dir: str | Path | None = None) -> None:
        """Trace ``sequences`` (default: from the source chosen) into ``out_dir``."""
        doc = self.state
        if doc.model is None:
            self.error.emit("open a model first")
            return
        try:
            seqs = sequences if sequences is not None else self.sequences()
        except LstmvizError as e:
            self.error.emit(str(e))
            return
        if seqs is None:
            return
        model = doc.model
        if out_dir is None and self.out_dir is not None:
            name = doc.model.name if doc.model is not None else "model"
            out_dir = self.out_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        out = Path(out_dir) if out_dir is not None else self.default_dir()
        self.vocab = list(doc.info.vocab) if doc.info is not None else []

        def task(progress, should_stop):
            return trace_corpus(model, seqs, out, progress, should_stop)

        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.trace_btn.setEnabled(False)
        self.stop_btn.setEnabled(True)
        self.info_label.setText(f"Tracing into {out}…")
        self.runner.start(
            task,
            self._traced,
            "Tracing corpus",
            on_progress=self._on_progress,
            on_failed=lambda _m: self._idle(),
        )

    def _on_progress(self, i: int, n: int) -> None:
        self.progress.setRange(0, max(n, 1))
        self.progress.setValue(i)

    def _idle(self) -> None:
        self.trace_btn.setEnabled(True)
        self.stop_btn.setEnabled(False)
        self.progress.setVisible(False)

    def stop(self) -> None:
        w = self.runner.current
        if w is not None:
            w.stop()
            w.cancelled.connect(self._stopped)
        self._idle()

    def _stopped(self) -> None:
        self.info_label.setText(
            "Stopped: the corpus is incomplete (open it to see what was traced)."
        )

    def _traced(self, store: CorpusStore) -> None:
        self._idle()
        self.set_store(store)

    def choose_store(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Traced corpus directory")
        if path:
            try:
                self.set_store(open_corpus(path))
            except LstmvizError as e:
                self.error.emit(str(e))

    def set_store(self, store: CorpusStore) -> None:
        self.store = store
        self.result = None
        self.table.setRowCount(0)
        self.match_marks.setData([], [])
        n = store.n_steps
        size = sum(f.stat().st_size for f in store.path.rglob("*.npy"))
        state = "" if store.complete else " (incomplete: stopped early)"
        self.info_label.setText(
            f"{store.n_sequences:,} sequences, {n:,} token-steps, layers "
            f"{', '.join(f'{k} ({v})' for k, v in store.units.items())}, "
            f"{', '.join(store.quantities)} as {store.dtype}: {size / 2**20:.0f} MB in "
            f"{store.path}{state}"
        )
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        self.layer_box.addItems(store.layers)
        self.layer_box.blockSignals(False)
        self.pos_box.setRange(0, max(n - 1, 0))
        self.pos_box.setValue(0)
        self.show_position(0)

    # --- browsing and searching ---------------------------------------------------------------
    def show_position(self, pos: int) -> None:
        st = self.store
        if st is None:
            return
        self.position = int(pos)
        w = st.window(pos, pos + WINDOW, self.layer)  # (L, U)
        img = w.T  # (U, L)
        show_image(self.plot, self.image, img, (-1, 1), x0=pos)
        lo, hi = self.region.getRegion()
        if not pos <= lo < hi <= pos + img.shape[1]:
            self.region.setRegion((pos + 5, pos + 8))
        self._label_ticks(pos, img.shape[1])
        self._mark_matches()

    def _label_ticks(self, pos: int, n: int) -> None:
        st = self.store
        if st is None:
            return
        ids = np.asarray(st.inputs()[pos : pos + n])
        if ids.ndim == 1 and self.vocab:
            labels = [self.vocab[int(i)] if 0 <= int(i) < len(self.vocab) else "?" for i in ids]
            labels = [{" ": "␣", "\n": "⏎"}.get(s, s) for s in labels]
            step = max(1, n // 100)
            ticks = [(pos + k + 0.5, labels[k]) for k in range(0, n, step)]
            self.plot.getAxis("bottom").setTicks([ticks, []])
        else:
            self.plot.getAxis("bottom").setTicks(None)

    @property
    def layer(self) -> str | None:
        return self.layer_box.currentText() or None

    def selection(self) -> tuple[int, int]:
        lo, hi = self.region.getRegion()
        t0 = round(lo)
        t1 = max(round(hi), t0 + 1)
        return t0, t1

    def find(self) -> None:
        st = self.store
        if st is None:
            self.error.emit("trace or open a corpus first")
            return
        from ...state import ViewerState

        t0, t1 = self.selection()
        text = self.units_edit.text().strip()
        try:
            units = ViewerState.parse_units(text) if text else None
            thr = self.threshold.value()
            if units is None:
                units = select_units(st, t0, t1, thr, self.layer)
                if not units:
                    raise LstmvizError(
                        f"no unit is at or above {thr:g} over the whole selected "
                        f"range {t0}:{t1}; lower the threshold or narrow the "
                        "range"
                    )
            layer = self.layer
            if st.n_steps <= SYNC_FIND_LIMIT:
                self._found(find_pattern(st, units, t0, t1, thr, layer=layer))
                return
        except LstmvizError as e:
            self.error.emit(str(e))
            return

        def task(progress, should_stop):
            return find_pattern(st, units, t0, t1, thr, layer=layer, progress=progress)

        self.find_btn.setEnabled(False)
        self.info_label.setText(f"Searching {st.n_steps:,} positions…")
        self.progress.setVisible(True)
        self.search_runner.start(
            task,
            self._found,
            "Searching the corpus",
            on_progress=self._on_progress,
            on_failed=lambda _m: self._search_idle(),
        )

    def _search_idle(self) -> None:
        self.find_btn.setEnabled(True)
        self.progress.setVisible(False)

    def _found(self, result: PatternResult) -> None:
        self._search_idle()
        self.result = result
        st = self.store
        r = self.result
        self.units_edit.setPlaceholderText(f"auto: {', '.join(map(str, r.units))}")
        self.table.setRowCount(len(r.matches))
        ids = st.inputs()
        for k, m in enumerate(r.matches):
            snippet = ""
            if ids.ndim == 1 and self.vocab:
                a, b = max(m.start - 3, 0), min(m.stop + 3, st.n_steps)
                seg = [
                    self.vocab[int(i)] if 0 <= int(i) < len(self.vocab) else "?" for i in ids[a:b]
                ]
                sep = "" if all(len(s) == 1 for s in self.vocab) else " "
                lo, hi = m.start - a, m.stop - a
                snippet = (
                    sep.join(seg[:lo])
                    + sep
                    + "["
                    + sep.join(seg[lo:hi])
                    + "]"
                    + sep
                    + sep.join(seg[hi:])
                ).replace("\n", "⏎")
            for c, v in enumerate(
                (str(m.sequence), str(m.t), str(m.length), f"{m.mean:.2f}", snippet)
            ):
                item = QTableWidgetItem(v)
                if c < 4:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(k, c, item)
        self.info_label.setText(
            f"units {', '.join(map(str, r.units))} ≥ {r.threshold:g}: {r.n_matches:,} matching "
            f"ranges (on at {100 * r.on_fraction:.1f}% of all {st.n_steps:,} positions); "
            f"best {len(r.matches)} listed"
        )
        self._mark_matches()

    def _mark_matches(self) -> None:
        r = self.result
        if r is None:
            self.match_marks.setData([], [])
            return
        lo, hi = self.position, self.position + WINDOW
        xs, ys = [], []
        for m in r.matches:
            if m.stop > lo and m.start < hi:
                for p in range(max(m.start, lo), min(m.stop, hi)):
                    for u in r.units:
                        xs.append(p + 0.5)
                        ys.append(u + 0.5)
        self.match_marks.setData(xs, ys)

    def _on_match(self, row: int, _col: int) -> None:
        if self.result is None or row >= len(self.result.matches):
            return
        m = self.result.matches[row]
        self.pos_box.setValue(max(m.start - WINDOW // 4, 0))

    def _open_match(self, row: int, _col: int) -> None:
        """Open the match's sequence in the main view at the match."""
        st, r = self.store, self.result
        if st is None or r is None or row >= len(r.matches):
            return
        m = r.matches[row]
        a, b = int(st.offsets[m.sequence]), int(st.offsets[m.sequence + 1])
        x = np.asarray(st.inputs()[a:b])
        try:
            self.state.set_input(x[None])
            self.state.set_t(m.t)
        except LstmvizError as e:
            self.error.emit(str(e))

    def shutdown(self) -> None:
        self.runner.shutdown()
        self.search_runner.shutdown()
