"""Long work off the GUI thread: the app's one worker mechanism.

Work is a plain function ``fn(progress, should_stop) -> result`` (testable without Qt):
``progress(i, n)`` reports progress, ``progress.partial(obj)`` hands on a partial result,
``should_stop()`` says the user cancelled or a newer task replaced this one. A
:class:`Worker` runs it on a daemon thread; a :class:`TaskRunner` runs one task at a time
(a new start cancels the old one, Orange3's ``concurrent.py`` style) and sends every error
to one handler. A task's engine calls use one thread fewer than the cores
(:func:`lstmviz.engine.threads_limited`), so the window always has a core. Widgets are
only ever touched from the GUI thread: the worker's signals are queued to slots living
there. Daemon threads never hold the app open: closing the window
does not wait for a long trace (its result is dropped). A worker is destroyed on the GUI
thread whoever lets go of it last (Qt deletes a QObject in its own thread): as its last act
its thread hands it to a reaper there, which waits for the thread to be gone.

Training runs in a child process (:mod:`lstmviz.train.process`), not here: TensorFlow would
hold the GIL and stall the window.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer, Signal, Slot

from ..errors import LstmvizError

log = logging.getLogger(__name__)

Task = Callable[..., Any]


class Progress:
    """The ``progress`` callable handed to a task: ``progress(i, n)`` (throttled to ~20 Hz,
    the last step always reported) and ``progress.partial(obj)``."""

    def __init__(self, worker: Worker, interval: float = 0.05) -> None:
        self._worker = worker
        self._interval = interval
        self._last = 0.0

    def __call__(self, i: int, n: int) -> None:
        now = time.monotonic()
        if i >= n or now - self._last >= self._interval:
            self._last = now
            self._worker.progress.emit(int(i), int(n))

    def partial(self, obj: Any) -> None:
        self._worker.partial.emit(obj)


class Worker(QObject):
    """Runs ``fn(progress, should_stop)`` once on its own daemon thread.

    Signals: ``progress(int, int)``, ``partial(object)``, ``finished(object)``,
    ``failed(str)``, ``cancelled()``; then ``done()`` whatever the outcome.
    """

    progress = Signal(int, int)
    partial = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    done = Signal()
    _release = Signal(object)  # the ended worker, handed to the reaper on the GUI thread

    def __init__(self, fn: Task, label: str = "") -> None:
        super().__init__()
        self.fn = fn
        self.label = label
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._thread: threading.Thread | None = None  # made by start(): no cycle before
        reaper = _reaper()
        if reaper is not None:
            self._release.connect(reaper.take, Qt.ConnectionType.QueuedConnection)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"lstmviz worker: {self.label}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Ask the task to stop (it checks ``should_stop()``); its result is dropped."""
        self._stop.set()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def is_running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive() and not self._ended.is_set()

    def wait(self, ms: int = 5000) -> bool:
        """Wait for the task to end (after :meth:`stop`); True when it ended. A negative
        ``ms`` waits as long as it takes."""
        t = self._thread
        if t is None or (not t.is_alive() and not self._ended.is_set()):
            return True  # never started
        return self._ended.wait(None if ms < 0 else ms / 1000)

    def _run(self) -> None:
        from ..engine import cores, threads_limited

        try:
            # the engine leaves a core to the GUI thread (on two cores a trace on both kept
            # the window waiting for a CPU for 130-530 ms); the trace is the same, bit for bit
            with threads_limited(max(1, cores() - 1)):
                result = self.fn(Progress(self), self.should_stop)
        except LstmvizError as e:
            if not self.should_stop():
                self.failed.emit(str(e))
        except MemoryError:
            self.failed.emit(f"{self.label or 'the task'}: out of memory")
        except Exception as e:  # noqa: BLE001 - every error reaches the one dialog
            log.error("worker %r failed:\n%s", self.label, traceback.format_exc())
            if not self.should_stop():
                self.failed.emit(f"{self.label or 'the task'} failed: {type(e).__name__}: {e}")
        else:
            if self.should_stop():
                self.cancelled.emit()
            else:
                self.finished.emit(result)
        finally:
            self._ended.set()
            self.done.emit()
            # This thread holds references to the worker until it has returned. Were they
            # the last (the window let go of the worker while it ran, or it closed the
            # panel that ran it), the QObject would be destroyed here, not in its own
            # thread as Qt requires: the reaper holds it until this thread is gone.
            self._release.emit(self)


class _Reaper(QObject):
    """Lives on the GUI thread and takes every worker whose task ended: it waits for the
    worker's thread to be gone, then lets go of the worker there, so a worker that nothing
    else holds any more is destroyed on the GUI thread."""

    def __init__(self) -> None:
        super().__init__()
        self._waiting: list[Worker] = []

    @Slot(object)
    def take(self, worker: Worker) -> None:
        # the thread emitted its worker as its last act: it is gone within microseconds
        t = worker._thread
        if t is not None and t.is_alive():
            t.join(0.05)
        if t is not None and t.is_alive():  # held up (a busy GIL): never block the window
            self._waiting.append(worker)
            QTimer.singleShot(20, self._retry)
        # else the queued call's reference to the worker goes when this slot returns

    @Slot()
    def _retry(self) -> None:
        waiting, self._waiting = self._waiting, []
        for w in waiting:
            self.take(w)


