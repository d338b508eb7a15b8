"""Screenshot of the Train panel after a short digit-sum run (the real app, real training).

    xvfb-run -a -s "-screen 0 1600x900x24" python docs/screenshots/training.py OUT.png

Trains 4 epochs of digit-sum from the bundled model's task, scrubs the timeline to the
middle snapshot and saves the window.
"""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication


def main(out: str) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from lstmviz.app.main_window import MainWindow
    from lstmviz.examples import EXAMPLES_DIR
    from lstmviz.train.tasks import get_task, with_overrides

    w = MainWindow()
    w.resize(1600, 900)
    w.show()
    w.open_model(EXAMPLES_DIR / "digit_sum.keras")
    panel = w.panels.open("train")
    task = get_task("digit-sum")
    done = {"v": False}
    panel.trained.connect(lambda _r: done.update(v=True))
    panel.start(task, with_overrides(task.defaults, epochs=4))
    while not done["v"]:
        app.processEvents()
    panel.timeline.setValue(len(panel.snapshots) // 2)
    w.state.set_t(3)
    for _ in range(50):
        app.processEvents()
    ok = w.grab().save(out)
    panel.shutdown()
    w.close()
    print(f"wrote {out}" if ok else f"could not write {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "training.png"))
