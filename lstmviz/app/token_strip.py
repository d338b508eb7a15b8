"""The input strip: the sequence as tokens, the current one boxed, the model's prediction
under each, and an editor to type a new input or load a file."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from ..errors import LstmvizError
from ..state import ViewerState
from .style import NORMAL, Theme

#: The input editor shows the input's text up to this many characters.
MAX_EDIT_TEXT = 5000

HINTS = {
    "digits": "digits, e.g. 4 7 3",
    "bits": "two binary numbers, e.g. 1011 + 0110",
    "chars": "any text",
    "words": "words from the vocabulary",
    "ids": "token ids, e.g. 3 1 4",
    "floats": "numbers; one timestep per ';'",
}


class TokenStrip(QWidget):
    """Paints the tokens around the current step; click a token to jump there."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.theme = NORMAL
        self.first = 0  # first visible timestep
        self._cells: list[tuple[int, QRectF]] = []
        self._preds: list[str] | None = None
        #: the correct answer per step (None: the model's task is not known), whether the
        #: model's answer is right there, whether it is checked there, and the accuracy line
        self._truth: list[str] | None = None
        self._right: np.ndarray | None = None
        self._checked: np.ndarray | None = None
        self.summary = ""
        self.text_px: list[int] = []  # pixel sizes of the text of the last paint
        #: without the row of correct answers (presentation mode with a panel open)
        self.compact = False
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(False)
        self.setToolTip(
            "The input sequence (top) and the model's output at each step "
            "(bottom). Click a token to jump to it."
        )
        state.events.trace.connect(self._on_trace_changed)
        state.events.batch.connect(self._on_trace_changed)
        state.events.layer.connect(self._on_trace_changed)
        state.events.t.connect(self._on_t_changed)
        for name in ("hide_future", "hide_answer"):
            getattr(state.options.events, name).connect(self._on_option)
        state.events.token_scores.connect(self._on_scores_changed)
        self.set_theme(NORMAL)

    def _on_scores_changed(self) -> None:
        ts = self.state.token_scores
        base = (
            "The input sequence (top) and the model's output at each step "
            "(bottom). Click a token to jump to it."
        )
        if ts is not None:
            base += (
                f"\nTokens coloured by {ts.label or 'their scores'}: orange pushes the output up, "
                "blue pushes it down; the stronger the colour, the larger the score."
            )
        self.setToolTip(base)
        self.update()

    def score_colour(self, t: int) -> QColor | None:
        """The fill of token ``t`` when the tokens are coloured by scores (None otherwise):
        orange for a positive score, blue for a negative one, as strong as the score is
        large relative to the largest of the sequence."""
        ts = self.state.token_scores
        if ts is None or self.state.batch >= ts.scores.shape[0]:
            return None
        s = ts.normalized(self.state.batch)
        if not 0 <= t < len(s):
            return None
        v = float(s[t])
        warm, cool, base = QColor("#E69F00"), QColor("#56B4E9"), QColor("#262a33")
        to = warm if v >= 0 else cool
        a = min(abs(v), 1.0) * 0.9
        return QColor(
            round(base.red() + (to.red() - base.red()) * a),
            round(base.green() + (to.green() - base.green()) * a),
            round(base.blue() + (to.blue() - base.blue()) * a),
        )

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        big = theme.name == "presentation"
        self.font_ = QFont("DejaVu Sans Mono")
        self.font_.setPixelSize(int(theme.font_px * 1.35))
        self.small = QFont("DejaVu Sans Mono")
        self.small.setPixelSize(theme.tick_px)
        # the model's answers: in presentation mode as large as the input, bold, bright
        self.answer = QFont("DejaVu Sans Mono")
        self.answer.setPixelSize(int(theme.font_px * 1.2) if big else theme.tick_px + 1)
        self.answer.setBold(True)
        self._fit_height()
        self.update()

    def _fit_height(self) -> None:
        fm = QFontMetrics(self.font_)
        sm = QFontMetrics(self.small)
        am = QFontMetrics(self.answer)
        self.row_h = fm.height() + 12
        self.pred_h = am.height() + 6
        self.truth_h = am.height() + 6 if self._truth is not None and not self.compact else 0
        steps = 0 if self.compact else sm.height() + 4  # the step numbers, the accuracy
        self.setFixedHeight(self.row_h + self.pred_h + self.truth_h + steps + 10)

    def set_compact(self, on: bool) -> None:
        """Leave out the row of correct answers (a wrong output stays red) and the row of step
        numbers and accuracy (the current step is the highlighted token) to save height."""
        if on != self.compact:
            self.compact = on
            self._fit_height()
            self.update()

    def _on_option(self, _on: bool) -> None:
        self.update()

    def _on_trace_changed(self, *_: Any) -> None:
        self._preds = None
        self._truth = self._right = self._checked = None
        self.summary = ""
        try:
            self._answers()
        except LstmvizError:  # an output that does not read as answers: no answer rows
            self._preds = None
            self._truth = None
        self._fit_height()
        self.first = 0
        self._on_t_changed(self.state.t)

    def _answers(self) -> None:
        """The model's answer per step and, for a task lstmviz knows, the correct one."""
        from .answers import step_answers

        ans = step_answers(self.state)
        if ans is None:
            return
        self._preds = list(ans.said)
        agree = ans.agreement
        if agree is not None:
            self._truth = ans.truth
            self._right = agree.correct[ans.batch]
            self._checked = agree.checked[ans.batch]
            self.summary = ans.summary()

    def hidden(self, i: int) -> bool:
        """Whether step ``i``'s answers are hidden now ("predict, then reveal")."""
        opts = self.state.options
        t = self.state.t
        return (opts.hide_future and i > t) or (opts.hide_answer and i >= t)

    def _features(self) -> np.ndarray | None:
        """``(T, F)`` features scaled to [-1, 1] for float inputs with several features
        (drawn as tiny bar charts), else None."""
        x = self.state.x
        if x is None or isinstance(x, list):
            return None
        a = np.asarray(x)
        if a.ndim != 3 or a.shape[-1] < 2 or a.shape[-1] > 32 or a.dtype.kind != "f":
            return None
        labels = self.state.token_labels()
        if labels and not labels[0].startswith("x"):
            return None  # one-hot digits or bit pairs have readable labels
        key = (id(x), self.state.batch)
        if getattr(self, "_spark_key", None) != key:
            seq = a[min(self.state.batch, a.shape[0] - 1)]  # (T, F)
            m = float(np.abs(seq).max()) or 1.0
            self._spark = seq / m
            self._spark_key = key
        return np.asarray(self._spark)

    def _sparkline(self, p: QPainter, r: QRectF, feats: np.ndarray, future: bool) -> None:
        n = len(feats)
        inner = r.adjusted(5, 5, -5, -5)
        bw = inner.width() / n
        mid = inner.center().y()
        half = inner.height() / 2
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("#56B4E9" if not future else "#3a4a58"))
        for k, v in enumerate(feats):
            h = float(v) * half
            p.drawRect(
                QRectF(inner.left() + k * bw + 0.5, mid - max(h, 0), max(bw - 1, 1), abs(h) or 1)
            )

    def label_width(self) -> int:
        return QFontMetrics(self.small).horizontalAdvance("correct") + 14

    def cell_width(self, labels: list[str]) -> int:
        fm = QFontMetrics(self.font_)
        if self._features() is not None:
            return int(fm.height() * 1.8)
        sample = labels[:200]
        w = max((fm.horizontalAdvance(s) for s in sample), default=10)
        return int(min(max(w + 14, fm.height() * 1.3), 220))

    def visible_range(self) -> tuple[int, int]:
        labels = self.state.token_labels()
        n = len(labels)
        if not n:
            return 0, 0
        cw = self.cell_width(labels)
        per = max(1, (self.width() - self.label_width() - 24) // (cw + 4))
        return self.first, min(n, self.first + per)

    def _on_t_changed(self, t: int) -> None:
        labels = self.state.token_labels()
        n = len(labels)
        if n:
            cw = self.cell_width(labels)
            per = max(1, (self.width() - self.label_width() - 24) // (cw + 4))
            if not self.first <= t < self.first + per or t >= self.first + per - 1:
                self.first = max(0, min(t - per // 2, n - per))
            if t < self.first:
                self.first = t
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        doc = self.state
        th = self.theme
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(th.bg))
        labels = doc.token_labels()
        self._cells = []
        if not labels:
            p.setPen(QColor(th.muted))
            p.setFont(self.small)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no input")
            return
        spark = self._features()
        cw = self.cell_width(labels)
        lo, hi = self.visible_range()
        t = doc.t
        x0 = self.label_width()
        p.setFont(self.small)
        p.setPen(QColor(th.muted))
        p.drawText(
            QRectF(0, 4, x0 - 6, self.row_h),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            "input",
        )
        self.text_px = [self.small.pixelSize()]
        if self._preds is not None:
            p.drawText(
                QRectF(0, self.row_h + 6, x0 - 6, self.pred_h),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                "output",
            )
        if self._truth is not None and self.truth_h:
            p.drawText(
                QRectF(0, self.row_h + 6 + self.pred_h, x0 - 6, self.truth_h),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                "correct",
            )
        for k, i in enumerate(range(lo, hi)):
            x = x0 + k * (cw + 4)
            r = QRectF(x, 4, cw, self.row_h)
            self._cells.append((i, r))
            current = i == t
            future = i > t
            scored = self.score_colour(i)
            if current:
                p.setPen(QPen(QColor(th.accent), 3))
                p.setBrush(scored if scored is not None else QColor("#0072B2"))
            else:
                p.setPen(QPen(QColor("#3a3f4b"), 1))
                p.setBrush(
                    scored if scored is not None else QColor("#262a33" if not future else "#1a1c22")
                )
            p.drawRoundedRect(r, 5, 5)
            if spark is not None:
                self._sparkline(p, r, spark[i], future)
            else:
                p.setFont(self.font_)
                if scored is not None and scored.lightness() > 120:
                    p.setPen(QColor("#111111"))  # dark text on a strong colour
                else:
                    p.setPen(QColor(th.fg if not future or scored is not None else "#6b7078"))
                p.drawText(r, Qt.AlignmentFlag.AlignCenter, labels[i])
            if self._preds is not None and i < len(self._preds):
                self._paint_answers(p, i, x, cw, current, future)
            p.setFont(self.small)
            p.setPen(QColor(th.muted if not current else th.fg))
            if not self.compact and (current or (i % 5 == 0 and abs(i - t) >= 2)):
                p.drawText(
                    QRectF(
                        x - 10,
                        self.row_h + self.pred_h + self.truth_h + 6,
                        cw + 20,
                        self.small.pixelSize() + 6,
                    ),
                    Qt.AlignmentFlag.AlignCenter,
                    f"t={i}" if current else str(i),
                )
        n = len(labels)
        if (
            self.summary
            and not self.compact
            and not self.state.options.hide_future
            and not self.state.options.hide_answer
        ):
            self._paint_summary(p)
        p.setFont(self.small)
        p.setPen(QColor(th.muted))
        if lo > 0:
            p.drawText(QRectF(x0 - 20, 4, 18, self.row_h), Qt.AlignmentFlag.AlignCenter, "…")
        if hi < n:
            p.drawText(
                QRectF(self.width() - 20, 4, 18, self.row_h), Qt.AlignmentFlag.AlignCenter, "…"
            )
        p.end()

    def _paint_answers(
        self, p: QPainter, i: int, x: float, cw: float, current: bool, future: bool
    ) -> None:
        """The model's answer at step ``i`` (high contrast; a wrong one on red) and, under
        it, the correct one."""
        assert self._preds is not None
        big = self.theme.name == "presentation"
        pr = QRectF(x, self.row_h + 6, cw, self.pred_h)
        hidden = self.hidden(i)
        wrong = (
            self._right is not None
            and self._checked is not None
            and bool(self._checked[i])
            and not bool(self._right[i])
            and not hidden
        )
        if wrong:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor("#D55E00"))
            p.drawRoundedRect(pr.adjusted(1, 1, -1, -1), 4, 4)
        p.setFont(self.answer)
        if hidden:
            colour = "#6b7078"
        elif wrong:
            colour = "#ffffff"
        elif current or big:
            colour = "#F0E442"
        else:
            colour = "#b8b070" if not future else "#807a4a"
        p.setPen(QColor(colour))
        p.drawText(pr, Qt.AlignmentFlag.AlignCenter, "?" if hidden else self._preds[i])
        self.text_px.append(self.answer.pixelSize())
        if self._truth is not None and self.truth_h and i < len(self._truth):
            tr = QRectF(x, self.row_h + 6 + self.pred_h, cw, self.truth_h)
            checked = self._checked is not None and bool(self._checked[i])
            p.setPen(QColor("#6b7078" if hidden else ("#e8e8ea" if checked else "#9aa0a6")))
            p.setFont(self.answer)
            p.drawText(tr, Qt.AlignmentFlag.AlignCenter, "?" if hidden else self._truth[i])

    def _paint_summary(self, p: QPainter) -> None:
        """Accuracy over the shown input, bottom right (over the sparse step numbers)."""
        text = self.summary
        fm = QFontMetrics(self.small)
        w = fm.horizontalAdvance(text) + 16
        y = self.row_h + self.pred_h + self.truth_h + 4
        r = QRectF(max(self.width() - w - 6, self.label_width()), y, w, fm.height() + 6)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(self.theme.bg))
        p.drawRect(r)
        p.setFont(self.small)
        bad = "wrong at" in text
        p.setPen(QColor("#ff9a66" if bad else "#7fd4a8"))
        p.drawText(r, Qt.AlignmentFlag.AlignCenter, text)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        for i, r in self._cells:
            if r.contains(pos) or (r.left() <= pos.x() <= r.right()):
                self.state.set_t(i)
                return
        super().mousePressEvent(event)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._on_t_changed(self.state.t)


class InputEditor(QWidget):
    """Type a new input (digits, text, bits...) or load one from a file."""

    error = Signal(str)
    load_requested = Signal()
    done = Signal()  # the input was applied (or editing abandoned): give the keys back

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("Input")
        self.edit = QLineEdit()
        self.edit.setClearButtonEnabled(True)
        # only a click puts the cursor here: arrow keys, Home/End and Space step through time
        self.edit.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.edit.returnPressed.connect(self.apply)
        self.apply_button = QPushButton("Trace")
        self.apply_button.setToolTip("Trace the typed input (Enter)")
        self.apply_button.clicked.connect(self.apply)
        self.load_button = QPushButton("Load .npy/.csv…")
        self.load_button.clicked.connect(self.load_requested)
        for b in (self.apply_button, self.load_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        lay.addWidget(self.label)
        lay.addWidget(self.edit, 1)
        lay.addWidget(self.apply_button)
        lay.addWidget(self.load_button)
        state.events.input.connect(self._on_input_changed)
        state.events.model.connect(self._on_model_changed)

    def _on_model_changed(self) -> None:
        info = self.state.info
        kind = info.token_kind if info is not None else None
        if kind is None and self.state.model is not None:
            kind = "ids" if self.state.model.takes_tokens else "floats"
        self.edit.setPlaceholderText(
            f"type {HINTS.get(kind or 'floats', 'an input')} and press Enter"
        )

    def _on_input_changed(self) -> None:
        try:
            # a long input of feature values is not even written (10,000 steps of 16
            # features took ~0.1 s on the GUI thread, to be dropped)
            within = self.state.input_text_within(MAX_EDIT_TEXT)
        except (LstmvizError, ValueError, IndexError):
            within = ""
        text = within or ""
        if within is None:
            self.edit.setPlaceholderText("(long input loaded from a file)")
        if not self.edit.hasFocus() or self.edit.text().strip() == "":
            self.edit.setText(text)

    def apply(self) -> None:
        text = self.edit.text()
        try:
            self.state.set_text(text)
        except LstmvizError as e:
            self.error.emit(str(e))
            return
        self.done.emit()

    def keyPressEvent(self, event: Any) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.done.emit()
            return
        super().keyPressEvent(event)
