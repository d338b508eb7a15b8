"""Render the analysis panels to PNG files for the README.

    python -m lstmviz.app.analysis.screenshots docs/screenshots

Uses the bundled examples when present (binary addition for unit search, digit sum for the
rest, the character model for the corpus); run under ``xvfb-run`` or
``QT_QPA_PLATFORM=offscreen``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ...engine.trace import LayerTrace


def _example(name: str) -> tuple[Any, Any] | None:
    from ...examples import get_example
    from ...io import load_model

    try:
        ex = get_example(name)
    except Exception:  # noqa: BLE001 - a missing example just skips its picture
        return None
    return load_model(ex.path), ex


def buggy_student(lt: LayerTrace) -> dict[str, np.ndarray]:
    """A from-scratch LSTM with the forget and input gates swapped (for the picture)."""
    w = lt.weights
    u = w.units
    W, U, b = (np.asarray(a, float) for a in (w.kernel, w.recurrent_kernel, w.bias))

    def sig(z: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-z))

    x = np.asarray(lt.x, float)
    h = np.zeros((x.shape[0], u))
    c = np.zeros((x.shape[0], u))
    hs, cs = [], []
    for x_t in x.transpose(1, 0, 2):
        z = x_t @ W + h @ U + b
        f = sig(z[:, :u])  # wrong: i's block
        i = sig(z[:, u : 2 * u])  # wrong: f's block
        g = np.tanh(z[:, 2 * u : 3 * u])
        o = sig(z[:, 3 * u :])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
        cs.append(c)
    return {"hidden": np.stack(hs, 1), "cell": np.stack(cs, 1)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "docs/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from ..main_window import MainWindow

    win = MainWindow()
    win.resize(1600, 900)
    win.show()
    win.build_actions()
    assert win.panels is not None
    panels: dict[str, Any] = {k: win.panels.widget(k) for k in win.panels.specs}
    docs = win.panels.docks
    written = []

    def shoot(
        key: str, name: str, whole: bool = False, size: tuple[int, int] = (1250, 600)
    ) -> None:
        for k, d in docs.items():
            d.setVisible(k == key)
        dock = docs[key]
        if not whole:
            dock.setFloating(True)
            dock.resize(*size)
        dock.raise_()
        for _ in range(5):
            app.processEvents()
        panels[key].ensure_fresh()
        for _ in range(5):
            app.processEvents()
        img = (win if whole else dock).grab()
        p = out / f"analysis_{name}.png"
        from ...io.atomic import atomic_target

        with atomic_target(p) as tmp:
            img.save(str(tmp), "PNG")
        written.append(p)
        dock.setFloating(False)

    digits = _example("digit_sum")
    if digits is not None:
        model, ex = digits
        win.state.set_model(model, ex.path, ex.info)
        win.state.set_text("4 7 3 9 1 8 2 6 5 3 7 1")
        win.state.set_t(5)
        if _example("binary_addition") is None:
            shoot("decomposition", "decomposition")
        shoot("saturation", "saturation")
        wi = panels["what_if"]
        docs["what_if"].show()
        app.processEvents()
        wi.ensure_fresh()
        wi.step.setValue(3)
        wi.token.setCurrentIndex(0)
        wi.run()
        while wi.result is None and wi.runner.is_running():  # computed in the panel's worker
            app.processEvents()
        shoot("what_if", "what_if")
        # compare: the bundled model against itself with noise -- a "later snapshot"
        cp = panels["compare"]
        cp.pin_current()
        lt = win.state.layer_trace
        if lt is None:
            raise RuntimeError("the compare screenshot needs the bundled model traced")
        from ...engine.cell import LSTMWeights

        rng = np.random.default_rng(0)
        lay = model.lstm(lt.name)
        old = lay.weights
        perm = rng.permutation(old.units)
        cols = np.concatenate([perm + k * old.units for k in range(4)])
        lay.weights = LSTMWeights(
            old.kernel[:, cols] + rng.normal(0, 0.05, old.kernel.shape),
            old.recurrent_kernel[np.ix_(perm, cols)],
            old.bias[cols],
            old.activation,
            old.recurrent_activation,
        )
        win.state.retrace()
        shoot("compare", "compare")
        lay.weights = old
        win.state.retrace()
        cp.clear()
        ck = panels["check"]
        docs["check"].show()
        app.processEvents()
        traced = win.state.layer_trace
        assert traced is not None  # the example opened above is traced
        ck.load(buggy_student(traced))
        from PySide6.QtCore import Qt

        for k, d in docs.items():
            d.setVisible(k == "check")
        win.resize(1600, 1150)
        win.state.set_t(2)
        win.resizeDocks([docs["check"]], [400], Qt.Orientation.Vertical)
        shoot("check", "check", whole=True)
        win.resize(1600, 900)
    adder = _example("binary_addition")
    if adder is not None:
        model, ex = adder
        win.state.set_model(model, ex.path, ex.info)
        from ...analysis.probes import carry_in  # noqa: F401 - the probe the panel picks

        rng = np.random.default_rng(3)
        x = rng.integers(0, 2, (8, 24, 2)).astype(np.float32)
        win.state.set_input(x)
        shoot("unit_search", "unit_search")
        # the carry unit: what it keeps while a carry runs, what it writes when one starts
        win.state.set_text("1011011 + 0110110")
        best = panels["unit_search"].ranked[0][0] if panels["unit_search"].ranked else 0
        win.state.set_units([best])
        win.state.set_t(3)
        shoot("decomposition", "decomposition")
    text = _example("char_textgen") or digits
    if text is not None:
        model, ex = text
        win.state.set_model(model, ex.path, ex.info)
        cp = panels["corpus"]
        docs["corpus"].show()
        app.processEvents()
        from ...examples import ASSETS
        from .corpus import random_corpus, text_corpus

        sonnets = ASSETS / "corpora" / "sonnets.txt"
        if text is not digits and sonnets.is_file():
            seqs = text_corpus(model, ex.info, sonnets.read_text(encoding="utf-8"), 100)
            cp.source.setCurrentText("Text file…")
        else:
            seqs = random_corpus(model, ex.info, 400, 60)
        store_dir = Path(tempfile.mkdtemp(prefix="lstmviz-shot-"))
        from ...analysis import trace_corpus

        cp.vocab = list(ex.info.vocab) if ex.info is not None else []
        cp.set_store(trace_corpus(model, seqs, store_dir / "store"))
        cp.region.setRegion((40, 43))
        cp.threshold.setValue(0.5)
        cp.find_matches()
        shoot("corpus", "corpus", size=(1250, 700))
    sys.stdout.write("".join(f"{p}\n" for p in written))
    win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
