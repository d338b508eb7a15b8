"""The Analysis panels, headless, on real documents (engine models and bundled examples)."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.analysis import decompose, probes, rank_units
from lstmviz.engine.cell import LSTMWeights
from lstmviz.engine.layers import LSTM, Dense, InputLayer
from lstmviz.engine.model import Model, Node
from lstmviz.io.meta import ModelInfo

from .models import char_model, digit_info, digit_model


def bits_model(units: int = 4, seed: int = 0):
    """Bit pairs -> LSTM -> Dense(1, sigmoid), random weights (shaped like the adder)."""
    rng = np.random.default_rng(seed)
    w = LSTMWeights(
        rng.normal(0, 1.5, (2, 4 * units)),
        rng.normal(0, 0.8, (units, 4 * units)),
        rng.normal(0, 0.5, 4 * units),
    )
    nodes = [
        Node(InputLayer("bits", (None, None, 2)), 0, []),
        Node(LSTM("lstm", w, return_sequences=True), 0, [("bits", 0, 0)]),
        Node(
            Dense("sum_bit", rng.normal(0, 1, (units, 1)), np.zeros(1), "sigmoid"),
            0,
            [("lstm", 0, 0)],
        ),
    ]
    info = ModelInfo(task="binary-addition", token_kind="bits", example="1011 + 0110")
    return Model("adder", nodes, [("bits", 0, 0)], [("sum_bit", 0, 0)]), info


@pytest.fixture
def panels(qtbot, state):
    from types import SimpleNamespace

    from lstmviz.app.analysis import analysis_panels

    errors = []
    host = SimpleNamespace(state=state, show_error=errors.append)  # a window's two members
    ps = {spec.key: spec.build(host) for spec in analysis_panels()}
    for p in ps.values():
        qtbot.addWidget(p)
        p.resize(900, 500)
    return ps


def _show(qtbot, panel):
    panel.show()
    qtbot.waitExposed(panel)
    panel.ensure_fresh()
    return panel


def test_install_adds_menu_and_docks(qtbot):
    from lstmviz.app.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    menu = w.menu("Analysis")
    titles = [a.text() for a in menu.actions()]
    assert titles == [
        "Decomposition",
        "Unit search",
        "What-if",
        "Compare",
        "Saturation",
        "Check my LSTM",
        "Corpus",
        "Interventions",
        "Activation patching",
        "Attribution",
        "State space",
        "Logit attribution",
    ]
    assert all(not d.isVisible() for d in w.panels.docks.values())
    assert all(w.panels.built(k) is None for k in w.panels.specs)  # built on first open
    w.state.set_model(digit_model(), None, digit_info())
    w.show()
    qtbot.waitExposed(w)
    menu.actions()[0].trigger()
    assert w.panels.docks["decomposition"].isVisible()
    assert w.panels.built("decomposition").kept is not None
    assert w.last_error is None
    w.close()


def test_decomposition_panel(qtbot, state, panels):
    state.set_model(digit_model(), None, digit_info())
    p = _show(qtbot, panels["decomposition"])
    lt = state.layer_trace
    kept, _written = decompose(lt)
    u = state.unit
    np.testing.assert_allclose(p.kept_item.opts["y1"], kept[0, :, u])
    _x, y = p.cell_curve.getData()
    np.testing.assert_allclose(y, lt.cell[0, :, u])
    # diverging stack: the bar tops end at c where kept and written share a sign
    _k0, k1, w0, w1 = (
        np.asarray(p.kept_item.opts["y0"]),
        np.asarray(p.kept_item.opts["y1"]),
        np.asarray(p.written_item.opts["y0"]),
        np.asarray(p.written_item.opts["y1"]),
    )
    same = np.sign(k1) == np.sign(w1 - w0)
    np.testing.assert_allclose(w1[same], lt.cell[0, same, u], atol=1e-6)
    state.set_t(3)
    assert p.step_line.value() == 3
    assert "t=3" in p.readout.text()
    rx, ry = p.ret_curve.getData()
    assert rx[0] == 3 and ry[0] == 1.0
    p.unit_box.setValue(7)
    assert state.unit == 7
    np.testing.assert_allclose(p.cell_curve.getData()[1], lt.cell[0, :, 7])


def test_unit_search_probe_regex_paint(qtbot, state, panels):
    m, info = bits_model()
    state.set_model(m, None, info)
    x = np.random.default_rng(0).integers(0, 2, (6, 16, 2)).astype(np.float32)
    state.set_input(x)
    p = _show(qtbot, panels["unit_search"])
    assert p.probe.currentData() == "carry_out"
    expect = rank_units(state.layer_trace, probes.carry_out(x), "cell")
    assert p.ranked == expect
    assert p.table.rowCount() == 4 and p.table.item(0, 1).text() == str(expect[0][0])
    p.quantity.setCurrentIndex(p.quantity.findData("hidden"))
    assert p.ranked == rank_units(state.layer_trace, probes.carry_out(x), "hidden")
    p._on_row_clicked(1, 0)
    assert state.selected_units[0] == p.ranked[1][0]
    # painted mask on the current batch item
    state.set_t(4)
    p.toggle_current()
    assert p.source.currentText() == "Painted mask"
    sig = p.signal
    assert sig[0, 4] == 1 and np.nansum(sig) == 1 and np.isnan(sig[1]).all()
    p.toggle_step(9)
    assert p.signal[0, 9] == 1 and np.nansum(p.signal) == 2
    p.clear_paint()
    assert "constant" in p.status.text()
    # a regex over step labels for non-text inputs: the bit pair 1+1
    p.source.setCurrentText("Regex")
    p.regex.setText("^11$")
    p.search()
    both = (x[..., 0] == 1) & (x[..., 1] == 1)
    np.testing.assert_array_equal(p.signal, both.astype(float))


def test_unit_search_bundled_adder_carry_on_top(qtbot, state, panels):
    from lstmviz.examples import EXAMPLES_DIR
    from lstmviz.io import load_model
    from lstmviz.io.meta import load_info

    path = EXAMPLES_DIR / "binary_addition.keras"
    if not path.is_file():
        pytest.skip(f"{path} is not in this checkout")
    state.set_model(load_model(path), path, load_info(path))
    state.set_input(np.random.default_rng(5).integers(0, 2, (50, 20, 2)).astype(np.float32))
    p = _show(qtbot, panels["unit_search"])
    assert p.probe.currentData() == "carry_out"  # the default for bit inputs
    unit, r = p.ranked[0]
    assert abs(r) >= 0.9
    assert p.table.item(0, 1).text() == str(unit)


def test_unit_search_regex_on_text(qtbot, state, panels):
    m, info = char_model()
    state.set_model(m, None, info)
    state.set_text("hello world hello")
    p = _show(qtbot, panels["unit_search"])
    p.source.setCurrentText("Regex")
    p.regex.setText("l+")
    p.search()
    assert p.signal[0].tolist() == [1.0 if c == "l" else 0.0 for c in "hello world hello"]
    assert len(p.ranked) == 16
    p.source.setCurrentText("Probe")
    assert "inside_quotes" in [p.probe.itemData(k) for k in range(p.probe.count())]


def test_what_if_panel(qtbot, state, panels):
    state.set_model(digit_model(), None, digit_info())
    state.set_text("4 7 3 9 1 2")
    p = _show(qtbot, panels["what_if"])
    assert p.token.count() == 10
    p.step.setValue(2)
    p.token.setCurrentIndex(8)
    p.run()  # computed in the panel's worker
    qtbot.waitUntil(lambda: p.result is not None, timeout=20000)
    r = p.result
    assert r is not None and r.t == 2
    img = p.div_image.image
    assert img.shape == (6, 6)
    assert np.all(img[:, :2] == 0) and img[:, 2].max() > 0
    assert "first affected step 2" in p.summary.text()
    # a short input: the output change at every step, a dot each
    xs, ys = p.out_curve.getData()
    np.testing.assert_array_equal(xs, np.arange(6) + 0.5)
    np.testing.assert_allclose(ys, r.output_change)
    assert p.out_curve.opts["symbol"] == "o"
    p.apply()
    assert np.argmax(np.asarray(state.x)[0, 2]) == 8


def test_what_if_panel_draws_a_long_output_change_at_screen_size(qtbot, state, panels):
    """3,000 steps: the output change is drawn from min/max pairs per bin (no dot per step),
    computed in the panel's worker; every extreme is still drawn."""
    from PySide6.QtCore import Qt

    from lstmviz.app.analysis.whatif import OUT_POINTS

    state.set_model(digit_model(), None, digit_info())
    rng = np.random.default_rng(0)
    state.set_text(" ".join(str(d) for d in rng.integers(0, 10, 3000)))
    p = _show(qtbot, panels["what_if"])
    p.step.setValue(1500)
    p.token.setCurrentIndex(3 if np.argmax(np.asarray(state.x)[0, 1500]) != 3 else 4)
    qtbot.mouseClick(p.run_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: p.result is not None, timeout=20000)
    change = p.result.output_change
    assert change is not None and len(change) == 3000 and change.max() > 0
    xs, ys = p.out_curve.getData()
    assert len(xs) <= OUT_POINTS
    assert ys.max() == pytest.approx(change.max()) and ys.min() == pytest.approx(change.min())
    assert ys[xs < 1500].max() == 0  # nothing changes before the changed step
    assert xs.min() >= 0 and xs.max() <= 3000
    assert p.out_curve.opts["symbol"] is None


