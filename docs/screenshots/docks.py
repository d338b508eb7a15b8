"""Screenshots of the main window with each panel open, at the window sizes users have.

    xvfb-run -a -s "-screen 0 1920x1080x24" python docs/screenshots/docks.py [OUT_DIR]

For 1600x900 and 1920x1080: the window alone (no panel), then every dockable panel (Train,
each Analysis panel, and any other declared with a PanelSpec) opened the way a user opens it,
on the bundled digit-sum example; panels that need a first action to show something get it
(What-if: Compare; Compare: a pinned trace and a changed input; Check my LSTM: arrays with a
bug from step 6 on; Corpus: 200 random sequences traced; Interventions: unit 22's cell state
zeroed; Activation patching: step 3 changed; Attribution: Compute; State space: Find fixed
points). Writes ``OUT_DIR/<size>/<panel>.png`` (default OUT_DIR: docs/screenshots/docks).

Then presentation mode (the big cell diagram, large type) on the projectors a lecturer meets,
1920x1080 and 1280x720: alone, with the Train panel open, and with the What-if panel open
after Compare: ``OUT_DIR/presentation/<size>/{alone,train,what_if}.png``.
Run it from the repository root (``PYTHONPATH=.`` if lstmviz is not installed).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtWidgets import QApplication

SIZES = ((1600, 900), (1920, 1080))
PROJECTORS = ((1920, 1080), (1280, 720))
TEXT = "4 7 3 9 1 8 2 6 5 3 7 1"
CHANGED = "4 7 3 0 1 8 2 6 5 3 7 1"  # step 3 changed: the What-if, Compare and patching input


def small(path: Path) -> None:
    """Rewrite the PNG with a 256-colour palette (a third of the size; the colour maps'
    steps stay visible). Without Pillow it stays as Qt wrote it."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    rgb.quantize(256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).with_name("docks")
    os.environ.setdefault("LSTMVIZ_TESTING", "1")  # no remembered layout, a temporary data folder
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from lstmviz.app.main_window import MainWindow
    from lstmviz.examples import EXAMPLES_DIR

    def spin(seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            app.processEvents()
            time.sleep(0.01)

    def settle(w: MainWindow) -> None:
        spin(0.5)
        while w.state.busy or w.runner.is_running() or w.trace_runner.is_running():
            spin(0.1)
        spin(0.7)

    def wait_for(what: str, done: Callable[[], bool], timeout: float = 120.0) -> None:
        end = time.time() + timeout
        while not done():
            if time.time() > end:
                raise RuntimeError(f"timed out waiting for {what}")
            spin(0.1)
        spin(0.7)

    def first_action(w: MainWindow, key: str, panel: Any) -> None:
        """What a user does first in the panel so it shows a result."""
        if key == "what_if":
            panel.step.setValue(3)
            panel.token.setCurrentIndex(0)
            panel.run_btn.click()
            wait_for("the what-if", lambda: panel.result is not None)
        elif key == "compare":
            panel.pin_current()
            w.state.set_text(CHANGED)
            settle(w)
        elif key == "check":
            lt = w.state.layer_trace
            hidden, cell = np.array(lt.hidden), np.array(lt.cell)
            cell[:, 6:, 3] += 0.5  # a student's bug: unit 3's cell drifts from step 6 on
            hidden[:, 6:, 3] = np.tanh(cell[:, 6:, 3]) * np.array(lt.output_gate)[:, 6:, 3]
            panel.load({"hidden": hidden, "cell": cell})
            wait_for("the check", lambda: not panel.runner.is_running())
        elif key == "corpus":
            panel.count.setValue(200)
            panel.length.setValue(12)
            panel.trace_btn.click()
            wait_for("the corpus", lambda: panel.store is not None)
        elif key == "interventions":
            panel.units_edit.setText("22")
            panel.add_btn.click()
            wait_for(
                "the intervention",
                lambda: panel.effect is not None and not panel.runner.is_running(),
            )
        elif key == "patching":
            panel.corrupted.setText(CHANGED)
            panel.run_btn.click()
            wait_for("the patching", lambda: panel.result is not None)
        elif key == "attribution":
            panel.run_btn.click()
            wait_for("the attribution", lambda: panel.result is not None)
        elif key == "state_space":
            panel.find_btn.click()
            wait_for("the fixed points", lambda: bool(panel.points))

    # (folder, window size, presentation mode, the first shot's name, the panels: all if None)
    runs = [(out / f"{wd}x{ht}", (wd, ht), False, "main", None) for wd, ht in SIZES]
    runs += [
        (out / "presentation" / f"{wd}x{ht}", (wd, ht), True, "alone", ("train", "what_if"))
        for wd, ht in PROJECTORS
    ]
    written = []
    for folder, (width, height), presentation, first, keys in runs:
        folder.mkdir(parents=True, exist_ok=True)
        w = MainWindow()
        w.resize(width, height)
        w.show()
        w.open_model(EXAMPLES_DIR / "digit_sum.keras", text=TEXT)
        settle(w)
        w.state.set_t(5)
        if presentation:
            # full screen on the projector: here a window of the projector's size
            w.set_presentation(True, fullscreen=False)
            w.resize(width, height)
        settle(w)

        def shot(name: str, window: MainWindow = w, where: Path = folder) -> None:
            p = where / f"{name}.png"
            window.grab().save(str(p))
            small(p)
            written.append(p)

        shot(first)
        assert w.panels is not None
        for key in keys or tuple(w.panels.specs):
            w.panels.close_all()
            w.state.set_token_scores(None)  # the Attribution panel coloured the input strip
            if w.state.input_text() != TEXT:  # the Compare panel changed it
                w.state.set_text(TEXT)
                settle(w)
                w.state.set_t(5)
            panel = w.panels.open(key)
            settle(w)
            first_action(w, key, panel)
            shot(key)
        w.close()

    for p in written:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
