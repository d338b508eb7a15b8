"""The causal panels (Interventions, Activation patching, Attribution, State space, Logit
attribution) in the real window on the bundled examples, driven by clicking their buttons."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from lstmviz.examples import EXAMPLES_DIR
from lstmviz.io.session import Session

from .acceptance import activate, click, wait_settled

ADDER = EXAMPLES_DIR / "binary_addition.keras"
DIGITS = EXAMPLES_DIR / "digit_sum.keras"
CHARS = EXAMPLES_DIR / "char_textgen.keras"
FLIP_FLOP = EXAMPLES_DIR / "flip_flop.keras"
CARRY_UNIT = 2  # the adder's sidecar: checks.carry_unit


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    from lstmviz.app.main_window import MainWindow

    monkeypatch.setenv("LSTMVIZ_DATA_DIR", str(tmp_path / "data"))
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1600, 900)
    activate(qtbot, w)
    yield w
    w.close()


def _open(qtbot, w, path, text=None):
    w.open_model(path)
    qtbot.waitUntil(lambda: w.state.model_path == str(path), timeout=30000)
    wait_settled(qtbot, w)
    if text is not None:
        w.state.set_text(text)
        wait_settled(qtbot, w)


def _panel(qtbot, w, key):
    p = w.panels.open(key)
    qtbot.waitExposed(p)
    return p


def click_cell(qtbot, plot, x: float, y: float) -> None:
    """A real mouse click on a pyqtgraph plot at data coordinates (x, y)."""
    qtbot.wait(50)  # drawn and ranged, as the user sees it
    view = plot.scene().views()[0]
    scene_pos = plot.vb.mapViewToScene(QPointF(x, y))
    pos = view.mapFromScene(scene_pos)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def click_row(qtbot, table, row: int) -> None:
    rect = table.visualItemRect(table.item(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _add(qtbot, p, units: str, mode: str) -> None:
    p.tabs.setCurrentIndex(0)
    p.units_edit.setText(units)
    p.mode.setCurrentIndex(p.mode.findData(mode))
    n = len(p.state.interventions)
    click(qtbot, p.add_btn)
    assert len(p.state.interventions) == n + 1
    qtbot.waitUntil(lambda: p.effect is not None and not p.runner.is_running(), timeout=20000)


# --- interventions ------------------------------------------------------------------------------
def test_ablating_the_carry_unit_breaks_addition_and_another_unit_does_not(win, qtbot):
    """The adder's carry unit (found by the carry probe, in its sidecar) mean-ablated: sum bits
    flip in the panel's output diff; any other unit mean-ablated: none flips."""
    w = win
    _open(qtbot, w, ADDER)
    p = _panel(qtbot, w, "interventions")
    assert p.stack.is_empty
    _add(qtbot, p, str(CARRY_UNIT), "mean")
    assert p.change.changed >= 3 and p.change.total == w.state.timesteps
    assert f"{p.change.changed} of {w.state.timesteps} steps change" in p.summary.text()
    assert not p.stack.is_empty and len(p._rects) == 1  # the intervened cells are boxed
    d = p.effect.diffs["lstm"]["cell"][0]
    assert np.abs(d[:, CARRY_UNIT]).max() > 1.0
    assert p.list.count() == 1 and "unit 2 = mean on this input" in p.list.item(0).text()
    other = int(np.random.default_rng(0).choice([u for u in range(4) if u != CARRY_UNIT]))
    click(qtbot, p.clear_btn)
    assert w.state.interventions == ()
    _add(qtbot, p, str(other), "mean")
    assert p.change.changed == 0, p.summary.text()
    # Remove (the list's selected row, else the last)
    click(qtbot, p.remove_btn)
    assert w.state.interventions == ()
    qtbot.waitUntil(lambda: p.stack.is_empty, timeout=5000)
    assert w.last_error is None


