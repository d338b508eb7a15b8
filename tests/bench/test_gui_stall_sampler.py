"""The stack sampler of ``bench/gui_stall.py`` must not let a garbage collection start while
it walks the other threads' frames.

On CPython 3.11 a collection started inside ``sys._current_frames()`` or ``frame.f_back``
runs Python code (``gc.callbacks``, ``__del__``) and so lets other threads take the GIL in
the middle of the walk: the bench hung for good once (the sampler holding the interpreter's
thread-list lock, a thread that was ending holding the GIL) and crashed once (a frame freed
under the walk). ``bench/stress_sampler.py`` shows both within a minute without the guard.
Here, every allocation starts a collection (``gc.set_threshold(1)``) and a ``gc.callbacks``
entry looks for the walk on the stack of each collection: deterministic, a second.
"""

from __future__ import annotations

import gc
import importlib.util
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("PySide6")  # bench/gui_stall.py drives the Qt window

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gui_stall.py"


@pytest.fixture(scope="module")
def gui_stall():
    spec = importlib.util.spec_from_file_location("gui_stall_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _deep(n: int, ready: threading.Event, release: threading.Event) -> None:
    if n:
        _deep(n - 1, ready, release)
        return
    ready.set()
    release.wait(10)


def _collections_inside_walk(gui_stall) -> tuple[int, int]:
    """(collections started inside thread_stacks, collections in all) over 200 walks while
    three threads wait 20 Python frames deep."""
    inside = [0, 0]

    def callback(phase: str, info: dict) -> None:
        if phase != "start":
            return
        inside[1] += 1
        f = sys._getframe(1)
        while f is not None:
            if f.f_code is gui_stall.thread_stacks.__code__:
                inside[0] += 1
                return
            f = f.f_back

    release = threading.Event()
    threads = []
    for _ in range(3):
        ready = threading.Event()
        t = threading.Thread(target=_deep, args=(20, ready, release), daemon=True)
        t.start()
        assert ready.wait(10)
        threads.append(t)
    threshold = gc.get_threshold()
    enabled = gc.isenabled()
    gc.callbacks.append(callback)
    gc.enable()
    gc.set_threshold(1)
    try:
        for _ in range(200):
            stacks = gui_stall.thread_stacks(skip=threading.get_ident())
            assert sum(len(s) >= 20 for s in stacks.values()) >= 3
            [[i] for i in range(10)]  # collections outside the walk still happen
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(callback)
        if not enabled:
            gc.disable()
        release.set()
        for t in threads:
            t.join(10)
    return inside[0], inside[1]


def test_no_collection_starts_while_the_sampler_walks_the_frames(gui_stall):
    inside, total = _collections_inside_walk(gui_stall)
    assert total > 0  # the collector ran around the walks
    assert inside == 0
    assert gc.isenabled()  # and is on again afterwards


def test_without_the_guard_collections_start_inside_the_walk(gui_stall, monkeypatch):
    # the check above can fail: the walk allocates frame objects and tuples
    monkeypatch.setattr(gui_stall, "GC_GUARD", False)
    inside, _ = _collections_inside_walk(gui_stall)
    assert inside > 0


def test_the_sampler_leaves_a_disabled_collector_disabled(gui_stall):
    gc.disable()
    try:
        gui_stall.thread_stacks()
        assert not gc.isenabled()
    finally:
        gc.enable()
