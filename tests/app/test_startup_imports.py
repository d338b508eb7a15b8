"""The window's start-up imports what its first frame needs: each panel's module (and the
analysis behind it) loads when the panel is first opened, training when it is first used."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = r"""
import sys
from PySide6.QtWidgets import QApplication
from lstmviz.app.main import build_window

app = QApplication(sys.argv[:1])
w = build_window(1600, 900, with_model=False)
w.show()
w.ensure_actions()
lazy = ("lstmviz.app.analysis.corpus", "lstmviz.analysis.corpus", "lstmviz.app.analysis.whatif",
        "lstmviz.app.analysis.attribution", "lstmviz.analysis.attribution", "lstmviz.train",
        "lstmviz.app.diagram_view", "lstmviz.export.diagram", "lstmviz.engine.backward",
        "lstmviz.analysis.gradients", "lstmviz.export.api", "lstmviz.export.data")
print("loaded:", ",".join(m for m in lazy if m in sys.modules))
print("menus:", len(w.menu("Analysis").actions()), len(w.menu("Train").actions()))
corpus = next(a for a in w.menu("Analysis").actions() if a.text() == "Corpus")
corpus.trigger()
print("opened:", w.panels.built("corpus") is not None, "lstmviz.app.analysis.corpus" in sys.modules,
      w.panels.docks["corpus"].isVisible())
diagram = next(a for a in w.menu("View").actions() if a.text() == "Cell diagram")
diagram.trigger()
print("diagram:", type(w.panels.built("diagram")).__name__, w.panels.docks["diagram"].isVisible())
w.close()
"""


def test_panels_load_on_first_open():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    r = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)
    assert lines["loaded"] == ""  # nothing of the unopened panels, no training code
    n_analysis, n_train = (int(v) for v in lines["menus"].split())
    assert n_analysis == 12 and n_train >= 5  # every entry is there from the start
    assert lines["opened"] == "True True True"
    assert lines["diagram"] == "DiagramPanel True"


GC_CODE = r"""
import gc, sys
from PySide6.QtWidgets import QApplication
from lstmviz.app.main import build_window, start_loading
from lstmviz.examples import default_example

preload = start_loading(str(default_example().path))
paused = not gc.isenabled()
app = QApplication(sys.argv[:1])
w = build_window(1600, 900)
w.show()
w.open_model(str(default_example().path), preload=preload)
w.ensure_actions()
print("gc:", paused, gc.isenabled())
w.close()
"""


def test_garbage_collector_pauses_for_the_start_up_only():
    """`lstmviz` pauses the cyclic collector while the window starts, and turns it back on
    once the menus and panels are installed."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    r = subprocess.run(
        [sys.executable, "-c", GC_CODE], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "gc: True True" in r.stdout


WARM = r"""
import sys, time
from PySide6.QtWidgets import QApplication
from lstmviz.app.main import build_window
from lstmviz.app import main_window

app = QApplication(sys.argv[:1])
w = build_window(1600, 900, with_model=False)
w.show()
app.processEvents()
readers = ("h5py",)
print("at start:", ",".join(m for m in readers if m in sys.modules))
end = time.perf_counter() + main_window.LOADER_WARM_MS / 1000 + 3
while time.perf_counter() < end and not all(m in sys.modules for m in readers):
    app.processEvents()
    time.sleep(0.01)
time.sleep(0.2)  # the warm-up thread finishes its imports
print("after a moment:", ",".join(m for m in readers if m in sys.modules))
w.close()
"""


def test_the_idle_window_imports_the_model_readers_in_the_background():
    """Opening the first model file must not import h5py in its job (the import held the GIL
    while the window drew): an idle window imports the readers on a background thread."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    r = subprocess.run(
        [sys.executable, "-c", WARM], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(":", 1) for line in r.stdout.splitlines() if ":" in line)
    assert lines["at start"].strip() == ""
    assert lines["after a moment"].strip() == "h5py"
