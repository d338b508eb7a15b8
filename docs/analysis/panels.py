"""Screenshots of the app's causal-analysis panels for docs/analysis/ (the real window).

Run from the repository root under a virtual display at 1920x1080::

    xvfb-run -a -s "-screen 0 1920x1080x24" python docs/analysis/panels.py

Each panel is opened on a bundled example, its button pressed as a user would, and the panel
(or, for attribution, the whole window with the coloured input strip) saved to
docs/analysis/img/panel_*.png.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "analysis" / "img"


def main() -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from lstmviz.app.main_window import MainWindow
    from lstmviz.examples import EXAMPLES_DIR

    w = MainWindow()
    w.resize(1920, 1080)
    w.show()
    written: list[Path] = []

    def pump(seconds: float = 0.4) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def wait(cond: Any, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError("the panel did not finish")
            app.processEvents()
            time.sleep(0.01)
        pump()

    def open_example(name: str, text: str | None = None) -> None:
        path = EXAMPLES_DIR / f"{name}.keras"
        w.open_model(path)
        wait(lambda: w.state.model_path == str(path) and w.state.trace is not None)
        wait(lambda: not w.state.busy)
        if text is not None:
            w.state.set_text(text)
            wait(lambda: not w.state.busy)

    def panel(key: str, height: int = 430) -> Any:
        w.panels.close_all()
        p = w.panels.open(key)
        w.resizeDocks([w.panels.docks[key]], [height], Qt.Orientation.Vertical)
        pump()
        return p

    def save(name: str, key: str | None = None) -> None:
        pump()
        widget = w if key is None else w.panels.docks[key]
        path = OUT / f"panel_{name}.png"
        widget.grab().save(str(path))
        written.append(path)
        if w.last_error:
            raise RuntimeError(f"{name}: {w.last_error}")

    # interventions: the adder's carry unit mean-ablated; the scan; steering the text model
    open_example("binary_addition")
    p = panel("interventions")
    p.units_edit.setText("2")
    p.mode.setCurrentIndex(p.mode.findData("mean"))
    p.add_btn.click()
    wait(lambda: p.effect is not None and not p.runner.is_running())
    save("interventions_adder", "interventions")
    p.tabs.setCurrentIndex(1)
    p.clear_btn.click()
    p.scan_btn.click()
    wait(lambda: p.scan is not None)
    save("scan_adder", "interventions")
    open_example("char_textgen")
    p.tabs.setCurrentIndex(0)
    p.units_edit.setText("95")
    p.quantity.setCurrentIndex(p.quantity.findData("hidden"))
    p.mode.setCurrentIndex(p.mode.findData("clamp"))
    p.value.setValue(-1.0)
    p.add_btn.click()
    wait(lambda: p.effect is not None and not p.runner.is_running())
    p.tabs.setCurrentIndex(2)
    p.seed_text.setText("Shall I ")
    p.n_tokens.setValue(120)
    p.temperature.setValue(0.5)
    p.gen_btn.click()
    wait(lambda: p.generated is not None)
    save("generate_char_textgen", "interventions")
    p.clear_btn.click()

    # activation patching: where the adder's carry travels
    open_example("binary_addition", "0110111 + 0000001")
    p = panel("patching")
    p.corrupted.setText("0110110 + 0000001")
    p.target.t.setValue(3)
    p.run_btn.click()
    wait(lambda: p.result is not None)
    save("patching_adder", "patching")

    # attribution: the word model's "snow" after "white as", each method
    open_example("word_lm", "mary had a little lamb its fleece was white as")
    p = panel("attribution")
    snow = w.state.info.vocab.index("snow")
    p.target.k.setCurrentIndex(snow)
    for method in ("ig", "gradient", "occlusion", "lrp"):
        p.method.setCurrentIndex(p.method.findData(method))
        p.result = None
        p.run_btn.click()
        wait(lambda: p.result is not None)
        save(f"attribution_{method}_word_lm", "attribution")
        if method == "ig":  # the whole window too: the input strip coloured by the scores
            w.fit_dock(w.panels.docks["attribution"], w.panels.specs["attribution"].height)
            save("attribution_window_word_lm")
            w.resizeDocks([w.panels.docks["attribution"]], [430], Qt.Orientation.Vertical)
    p.show_what.setCurrentIndex(p.show_what.findData("memory"))
    p.run_btn.click()
    wait(lambda: p.result is not None and p.result[0] == "memory")
    save("memory_paths_word_lm", "attribution")
    open_example("char_textgen")
    p.show_what.setCurrentIndex(p.show_what.findData("connectivity"))
    p.target.k.setCurrentIndex(1)  # the space character
    p.run_btn.click()
    wait(lambda: p.result is not None and p.result[0] == "connectivity")
    save("connectivity_char_textgen", "attribution")
    w.state.set_token_scores(None)

    # state space: the flip-flop's eight memories
    open_example("flip_flop")
    p = panel("state_space")
    p.find_btn.click()
    wait(lambda: bool(p.points))
    w.state.set_t(13)
    save("state_space_flip_flop", "state_space")

    # logit attribution: the digit-sum model
    open_example("digit_sum", "4 7 3 9 1")
    p = panel("logit_attribution")
    w.state.set_t(4)
    save("logit_attribution_digit_sum", "logit_attribution")

    for path in written:
        print(path.relative_to(ROOT))
    w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
