"""Start-up time to a painted window: lstmviz with a bundled model vs a bare window.

Each run is a fresh Python process; the time is from just before the process is launched
to the end of the first paint that shows the data:

- ``bare``: PySide6 + pyqtgraph, a window with six plots holding images of the model's
  size (the floor any pyqtgraph app pays);
- ``app``: the lstmviz main window, the bundled default example loaded, traced and painted
  (the same path as running ``lstmviz``: menus and panels are built right after that first paint;
  the time until they are installed too is reported separately); also reports whether
  TensorFlow was imported.

Prints one summary line per figure::

    python bench/startup.py            # 5 runs each, alternating
    python bench/startup.py --runs 9 --model lstmviz/assets/examples/char_textgen.keras
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

BARE = r"""
import sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
import numpy as np
import pyqtgraph as pg

app = QApplication(sys.argv[:1])
pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
win = pg.GraphicsLayoutWidget()
win.resize(1600, 900)
for k in range(6):
    p = win.addPlot(row=k // 3, col=k % 3, title=f"plot {k}")
    p.addItem(pg.ImageItem(np.random.default_rng(k).random((32, 5)).astype(np.float32)))

class Painted(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint:
            QTimer.singleShot(0, done)
        return False

def done():
    print("PAINTED", time.time(), "tensorflow" in sys.modules, flush=True)
    app.quit()

f = Painted()
win.viewport().installEventFilter(f)
win.show()
app.exec()
"""

APP = r"""
import sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication

model = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None
if model is None:
    from lstmviz.examples import default_example
    model = str(default_example().path)
from lstmviz.app.main import build_window, start_loading

preload = start_loading(model)  # exactly what `lstmviz` does: read while Qt comes up
app = QApplication(sys.argv[:1])
win = build_window(1600, 900)
state = {"traced": False}

class Painted(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint and state["traced"]:
            QTimer.singleShot(0, done)
        return False

def done():
    # queued right after the paint event: the first frame with the data is complete (the
    # window builds its menus and panels 30 ms later)
    if "painted" not in state:
        state["painted"] = time.time()
        QTimer.singleShot(0, build_actions)

def build_actions():
    win.ensure_actions()
    print("PAINTED", state["painted"], "tensorflow" in sys.modules, time.time(), flush=True)
    app.quit()

def traced():
    state["traced"] = True
    win.heatmaps.viewport().update()

win.state.events.trace.connect(traced)
f = Painted()
win.heatmaps.viewport().installEventFilter(f)
win.show()
win.open_model(model, preload=preload)
app.exec()
"""


#: Compiled bytecode for the child processes, outside the source tree (an installed lstmviz
#: has its .pyc files; a PYTHONDONTWRITEBYTECODE environment would otherwise make every run
#: recompile lstmviz's sources while the bare window's packages come precompiled).
PYCACHE = tempfile.mkdtemp(prefix="lstmviz-bench-pycache-")


def run_once(code: str, args: list[str]) -> tuple[float, bool, float]:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = PYCACHE
    t0 = time.time()
    r = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300
    )
    for line in r.stdout.splitlines():
        if line.startswith("PAINTED"):
            parts = line.split()
            ext = float(parts[3]) - t0 if len(parts) > 3 else float("nan")
            return float(parts[1]) - t0, parts[2] == "True", ext
    raise RuntimeError(f"no paint reported (exit {r.returncode}):\n{r.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--model", default="", help="model to open (default: the bundled default)")
    p.add_argument("--verbose", action="store_true", help="print every run")
    a = p.parse_args(argv)
    bare, app, tf, ext = [], [], [], []
    run_once(BARE, [])  # warm the file cache and compile the bytecode once
    run_once(APP, [a.model])
    for _ in range(a.runs):
        bare.append(run_once(BARE, [])[0])
        s, imported, e = run_once(APP, [a.model])
        if a.verbose:
            print(
                f"  run: bare {bare[-1] * 1000:.0f} ms, app {s * 1000:.0f} ms, with "
                f"menus and panels {e * 1000:.0f} ms",
                flush=True,
            )
        app.append(s)
        tf.append(imported)
        ext.append(e)
    b, m = statistics.median(bare), statistics.median(app)
    plat = os.environ.get("QT_QPA_PLATFORM", "offscreen")
    print(
        f"startup bare PySide6+pyqtgraph 6-plot window: median {b * 1000:.0f} ms "
        f"(min {min(bare) * 1000:.0f}, {a.runs} runs, {plat})"
    )
    print(
        f"startup lstmviz with {a.model or 'the default example'}: median {m * 1000:.0f} ms "
        f"(min {min(app) * 1000:.0f}) | ratio to bare {m / b:.2f} "
        f"(min/min {min(app) / min(bare):.2f})"
    )
    e = statistics.median(ext)
    print(
        f"startup lstmviz until the menus and panels (train, export, analysis, session) are "
        f"installed too: median {e * 1000:.0f} ms | ratio to bare {e / b:.2f}"
    )
    print(f"startup tensorflow imported: {'yes' if any(tf) else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
