"""A big trace reaches the views over several event-loop turns.

When a new trace arrives, each view redraws from it. On a big trace (1024 units x 10,000
steps) the first redraws build plot items and lay them out: together with the paint that
follows they would hold the event loop for about a tenth of a second. Views that connect their
redraw through :func:`staged` take a big trace one per event-loop turn instead (in ``order``:
the heatmaps first, then the curves, the bars, the token strip), so that input events and
paints are handled in between. A small trace (below :data:`BIG_TRACE_BYTES`) is drawn by
every view at once, as before. Once the event loop is idle every view shows the new trace;
:func:`flush` draws what is still queued at once (before a screenshot, say).

The same holds for the window's layout: opening or closing a panel beside the views resizes
every one of them, and their layouts settle over a few event-loop turns (the heatmaps choose
their rows for the new height, the line plots fold in or out). Views registered with
:func:`hold_on_resize` are not painted while that goes on with a big trace; once a turn has
passed without a resize they paint once each, one per turn, instead of every view several
times in each turn.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QWidget

#: traces at least this big (bytes) reach the staged views one event-loop turn at a time
BIG_TRACE_BYTES = 64 * 2**20


class _Queue(QObject):
    """The redraws still to run for one viewer state, one per event-loop turn."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: dict[int, tuple[int, Callable[[], None]]] = {}
        self.staged_widgets: set[int] = set()  # ids of widgets a queued redraw re-enables
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(0)
        self.timer.timeout.connect(self.run_next)

    def add(self, key: int, order: int, fn: Callable[[], None]) -> None:
        self.pending[key] = (order, fn)
        if not self.timer.isActive():
            self.timer.start()

    def run_next(self) -> None:
        if not self.pending:
            return
        key = min(self.pending, key=lambda k: self.pending[k][0])
        _order, fn = self.pending.pop(key)
        try:
            fn()
        finally:
            if self.pending:
                self.timer.start()

    def flush(self) -> None:
        self.timer.stop()
        while self.pending:
            self.run_next()
        self.timer.stop()


_queues: weakref.WeakKeyDictionary[Any, _Queue] = weakref.WeakKeyDictionary()


def _queue(state: Any) -> _Queue:
    q = _queues.get(state)
    if q is None:
        q = _queues[state] = _Queue()
    return q


def _is_big(state: Any) -> bool:
    trace = getattr(state, "trace", None)
    return trace is not None and int(getattr(trace, "nbytes", 0)) >= BIG_TRACE_BYTES


def staged(
    state: Any, slot: Callable[..., Any], order: int, paint: bool = True
) -> Callable[..., None]:
    """A slot for ``state.events.trace`` (or another event that redraws the view from the
    trace: ``layer``, ``batch``) that calls ``slot`` (a bound method) at once for a
    small trace, and in its own event-loop turn, after the slots of lower ``order``, for a big
    one. Holds the method's object weakly. When that object is a widget, it is not painted
    until its turn (the first paint of a page of plots would otherwise paint every one of them
    in the same turn, with the old trace); ``paint=False``: a step that only lays the widget
    out, painted with a later one."""
    ref = weakref.WeakMethod(slot)

    def call() -> None:
        fn = ref()
        if fn is None:
            return
        widget = getattr(fn, "__self__", None)
        try:
            fn()
        finally:
            if paint and isinstance(widget, QWidget):
                q = _queues.get(state)
                if q is not None:
                    q.staged_widgets.discard(id(widget))
                if not widget.updatesEnabled():
                    widget.setUpdatesEnabled(True)  # and painted, in this turn

    def on_trace(*_: Any) -> None:
        if _is_big(state):
            widget = getattr(ref(), "__self__", None)
            q = _queue(state)
            if paint and isinstance(widget, QWidget):
                widget.setUpdatesEnabled(False)
                q.staged_widgets.add(id(widget))
            q.add(id(on_trace), order, call)
        else:
            small = _queues.get(state)
            if small is not None:  # a small trace replaced a big one still queued
                small.pending.pop(id(on_trace), None)
            call()

    return on_trace


