"""Drive every bundled lesson with the clicker in presentation mode and save a screenshot of
each step (its question, when it asks one, and its answer).

Run it on a real X server at 1920 x 1080 (``make.sh`` starts one with Xvfb)::

    xvfb-run -a -s "-screen 0 1920x1080x24" python docs/lessons/shoot.py [OUT_DIR] [LESSON...]

The window is the real ``lstmviz`` window, full screen; each PageDown is a key press, as a
presentation clicker sends it. The script stops with an error if a step shows an error
dialog or any text on screen is smaller than 28 px.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LESSONS = HERE.parents[1] / "lstmviz" / "assets" / "lessons"
sys.path.insert(0, str(HERE.parents[1]))  # this checkout's lstmviz
MIN_PX = 28


def settle(app, window, seconds: float = 0.6) -> None:
    """Let the window finish tracing, laying out and painting."""
    end = time.monotonic() + 60
    while time.monotonic() < end:
        app.processEvents()
        busy = window.state.busy or window.runner.is_running() or window.trace_runner.is_running()
        if not busy and window.state.trace is not None:
            break
        time.sleep(0.02)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def save(pixmap, path: Path) -> None:
    """Write the screenshot; with Pillow installed as a 256-colour PNG (a third of the size,
    the same picture to the eye: the views draw from 256-entry colour maps)."""
    try:
        from PIL import Image
    except ImportError:
        pixmap.save(str(path), "PNG")
        return
    import io

    from PySide6.QtCore import QBuffer, QIODevice

    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    pixmap.save(buf, "PNG")
    img = Image.open(io.BytesIO(bytes(buf.data()))).convert("RGB")
    pal = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pal.save(path, optimize=True)


def main(argv: list[str]) -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    out = Path(argv[0]) if argv else HERE
    names = argv[1:]
    paths = [LESSONS / f"{n}.lstmviz-lesson" for n in names] or sorted(
        LESSONS.glob("*.lstmviz-lesson")
    )
    app = QApplication.instance() or QApplication(["lstmviz"])
    from lstmviz.app.main_window import MainWindow
    from lstmviz.app.presentation import text_sizes
    from lstmviz.io.lesson import load_lesson

    failures = []
    for path in paths:
        lesson = load_lesson(path)
        window = MainWindow()
        window.state.options.animate = False  # every number on the picture
        window.resize(1920, 1080)
        window.show()
        window.set_presentation(True)  # full screen on the (virtual) projector
        window.activateWindow()
        opened = window.lessons.open_lesson(path)
        if not opened:
            failures.append(f"{path.name}: {window.last_error}")
            window.close()
            continue
        settle(app, window, 1.5)
        shots = 0
        while True:
            run = window.lessons.run
            k, asking = run.index, run.asking
            name = f"{path.stem}-{k + 1}{'-ask' if asking else ''}.png"
            window.grab()  # paint: painted views record their text sizes
            small = [(w, px) for w, px in text_sizes(window) if px < MIN_PX - 0.01]
            if small:
                failures.append(f"{name}: text below {MIN_PX} px: {small[:5]}")
            if window.last_error:
                failures.append(f"{name}: {window.last_error}")
            screen = window.screen()
            pixmap = screen.grabWindow(0)  # what the projector shows
            save(pixmap, out / name)
            shots += 1
            print(f"{name}: {pixmap.width()}x{pixmap.height()}")
            last = k == len(lesson.steps) - 1 and not asking
            if last:
                break
            QTest.keyClick(window, Qt.Key.Key_PageDown)  # the clicker
            settle(app, window)
        window.set_presentation(False)
        window.close()
        app.processEvents()
    for f in failures:
        print("FAILED:", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    rc = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # every picture is written; skip the interpreter's teardown of the Qt objects, which
    # crashes in Qt after a full-screen window on Xvfb (it does without lstmviz's lessons too)
    import os

    os._exit(rc)