def test_clamp_window_and_resample(win, qtbot):
    w = win
    _open(qtbot, w, ADDER)
    p = _panel(qtbot, w, "interventions")
    p.quantity.setCurrentIndex(p.quantity.findData("forget_gate"))
    p.value.setValue(0.0)
    click(qtbot, p.every)  # untick: a window of steps
    p.t_from.setValue(2)
    p.t_to.setValue(4)
    _add(qtbot, p, "2", "clamp")
    iv = w.state.interventions[0]
    assert (iv.quantity, iv.mode, iv.start, iv.stop) == ("forget_gate", "clamp", 2, 5)
    after = p.effect.after.layer("lstm").forget_gate[0, :, 2]
    np.testing.assert_array_equal(after[2:5], 0.0)
    assert np.all(after[[0, 1, 5, 6, 7]] != 0.0)
    click(qtbot, p.every)
    p.source.setText("1111111 + 1111111")
    _add(qtbot, p, "0, 3", "resample")
    assert w.state.interventions[1].mode == "patch"
    assert "values on '1111111 + 1111111'" in p.list.item(1).text()
    p.source.setText("11 + 1")  # another length: said so, nothing added
    p.units_edit.setText("1")
    click(qtbot, p.add_btn)
    assert len(w.state.interventions) == 2
    assert w.last_error is not None and "steps" in w.last_error


def test_mean_on_a_traced_corpus(win, qtbot, tmp_path, monkeypatch):
    from lstmviz.analysis import mean_values, trace_corpus
    from lstmviz.app import dialogs
    from lstmviz.app.analysis.corpus import random_corpus

    w = win
    _open(qtbot, w, ADDER)
    xs = random_corpus(w.state.model, w.state.info, 30, 8)
    store = trace_corpus(w.state.model, xs, tmp_path / "adder.zarr")
    monkeypatch.setattr(
        dialogs, "ask_directory", lambda parent, title: str(tmp_path / "adder.zarr")
    )
    p = _panel(qtbot, w, "interventions")
    k = p.mode.findData("store")
    p.mode.setCurrentIndex(k)
    p.mode.activated.emit(k)  # what choosing it with the mouse sends
    assert p.mode.itemText(k) == "their mean on the corpus adder.zarr"
    _add(qtbot, p, "2", "store")
    iv = w.state.interventions[0]
    np.testing.assert_allclose(iv.values, mean_values(w.state.model, store, "lstm", [2], "cell"))
    assert "mean on the corpus adder.zarr" in p.list.item(0).text()
    # a corpus traced by another model is refused, and the mode goes back to this input's mean
    _open(qtbot, w, DIGITS)
    p.mode.setCurrentIndex(k)
    p.mode.activated.emit(k)
    assert "traced by another model" in w.last_error
    assert p.mode.currentData() == "mean"


def test_scan_ranks_the_carry_unit_first_and_a_row_click_selects_it(win, qtbot):
    w = win
    _open(qtbot, w, ADDER)
    p = _panel(qtbot, w, "interventions")
    p.tabs.setCurrentIndex(1)
    assert p.target.target() == (w.state.timesteps - 1, 0)  # the last sum bit, as a logit
    click(qtbot, p.scan_btn)
    qtbot.waitUntil(lambda: p.scan is not None, timeout=20000)
    assert p.scan.ranking()[0][0] == (CARRY_UNIT,)
    assert p.table.rowCount() == 4 and p.table.item(0, 0).text() == str(CARRY_UNIT)
    w.state.set_units([0])
    click_row(qtbot, p.table, 0)
    assert w.state.selected_units == [CARRY_UNIT]
    assert p.units_edit.text() == str(CARRY_UNIT)
    assert not p.scan_stack.is_empty and p.pages.currentIndex() == 1  # the ranking, drawn
    assert f"unit {CARRY_UNIT}" in p.scan_summary.text().split(",")[0]
    click_cell(qtbot, p.scan_plot, 3, 0.5 * p.scan.signed_effect[3])  # the bar of unit 3
    assert w.state.selected_units == [3]
    p.tabs.setCurrentIndex(0)
    assert p.pages.currentIndex() == 0


def test_scan_shows_progress_and_stops(win, qtbot, monkeypatch):
    import lstmviz.analysis as analysis

    w = win
    _open(qtbot, w, DIGITS)
    seen = []

    def slow_scan(*args, progress=None, should_stop=None, **kwargs):
        for i in range(10_000):  # a scan that would take minutes
            if should_stop():
                return None
            progress(i, 10_000)
            seen.append(i)
            import time

            time.sleep(0.01)
        raise AssertionError("not stopped")

    monkeypatch.setattr(analysis, "ablation_scan", slow_scan)
    p = _panel(qtbot, w, "interventions")
    p.tabs.setCurrentIndex(1)
    click(qtbot, p.scan_btn)
    qtbot.waitUntil(
        lambda: p.scan_bar.isVisible() and p.scan_bar.progress.value() > 2, timeout=5000
    )
    click(qtbot, p.scan_bar.stop_btn)
    qtbot.waitUntil(lambda: not p.scan_bar.isVisible(), timeout=5000)
    n = len(seen)
    qtbot.wait(200)
    assert len(seen) <= n + 1 and p.scan is None  # the worker ended; nothing shown


