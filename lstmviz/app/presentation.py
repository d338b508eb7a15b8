"""Presentation mode's parts that keep the story: the prediction in large type, the lesson's
caption or question, the presenter's own window on a second screen, and a check that every
text on screen is large enough for a lecture hall.

:class:`PredictionView` shows what the model says at step ``t`` and the correct answer
(:mod:`.answers`); :class:`CaptionBar` the lesson's question (before the answer is revealed)
or caption; :class:`StoryBar` holds both under the big view. :class:`PresenterWindow` is the
laptop's screen while the projector shows the main window: the current step's notes and
caption, the next step, the controls and a clock. :func:`text_sizes` lists the pixel size of
every text a window shows (widgets, pyqtgraph items and painted views).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from PySide6 import QtGui
from PySide6.QtCore import QEvent, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontInfo, QFontMetricsF, QGuiApplication, QPainter
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QGraphicsItem,
    QGraphicsTextItem,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..state import ViewerState
from .answers import step_answers
from .style import NORMAL, Theme

if TYPE_CHECKING:
    from PySide6.QtGui import QPaintEvent, QScreen, QTextDocument

#: colours of a right and a wrong answer (Okabe-Ito bluish green and vermillion)
RIGHT = "#2fd39a"
WRONG = "#ff7a3d"


class PredictionView(QWidget):
    """What the model says at step ``t``, in large type, and whether it is right.

    ``said`` and ``verdict`` hold the two lines as drawn (for tests and the presenter).
    """

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.theme: Theme = NORMAL
        self.said = ""
        self.verdict = ""
        self.verdict_colour = ""
        self.text_px: list[int] = []
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        ev = state.events
        for sig in (ev.trace, ev.batch, ev.t, ev.layer):
            sig.connect(self.refresh)
        for name in ("hide_answer", "hide_future"):
            getattr(state.options.events, name).connect(self.refresh)
        self.refresh()

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.updateGeometry()
        self.update()

    def _fonts(self) -> tuple[QFont, QFont]:
        big, small = QFont("DejaVu Sans"), QFont("DejaVu Sans")
        base = max(self.theme.font_px, 14)
        big.setPixelSize(int(base * 1.75))
        big.setBold(True)
        small.setPixelSize(base)
        return big, small

    def sizeHint(self) -> QSize:
        big, small = self._fonts()
        h = QFontMetricsF(big).height() + QFontMetricsF(small).height() * 1.4 + 12
        w = max(
            QFontMetricsF(big).horizontalAdvance(self.said or "model says: 0  (100%)"),
            QFontMetricsF(small).horizontalAdvance(self.verdict),
        )
        return QSize(int(w) + 24, int(h))

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def refresh(self, *_: Any) -> None:
        st = self.state
        self.said = self.verdict = self.verdict_colour = ""
        self.updateGeometry()  # its width follows the text
        ans = step_answers(st)
        lt = st.layer_trace
        if ans is None or lt is None:
            self.update()
            return
        t = min(st.t, len(ans.said) - 1)
        if st.options.hide_answer:
            self.said = f"{ans.what}: ?"
            self.verdict = "what will it say?"
            self.verdict_colour = self.theme.muted
            self.updateGeometry()
            self.update()
            return
        self.said = f"{ans.what}: {ans.said[t]}  ({ans.confidence[t]:.0%})"
        right = ans.right(t)
        truth = ans.truth
        if right is not None and truth is not None:  # checked against a correct answer
            mark, colour = ("✓", RIGHT) if right else ("✗", WRONG)
            self.verdict, self.verdict_colour = f"correct: {truth[t]} {mark}", colour
        elif truth is not None and ans.agreement is not None:
            self.verdict = ans.agreement.text(t, ans.batch)
            self.verdict_colour = self.theme.muted
        self.updateGeometry()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        p.fillRect(self.rect(), QColor(self.theme.bg))
        self.text_px = []
        big, small = self._fonts()
        hb = QFontMetricsF(big).height()
        hs = QFontMetricsF(small).height()
        r = QRectF(self.rect()).adjusted(10, 4, -10, -4)
        flags = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        if self.said:
            p.setFont(big)
            p.setPen(QColor("#F0E442"))
            p.drawText(QRectF(r.left(), r.top(), r.width(), hb), flags, self.said)
            self.text_px.append(big.pixelSize())
        if self.verdict:
            p.setFont(small)
            p.setPen(QColor(self.verdict_colour or self.theme.fg))
            p.drawText(QRectF(r.left(), r.top() + hb + 2, r.width(), hs * 1.3), flags, self.verdict)
            self.text_px.append(small.pixelSize())
        p.end()


class CaptionBar(QLabel):
    """The lesson's words at this step: its question (before the answer is revealed), then
    its caption; ``step k of n`` in front."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme: Theme = NORMAL
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setContentsMargins(8, 2, 8, 2)
        self.plain = ""

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.setStyleSheet(f"font-size: {theme.font_px}px; color: {theme.fg};")

    def show_step(self, index: int, total: int, question: str, caption: str) -> None:
        """Show step ``index`` (0-based) of ``total``: the question, else the caption."""
        import html

        head = f"<span style='color:{self.theme.muted}'>step {index + 1} of {total}</span>"
        if question:
            body = f"<b style='color:#56B4E9'>Ask first:</b> {html.escape(question)}"
            self.plain = f"Ask first: {question}"
        else:
            body = html.escape(caption)
            self.plain = caption
        self.setText(f"{head} &nbsp; {body}")

    def clear_step(self) -> None:
        self.plain = ""
        self.setText("")


