"""How long the window's event loop stalls while it works on a big trace.

A 5 ms QTimer probes the Qt event loop of the real main window (every menu and panel built)
while it, one after the other:

- opens a model (two stacked LSTMs of UNITS units, a Dense head) on an input of STEPS steps,
- takes a new input typed in (a different sequence of the same length),
- runs a what-if (the What-if panel: one step changed, retraced from there),
- switches the layer shown,
- shows a training snapshot (the same architecture, other weights).

Each action ends when its result is on screen. The stall of one probe tick is how late it
fired; the goal is no stall over 50 ms at 1024 units x 10,000 steps.

    python bench/gui_stall.py [--units 1024] [--steps 10000] [--repeat 3]

Runs offscreen unless a display is set. Prints per action: wall time until shown, and the
longest and 99th-percentile stall.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LSTMVIZ_TESTING", "1")  # no saved window layout, a temporary data folder

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


def build_model(units: int, features: int, seed: int):
    """Two stacked LSTMs and a softmax head (an engine model, written to a .keras file by
    Keras when it is installed so that opening reads a real file)."""
    from lstmviz.engine.cell import LSTMWeights
    from lstmviz.engine.layers import LSTM, Dense, InputLayer
    from lstmviz.engine.model import Model, Node

    rng = np.random.default_rng(seed)

    def w(f: int, u: int) -> LSTMWeights:
        return LSTMWeights(
            rng.normal(0, 1 / np.sqrt(f), (f, 4 * u)),
            rng.normal(0, 1 / np.sqrt(u), (u, 4 * u)),
            rng.normal(0, 0.1, 4 * u),
        )

    nodes = [
        Node(InputLayer("input", (None, None, features)), 0, []),
        Node(LSTM("lstm_1", w(features, units), return_sequences=True), 0, [("input", 0, 0)]),
        Node(LSTM("lstm_2", w(units, units), return_sequences=True), 0, [("lstm_1", 0, 0)]),
        Node(
            Dense("head", rng.normal(0, 0.1, (units, 10)), np.zeros(10), "softmax"),
            0,
            [("lstm_2", 0, 0)],
        ),
    ]
    return Model("stall_bench", nodes, [("input", 0, 0)], [("head", 0, 0)])


def save_keras(units: int, features: int, path: Path) -> bool:
    """The same architecture as a real .keras file (Keras, when installed)."""
    try:
        import keras
    except ImportError:
        return False
    inp = keras.Input((None, features))
    h = keras.layers.LSTM(units, return_sequences=True, name="lstm_1")(inp)
    h = keras.layers.LSTM(units, return_sequences=True, name="lstm_2")(h)
    out = keras.layers.Dense(10, activation="softmax", name="head")(h)
    keras.Model(inp, out).save(path)
    return True


class Probe:
    """Records how late a 5 ms timer fires."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self.tick)

    def tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last - 0.005)
        self.last = now

    def start(self) -> None:
        self.gaps = []
        self.last = time.perf_counter()
        self.timer.start()

    def stop(self) -> list[float]:
        self.timer.stop()
        return self.gaps


def run(units: int, steps: int, repeat: int) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from lstmviz.app.main_window import MainWindow

    features = 16
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(1, steps, features)).astype(np.float32)
    x2 = rng.normal(size=(1, steps, features)).astype(np.float32)
    tmp = Path(tempfile.mkdtemp(prefix="lstmviz-stall-"))
    path = tmp / "stall.keras"
    real_file = save_keras(units, features, path)
    snapshot = build_model(units, features, seed=7)

    w = MainWindow()
    w.resize(1600, 900)
    w.show()
    probe = Probe()

    def spin_until(cond, timeout: float = 600.0) -> float:
        t0 = time.perf_counter()
        while not cond():
            app.processEvents()
            time.sleep(0.001)
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError("the action did not finish")
        for _ in range(5):  # the repaint that shows it
            app.processEvents()
        return time.perf_counter() - t0

    def settled() -> bool:
        return (
            w.state.trace is not None
            and not w.state.busy
            and not w.runner.is_running()
            and not w.trace_runner.is_running()
        )

    results: dict[str, list[tuple[float, float, float]]] = {}

    def measure(name: str, act, done) -> None:
        probe.start()
        act()
        wall = spin_until(done)
        gaps = np.asarray(probe.stop()) * 1000
        results.setdefault(name, []).append(
            (wall, float(gaps.max()) if gaps.size else 0.0, float(np.percentile(gaps, 99)))
        )

    for _ in range(repeat):
        if real_file:
            measure("open a model", lambda: w.open_model(path, x=x1), settled)
        else:
            model = build_model(units, features, seed=1)
            measure(
                "open a model",
                lambda m=model: w.state.open("stall", x=x1, load=lambda: (m, None, x1)),
                settled,
            )
        gen = w.state.generation
        measure(
            "type a new input",
            lambda: w.state.set_input(x2),
            lambda g=gen: w.state.generation > g and settled(),
        )
        panel = w.panels.open("what_if")
        for _ in range(20):
            app.processEvents()
        panel.step.setValue(steps // 2)
        panel.values.setText(" ".join(["0.5"] * features))
        panel.result = None
        measure("what-if in the middle", panel.run, lambda: panel.result is not None)
        w.panels.close_all()
        other = next(n for n in w.state.layer_names if n != w.state.layer)
        measure("switch layer", lambda o=other: w.state.set_layer(o), settled)
        gen = w.state.generation
        measure(
            "show a training snapshot",
            lambda: w.state.show_weights(snapshot, engine="NumPy · snapshot"),
            lambda g=gen: w.state.generation > g and settled(),
        )
    w.close()
    print(
        f"GUI stalls, {units} units x {steps} steps x 2 layers, batch 1 "
        f"({'a .keras file' if real_file else 'an engine model'}); {repeat} runs; "
        f"goal: no stall over 50 ms"
    )
    worst = 0.0
    for name, rows in results.items():
        a = np.asarray(rows)
        worst = max(worst, float(a[:, 1].max()))
        print(
            f"  {name:<26} shown after {np.median(a[:, 0]) * 1000:7.0f} ms (median)  "
            f"longest stall {a[:, 1].max():6.1f} ms  p99 {np.median(a[:, 2]):5.1f} ms"
        )
    print(f"  longest stall of all: {worst:.1f} ms ({'met' if worst <= 50 else 'NOT met'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--units", type=int, default=1024)
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    return run(a.units, a.steps, a.repeat)


if __name__ == "__main__":
    sys.exit(main())