def test_compare_panel(qtbot, state, panels, tmp_path):
    state.set_model(digit_model(seed=0), None, digit_info())
    p = _show(qtbot, panels["compare"])
    assert p.comparison is None
    p.pin_current()
    state.set_model(digit_model(seed=1), None, digit_info())
    p.ensure_fresh()
    c = p.comparison
    assert c is not None and len(c.order) == 10
    assert p.table.rowCount() == 10
    assert p.images[2].image.shape == (10, state.timesteps)
    # the same model against itself: perfect alignment, zero difference
    p.clear()
    state.set_model(digit_model(seed=1), None, digit_info())
    p.pin_current()
    p.ensure_fresh()
    np.testing.assert_allclose(p.comparison.r, 1.0, atol=1e-6)
    assert np.abs(p.images[2].image).max() < 1e-6
    # a training snapshot arrives as a trace (the train panel's ViewerState.set_trace): B follows
    snap = digit_model(seed=2).trace(state.x)
    state.set_trace(snap, engine="NumPy · snapshot epoch 3")
    p.ensure_fresh()
    assert p.comparison.b is snap
    assert "snapshot epoch 3" in p.plots[1].titleLabel.text


def test_saturation_panel(qtbot, state, panels):
    state.set_model(digit_model(), None, digit_info())
    p = _show(qtbot, panels["saturation"])
    lt = state.layer_trace
    xs, ys = p.scatters["forget_gate"].getData()
    f = np.asarray(lt.forget_gate)
    np.testing.assert_allclose(xs, (f < 0.1).mean(axis=(0, 1)))
    np.testing.assert_allclose(ys, (f > 0.9).mean(axis=(0, 1)))
    assert "dead" in p.dead_label.text().lower()
    assert set(p.per_layer) == {"lstm"}
    p.low.setValue(0.2)
    xs2, _ = p.scatters["forget_gate"].getData()
    np.testing.assert_allclose(xs2, (f < 0.2).mean(axis=(0, 1)))