_reaper_lock = threading.Lock()
_the_reaper: _Reaper | None = None


def _reaper() -> _Reaper | None:
    """The one reaper, on the application's thread (None without a QCoreApplication: no
    queued signal is delivered then)."""
    global _the_reaper
    app = QCoreApplication.instance()
    if app is None:
        return None
    with _reaper_lock:
        if _the_reaper is None:
            r = _Reaper()
            if r.thread() is not app.thread():
                r.moveToThread(app.thread())
            _the_reaper = r
    return _the_reaper


class TaskRunner(QObject):
    """One task at a time; a new :meth:`start` cancels the running one.

    Signals: ``running_changed(bool, str)`` (busy, label), ``progress(int, int)``,
    ``failed(str)`` -- every error of every task, for the one error dialog.
    """

    running_changed = Signal(bool, str)
    progress = Signal(int, int)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._current: Worker | None = None
        self._alive: set[Worker] = set()  # keep Python refs until each thread ended
        self._relays: dict[Worker, _Relay] = {}

    @property
    def current(self) -> Worker | None:
        return self._current

    def start(
        self,
        fn: Task,
        on_finished: Callable[[Any], None] | None = None,
        label: str = "",
        *,
        on_failed: Callable[[str], None] | None = None,
        on_partial: Callable[[Any], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Worker:
        """Run ``fn(progress, should_stop)`` in a worker thread; ``on_finished(result)`` is
        called on the GUI thread unless a newer task replaced this one."""
        self.cancel()
        w = Worker(fn, label)
        self._current = w
        self._alive.add(w)

        def is_current() -> bool:
            return self._current is w

        def finished(result: Any) -> None:
            if is_current():
                self._current = None
                self.running_changed.emit(False, "")
                if on_finished is not None:
                    on_finished(result)

        def failed(msg: str) -> None:
            if is_current():
                self._current = None
                self.running_changed.emit(False, "")
                if on_failed is not None:
                    on_failed(msg)
                self.failed.emit(msg)

        def progress(i: int, n: int) -> None:
            if is_current():
                self.progress.emit(i, n)
                if on_progress is not None:
                    on_progress(i, n)

        def partial(obj: Any) -> None:
            if is_current() and on_partial is not None:
                on_partial(obj)

        # a receiver living on the GUI thread: the callbacks run there, never in the worker
        relay = _Relay(finished, failed, progress, partial, self)
        queued = Qt.ConnectionType.QueuedConnection
        w.finished.connect(relay.on_finished, queued)
        w.failed.connect(relay.on_failed, queued)
        w.progress.connect(relay.on_progress, queued)
        w.partial.connect(relay.on_partial, queued)
        w.done.connect(relay.on_done, queued)
        relay.reaped.connect(lambda: self._reap(w, relay))
        self._relays[w] = relay
        self.running_changed.emit(True, label)
        w.start()
        return w

    def cancel(self) -> None:
        """Stop the running task (if any); its result will be dropped."""
        w = self._current
        self._current = None
        if w is not None:
            w.stop()
            self.running_changed.emit(False, "")

    def is_running(self) -> bool:
        return self._current is not None

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Stop every task and wait for the threads (call when the window closes); a
        negative ``timeout_ms`` waits as long as it takes. True when all have ended."""
        self.cancel()
        ok = True
        for w in list(self._alive):
            w.stop()
            ok = w.wait(timeout_ms) and ok
            if ok:
                self._alive.discard(w)
        return ok

    def _reap(self, w: Worker, relay: _Relay) -> None:
        w.wait(1000)
        self._alive.discard(w)
        self._relays.pop(w, None)
        relay.setParent(None)
        relay.deleteLater()


class _Relay(QObject):
    """Receives one worker's signals on the GUI thread and calls plain callbacks."""

    reaped = Signal()

    def __init__(
        self,
        finished: Callable[[Any], None],
        failed: Callable[[str], None],
        progress: Callable[[int, int], None],
        partial: Callable[[Any], None],
        parent: QObject,
    ) -> None:
        super().__init__(parent)
        self._finished, self._failed = finished, failed
        self._progress, self._partial = progress, partial

    @Slot(object)
    def on_finished(self, result: Any) -> None:
        self._finished(result)

    @Slot(str)
    def on_failed(self, msg: str) -> None:
        self._failed(msg)

    @Slot(int, int)
    def on_progress(self, i: int, n: int) -> None:
        self._progress(i, n)

    @Slot(object)
    def on_partial(self, obj: Any) -> None:
        self._partial(obj)

    @Slot()
    def on_done(self) -> None:
        self.reaped.emit()


def background(fn: Callable[..., Any], *args: Any, name: str = "lstmviz background") -> Any:
    """Run ``fn(*args)`` on a daemon thread now; returns a
    :class:`concurrent.futures.Future` of its result.

    For work that touches no widget and needs no progress: reading a model while the window
    is being built, ending a child process. Everything with progress or a result for the
    GUI goes through :class:`TaskRunner`.
    """
    from concurrent.futures import Future

    future: Future[Any] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001 - handed to whoever asks for the result
            future.set_exception(e)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future