def test_clamped_unit_steers_generated_text(win, qtbot):
    from lstmviz.analysis import sample_with_intervention

    w = win
    _open(qtbot, w, CHARS)
    p = _panel(qtbot, w, "interventions")
    p.quantity.setCurrentIndex(p.quantity.findData("hidden"))
    p.value.setValue(-1.0)
    _add(qtbot, p, "95", "clamp")
    p.tabs.setCurrentIndex(2)
    p.seed_text.setText("Shall I ")
    p.n_tokens.setValue(60)
    p.temperature.setValue(0.5)
    click(qtbot, p.gen_btn)
    qtbot.waitUntil(lambda: p.generated is not None, timeout=30000)
    plain, steered = p.generated
    model, info = w.state.model, w.state.info
    assert plain == sample_with_intervention(model, info, "Shall I ", [], 60, 0.5, rng=0).text
    assert (
        steered
        == (
            sample_with_intervention(model, info, "Shall I ", w.state.interventions, 60, 0.5, rng=0)
        ).text
    )
    assert steered != plain and steered in p.text_with.toPlainText()


def test_generation_needs_a_text_model(win, qtbot):
    w = win
    _open(qtbot, w, DIGITS)
    p = _panel(qtbot, w, "interventions")
    assert not p.gen_btn.isEnabled() and "language model" in p.gen_note.text()


def test_interventions_come_back_with_the_session(win, qtbot, tmp_path):
    from lstmviz.state.session import apply_session, session_from_state

    w = win
    _open(qtbot, w, ADDER)
    p = _panel(qtbot, w, "interventions")
    _add(qtbot, p, "2", "corpus")
    assert "mean on 256 random inputs" in p.list.item(0).text()
    saved = [iv.to_dict() for iv in w.state.interventions]
    session_from_state(w.state).save(tmp_path / "s.lstmviz")
    click(qtbot, p.clear_btn)
    assert p.list.count() == 0
    apply_session(Session.load(tmp_path / "s.lstmviz"), w.state)
    wait_settled(qtbot, w)
    assert [iv.to_dict() for iv in w.state.interventions] == saved
    qtbot.waitUntil(lambda: p.list.count() == 1 and p.effect is not None, timeout=10000)
    assert p.change.changed >= 1


def test_heatmap_click_selects_unit_and_step(win, qtbot):
    w = win
    _open(qtbot, w, ADDER)
    p = _panel(qtbot, w, "interventions")
    _add(qtbot, p, "2", "zero")
    qtbot.wait(100)
    click_cell(qtbot, p.diff_plot, 5.5, 3.5)
    assert w.state.selected_units[0] == 3 and w.state.t == 5
    assert p.units_edit.text() == "3"


# --- activation patching ------------------------------------------------------------------------
def test_patching_finds_where_the_carry_travels(win, qtbot):
    w = win
    _open(qtbot, w, ADDER, "0110111 + 0000001")
    p = _panel(qtbot, w, "patching")
    assert p.stack.is_empty
    p.corrupted.setText("0110110 + 0000001")
    p.target.t.setValue(3)
    assert p.target.space_name() == "logit"
    click(qtbot, p.run_btn)
    qtbot.waitUntil(lambda: p.result is not None, timeout=20000)
    r = p.result
    assert r.by_quantity.shape == (6, w.state.timesteps) and r.by_unit.shape == (4, 8)
    ci = r.quantities.index("cell")
    assert r.by_quantity[ci, 3] == pytest.approx(1.0, abs=0.1)  # the cell at the step: all
    assert np.abs(r.by_quantity[:, 4:]).max() < 1e-6  # after the target step: nothing
    assert r.by_unit[CARRY_UNIT, 0] > 0.9  # the carry unit carries it from the first step
    assert "clean" in p.summary.text() and not p.stack.is_empty
    click_cell(qtbot, p.u_plot, 1.5, CARRY_UNIT + 0.5)
    assert w.state.selected_units[0] == CARRY_UNIT and w.state.t == 1
    # a corruption picked from the bit pairs: the same length, so it patches
    p.pick_step.setValue(0)
    p.pick_token.setCurrentIndex(0)  # "00"
    click(qtbot, p.pick_btn)
    assert p.corrupted.text() == "0110110 + 0000000"
    p.result = None
    click(qtbot, p.run_btn)
    qtbot.waitUntil(lambda: p.result is not None, timeout=20000)
    assert w.last_error is None


