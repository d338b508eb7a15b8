"""Corpus panel: trace thousands of sequences into a Zarr store in a worker (this machine's
threads or a Dask cluster), open a store by folder or URL, page through it, select a pattern
of units over a range and find where else it occurs (LSTMVis-style)."""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollBar,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...analysis import PatternResult, find_pattern, open_corpus, select_units, trace_corpus
from ...analysis.corpus import CorpusBase
from ...analysis.corpus._common import is_url, parse_unit_list, weights_sha256
from ...errors import InputError, LstmvizError
from .. import dialogs
from ..workers import TaskRunner
from .common import PLOT_MIN_PX, Panel, hint, show_image, style_plot

SOURCES = ("Random inputs", "Text file…", ".npy file…", "Current input")
WINDOW = 80
SYNC_FIND_LIMIT = 200_000  # larger corpora are searched in a worker
EMPTY_TEXT = (
    "No corpus yet. Trace one with the controls above (random inputs, a text file or an .npy "
    "array of sequences), or open a traced corpus by its folder or URL."
)
GATES = ("input_gate", "forget_gate", "output_gate")


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
        found = [index.get(ch, index.get(ch.lower(), unk)) for ch in text]
        ids = np.asarray([i for i in found if i is not None], np.int64)
    else:
        ids = np.asarray(encode_text(model, text, info)[0])
    n = len(ids) // length
    if n == 0:
        raise InputError(f"the text has {len(ids)} tokens: fewer than one sequence of {length}")
    return ids[: n * length].reshape(n, length)


def _model_name(store: CorpusBase) -> str:
    return str(store.meta.get("name") or store.meta.get("model") or "unknown")


