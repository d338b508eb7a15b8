"""Drive the real main window as a user does: click menus, press keys, click buttons.

Helpers for the acceptance tests. A menu entry is clicked with the mouse on the menu bar
and then on the entry (never ``action.trigger()``): a handler that cannot take what Qt
sends (``triggered(bool)``, ``clicked(bool)``) fails here as it fails for the user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QAbstractButton, QApplication, QLineEdit, QMenu, QWidget

TIMEOUT = 20_000


def wait_settled(qtbot: Any, w: Any, timeout: int = TIMEOUT) -> None:
    """Until the trace is shown and nothing runs in the background."""
    qtbot.waitUntil(
        lambda: (
            w.state.trace is not None
            and not w.state.busy
            and not w.runner.is_running()
            and not w.trace_runner.is_running()
        ),
        timeout=timeout,
    )


def activate(qtbot: Any, w: QWidget) -> None:
    """Make ``w`` the active window (keyboard shortcuts go to the active window)."""
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    w.raise_()
    qtbot.waitUntil(w.isActiveWindow, timeout=30000)


def _plain(a: QAction) -> str:
    return a.text().replace("&", "")


def _entry(actions: list[QAction], text: str) -> QAction:
    matches = [a for a in actions if _plain(a) == text]
    assert matches, f"no menu entry {text!r} among {[_plain(a) for a in actions]}"
    return matches[0]


def click_menu(qtbot: Any, w: Any, *texts: str) -> None:
    """Open the menus with the mouse and click the entry ``texts[-1]`` (texts without the
    ``&`` mnemonics), as a user does: ``click_menu(qtbot, w, "File", "Examples", ...)``."""
    if not w.isActiveWindow():  # a closed dialog may leave no window active
        activate(qtbot, w)
    bar = w.menuBar()
    top = _entry(bar.actions(), texts[0]).menu()
    qtbot.mouseClick(
        bar, Qt.MouseButton.LeftButton, pos=bar.actionGeometry(top.menuAction()).center()
    )
    qtbot.waitUntil(top.isVisible, timeout=30000)
    menus = [top]
    for text in texts[1:-1]:  # submenus: found once their parent is open (some fill on show)
        parent = menus[-1]
        sub = _entry(parent.actions(), text).menu()
        assert sub is not None, f"{text!r} is not a menu"
        # highlight the submenu's entry and open it with the Right key (QMenu ignores the
        # first pointer moves after it pops up, so hovering is not reliable in a test)
        parent.setActiveAction(sub.menuAction())
        qtbot.keyClick(parent, Qt.Key.Key_Right)
        qtbot.waitUntil(sub.isVisible, timeout=30000)
        menus.append(sub)
    last = menus[-1]
    action = _entry(last.actions(), texts[-1])
    assert action.isEnabled(), f"{' ▸ '.join(texts)} is disabled"
    rect = last.actionGeometry(action)
    assert rect.isValid(), f"{' ▸ '.join(texts)} is not shown in its menu"
    qtbot.mouseClick(last, Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: not any(m.isVisible() for m in menus), timeout=30000)


def menu_entries(w: Any) -> list[tuple[str, ...]]:
    """Every clickable entry of the menu bar, as menu paths."""
    out: list[tuple[str, ...]] = []

    def walk(menu: QMenu, path: tuple[str, ...]) -> None:
        menu.aboutToShow.emit()
        for a in menu.actions():
            if a.isSeparator() or not a.isVisible():
                continue
            if a.menu() is not None:
                walk(a.menu(), (*path, _plain(a)))
            elif a.isEnabled():  # disabled rows only inform ("No recovered sessions")
                out.append((*path, _plain(a)))

    for a in w.menuBar().actions():
        walk(a.menu(), (_plain(a),))
    return out


def press(qtbot: Any, w: QWidget, keys: str) -> None:
    """Press a key sequence such as ``"Ctrl+Alt+3"`` or ``"PageDown"`` on ``w``."""
    seq = QKeySequence(keys)
    assert seq.count() == 1, keys
    combo = seq[0]
    top = w.window()
    if not top.isActiveWindow():  # a closed menu or dialog may leave no window active
        activate(qtbot, top)
    qtbot.keyClick(w, combo.key(), combo.keyboardModifiers())


def buttons(widget: QWidget) -> Iterator[QAbstractButton]:
    """Every visible, enabled push/tool/check button inside ``widget``."""
    for b in widget.findChildren(QAbstractButton):
        if isinstance(b.parent(), QLineEdit):  # a line edit's own clear button
            continue
        if b.isVisibleTo(widget) and b.isEnabled():
            yield b


def click(qtbot: Any, button: QAbstractButton) -> None:
    """A real left click in the middle of ``button``."""
    # a user clicks what is on screen: wait until the button is laid out and visible
    qtbot.waitUntil(
        lambda: button.isVisible() and not button.visibleRegion().isEmpty(), timeout=30000
    )
    assert button.isEnabled(), f"{button.text()!r} is disabled"
    centre = QPoint(button.width() // 2, button.height() // 2)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=centre)


def no_error(w: Any) -> Callable[[], bool]:
    return lambda: w.last_error is None


def close_dialogs() -> None:
    """Close every top-level dialog or message box left open."""
    for top in QApplication.topLevelWidgets():
        if top.isVisible() and top.inherits("QDialog"):
            top.close()