def test_patching_pick_a_corruption_and_refuse_another_length(win, qtbot):
    w = win
    _open(qtbot, w, DIGITS, "4 7 3 9 1")
    p = _panel(qtbot, w, "patching")
    p.pick_step.setValue(1)
    p.pick_token.setCurrentIndex(2)
    click(qtbot, p.pick_btn)
    assert p.corrupted.text() == "4 2 3 9 1"
    click(qtbot, p.run_btn)
    qtbot.waitUntil(lambda: p.result is not None, timeout=20000)
    assert np.all(np.abs(p.result.by_quantity[:, 0]) < 1e-6)  # before the change: nothing
    p.corrupted.setText("4 2 3")
    click(qtbot, p.run_btn)
    assert "3 steps" in w.last_error and "5" in w.last_error


# --- attribution ---------------------------------------------------------------------------------
def _compute(qtbot, p, view):
    p.show_what.setCurrentIndex(p.show_what.findData(view))
    click(qtbot, p.run_btn)
    qtbot.waitUntil(lambda: p.result is not None and p.result[0] == view, timeout=30000)
    return p.result[1]


def test_attribution_colours_the_input_strip(win, qtbot):
    w = win
    _open(qtbot, w, DIGITS, "4 7 3 9 1")
    p = _panel(qtbot, w, "attribution")
    assert p.target.target()[1] == int(np.argmax(np.asarray(w.state.trace.output)[0]))
    a = _compute(qtbot, p, "tokens")
    assert a.method == "ig" and float(a.check["completeness_error"][0]) < 0.01
    ts = w.state.token_scores
    np.testing.assert_allclose(ts.scores, a.scores)
    assert "Completeness: the scores sum" in p.summary.text()
    # the strongest token is painted orange (positive) or blue (negative) on the strip
    strip = w.token_strip
    qtbot.wait(50)
    img = strip.grab().toImage()
    t = int(np.argmax(np.abs(a.scores[0])))
    cell = dict(strip._cells)[t]
    colour = img.pixelColor(int(cell.left() + 4), int(cell.center().y()))
    want = strip.score_colour(t)
    assert abs(colour.red() - want.red()) < 30 and abs(colour.blue() - want.blue()) < 30
    assert (want.red() > want.blue()) == (a.scores[0, t] > 0)
    click(qtbot, p.colour_strip)  # untick: the strip is plain again
    assert w.state.token_scores is None
    for method in ("gradient", "grad_x_input", "occlusion", "lrp"):
        p.method.setCurrentIndex(p.method.findData(method))
        p.result = None
        got = _compute(qtbot, p, "tokens")
        assert got.method == method and got.scores.shape == (1, 5)
    assert w.last_error is None
    w.state.set_text("1 2 3")  # another input: the old scores are not shown
    qtbot.waitUntil(lambda: p.result is None, timeout=5000)
    assert p.stack.is_empty


def test_attribution_flags_incomplete_integrated_gradients(win, qtbot):
    """On the character model the output moves sharply near the zero-embedding baseline: 64
    points do not integrate it; the panel says so and does not colour the strip."""
    w = win
    _open(qtbot, w, CHARS)
    p = _panel(qtbot, w, "attribution")
    p.target.k.setCurrentIndex(0)
    p.target.t.setValue(w.state.timesteps - 1)
    a = _compute(qtbot, p, "tokens")
    assert float(a.check["completeness_error"][0]) > 0.01
    assert "Completeness FAILS" in p.summary.text() and w.state.token_scores is None


def test_connectivity_and_memory_paths(win, qtbot):
    w = win
    _open(qtbot, w, ADDER)
    p = _panel(qtbot, w, "attribution")
    c = _compute(qtbot, p, "connectivity")
    steps = w.state.timesteps
    assert c.matrix.shape == (steps, steps)
    assert np.allclose(np.triu(c.matrix, 1), 0)  # a forward LSTM: no future input matters
    click_cell(qtbot, p.plots["connectivity"], 0.5, 4.5)
    assert w.state.t == 4
    mp = _compute(qtbot, p, "memory")
    assert mp.cell_share.shape == (4,)
    assert np.all((mp.cell_share >= 0) & (mp.cell_share <= 1))
    click_cell(qtbot, p.plots["cell"], 2.5, 1.5)
    assert w.state.selected_units[0] == 1


