"""File → Examples → Gallery: every bundled example with its description."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ExampleGallery(QDialog):
    """Lists the bundled examples; double-click or Open loads one.

    ``chosen`` holds the name of the example picked (or None).
    """

    def __init__(self, examples: list[Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Example gallery")
        self.resize(820, 460)
        self.examples = examples
        self.chosen: str | None = None
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.list = QListWidget()
        self.list.setMinimumWidth(260)
        for ex in examples:
            item = QListWidgetItem(ex.title)
            item.setData(Qt.ItemDataRole.UserRole, ex.name)
            item.setToolTip(ex.description)
            self.list.addItem(item)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        row.addWidget(self.list)
        row.addWidget(self.details, 1)
        lay.addLayout(row, 1)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.list.currentRowChanged.connect(self._show)
        self.list.itemDoubleClicked.connect(lambda _item: self._accept())
        if examples:
            self.list.setCurrentRow(0)
        else:
            self.details.setText("No examples are bundled with this installation.")

    def _show(self, row: int) -> None:
        if not 0 <= row < len(self.examples):
            return
        ex = self.examples[row]
        info = ex.info
        extra = ""
        if info is not None and info.example:
            extra = f"<p><b>Example input:</b> <code>{_esc(info.example)}</code></p>"
        self.details.setText(
            f"<h3>{_esc(ex.title)}</h3><p>{_esc(ex.description)}</p>{extra}"
            f"<p style='color:#9aa0a6'>{_esc(str(ex.path))}</p>"
        )

    def _accept(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.chosen = item.data(Qt.ItemDataRole.UserRole)
            self.accept()
