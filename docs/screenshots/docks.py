"""Screenshots of the main window with each panel open, at the window sizes users have.

    xvfb-run -a -s "-screen 0 1920x1080x24" python docs/screenshots/docks.py [OUT_DIR]

For 1600x900 and 1920x1080: the window alone (no panel), then every dockable panel (Train,
each Analysis panel, and any other declared with a PanelSpec) opened the way a user opens it,
on the bundled digit-sum example; panels that need a first action to show something (What-if:
Compare; Compare: a pinned trace and a changed input) get it. Writes
``OUT_DIR/<size>/<panel>.png`` (default OUT_DIR: docs/screenshots/docks).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

SIZES = ((1600, 900), (1920, 1080))


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

    written = []
    for width, height in SIZES:
        folder = out / f"{width}x{height}"
        folder.mkdir(parents=True, exist_ok=True)
        w = MainWindow()
        w.resize(width, height)
        w.show()
        w.open_model(EXAMPLES_DIR / "digit_sum.keras", text="4 7 3 9 1 8 2 6 5 3 7 1")
        settle(w)
        w.state.set_t(5)
        settle(w)

        def shot(name: str, window: MainWindow = w, where: Path = folder) -> None:
            p = where / f"{name}.png"
            window.grab().save(str(p))
            written.append(p)

        shot("main")
        assert w.panels is not None
        for key in w.panels.specs:
            w.panels.close_all()
            panel = w.panels.open(key)
            settle(w)
            if key == "what_if":
                panel.step.setValue(3)
                panel.token.setCurrentIndex(0)
                panel.run()
                settle(w)
            elif key == "compare":
                panel.pin_current()
                w.state.set_text("4 7 3 0 1 8 2 6 5 3 7 1")
                settle(w)
            shot(key)
        w.close()
    for p in written:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