class CorpusPanel(Panel):
    """Trace a corpus (progress, Stop), open one by folder or URL, page through it, search."""

    def __init__(self, state: Any, window: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.main_window = window
        self.runner = TaskRunner(self)
        self.runner.failed.connect(self.error)
        self.search_runner = TaskRunner(self)
        self.search_runner.failed.connect(self.error)
        self.page_runner = TaskRunner(self)
        self.page_runner.failed.connect(self.error)
        self.store: CorpusBase | None = None
        self.result: PatternResult | None = None
        self.position = 0
        self.vocab: list[str] = []
        self._word_tokens = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)

        # --- tracing ---------------------------------------------------------------------
        row = QHBoxLayout()
        self.source = QComboBox()
        self.source.addItems(SOURCES)
        self.source.setToolTip(
            "What to trace: random inputs, a text cut into sequences (text models), an .npy "
            "array (n, T) of ids or (n, T, F) of features, or the current input"
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
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("store: a new folder in the temporary directory")
        self.out_edit.setToolTip(
            "Where the traced corpus is written: a folder (it must be new or empty, or hold an "
            "earlier corpus) or a URL such as s3://bucket/corpus.zarr"
        )
        row.addWidget(self.out_edit, 1)
        self.dir_btn = QPushButton("Store in…")
        self.dir_btn.setToolTip("Choose the folder that will hold the new corpus")
        self.dir_btn.clicked.connect(self._on_dir_clicked)
        row.addWidget(self.dir_btn)
        lay.addLayout(row)

        row = QHBoxLayout()
        row.addWidget(QLabel("Dask scheduler"))
        self.scheduler_edit = QLineEdit()
        self.scheduler_edit.setPlaceholderText("this machine's threads")
        self.scheduler_edit.setToolTip(
            "Empty: trace with every core of this machine. An address (tcp://host:8786): run "
            "the tracing tasks on that dask.distributed cluster; its workers need lstmviz and "
            "must reach the store (a shared folder or a bucket URL)"
        )
        row.addWidget(self.scheduler_edit, 1)
        self.trace_btn = QPushButton("Trace corpus")
        self.trace_btn.setToolTip("Trace every sequence of the source into the store")
        self.trace_btn.clicked.connect(self._on_trace_clicked)
        row.addWidget(self.trace_btn)
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setEnabled(False)
        self.stop_btn.setToolTip("Stop tracing or searching (what was traced is kept)")
        self.stop_btn.clicked.connect(self._on_stop_clicked)
        row.addWidget(self.stop_btn)
        lay.addLayout(row)

        # --- opening ---------------------------------------------------------------------
        row = QHBoxLayout()
        self.open_edit = QLineEdit()
        self.open_edit.setPlaceholderText("open a traced corpus: folder or URL (s3://, https://…)")
        self.open_edit.returnPressed.connect(self._on_open_clicked)
        row.addWidget(self.open_edit, 1)
        self.open_btn = QPushButton("Open")
        self.open_btn.setToolTip("Open the corpus at the folder or URL typed on the left")
        self.open_btn.clicked.connect(self._on_open_clicked)
        row.addWidget(self.open_btn)
        self.browse_btn = QPushButton("Browse…")
        self.browse_btn.setToolTip("Choose a traced corpus folder")
        self.browse_btn.clicked.connect(self._on_browse_clicked)
        row.addWidget(self.browse_btn)
        lay.addLayout(row)

        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m token-steps")
        self.progress.setVisible(False)
        lay.addWidget(self.progress)
        self.info_label = QLabel("")
        self.info_label.setWordWrap(True)
        lay.addWidget(self.info_label)

        # --- browsing and searching ------------------------------------------------------
        self.stack = QStackedWidget()
        self.empty_label = QLabel(EMPTY_TEXT)
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(self.empty_label)
        view_page = QWidget()
        vlay = QVBoxLayout(view_page)
        vlay.setContentsMargins(0, 0, 0, 0)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("position"))
        self.pos_box = QSpinBox()
        self.pos_box.setToolTip("Start of the window shown, in the corpus's token stream")
        self.pos_box.valueChanged.connect(self.show_position)
        row2.addWidget(self.pos_box)
        row2.addWidget(QLabel("layer"))
        self.layer_box = QComboBox()
        self.layer_box.setToolTip("The stored LSTM layer shown and searched")
        self.layer_box.currentIndexChanged.connect(lambda *_: self.show_position(self.position))
        row2.addWidget(self.layer_box)
        self.quantity_box = QComboBox()
        self.quantity_box.setToolTip("The stored quantity shown and searched")
        self.quantity_box.currentIndexChanged.connect(lambda *_: self.show_position(self.position))
        row2.addWidget(self.quantity_box)
        row2.addWidget(QLabel("threshold"))
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(-1000.0, 1000.0)
        self.threshold.setDecimals(3)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(0.3)
        self.threshold.setToolTip("A unit is 'on' where its value is at least this")
        row2.addWidget(self.threshold)
        row2.addWidget(QLabel("units"))
        self.units_edit = QLineEdit()
        self.units_edit.setPlaceholderText("auto: on over the whole selected range")
        self.units_edit.setToolTip(
            "Units of the pattern (e.g. 3, 17, 40-42); empty: every unit at or above the "
            "threshold over the selected range"
        )
        row2.addWidget(self.units_edit, 1)
        self.find_btn = QPushButton("Find matches")
        self.find_btn.setShortcut("Ctrl+F")
        self.find_btn.setToolTip("Search every position of the corpus (Ctrl+F)")
        self.find_btn.clicked.connect(self._on_find_clicked)
        row2.addWidget(self.find_btn)
        vlay.addLayout(row2)
        self.view = pg.GraphicsLayoutWidget()
        self.plot = self.view.addPlot()
        style_plot(self.plot, "", "unit", "")  # the x axis: the "position" box above it
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
        # the map and its pager on the left, the matches on the right: stacked under each
        # other in a bottom dock, the map kept no height at all
        map_side = QWidget()
        mlay = QVBoxLayout(map_side)
        mlay.setContentsMargins(0, 0, 0, 0)
        self.view.setMinimumHeight(PLOT_MIN_PX - 60)  # a data area of about 80 px
        mlay.addWidget(self.view, 1)
        self.page_bar = QScrollBar(Qt.Orientation.Horizontal)
        self.page_bar.setToolTip("Page through the corpus (pages are read as they are shown)")
        self.page_bar.valueChanged.connect(self.pos_box.setValue)
        mlay.addWidget(self.page_bar)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["sequence", "t", "length", "mean", "tokens"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setToolTip(
            "Click: show the match; double-click: open that sequence in the main view"
        )
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        for col in range(4):  # numbers: as wide as they are; the tokens get the rest
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.cellClicked.connect(self._on_match)
        self.table.cellDoubleClicked.connect(self._open_match)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(map_side)
        split.addWidget(self.table)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        vlay.addWidget(split, 1)
        self.stack.addWidget(view_page)
        lay.addWidget(self.stack, 1)
        lay.addWidget(
            hint(
                "Tracing runs in the background (Dask: every core here, or a cluster) and writes "
                "a chunked, compressed float16 Zarr store, so corpora of millions of steps live "
                "on disk or in a bucket, not in RAM. Matches are ranked by how close their "
                "length is to the selection, then by the units' mean."
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
            path = dialogs.ask_open_file(self, "Text corpus", "Text (*.txt);;All files (*)")
            if not path:
                return None
            text = Path(path).read_text(encoding="utf-8", errors="replace")
            return text_corpus(doc.model, doc.info, text, self.length.value())
        path = dialogs.ask_open_file(self, "Sequences", "NumPy arrays (*.npy)")
        if not path:
            return None
        from ...io.inputs import read_array

        return read_array(path)

    def _new_store_name(self) -> str:
        doc = self.state
        name = doc.model.name if doc.model is not None else "model"
        return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.zarr"

    def _on_dir_clicked(self) -> None:
        path = dialogs.ask_directory(self, "Folder for the traced corpus")
        if path:
            self.out_edit.setText(str(Path(path) / self._new_store_name()))

    def default_dir(self) -> Path:
        return Path(tempfile.gettempdir()) / "lstmviz-corpus" / self._new_store_name()

    def _on_trace_clicked(self) -> None:
        # a slot of its own: `clicked` sends `checked`, which must not reach `start`
        self.start()

    def start(self, sequences: Any = None, out_dir: str | Path | None = None) -> None:
        """Trace ``sequences`` (default: from the source chosen) into ``out_dir`` (default:
        the store field, else a new folder in the temporary directory)."""
        doc = self.state
        if doc.model is None:
            self.error.emit("open a model first: the corpus is traced with the current model")
            return
        try:
            seqs = sequences if sequences is not None else self.sequences()
        except LstmvizError as e:
            self.error.emit(str(e))
            return
        if seqs is None:
            return
        model, info = doc.model, doc.info
        if out_dir is not None:
            out = str(out_dir)
        elif self.out_edit.text().strip():
            out = self.out_edit.text().strip()
        else:
            out = str(self.default_dir())
        scheduler = self.scheduler_edit.text().strip() or None

        def task(progress: Any, should_stop: Any) -> CorpusBase:
            return trace_corpus(
                model, seqs, out, progress, should_stop, scheduler=scheduler, info=info
            )

        self._busy("Tracing corpus")
        self.info_label.setText(f"Tracing into {out} on {scheduler or 'this machine’s threads'}…")
        self.runner.start(
            task,
            self._traced,
            "Tracing corpus",
            on_progress=self._on_progress,
            on_failed=lambda _m: self._idle(),
        )

    def _busy(self, what: str) -> None:
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.progress.setFormat(
            "%v / %m token-steps" if what.startswith("Tracing") else "%v / %m positions"
        )
        self.trace_btn.setEnabled(False)
        self.find_btn.setEnabled(False)
        self.open_btn.setEnabled(False)
        self.stop_btn.setEnabled(True)

    def _on_progress(self, i: int, n: int) -> None:
        self.progress.setRange(0, max(n, 1))
        self.progress.setValue(i)

    def _idle(self) -> None:
        self.trace_btn.setEnabled(True)
        self.find_btn.setEnabled(True)
        self.open_btn.setEnabled(True)
        self.stop_btn.setEnabled(False)
        self.progress.setVisible(False)

    def _on_stop_clicked(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the running trace or search."""
        w = self.runner.current
        if w is not None and w.is_running():
            w.stop()
            w.cancelled.connect(self._stopped)
        s = self.search_runner.current
        if s is not None and s.is_running():
            s.stop()
        self._idle()

    def _stopped(self) -> None:
        self.info_label.setText(
            "Stopped: the corpus is incomplete; open it to see the sequences that were traced."
        )

    def _traced(self, store: CorpusBase) -> None:
        self._idle()
        self.set_store(store)

    # --- opening ----------------------------------------------------------------------------
    def _on_open_clicked(self) -> None:
        text = self.open_edit.text().strip()
        if not text:
            self.error.emit("type the folder or URL of a traced corpus, or press Browse…")
            return
        self.open_location(text)

    def _on_browse_clicked(self) -> None:
        path = dialogs.ask_directory(self, "Traced corpus folder")
        if path:
            self.open_edit.setText(path)
            self.open_location(path)

    def open_location(self, location: str) -> None:
        """Open the corpus at a folder or URL (a URL is opened in a worker)."""
        if not is_url(location):
            try:
                self.set_store(open_corpus(location))
            except LstmvizError as e:
                self.error.emit(str(e))
            return
        self._busy("Opening")
        self.progress.setRange(0, 0)
        self.info_label.setText(f"Opening {location}…")
        self.page_runner.start(
            lambda _p, _s: open_corpus(location),
            self._opened,
            "Opening corpus",
            on_failed=lambda _m: self._idle(),
        )

    def _opened(self, store: CorpusBase) -> None:
        self._idle()
        self.set_store(store)

    def set_store(self, store: CorpusBase) -> None:
        self.store = store
        self.result = None
        self.table.setRowCount(0)
        self.match_marks.setData([], [])
        tok = store.tokenizer or {}
        doc_info = getattr(self.state, "info", None)
        if tok.get("vocab"):
            self.vocab, kind = list(tok["vocab"]), str(tok.get("kind", ""))
        elif doc_info is not None and doc_info.vocab:
            self.vocab, kind = list(doc_info.vocab), doc_info.token_kind
        else:
            self.vocab, kind = [], ""
        self._word_tokens = kind == "words"
        self.info_label.setText(store.describe())
        for box, items in ((self.layer_box, store.layers), (self.quantity_box, store.quantities)):
            box.blockSignals(True)
            box.clear()
            box.addItems(items)
            box.blockSignals(False)
        n = store.n_steps
        self.pos_box.blockSignals(True)
        self.pos_box.setRange(0, max(n - 1, 0))
        self.pos_box.setValue(0)
        self.pos_box.blockSignals(False)
        self.page_bar.blockSignals(True)
        self.page_bar.setRange(0, max(n - WINDOW, 0))
        self.page_bar.setPageStep(WINDOW)
        self.page_bar.setSingleStep(max(1, WINDOW // 8))
        self.page_bar.setValue(0)
        self.page_bar.blockSignals(False)
        self.stack.setCurrentIndex(1)
        self.show_position(0)

    # --- browsing ---------------------------------------------------------------------------
    @property
    def layer(self) -> str | None:
        return self.layer_box.currentText() or None

    @property
    def quantity(self) -> str:
        return self.quantity_box.currentText() or "hidden"

    def show_position(self, pos: int) -> None:
        """Show the window at ``pos``: drawn at once from pages already read (or from a local
        folder), else read in a worker and drawn when it arrives."""
        st = self.store
        if st is None:
            return
        self.position = int(pos)
        if self.page_bar.value() != self.position:
            self.page_bar.blockSignals(True)
            self.page_bar.setValue(min(self.position, self.page_bar.maximum()))
            self.page_bar.blockSignals(False)
        layer, q = self.layer, self.quantity
        a, b = self.position, self.position + WINDOW
        if st.has_window(a, b, layer, q) or not is_url(st.location):
            try:
                self._draw(self.position, st.window(a, b, layer, q), q)
            except LstmvizError as e:
                self.error.emit(str(e))
            return
        self.plot.setTitle(f"reading positions {a:,}–{b:,}…")

        def fetch(_p: Any, _s: Any) -> tuple[int, np.ndarray, str]:
            return a, st.window(a, b, layer, q), q

        self.page_runner.start(fetch, self._fetched, "Reading the corpus")

    def _fetched(self, got: tuple[int, np.ndarray, str]) -> None:
        pos, w, q = got
        if pos == self.position and q == self.quantity:
            self._draw(pos, w, q)

    def _draw(self, pos: int, w: np.ndarray, quantity: str) -> None:
        img = w.T  # (U, L)
        if quantity in GATES:
            levels = (0.0, 1.0)
        elif quantity == "cell":
            m = float(np.abs(img).max()) if img.size else 1.0
            levels = (-max(m, 1e-6), max(m, 1e-6))
        else:
            levels = (-1.0, 1.0)
        show_image(self.plot, self.image, img, levels, x0=pos)
        self.plot.setTitle(f"{self.layer} {quantity} over the corpus (drag the region to select)")
        lo, hi = self.region.getRegion()
        if not pos <= lo < hi <= pos + img.shape[1]:
            self.region.setRegion((pos + 5, pos + 8))
        self._label_ticks(pos, img.shape[1])
        self._mark_matches()

    def _labels(self, ids: np.ndarray) -> list[str]:
        v = self.vocab
        labels = [v[int(i)] if 0 <= int(i) < len(v) else "?" for i in ids]
        return [{" ": "␣", "\n": "⏎"}.get(s, s) for s in labels]

    def _label_ticks(self, pos: int, n: int) -> None:
        st = self.store
        if st is None:
            return
        ids = st.tokens(pos, pos + n)
        if ids.ndim == 1 and self.vocab:
            labels = self._labels(ids)
            step = max(1, n // 100)
            axis = self.plot.getAxis("bottom")
            width = self.plot.vb.width()
            if width > 0 and labels:  # no two labels closer than the widest one needs
                fm = QFontMetrics(axis.style.get("tickFont") or QFont())
                widest = max(fm.horizontalAdvance(s) for s in labels) + fm.horizontalAdvance(" ")
                step = max(step, math.ceil(widest / (width / max(n, 1))))
            ticks = [(pos + k + 0.5, labels[k]) for k in range(0, n, step)]
            self.plot.getAxis("bottom").setTicks([ticks, []])
        else:
            self.plot.getAxis("bottom").setTicks(None)

    def selection(self) -> tuple[int, int]:
        lo, hi = self.region.getRegion()
        t0 = max(0, round(lo))
        t1 = max(round(hi), t0 + 1)
        return t0, t1

    # --- searching --------------------------------------------------------------------------
    def _on_find_clicked(self) -> None:
        self.find_matches()

    def find_matches(self) -> None:
        """Search the corpus for the selected units over the brushed range."""
        st = self.store
        if st is None:
            self.error.emit("trace or open a corpus first")
            return
        t0, t1 = self.selection()
        layer, q = self.layer, self.quantity
        try:
            units = parse_unit_list(self.units_edit.text(), "units")
            thr = self.threshold.value()
            if units is None:
                units = select_units(st, t0, t1, thr, layer, q)
                if not units:
                    raise LstmvizError(
                        f"no unit is at or above {thr:g} over the whole selected range "
                        f"{t0}:{t1}; lower the threshold or narrow the range"
                    )
            if st.n_steps <= SYNC_FIND_LIMIT:
                self._found(find_pattern(st, units, t0, t1, thr, layer=layer, quantity=q))
                return
        except LstmvizError as e:
            self.error.emit(str(e))
            return
        scheduler = self.scheduler_edit.text().strip() or None

        def task(progress: Any, should_stop: Any) -> PatternResult:
            return find_pattern(
                st,
                units,
                t0,
                t1,
                thr,
                layer=layer,
                quantity=q,
                progress=progress,
                should_stop=should_stop,
                scheduler=scheduler,
            )

        self._busy("Searching")
        self.info_label.setText(
            f"Searching {st.n_steps:,} positions (the on/off index is built once per threshold)…"
        )
        self.search_runner.start(
            task,
            self._found,
            "Searching the corpus",
            on_progress=self._on_progress,
            on_failed=lambda _m: self._idle(),
        )

    def _found(self, result: PatternResult) -> None:
        self._idle()
        self.result = result
        st = self.store
        r = self.result
        assert st is not None
        self.units_edit.setPlaceholderText(f"auto: {', '.join(map(str, r.units))}")
        self.table.setRowCount(len(r.matches))
        sep = " " if self._word_tokens else ""
        for k, m in enumerate(r.matches):
            snippet = ""
            a, b = max(m.start - 3, 0), min(m.stop + 3, st.n_steps)
            ids = st.tokens(a, b)
            if ids.ndim == 1 and self.vocab:
                seg = self._labels(ids)
                lo, hi = m.start - a, m.stop - a
                snippet = (
                    sep.join(seg[:lo])
                    + sep
                    + "["
                    + sep.join(seg[lo:hi])
                    + "]"
                    + sep
                    + sep.join(seg[hi:])
                )
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
        """Open the match's sequence in the main view at the match (with the model that
        traced the corpus: another model's states would not be these)."""
        st, r = self.store, self.result
        if st is None or r is None or row >= len(r.matches):
            return
        m = r.matches[row]
        doc = self.state
        want = st.meta.get("weights_sha256")
        if doc.model is None:
            self.error.emit(
                f"open the model that traced this corpus ({_model_name(st)}) to see the "
                "sequence in the main view"
            )
            return
        if want and weights_sha256(doc.model) != want:
            self.error.emit(
                f"the open model ({doc.model.name}) is not the one that traced this corpus "
                f"({_model_name(st)}: its weights differ); open that model to see the "
                "sequence in the main view"
            )
            return
        try:
            doc.set_input(st.sequence(m.sequence)[None])
            doc.set_t(m.t)
        except LstmvizError as e:
            self.error.emit(str(e))

    def shutdown(self) -> None:
        self.runner.shutdown()
        self.search_runner.shutdown()
        self.page_runner.shutdown()