def _buggy(lt):
    from tests.analysis.test_diagnose import student_lstm

    w = lt.weights
    return student_lstm(
        np.asarray(lt.x, float),
        w.kernel.astype(float),
        w.recurrent_kernel.astype(float),
        w.bias.astype(float),
        bug="swap_i_f",
    )


def test_check_panel_highlights_divergence(qtbot, window, tmp_path):
    window.build_actions()
    window.state.set_model(digit_model(), None, digit_info())
    window.state.set_text("4 7 3 9 1 2 5")
    st = _buggy(window.state.layer_trace)
    path = tmp_path / "mine.npz"
    np.savez(path, hidden=st["hidden"], cell=st["cell"])
    p = window.panels.open("check")
    p.load(str(path))
    d = p.diagnosis
    assert d is not None and d.cause == "swap_i_f"
    assert "i and f swapped" in p.text.toPlainText()
    assert p.overlay_points("cell") > 0 and p.overlay_points("hidden") > 0
    assert p.overlay_points("forget_gate") == 0  # the student gave no gates
    assert p.image.image.shape == (10, 7)
    assert p.goto_btn.isEnabled()
    window.state.set_t(5)
    p.go_to_divergence()
    assert window.state.t == d.first_step
    assert window.state.unit == d.first_unit
    # a correct student: nothing outlined
    lt = window.state.layer_trace
    from tests.analysis.test_diagnose import student_lstm

    w = lt.weights
    good = student_lstm(
        np.asarray(lt.x, float),
        w.kernel.astype(float),
        w.recurrent_kernel.astype(float),
        w.bias.astype(float),
    )
    p.load(good)
    assert p.diagnosis.ok and p.overlay_points("cell") == 0
    assert "matches the model" in p.text.toPlainText()
    # a new input invalidates the outlines; the student's arrays no longer fit: said quietly
    p.load(str(path))
    assert p.overlay_points("cell") > 0
    window.state.set_text("1 2 3")
    assert p.overlay_points("cell") == 0
    assert "Could not compare" in p.text.toPlainText()
    assert window.last_error is None