def draw_then_paint(state: Any, widget: QWidget, draw: Callable[[], None]) -> None:
    """Call ``draw()`` (which fills ``widget``'s plots) now, and -- with a big trace -- let
    ``widget`` paint in the next event-loop turn rather than in this one: filling and laying
    out a page of plots and painting it would otherwise take one long turn."""
    if not _is_big(state) or not widget.updatesEnabled():
        draw()
        return
    widget.setUpdatesEnabled(False)
    try:
        draw()
    finally:
        ref = weakref.ref(widget)

        def paint() -> None:
            w = ref()
            if w is not None and not w.updatesEnabled():
                w.setUpdatesEnabled(True)

        QTimer.singleShot(0, paint)


def pending(state: Any) -> int:
    """How many views of ``state`` have yet to draw the current trace."""
    q = _queues.get(state)
    return len(q.pending) if q is not None else 0


def flush(state: Any) -> None:
    """Draw at once what the views of ``state`` have yet to draw."""
    q = _queues.get(state)
    if q is not None:
        q.flush()
    h = _holds.get(state)
    if h is not None:
        h.release_all()


class _Hold(QObject):
    """Views of one viewer state whose paint waits for the window's layout to settle (see
    :func:`hold_on_resize`)."""

    def __init__(self, state: Any) -> None:
        super().__init__()
        self.state = weakref.ref(state)
        self.watched: dict[int, tuple[int, weakref.ref[QWidget], Callable[[], bool]]] = {}
        self.held: set[int] = set()
        self.moved = False  # a watched view was resized since the last turn
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(0)
        self.timer.timeout.connect(self.step)

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if ev.type() == QEvent.Type.Resize and isinstance(obj, QWidget):
            state = self.state()
            if state is not None and _is_big(state) and obj.isVisible():
                self.moved = True
                if obj.updatesEnabled():
                    obj.setUpdatesEnabled(False)
                    self.held.add(id(obj))
                if not self.timer.isActive():
                    self.timer.start()
        return False

    def step(self) -> None:
        """One event-loop turn: wait while the layout still moves, else let one view paint."""
        if not self.held:
            return
        if self.moved:  # the layout still moves: wait a turn
            self.moved = False
            self.timer.start()
            return
        state = self.state()
        staged = _queues[state].staged_widgets if state is not None and state in _queues else ()
        for key in sorted(self.held, key=lambda k: self.watched[k][0]):
            _order, ref, settling = self.watched[key]
            widget = ref()
            if widget is None or key in staged:  # gone, or its queued redraw enables it
                self.held.discard(key)
                continue
            if settling():
                break  # its own layout is still to run: wait a turn
            self.held.discard(key)
            if not widget.updatesEnabled():
                widget.setUpdatesEnabled(True)  # painted once, in this turn
            break
        if self.held:
            self.timer.start()

    def release_all(self) -> None:
        self.timer.stop()
        for key in list(self.held):
            widget = self.watched[key][1]()
            if widget is not None and not widget.updatesEnabled():
                widget.setUpdatesEnabled(True)
        self.held.clear()
        self.moved = False


_holds: weakref.WeakKeyDictionary[Any, _Hold] = weakref.WeakKeyDictionary()


def hold_on_resize(
    state: Any, widget: QWidget, order: int, settling: Callable[[], bool] | None = None
) -> None:
    """While ``state``'s trace is big, a resize of ``widget`` (a panel opened or closed
    beside it, the window resized) holds its paint until no watched view of ``state`` was
    resized for a turn and ``settling()`` (its own pending re-layout, if any) is false; then
    the held views paint one per event-loop turn, lowest ``order`` first."""
    h = _holds.get(state)
    if h is None:
        h = _holds[state] = _Hold(state)
    if settling is None:
        check: Callable[[], bool] = lambda: False  # noqa: E731
    else:
        ref = weakref.WeakMethod(settling)  # a bound method

        def check() -> bool:
            fn = ref()
            return bool(fn()) if fn is not None else False

    h.watched[id(widget)] = (order, weakref.ref(widget), check)
    widget.installEventFilter(h)


def held(state: Any) -> int:
    """How many views of ``state`` wait to paint until the layout settles."""
    h = _holds.get(state)
    return len(h.held) if h is not None else 0
