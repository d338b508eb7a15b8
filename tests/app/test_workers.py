"""Workers: results, errors, cancellation, clean shutdown."""

from __future__ import annotations

import threading
import time

from lstmviz.app.workers import TaskRunner, Worker
from lstmviz.errors import LstmvizError


def test_worker_runs_off_the_gui_thread(qtbot):
    main = threading.get_ident()
    seen = {}

    def fn(progress, should_stop):
        seen["thread"] = threading.get_ident()
        progress(1, 2)
        progress.partial("half")
        progress(2, 2)
        return 42

    w = Worker(fn, "test")
    partials = []
    w.partial.connect(partials.append)
    with qtbot.waitSignal(w.finished, timeout=5000) as blocker:
        w.start()
    assert blocker.args == [42]
    assert seen["thread"] != main
    assert partials == ["half"]
    assert w.wait(2000)


def test_errors_reach_one_handler(qtbot):
    runner = TaskRunner()

    def bad(progress, should_stop):
        raise LstmvizError("model.keras: layer 'gru' (GRU) is not supported")

    with qtbot.waitSignal(runner.failed, timeout=5000) as blocker:
        runner.start(bad, lambda r: None, "bad")
    assert "layer 'gru'" in blocker.args[0]

    def crash(progress, should_stop):
        raise ZeroDivisionError("boom")

    with qtbot.waitSignal(runner.failed, timeout=5000) as blocker:
        runner.start(crash, None, "crash")
    assert blocker.args[0] == "crash failed: ZeroDivisionError: boom"
    assert runner.shutdown(5000)


def test_new_start_cancels_old(qtbot):
    runner = TaskRunner()
    got = []
    release = threading.Event()

    def slow(progress, should_stop):
        release.wait(5)
        while not should_stop():
            time.sleep(0.005)
        return "slow"

    def fast(progress, should_stop):
        return "fast"

    w1 = runner.start(slow, got.append, "slow")
    runner.start(fast, got.append, "fast")
    release.set()
    qtbot.waitUntil(lambda: got == ["fast"], timeout=5000)
    assert w1.should_stop()
    assert runner.shutdown(5000)
    qtbot.waitUntil(lambda: not w1.is_running(), timeout=5000)
    qtbot.waitUntil(lambda: w1 not in runner._alive, timeout=5000)  # its signals were handled
    assert got == ["fast"]


def test_shutdown_stops_running_workers(qtbot):
    runner = TaskRunner()

    def loop(progress, should_stop):
        while not should_stop():
            time.sleep(0.005)

    w = runner.start(loop, None, "loop")
    assert runner.is_running()
    assert runner.shutdown(5000)
    assert not w.is_running()


def test_shutdown_waits_for_a_task_that_ignores_stop(qtbot):
    runner = TaskRunner()

    def stubborn(progress, should_stop):
        time.sleep(0.3)
        return 1

    w = runner.start(stubborn, None, "stubborn")
    assert not runner.shutdown(10)  # still running after 10 ms
    assert runner.shutdown(-1)  # waits as long as it takes: never destroyed while running
    assert not w.is_running()


def test_tasks_leave_a_core_to_the_window(qtbot, monkeypatch):
    """A task's engine calls use one thread fewer than the cores (at least one); the GUI
    thread's own (a notebook's) keep the process-wide count."""
    from lstmviz.engine import _accel, get_threads, set_threads

    seen = {}

    def fn(progress, should_stop):
        seen["threads"] = get_threads()
        return None

    previous = set_threads(8)
    try:
        for cores, expected in ((4, 3), (2, 1), (1, 1)):
            monkeypatch.setattr(_accel, "_cores", lambda c=cores: c)
            w = Worker(fn, "threads")
            with qtbot.waitSignal(w.finished, timeout=5000):
                w.start()
            assert w.wait(2000)
            assert seen["threads"] == expected
            assert get_threads() == 8
    finally:
        set_threads(previous)


def _record_deletion(worker, where: list[int]) -> None:
    """Append the id of the thread that destroys ``worker``'s QObject to ``where``
    (``destroyed`` is emitted by the destructor, on the thread that runs it)."""
    from PySide6.QtCore import Qt

    worker.destroyed.connect(
        lambda *_: where.append(threading.get_ident()), Qt.ConnectionType.DirectConnection
    )


def _blocked(release: threading.Event):
    def fn(progress, should_stop):
        release.wait(10)
        return "done"

    return fn


def test_a_worker_let_go_of_while_it_runs_is_destroyed_on_the_gui_thread(qtbot):
    """A QObject must be deleted in its own thread: a Worker (created on the GUI thread)
    whose last reference outside its thread goes while it runs is still destroyed on the
    GUI thread once its task ends, never on the worker thread that held it last."""
    import gc

    main = threading.get_ident()
    where: list[int] = []
    n = 20
    for _ in range(n):
        release = threading.Event()
        w = Worker(_blocked(release), "dropped")
        _record_deletion(w, where)
        w.start()
        del w
        gc.collect()
        release.set()
    qtbot.waitUntil(lambda: len(where) == n, timeout=20000)
    assert where == [main] * n


def test_a_task_that_outlives_its_runner_is_destroyed_on_the_gui_thread(qtbot):
    """A panel closed while its task runs: the runner gives up waiting, is destroyed with
    the panel, and the task ends later; the Worker is destroyed on the GUI thread."""
    import gc

    from PySide6.QtCore import QObject

    main = threading.get_ident()
    where: list[int] = []
    got: list[object] = []
    n = 10
    releases = []
    for _ in range(n):
        release = threading.Event()
        releases.append(release)
        panel = QObject()
        runner = TaskRunner(panel)
        w = runner.start(_blocked(release), got.append, "outlives")
        _record_deletion(w, where)
        del w
        assert not runner.shutdown(1)
        gone: list[bool] = []
        panel.destroyed.connect(lambda *_, gone=gone: gone.append(True))
        panel.deleteLater()  # closing a panel deletes it, its runner with it
        del panel, runner
        qtbot.waitUntil(lambda gone=gone: gone == [True], timeout=5000)
        gc.collect()
    assert where == []  # every task still runs
    for release in releases:
        release.set()
    qtbot.waitUntil(lambda: len(where) == n, timeout=20000)
    assert where == [main] * n
    assert got == []  # the results went with their runners


def test_finished_workers_are_destroyed_on_the_gui_thread(qtbot):
    """Many short tasks, every reference dropped at once and collected: each Worker ends on
    the GUI thread, whichever thread lets go of it last."""
    import gc

    main = threading.get_ident()
    where: list[int] = []
    got: list[object] = []
    runner = TaskRunner()
    n = 60
    for k in range(n):
        w = runner.start(lambda progress, should_stop, k=k: k, got.append, f"short {k}")
        _record_deletion(w, where)
        del w
        gc.collect()
        qtbot.waitUntil(lambda: not runner.is_running(), timeout=5000)
    qtbot.waitUntil(lambda: len(where) == n, timeout=20000)
    assert where == [main] * n
    assert got == list(range(n))
    assert runner.shutdown(5000)