# --- state space ---------------------------------------------------------------------------------
def test_state_space_finds_the_flip_flops_eight_memories(win, qtbot):
    w = win
    _open(qtbot, w, FLIP_FLOP)
    p = _panel(qtbot, w, "state_space")
    assert not p.stack.is_empty and p.pca is not None and p.pca.quantity == "hidden"
    click(qtbot, p.find_btn)
    qtbot.waitUntil(lambda: bool(p.points), timeout=60000)
    kinds = [pt.kind for pt in p.points]
    assert kinds.count("stable") == 8
    assert "8 stable" in p.summary.text()
    stable = [i for i in p.fp_items if "stable" in i.name()]
    assert len(stable) == 1 and len(stable[0].data) == 8  # all eight drawn on the PCA
    saddle = kinds.index("saddle")
    click_row(qtbot, p.table, saddle)
    assert p.selected == saddle
    ev = p.eig_scatter.data
    assert np.abs(ev["x"] + 1j * ev["y"]).max() > 1.0  # a saddle has an unstable direction
    w.state.set_t(5)
    traj = p._trajectory()
    assert p.now.data["x"][0] == pytest.approx(traj[5, 0])


# --- logit attribution ---------------------------------------------------------------------------
def test_logit_attribution_adds_up_to_the_logit(win, qtbot):
    w = win
    _open(qtbot, w, DIGITS, "4 7 3 9 1")
    p = _panel(qtbot, w, "logit_attribution")
    r = p.result
    assert r is not None and r.k == int(np.argmax(np.asarray(w.state.trace.output)[0]))
    from lstmviz.analysis.logit_attribution import _head

    head, _ = _head(w.state.model)
    h = np.asarray(w.state.layer_trace.hidden[0], np.float64)
    want = h @ np.asarray(head.kernel, np.float64)[:, r.k] + float(head.bias[r.k])
    np.testing.assert_allclose(r.logit[0], want, rtol=1e-5)
    np.testing.assert_allclose(r.contributions[0].sum(-1) + r.bias, r.logit[0], rtol=1e-6)
    w.state.set_t(2)
    assert "At t=2" in p.summary.text()
    u = r.top_units(0, 2, 1)[0][0]
    click_cell(qtbot, p.heat, 2.5, u + 0.5)
    assert w.state.selected_units[0] == u


def test_logit_lens_reads_every_layer_of_a_stacked_model(win, qtbot):
    from lstmviz.engine.cell import LSTMWeights
    from lstmviz.engine.layers import LSTM, Dense, InputLayer
    from lstmviz.engine.model import Model, Node

    from .models import digit_info

    rng = np.random.default_rng(0)

    def wts(f, u):
        return LSTMWeights(
            rng.normal(0, 0.5, (f, 4 * u)), rng.normal(0, 0.5, (u, 4 * u)), np.zeros(4 * u)
        )

    nodes = [
        Node(InputLayer("input", (None, None, 10)), 0, []),
        Node(LSTM("lower", wts(10, 6), return_sequences=True), 0, [("input", 0, 0)]),
        Node(LSTM("upper", wts(6, 6), return_sequences=True), 0, [("lower", 0, 0)]),
        Node(
            Dense("dense", rng.normal(0, 1, (6, 10)), np.zeros(10), "softmax"), 0, [("upper", 0, 0)]
        ),
    ]
    model = Model("stacked", nodes, [("input", 0, 0)], [("dense", 0, 0)])
    w = win
    w.state.set_model(model, None, digit_info(), np.eye(10, dtype=np.float32)[[[1, 2, 3, 4]]])
    wait_settled(qtbot, w)
    p = _panel(qtbot, w, "logit_attribution")
    assert set(p.result.lens) == {"lower", "upper"}
    curves = [c for c in p.lens.listDataItems() if c.name() in ("lower", "upper")]
    assert len(curves) == 2
    click_cell(qtbot, p.heat, 1.5, 4.5)
    assert w.state.layer == "upper" and w.state.selected_units[0] == 4


