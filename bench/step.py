"""Per-step repaint latency of the real main window (trace already computed).

For each size (units x timesteps) a synthetic trace is installed in the window; then each
step calls ``state.set_t(t)`` and processes events until every view has repainted. The
baseline is a bare pyqtgraph window with six images of the same size whose cursor lines move
the same way. Prints one summary line per figure::

    python bench/step.py                 # 256 and 1024 units x 1000 and 10000 steps
    python bench/step.py --sizes 1024x10000 --steps 300

Runs headless (Qt offscreen platform) unless QT_QPA_PLATFORM is set, e.g. under xvfb-run with
QT_QPA_PLATFORM=xcb. Wall time and the GUI thread's CPU time are both reported: on a shared
machine the wall time includes waiting for other processes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def synthetic_trace(units: int, steps: int, features: int = 8, seed: int = 0):
    """A Trace with random but valid-looking values (no LSTM run: building a 1024 x 10000
    trace with the engine takes a while and is measured elsewhere)."""
    from lstmviz.engine import LayerTrace, LSTMWeights, Trace

    rng = np.random.default_rng(seed)
    w = LSTMWeights(
        rng.normal(0, 0.3, (features, 4 * units)),
        rng.normal(0, 0.3 / np.sqrt(units), (units, 4 * units)),
        np.zeros(4 * units),
    )
    pre = rng.standard_normal((steps, 1, 4 * units), dtype=np.float32)  # (T, B, 4U)
    act = np.empty_like(pre)
    act[..., : 3 * units] = 1 / (1 + np.exp(-pre[..., : 3 * units]))
    act[..., 3 * units :] = np.tanh(pre[..., 3 * units :])
    c = np.tanh(rng.standard_normal((steps, 1, units), dtype=np.float32)) * 2  # (T, B, U)
    h = (act[..., 2 * units : 3 * units] * np.tanh(c)).astype(np.float32)
    x = rng.standard_normal((1, steps, features), dtype=np.float32)
    lt = LayerTrace(
        "lstm",
        w,
        pre,
        act,
        c,
        h,
        np.zeros((1, units), np.float32),
        np.zeros((1, units), np.float32),
        x,
    )
    return Trace(output=h[-1], layers=(lt,), inputs=x)


def percentiles(ms: list[float]) -> tuple[float, float]:
    a = np.asarray(ms)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def summary(name: str, times: list[tuple[float, float]]) -> tuple[str, float]:
    wall = [w for w, _ in times]
    cpu = [c for _, c in times]
    w50, w99 = percentiles(wall)
    c50, c99 = percentiles(cpu)
    return (f"{name} wall p50 {w50:.1f} p99 {w99:.1f} ms, CPU p50 {c50:.1f} p99 {c99:.1f} ms", c99)


def settle(app) -> None:
    """Process events until the step's repaint is done (paint requests are delivered
    immediately: QT_QPA_UPDATE_IDLE_TIME=0)."""
    for _ in range(3):
        app.processEvents()


def timed(fn) -> tuple[float, float]:
    """(wall ms, GUI-thread CPU ms) of ``fn()``: on a shared machine the CPU time is the
    cost of the step; wall time adds the waiting for other processes."""
    w0, c0 = time.perf_counter(), time.thread_time()
    fn()
    return (time.perf_counter() - w0) * 1000, (time.thread_time() - c0) * 1000


def measure_app(app, units: int, steps: int, n: int, size: tuple[int, int]):
    from lstmviz.app.main_window import MainWindow

    w = MainWindow(actions=False)
    w.resize(*size)
    w.show()
    w.state.set_trace(synthetic_trace(units, steps))
    w.state.set_units([0, 1, 2])
    for _ in range(5):
        app.processEvents()
    times = []
    for i, t in enumerate(step_positions(steps, n + 10)):

        def one(t=t):
            w.state.set_t(int(t))
            settle(app)

        dt = timed(one)
        if i >= 10:  # warm-up
            times.append(dt)
    w.close()
    w.deleteLater()
    app.processEvents()
    return times


def step_positions(steps: int, n: int) -> np.ndarray:
    """One step at a time (as with the arrow keys), from several places in the sequence."""
    starts = np.linspace(0, max(steps - 12, 0), max(n // 10, 1)).astype(int)
    return np.concatenate([np.arange(s, s + 10) for s in starts])[:n] % steps


def measure_bare(app, units: int, steps: int, n: int, size: tuple[int, int]):
    import pyqtgraph as pg

    win = pg.GraphicsLayoutWidget()
    win.resize(*size)
    rng = np.random.default_rng(0)
    lines = []
    for k in range(6):
        p = win.addPlot(row=k // 3, col=k % 3)
        img = pg.ImageItem(rng.random((min(units, 512), min(steps, 1600)), dtype=np.float32))
        img.setRect(0, 0, steps, units)
        p.addItem(img)
        line = pg.InfiniteLine(angle=90)
        p.addItem(line)
        lines.append(line)
    win.show()
    for _ in range(5):
        app.processEvents()
    times = []
    for i, t in enumerate(step_positions(steps, n + 10)):

        def one(t=t):
            for line in lines:
                line.setValue(float(t))
            settle(app)

        dt = timed(one)
        if i >= 10:
            times.append(dt)
    win.close()
    win.deleteLater()
    app.processEvents()
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--sizes",
        default="256x1000,256x10000,1024x1000,1024x10000",
        help="comma-separated UNITSxSTEPS",
    )
    p.add_argument("--steps", type=int, default=200, help="steps measured per size")
    p.add_argument("--window", default="1600x900")
    a = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["QT_QPA_UPDATE_IDLE_TIME"] = "0"
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["bench-step"])
    ww, wh = (int(v) for v in a.window.split("x"))
    print(
        f"# per-step repaint latency (set_t until every view repainted), window {ww}x{wh}, "
        f"platform {os.environ['QT_QPA_PLATFORM']}, {a.steps} single steps per size; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    for spec in a.sizes.split(","):
        units, steps = (int(v) for v in spec.split("x"))
        app_ms = measure_app(app, units, steps, a.steps, (ww, wh))
        bare_ms = measure_bare(app, units, steps, a.steps, (ww, wh))
        app_s, app99 = summary("app", app_ms)
        bare_s, bare99 = summary("bare 6-plot window", bare_ms)
        print(
            f"step {units} units x {steps} steps: {app_s} | {bare_s} | CPU p99 ratio "
            f"{app99 / max(bare99, 1e-9):.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
