"""Per-step repaint latency of the real main window (trace already computed).

For each size (units x timesteps) a synthetic trace is installed in the window; then each
step calls ``document.set_t(t)`` and processes events until every view has repainted. The
baseline is a bare pyqtgraph window with six images of the same size whose cursor lines move
the same way. Prints one summary line per figure::

    python bench/step.py                 # 256 and 1024 units x 1000 and 10000 steps
    python bench/step.py --sizes 1024x10000 --steps 300

Runs headless (Qt offscreen platform) unless QT_QPA_PLATFORM is set, e.g. under xvfb-run with
QT_QPA_PLATFORM=xcb.
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
    from lstmviz.engine import LSTMWeights, LayerTrace, Trace

    rng = np.random.default_rng(seed)
    w = LSTMWeights(rng.normal(0, 0.3, (features, 4 * units)),
                    rng.normal(0, 0.3 / np.sqrt(units), (units, 4 * units)),
                    np.zeros(4 * units))
    pre = rng.standard_normal((steps, 1, 4 * units), dtype=np.float32)  # (T, B, 4U)
    act = np.empty_like(pre)
    act[..., : 3 * units] = 1 / (1 + np.exp(-pre[..., : 3 * units]))
    act[..., 3 * units :] = np.tanh(pre[..., 3 * units :])
    c = np.tanh(rng.standard_normal((steps, 1, units), dtype=np.float32)) * 2  # (T, B, U)
    h = (act[..., 2 * units : 3 * units] * np.tanh(c)).astype(np.float32)
    x = rng.standard_normal((1, steps, features), dtype=np.float32)
    lt = LayerTrace("lstm", w, pre, act, c, h, np.zeros((1, units), np.float32),
                    np.zeros((1, units), np.float32), x)
    return Trace(output=h[-1], layers=(lt,), inputs=x)


def percentiles(ms: list[float]) -> tuple[float, float]:
    a = np.asarray(ms)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def measure_app(app, units: int, steps: int, n: int, size: tuple[int, int]) -> list[float]:
    from lstmviz.app.main_window import MainWindow

    w = MainWindow(install_extensions=False)
    w.resize(*size)
    w.show()
    w.document.set_trace(synthetic_trace(units, steps))
    w.document.set_units([0, 1, 2])
    for _ in range(5):
        app.processEvents()
    times = []
    ts = np.linspace(0, steps - 1, n + 10).astype(int)
    for i, t in enumerate(ts):
        t0 = time.perf_counter()
        w.document.set_t(int(t))
        app.processEvents()
        dt = (time.perf_counter() - t0) * 1000
        if i >= 10:  # warm-up
            times.append(dt)
    w.close()
    w.deleteLater()
    app.processEvents()
    return times


def measure_bare(app, units: int, steps: int, n: int, size: tuple[int, int]) -> list[float]:
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
    ts = np.linspace(0, steps - 1, n + 10).astype(int)
    for i, t in enumerate(ts):
        t0 = time.perf_counter()
        for line in lines:
            line.setValue(float(t))
        app.processEvents()
        dt = (time.perf_counter() - t0) * 1000
        if i >= 10:
            times.append(dt)
    win.close()
    win.deleteLater()
    app.processEvents()
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="256x1000,256x10000,1024x1000,1024x10000",
                   help="comma-separated UNITSxSTEPS")
    p.add_argument("--steps", type=int, default=200, help="steps measured per size")
    p.add_argument("--window", default="1600x900")
    a = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["bench-step"])
    ww, wh = (int(v) for v in a.window.split("x"))
    print(f"# per-step repaint latency, window {ww}x{wh}, platform "
          f"{os.environ['QT_QPA_PLATFORM']}, {a.steps} steps per size")
    for spec in a.sizes.split(","):
        units, steps = (int(v) for v in spec.split("x"))
        app_ms = measure_app(app, units, steps, a.steps, (ww, wh))
        bare_ms = measure_bare(app, units, steps, a.steps, (ww, wh))
        p50, p99 = percentiles(app_ms)
        b50, b99 = percentiles(bare_ms)
        print(f"step {units} units x {steps} steps: app p50 {p50:.1f} ms p99 {p99:.1f} ms | "
              f"bare 6-plot window p50 {b50:.1f} ms p99 {b99:.1f} ms | ratio p99 "
              f"{p99 / max(b99, 1e-9):.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
