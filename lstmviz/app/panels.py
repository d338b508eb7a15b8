"""The window's dockable panels (Train, the analysis panels): declared once, built on first open.

A :class:`PanelSpec` says what a panel is (title, menu, shortcut, how to build it); the main
window hands the specs to :class:`Panels`, which makes one dock per spec at once (empty and
hidden, so the dock layout can be saved and restored) and builds the panel's widget the first
time the dock is shown. :meth:`Panels.open` shows, raises and focuses a panel: its menu entry
and shortcut never close it (the dock's own close button does) and never leave it behind
another tab.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QVBoxLayout, QWidget

from .style import EMPTY_STATE

if TYPE_CHECKING:
    from .main_window import MainWindow

log = logging.getLogger(__name__)

BOTTOM = Qt.DockWidgetArea.BottomDockWidgetArea
RIGHT = Qt.DockWidgetArea.RightDockWidgetArea


@dataclass(frozen=True)
class PanelSpec:
    """A dockable panel of the main window.

    Attributes
    ----------
    key : str
        Its name in code and sessions (``"train"``, ``"what_if"``).
    title : str
        Dock title and menu text.
    menu : str
        The top-level menu that opens it ("Train", "Analysis").
    shortcut : str
        Opens (shows, raises, focuses) it.
    tip : str
        One sentence: what it is for (tooltip and status tip).
    build : callable
        ``build(window) -> QWidget``: called once, the first time the panel opens.
    area : Qt.DockWidgetArea
        Where it docks by default.
    height : int
        Its default height in pixels when docked at the bottom.
    keep_line_plots : bool
        Opened at the bottom, it is made lower where its default height would fold away the
        line plots under the heatmaps (and its content allows).
    """

    key: str
    title: str
    menu: str
    shortcut: str
    tip: str
    build: Callable[[MainWindow], QWidget]
    area: Qt.DockWidgetArea = BOTTOM
    height: int = 320
    keep_line_plots: bool = False


class PanelError(Exception):
    """A panel could not be built (the user has seen a dialog saying why)."""


class _Pending(QLabel):
    """What a dock holds until its panel is built."""

    def __init__(self, title: str) -> None:
        super().__init__(f"{title} opens here.")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setObjectName(EMPTY_STATE)


class Panels:
    """The window's dockable panels (see the module docstring)."""

    def __init__(self, window: MainWindow, specs: list[PanelSpec]) -> None:
        self.window = window
        self.specs: dict[str, PanelSpec] = {s.key: s for s in specs}
        self.docks: dict[str, QDockWidget] = {}
        self.actions: dict[str, QAction] = {}
        self._widgets: dict[str, QWidget] = {}
        self._when_built: dict[str, list[Callable[[QWidget], None]]] = {}
        self._tab_with: dict[Qt.DockWidgetArea, QDockWidget] = {}
        for spec in specs:
            self._add(spec)

    def _add(self, spec: PanelSpec) -> None:
        w = self.window
        holder = QWidget()
        lay = QVBoxLayout(holder)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(_Pending(spec.title))
        dock = w.add_dock(holder, spec.title, spec.area, key=spec.key)
        dock.setToolTip(spec.tip)
        first = self._tab_with.get(spec.area)
        if first is None:
            self._tab_with[spec.area] = dock
        else:
            w.tabifyDockWidget(first, dock)
        dock.hide()
        dock.visibilityChanged.connect(lambda vis, k=spec.key: vis and self.widget(k))
        self.docks[spec.key] = dock
        a = QAction(spec.title, w)
        a.setShortcut(QKeySequence(spec.shortcut))
        a.setToolTip(f"{spec.tip} ({spec.shortcut})")
        a.setStatusTip(spec.tip)
        a.triggered.connect(lambda _=False, k=spec.key: self._open_quietly(k))
        w.menu(spec.menu).addAction(a)
        w.menu(spec.menu).setToolTipsVisible(True)
        w.addAction(a)
        self.actions[spec.key] = a

    def on_built(self, key: str, callback: Callable[[QWidget], None]) -> None:
        """Call ``callback(widget)`` once the panel is built (now, if it is)."""
        got = self._widgets.get(key)
        if got is not None:
            callback(got)
        else:
            self._when_built.setdefault(key, []).append(callback)

    def built(self, key: str) -> QWidget | None:
        """The panel's widget if it was built, else None (nothing is built)."""
        return self._widgets.get(key)

    def widget(self, key: str) -> QWidget:
        """The panel's widget, built now if it was not yet."""
        got = self._widgets.get(key)
        if got is not None:
            return got
        spec = self.specs[key]
        widget = spec.build(self.window)
        self._widgets[key] = widget
        holder = self.docks[key].widget()
        lay = holder.layout() if holder is not None else None
        if lay is None:  # _add gave every dock a holder with a layout
            raise RuntimeError(f"the dock of panel {key!r} lost its holder")
        while lay.count():
            item = lay.takeAt(0)
            old = item.widget() if item is not None else None
            if old is not None:
                old.hide()
                old.setParent(None)
                old.deleteLater()
        lay.addWidget(widget)
        for callback in self._when_built.pop(key, []):
            callback(widget)
        return widget

    def open(self, key: str) -> QWidget:
        """Show, raise and focus the panel (built on first open); returns its widget."""
        if key not in self.specs:
            raise KeyError(f"no panel {key!r}; panels: {', '.join(self.specs)}")
        try:
            widget = self.widget(key)
        except Exception as e:
            log.error("panel %s failed to build:\n%s", key, traceback.format_exc())
            self.window.show_error(
                f"{self.specs[key].title} could not be opened: {type(e).__name__}: {e}"
            )
            raise PanelError(key) from e
        dock = self.docks[key]
        first_show = not dock.isVisible()
        if first_show:
            self.window.before_dock_shown(dock)
        dock.show()
        dock.raise_()
        if first_show and dock.isFloating() is False:
            spec = self.specs[key]
            self.window.fit_dock(dock, spec.height, keep_line_plots=spec.keep_line_plots)
        widget.setFocus(Qt.FocusReason.ShortcutFocusReason)
        return widget

    def _open_quietly(self, key: str) -> None:
        with contextlib.suppress(PanelError):  # the dialog said it already
            self.open(key)

    def close_all(self) -> None:
        for dock in self.docks.values():
            dock.hide()
