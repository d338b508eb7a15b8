"""A big trace reaches the views over several event-loop turns.

When a new trace arrives, each view redraws from it. On a big trace (1024 units x 10,000
steps) the first redraws build plot items and lay them out: together with the paint that
follows they would hold the event loop for about a tenth of a second. Views that connect their
redraw through :func:`staged` take a big trace one per event-loop turn instead (in ``order``:
the heatmaps first, then the curves, the bars, the token strip), so that input events and
paints are handled in between. A small trace (below :data:`BIG_TRACE_BYTES`) is drawn by
every view at once, as before. Once the event loop is idle every view shows the new trace;
:func:`flush` draws what is still queued at once (before a screenshot, say).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QWidget

#: traces at least this big (bytes) reach the staged views one event-loop turn at a time
BIG_TRACE_BYTES = 64 * 2**20


class _Queue(QObject):
    """The redraws still to run for one viewer state, one per event-loop turn."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: dict[int, tuple[int, Callable[[], None]]] = {}
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
    """A slot for ``state.events.trace`` that calls ``slot`` (a bound method) at once for a
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
        try:
            fn()
        finally:
            widget = getattr(fn, "__self__", None)
            if paint and isinstance(widget, QWidget) and not widget.updatesEnabled():
                widget.setUpdatesEnabled(True)  # and painted, in this turn

    def on_trace(*_: Any) -> None:
        if _is_big(state):
            widget = getattr(ref(), "__self__", None)
            if paint and isinstance(widget, QWidget):
                widget.setUpdatesEnabled(False)
            _queue(state).add(id(on_trace), order, call)
        else:
            q = _queues.get(state)
            if q is not None:
                q.pending.pop(id(on_trace), None)  # a small trace replaced a big one still queued
            call()

    return on_trace


def pending(state: Any) -> int:
    """How many views of ``state`` have yet to draw the current trace."""
    q = _queues.get(state)
    return len(q.pending) if q is not None else 0


def flush(state: Any) -> None:
    """Draw at once what the views of ``state`` have yet to draw."""
    q = _queues.get(state)
    if q is not None:
        q.flush()