def test_check_panel_bad_file(qtbot, state, panels, tmp_path):
    state.set_model(digit_model(), None, digit_info())
    p = _show(qtbot, panels["check"])
    bad = tmp_path / "bad.npz"
    np.savez(bad, hidden=np.zeros((1, 3, 10)))
    with qtbot.waitSignal(p.error, timeout=2000) as sig:
        p.load(str(bad))
    assert "expected (batch, T, units)" in sig.args[0]
    assert "Could not compare" in p.text.toPlainText()


def test_corpus_panel_traces_and_finds(qtbot, state, panels, tmp_path, monkeypatch):
    m, info = char_model()
    state.set_model(m, None, info)
    p = _show(qtbot, panels["corpus"])
    from lstmviz.app.analysis.corpus import random_corpus, text_corpus

    seqs = random_corpus(m, info, 60, 30)
    p.start(seqs, tmp_path / "store")
    qtbot.waitUntil(lambda: p.store is not None, timeout=30000)
    assert p.store.n_steps == 1800 and p.store.complete
    assert p.image.image.shape == (16, 80)
    p.region.setRegion((5, 8))
    p.threshold.setValue(0.0)
    assert p.layer_box.currentText() == "lstm"
    monkeypatch.setattr("lstmviz.app.analysis.corpus.SYNC_FIND_LIMIT", 0)  # search in a worker
    p.find_matches()
    qtbot.waitUntil(lambda: p.result is not None or p.find_btn.isEnabled(), timeout=30000)
    qtbot.waitUntil(lambda: p.find_btn.isEnabled(), timeout=30000)
    r = p.result
    if r is None:  # no unit on over the whole range: the error names it
        pytest.skip("random weights gave no unit >= 0 over the range")
    assert p.table.rowCount() == len(r.matches) > 0
    assert p.table.item(0, 4).text()  # a text snippet
    p._on_match(0, 0)
    assert p.position <= r.matches[0].start
    p._open_match(0, 0)
    assert state.t == r.matches[0].t
    ids = text_corpus(m, info, "hello world " * 10, 20)
    assert ids.shape == (6, 20)


def test_corpus_panel_stop(qtbot, state, panels, tmp_path):
    state.set_model(digit_model(), None, digit_info())
    p = _show(qtbot, panels["corpus"])
    seqs = np.eye(10, dtype=np.float32)[np.random.default_rng(0).integers(0, 10, (4000, 50))]
    p.start(seqs, tmp_path / "stopped")
    w = p.runner.current
    assert w is not None
    with qtbot.waitSignal(w.done, timeout=30000):
        p.stop()
    assert p.trace_btn.isEnabled() and not p.stop_btn.isEnabled()


def test_panels_paint(qtbot, state, panels):
    """Every panel really paints (PySide6/pyqtgraph pairs that crash on paint fail here)."""
    state.set_model(digit_model(), None, digit_info())
    for p in panels.values():
        _show(qtbot, p)
        img = p.grab().toImage()
        assert img.width() > 100 and img.height() > 100


def test_check_panel_worker_for_large_traces(qtbot, state, panels, monkeypatch):
    monkeypatch.setattr("lstmviz.app.analysis.check.SYNC_LIMIT", 0)
    state.set_model(digit_model(), None, digit_info())
    p = _show(qtbot, panels["check"])
    st = _buggy(state.layer_trace)
    p.load({"hidden": st["hidden"]})
    assert not p.load_btn.isEnabled()  # busy
    qtbot.waitUntil(lambda: p.diagnosis is not None, timeout=30000)
    assert p.diagnosis.cause == "swap_i_f" and p.load_btn.isEnabled()