class StoryBar(QWidget):
    """Under the big view: the lesson's caption on the left, the prediction on the right."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        self.caption = CaptionBar()
        self.prediction = PredictionView(state)
        lay.addWidget(self.caption, 3)
        lay.addWidget(self.prediction, 0)

    def set_theme(self, theme: Theme) -> None:
        self.caption.set_theme(theme)
        self.prediction.set_theme(theme)


class PresenterWindow(QWidget):
    """The presenter's screen (the laptop) while the audience screen shows the main window:
    this step's caption, questions and notes, what comes next, the controls and a clock."""

    def __init__(self, window: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.window_ = window
        self.setWindowTitle("lstmviz — presenter view")
        self.started = time.monotonic()
        self.setStyleSheet(
            "QWidget { background: #111318; color: #e8e8ea; font-size: 20px; }"
            "QPushButton { background: #262a33; border: 1px solid #3a3f4b; border-radius: 6px;"
            " padding: 10px 18px; font-size: 22px; }"
            "QPushButton:pressed { background: #0072B2; }"
        )
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.where = QLabel()
        self.where.setStyleSheet("font-size: 26px; font-weight: bold;")
        self.clock = QLabel("0:00")
        self.clock.setStyleSheet("font-size: 26px; color: #F0E442;")
        top.addWidget(self.where, 1)
        top.addWidget(self.clock)
        lay.addLayout(top)
        self.now = QLabel()
        self.now.setWordWrap(True)
        self.now.setTextFormat(Qt.TextFormat.RichText)
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("color: #F0E442;")
        self.next = QLabel()
        self.next.setWordWrap(True)
        self.next.setStyleSheet("color: #9aa0a6;")
        for w in (self.now, self.notes, self.next):
            w.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            lay.addWidget(w)
        lay.addStretch(1)
        buttons = QHBoxLayout()
        self.back_btn = QPushButton("◀ Back (PgUp)")
        self.next_btn = QPushButton("Next ▶ (PgDown)")
        self.view_btn = QPushButton("Diagram / equations / heatmaps (V)")
        self.leave_btn = QPushButton("Leave presentation (Esc)")
        for b in (self.back_btn, self.next_btn, self.view_btn, self.leave_btn):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            buttons.addWidget(b)
        self.back_btn.clicked.connect(lambda: window.page(-1))
        self.next_btn.clicked.connect(lambda: window.page(1))
        self.view_btn.clicked.connect(lambda: window.cycle_presentation_view())
        self.leave_btn.clicked.connect(lambda: window.set_presentation(False))
        lay.addLayout(buttons)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._timer.start(1000)
        state = window.state
        for sig in (state.events.t, state.events.trace):
            sig.connect(self.refresh)
        self.resize(1280, 720)
        self.refresh()

    def _tick(self) -> None:
        s = int(time.monotonic() - self.started)
        self.clock.setText(f"{s // 60}:{s % 60:02d}")

    def refresh(self, *_: Any) -> None:
        import html

        w = self.window_
        st = w.state
        lesson = getattr(w, "lessons", None)
        run = lesson.run if lesson is not None else None
        if run is None:
            n = st.timesteps
            self.where.setText(f"t = {st.t} of {max(n - 1, 0)}")
            labels = st.token_labels()
            tok = labels[st.t] if st.t < len(labels) else ""
            self.now.setText(f"<p>Input at this step: <b>{html.escape(tok)}</b></p>")
            self.notes.setText("")
            self.next.setText("Next: PgDown steps forward in time.")
            return
        les, k = run.lesson, run.index
        step = les.steps[k]
        phase = "asking" if run.asking else "answer shown"
        self.where.setText(f"{les.title} — step {k + 1} of {len(les.steps)} ({phase})")
        parts = [f"<p><b>Ask:</b> {html.escape(q)}</p>" for q in step.ask]
        parts.append(f"<p><b>Say:</b> {html.escape(step.caption)}</p>")
        self.now.setText("".join(parts))
        self.notes.setText(f"Notes: {step.notes}" if step.notes else "")
        if run.asking:
            self.next.setText("Next: PgDown reveals the answer and the caption.")
        elif k + 1 < len(les.steps):
            nxt = les.steps[k + 1]
            what = nxt.ask[0] if nxt.ask else nxt.caption
            self.next.setText(
                f"Next — step {k + 2}, {nxt.view} at t = {nxt.t}: {what[:240]}"
                + ("…" if len(what) > 240 else "")
            )
        else:
            self.next.setText("This is the last step.")


class BlankCover(QWidget):
    """The clicker's "blank screen" button (B or the full stop, as in slide software): the
    window goes black over everything; the next key -- any key, the clicker's included --
    brings it back without acting (the room sees the view it left)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAutoFillBackground(False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip("Blank screen: press any key to come back")
        self._back_to: QWidget | None = None
        self.hide()
        parent.installEventFilter(self)

    def paintEvent(self, event: QPaintEvent) -> None:
        QPainter(self).fillRect(self.rect(), QColor("#000000"))

    def toggle(self) -> None:
        """Blank the window, or bring it back."""
        if self.isVisible():
            self.uncover()
        else:
            self.cover()

    def cover(self) -> None:
        parent = self.parentWidget()
        if parent is None:
            return
        self._back_to = QApplication.focusWidget()
        self.setGeometry(parent.rect())
        self.show()
        self.raise_()
        self.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def uncover(self) -> None:
        self.hide()
        if self._back_to is not None:
            self._back_to.setFocus(Qt.FocusReason.OtherFocusReason)
        self._back_to = None

    def event(self, ev: QEvent) -> bool:
        # while black, every key is this cover's: no shortcut steps the view unseen
        if ev.type() == QEvent.Type.ShortcutOverride:
            ev.accept()
            return True
        if ev.type() == QEvent.Type.KeyPress:
            self.uncover()
            return True
        return super().event(ev)

    def eventFilter(self, obj: Any, ev: QEvent) -> bool:
        if ev.type() == QEvent.Type.Resize and self.isVisible():
            parent = self.parentWidget()
            if parent is not None:
                self.setGeometry(parent.rect())
        return False


def audience_screens() -> list[QScreen]:
    """The screens, the presenter's (the primary) first; a second one is the audience's."""
    screens = list(QGuiApplication.screens())
    primary = QGuiApplication.primaryScreen()
    if primary in screens:
        screens.remove(primary)
        screens.insert(0, primary)
    return screens


# --- text sizes, for the lecture hall ------------------------------------------------------------
def _doc_px(doc: QTextDocument, default_px: float) -> list[float]:
    """Pixel sizes of every fragment of text in a rich-text document."""
    out: list[float] = []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            if frag.isValid() and frag.text().strip():
                f = frag.charFormat().font()
                if f.pixelSize() > 0:
                    out.append(float(f.pixelSize()))
                elif f.pointSizeF() > 0:
                    out.append(f.pointSizeF() * 96.0 / 72.0)
                else:
                    out.append(default_px)
            it += 1
        block = block.next()
    return out


def _font_px(font: QFont) -> float:
    if font.pixelSize() > 0:
        return float(font.pixelSize())
    return float(QFontInfo(font).pixelSize())


def _label_px(label: QLabel) -> list[float]:
    from PySide6.QtGui import QTextDocument

    text = label.text()
    if not text.strip():
        return []
    base = _font_px(label.font())
    rich = label.textFormat() == Qt.TextFormat.RichText or (
        label.textFormat() == Qt.TextFormat.AutoText and QtGui.Qt.mightBeRichText(text)
    )
    if not rich:
        return [base]
    doc = QTextDocument()
    doc.setDefaultFont(label.font())
    doc.setHtml(text)
    return _doc_px(doc, base)


def _item_visible(item: QGraphicsItem) -> bool:
    while item is not None:
        if not item.isVisible() or item.opacity() <= 0.01:
            return False
        item = item.parentItem()
    return True


def _scene_px(view: QGraphicsView) -> list[tuple[str, float]]:
    """Text in a pyqtgraph (or any) graphics scene: text items, axes' tick labels, and items
    that record the sizes they paint (``text_px``)."""
    import pyqtgraph as pg

    out: list[tuple[str, float]] = []
    scene = view.scene()
    if scene is None:
        return out
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    for item in scene.items():
        if not _item_visible(item) or not item.sceneBoundingRect().intersects(visible):
            continue
        if isinstance(item, QGraphicsTextItem):
            if item.toPlainText().strip():
                doc = item.document()
                out += [
                    (f"text {item.toPlainText()[:30]!r}", px)
                    for px in _doc_px(doc, _font_px(item.font()))
                ]
        elif isinstance(item, pg.AxisItem):
            if item.style.get("showValues", True) and item.width() > 0 and item.height() > 0:
                font = item.style.get("tickFont") or item.font()
                out.append((f"axis {item.orientation}", _font_px(font)))
        else:
            got = getattr(item, "text_px", None)
            if isinstance(got, list):
                out += [(type(item).__name__, float(px)) for px in got]
    return out


def text_sizes(root: QWidget) -> list[tuple[str, float]]:
    """``(what, pixel size)`` of every text visible in ``root``: labels (each rich-text
    fragment), buttons, edits, combo boxes, text in graphics scenes and axes, and the text
    painted by views that record it in ``text_px``. Call it after the window has painted."""
    out: list[tuple[str, float]] = []
    for w in [root, *root.findChildren(QWidget)]:
        if not w.isVisible() or w.width() <= 0 or w.height() <= 0:
            continue
        if w.visibleRegion().isEmpty():
            continue
        name = type(w).__name__
        if isinstance(w, QLabel):
            out += [(f"{name} {w.text()[:40]!r}", px) for px in _label_px(w)]
        elif isinstance(w, QAbstractButton):
            if w.text().strip():
                out.append((f"{name} {w.text()!r}", _font_px(w.font())))
        elif isinstance(w, (QLineEdit, QComboBox)):
            out.append((name, _font_px(w.font())))
        elif isinstance(w, QGraphicsView):
            out += [(f"{name}: {what}", px) for what, px in _scene_px(w)]
        got = getattr(w, "text_px", None)
        if isinstance(got, list) and not isinstance(w, QLabel):
            out += [(name, float(px)) for px in got]
    return out
