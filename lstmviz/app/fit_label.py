"""A one-line rich-text label that never clips: the longest of its texts that fits is shown,
and the full text is the tooltip whenever a shorter one is.

A plain :class:`~PySide6.QtWidgets.QLabel` with an ``Ignored`` size policy cuts its text at
the right edge mid-word ("click a heatmap row to p"); :class:`FitLabel` instead picks, on
every resize, the first of its variants (longest first) whose width fits, and as a last
resort elides the shortest variant's plain text with "…".
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent, QTextDocument
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


def html_width(label: QLabel, text: str) -> float:
    """The width in pixels ``text`` (rich text) needs on one line in ``label``'s font."""
    doc = QTextDocument()
    doc.setDefaultFont(label.font())
    doc.setDocumentMargin(0)
    doc.setHtml(text)
    return doc.idealWidth()


def html_plain(text: str) -> str:
    """``text`` (rich text) without its markup."""
    doc = QTextDocument()
    doc.setHtml(text)
    return doc.toPlainText()


class FitLabel(QLabel):
    """One line of rich text in whatever width the layout gives it (see the module docstring).

    Parameters
    ----------
    parent : QWidget, optional
        The parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setWordWrap(False)
        self._variants: tuple[str, ...] = ()
        self._tip = ""

    def set_texts(self, *variants: str, tip: str = "") -> None:
        """Show the first of ``variants`` (rich text, longest first) that fits.

        Parameters
        ----------
        *variants : str
            The same line at decreasing lengths; the first is the full text.
        tip : str
            A tooltip shown in any case (after the full text when that is not shown).
        """
        self._variants = tuple(v for v in variants if v)
        self._tip = tip
        self._fit()

    @property
    def full_text(self) -> str:
        """The full text (the first variant), whatever is shown."""
        return self._variants[0] if self._variants else ""

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if not self._variants:
            self.setText("")
            self.setToolTip(self._tip)
            return
        room = self.contentsRect().width() - 2
        shown = None
        for v in self._variants:
            if html_width(self, v) <= room:
                shown = v
                break
        if shown is not None:
            self.setTextFormat(Qt.TextFormat.RichText)
            self.setText(shown)
        else:  # not even the shortest fits: its words, elided
            plain = html_plain(self._variants[-1])
            self.setTextFormat(Qt.TextFormat.PlainText)
            self.setText(
                self.fontMetrics().elidedText(plain, Qt.TextElideMode.ElideRight, max(room, 0))
            )
        tips = [] if shown == self._variants[0] else [html_plain(self._variants[0])]
        if self._tip:
            tips.append(self._tip)
        self.setToolTip("\n".join(tips))