def test_panels_say_what_they_need(win, qtbot):
    """A model without a Dense head: the logit panel says why it is empty."""
    w = win
    _open(qtbot, w, EXAMPLES_DIR / "stacked_lstm.keras")
    p = _panel(qtbot, w, "logit_attribution")
    assert p.stack.is_empty and "Dense" in p.stack.empty_label.text()
    assert w.last_error is None


def test_causal_buttons_refuse_a_model_with_two_inputs(win, qtbot, monkeypatch):
    """Attribution and fixed points run on one input: an encoder-decoder opened with both of
    its inputs is refused, on the button's click, with that reason (and nothing runs)."""
    from pathlib import Path

    from lstmviz.app import dialogs

    seq2seq = Path(__file__).resolve().parents[1] / "zoo" / "golden" / "keras_lstm_seq2seq"
    w = win
    _open(qtbot, w, seq2seq / "model.keras")
    monkeypatch.setattr(dialogs, "ask_open_file", lambda *a: str(seq2seq / "input.npz"))
    click(qtbot, w.editor.load_button)
    qtbot.waitUntil(lambda: isinstance(w.state.x, list), timeout=20000)
    wait_settled(qtbot, w)
    for key, button in (("attribution", "run_btn"), ("state_space", "find_btn")):
        w.last_error = None
        p = _panel(qtbot, w, key)
        click(qtbot, getattr(p, button))
        assert w.last_error is not None and "models with one input" in w.last_error
        assert not p.bar.is_running()
        w.error_dialog.close()


# --- layout with results shown --------------------------------------------------------------------
@pytest.mark.parametrize(("width", "height"), [(1600, 900), (1920, 1080)])
def test_layout_with_results_shown(win, qtbot, width, height):
    """The acceptance layout invariants (no clipped label, plot areas tall enough, heatmap rows
    readable) with each causal panel showing a result, at both screen sizes."""
    from .test_acceptance import _layout_problems, _settle

    w = win
    w.resize(width, height)
    _open(qtbot, w, ADDER)
    problems = {}
    p = _panel(qtbot, w, "interventions")
    _add(qtbot, p, "2", "mean")
    _settle(qtbot, w)
    problems["interventions"] = _layout_problems(w)
    p.tabs.setCurrentIndex(1)
    click(qtbot, p.scan_btn)
    qtbot.waitUntil(lambda: p.scan is not None, timeout=20000)
    _settle(qtbot, w)
    problems["scan"] = _layout_problems(w)
    w.panels.close_all()
    p = _panel(qtbot, w, "patching")
    p.corrupted.setText("1011011 + 0110111")
    click(qtbot, p.run_btn)
    qtbot.waitUntil(lambda: p.result is not None, timeout=20000)
    _settle(qtbot, w)
    problems["patching"] = _layout_problems(w)
    w.panels.close_all()
    p = _panel(qtbot, w, "attribution")
    for view in ("tokens", "connectivity", "memory"):
        _compute(qtbot, p, view)
        _settle(qtbot, w)
        problems[view] = _layout_problems(w)
    w.panels.close_all()
    p = _panel(qtbot, w, "logit_attribution")
    _settle(qtbot, w)
    problems["logit"] = _layout_problems(w)
    _open(qtbot, w, FLIP_FLOP)
    w.panels.close_all()
    p = _panel(qtbot, w, "state_space")
    click(qtbot, p.find_btn)
    qtbot.waitUntil(lambda: bool(p.points), timeout=60000)
    _settle(qtbot, w)
    problems["state_space"] = _layout_problems(w)
    bad = {k: v for k, v in problems.items() if v}
    assert not bad, bad


def test_stop_ends_a_fixed_point_search_and_closing_stops_the_rest(win, qtbot):
    """The fixed-point search of the character model (192 dimensions) takes minutes: Stop
    ends its worker at the next iteration; closing the window stops a running one too."""
    w = win
    _open(qtbot, w, CHARS)
    p = _panel(qtbot, w, "state_space")
    assert p.n_init.value() == 32  # fewer starts for a big layer
    click(qtbot, p.find_btn)
    worker = p.bar.runner.current
    qtbot.waitUntil(lambda: p.bar.isVisible(), timeout=5000)
    click(qtbot, p.bar.stop_btn)
    qtbot.waitUntil(lambda: not worker.is_running(), timeout=20000)
    assert p.points == [] and not p.bar.isVisible() and w.last_error is None
    click(qtbot, p.find_btn)
    worker = p.bar.runner.current
    w.close()
    qtbot.waitUntil(lambda: not worker.is_running(), timeout=20000)
