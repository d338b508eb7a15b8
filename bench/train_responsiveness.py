"""How responsive the GUI stays while a model trains in the worker thread.

A 5 ms QTimer probes the Qt event loop during a real training run started from the Train
panel (digit-sum, default settings, a weight snapshot retraced on the GUI thread every 20
batches); the stall of one tick is how late it fired. Reported separately for the phase that
imports TensorFlow in the worker and for the training itself.

    python bench/train_responsiveness.py [--task digit-sum] [--epochs N]
    python bench/train_responsiveness.py --keras-engine   # View > Engine > Keras instead

Runs offscreen unless a display is set.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


def stats(gaps: list[float]) -> str:
    if not gaps:
        return "no samples"
    a = np.asarray(gaps) * 1000
    return (
        f"n={len(a)}  p50={np.percentile(a, 50):.1f} ms  p99={np.percentile(a, 99):.1f} ms"
        f"  max={a.max():.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="digit-sum")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--interval", type=float, default=5.0, help="probe interval in ms")
    p.add_argument("--verbose", action="store_true", help="list the longest stalls")
    p.add_argument(
        "--no-retrace",
        action="store_true",
        help="do not show snapshots while training (isolates the worker's effect "
        "from the views' redraw)",
    )
    p.add_argument(
        "--no-freeze",
        action="store_true",
        help="leave the window's objects to the garbage collector (gc.freeze off)",
    )
    p.add_argument(
        "--keras-engine",
        action="store_true",
        help="instead of training: choose View > Engine > Keras (TensorFlow loads "
        "and traces the open input) and probe until its trace is shown",
    )
    a = p.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from lstmviz import load_model
    from lstmviz.app.main import freeze_gc
    from lstmviz.app.main_window import MainWindow
    from lstmviz.examples import EXAMPLES_DIR
    from lstmviz.train.tasks import get_task, with_overrides

    w = MainWindow()  # with every menu and panel, as the lstmviz command opens it
    w.resize(1600, 900)
    w.show()
    panel = w.panels.open("train")
    task = get_task(a.task)
    # the task's own bundled model is open (what the Train panel opens at Start otherwise):
    # the run measures training, not the one-off switch of the window to another model
    path = EXAMPLES_DIR / f"{task.example_name or 'digit_sum'}.keras"
    w.state.set_model(load_model(path), path)
    cfg = with_overrides(task.defaults, epochs=a.epochs, snapshot_every=0 if a.no_retrace else 20)
    if a.no_retrace:
        panel.follow.setChecked(False)

    # the window's first paints (every dock, every plot laid out) happen before the run,
    # as they would for a user who opens the Train panel and then presses Start
    settle = time.perf_counter() + 1.0
    while time.perf_counter() < settle:
        app.processEvents()
        time.sleep(0.01)
    if not a.no_freeze:  # what the lstmviz command does once its menus and panels are built
        freeze_gc()

    interval = a.interval / 1000
    phase = {"name": "loading"}
    gaps: dict[str, list[float]] = {"loading": [], "training": []}
    last = [time.perf_counter()]
    t0 = last[0]

    worst: list[tuple[float, float, str, int]] = []

    last_cpu = [time.thread_time()]

    def tick() -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        g = max(0.0, now - last[0] - interval)
        gaps[phase["name"]].append(g)
        if g > 0.02:  # (how much of it the GUI thread spent computing, not waiting)
            worst.append((g, now - t0, phase["name"], cpu - last_cpu[0]))
        last[0], last_cpu[0] = now, cpu

    def on_state(s: str) -> None:
        if s == "training":
            phase["name"] = "training"
        if s in ("finished", "cancelled", "failed"):
            app.quit()

    def probe(start: Callable[[], None]) -> None:
        """Run the event loop with the probe ticking until something calls app.quit()."""
        timer = QTimer()
        timer.setInterval(int(a.interval))
        timer.timeout.connect(tick)
        timer.start()
        QTimer.singleShot(0, start)
        app.exec()
        timer.stop()

    def report_worst(n: int) -> None:
        for g, at, ph, cpu in sorted(worst, reverse=True)[:n]:
            print(
                f"  stall {g * 1000:.0f} ms at {at:.2f} s ({ph}; GUI thread busy "
                f"{cpu * 1000:.0f} ms of it)"
            )

    if a.keras_engine:
        doc = w.state
        doc.trace_changed.connect(lambda: doc.engine == "Keras" and app.quit())
        QTimer.singleShot(120_000, app.quit)
        probe(lambda: w.engine_choice.set_engine("Keras"))
        print(
            f"Keras engine: its trace shown after {time.perf_counter() - t0:.1f} s "
            f"(engine {doc.engine})"
        )
        print(f"event-loop stall while TensorFlow loads and traces: {stats(gaps['loading'])}")
    else:
        shows: list[float] = []
        orig_show = panel.show_snapshot

        def timed_show(i: int) -> None:
            t = time.perf_counter()
            orig_show(i)
            shows.append(time.perf_counter() - t)

        panel.show_snapshot = timed_show  # type: ignore[method-assign]
        panel.state_changed.connect(on_state)
        probe(lambda: panel.start(task, cfg))
        wall = time.perf_counter() - t0
        print(
            f"task {task.name}: {cfg.total_steps} batches, {len(panel.snapshots)} snapshots, "
            f"{len(shows)} retraced and shown on the GUI thread, {wall:.1f} s wall, state "
            f"{panel.state}"
        )
        print(f"event-loop stall while TensorFlow loads in the worker: {stats(gaps['loading'])}")
        print(f"event-loop stall while training:                    {stats(gaps['training'])}")
        print(f"GUI time per snapshot (engine model + NumPy trace + redraw): {stats(shows)}")
    if a.verbose:
        report_worst(15)
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
