"""Drive the real main window headless: keys, clicks, input editing, layers, presentation
mode, errors; and check what the views hold against the trace."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from lstmviz.engine.trace import QUANTITIES

from .models import digit_info, digit_model


def _views_at(window, t):
    """Assert every view shows timestep t of the state's trace."""
    doc = window.state
    lt = doc.layer_trace
    b = doc.batch
    # presentation mode shows a few units large (the selected ones first)
    rows = doc.focus_rows(window.heatmaps.focus_capacity()) if window.presentation else doc.rows
    for q in QUANTITIES:
        hm = window.heatmaps.maps[q]
        assert hm.cursor_t() == t
        if lt.go_backwards:  # not reached yet: 0 .. t-1
            assert hm.dim.shaded().width() == t
        else:  # not reached yet: t+1 .. T-1
            assert hm.dim.shaded().left() == t + 1
        np.testing.assert_array_equal(hm.data, lt.get(q)[b][:, rows].T)
        shown = list(window.step_bars.units)  # the selected units (all six now)
        assert shown == doc.selected_units[:8]
        np.testing.assert_allclose(window.step_bars.values(q), lt.get(q)[b, t][shown], rtol=1e-6)
    assert window.unit_lines.step_line.value() == t
    assert window.transport.slider.value() == t
    assert window.transport.t_label.text().startswith(f"t = {t} /")
    u = doc.unit
    eq = window.unit_detail.values
    assert eq["t"] == t
    assert eq["u"] == u
    assert eq["forget_gate"]["value"] == pytest.approx(float(lt.forget_gate[b, t, u]))
    assert eq["c"] == pytest.approx(float(lt.cell[b, t, u]))
    assert eq["h"] == pytest.approx(float(lt.hidden[b, t, u]))


def test_window_shows_the_trace(digit_window):
    w = digit_window
    assert w.stack.currentIndex() == 1  # not the welcome page
    _views_at(w, 0)
    lt = w.state.layer_trace
    # fixed colour levels: gates [0, 1], tanh-bounded [-1, 1], cell symmetric over the trace
    assert tuple(w.heatmaps.maps["forget_gate"].image.getLevels()) == (0.0, 1.0)
    assert tuple(w.heatmaps.maps["hidden"].image.getLevels()) == (-1.0, 1.0)
    lo, hi = w.heatmaps.maps["cell"].image.getLevels()
    assert lo == -hi
    assert hi >= np.percentile(np.abs(lt.cell), 99.5)
    # titles a newcomer can read
    title = w.heatmaps.maps["forget_gate"].plot.titleLabel.text
    assert "forget gate f" in title
    assert "old cell state is kept" in title
    # x ticks are the input tokens
    ticks = w.heatmaps.maps["cell"].plot.getAxis("bottom")._tickLevels[0]
    assert [s for _, s in ticks] == ["4", "7", "3", "9", "1", "2"]
    assert "engine: NumPy" in w.engine_label.text()


def test_step_with_keys(digit_window, qtbot):
    w = digit_window
    qtbot.keyClick(w, Qt.Key.Key_Right)
    qtbot.keyClick(w, Qt.Key.Key_Right)
    assert w.state.t == 2
    _views_at(w, 2)
    qtbot.keyClick(w, Qt.Key.Key_Left)
    assert w.state.t == 1
    qtbot.keyClick(w, Qt.Key.Key_End)
    assert w.state.t == 5
    _views_at(w, 5)
    qtbot.keyClick(w, Qt.Key.Key_PageUp)
    assert w.state.t == 4
    qtbot.keyClick(w, Qt.Key.Key_Home)
    assert w.state.t == 0
    qtbot.keyClick(w, Qt.Key.Key_PageDown)
    assert w.state.t == 1
    speed = w.transport.speed
    qtbot.keyClick(w, Qt.Key.Key_Plus)
    assert w.transport.speed > speed
    qtbot.keyClick(w, Qt.Key.Key_Minus)
    assert w.transport.speed == speed


def test_play_runs_to_the_end(digit_window, qtbot):
    w = digit_window
    for _ in range(6):
        w.transport.faster()
    qtbot.keyClick(w, Qt.Key.Key_Space)
    assert w.transport.playing
    qtbot.waitUntil(lambda: not w.transport.playing, timeout=5000)
    assert w.state.t == 5
    _views_at(w, 5)


def test_click_heatmap_jumps_and_selects_unit(digit_window, qtbot):
    w = digit_window
    qtbot.waitUntil(lambda: w.heatmaps.maps["input_gate"].plot.vb.width() > 10)
    view = w.heatmaps
    scene_pos = view.scene_pos_of("input_gate", 4, 7)
    pos = view.mapFromScene(scene_pos)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos.x(), pos.y()))
    assert w.state.t == 4
    assert w.state.unit == 7
    _views_at(w, 4)
    assert w.unit_detail.values["u"] == 7
    hm = w.heatmaps.maps["forget_gate"]
    assert hm.row_mark.isVisible()
    assert hm.row_mark.rect().top() == 7


def test_token_strip_click(digit_window, qtbot):
    w = digit_window
    strip = w.token_strip
    strip.repaint()
    _i, rect = strip._cells[3]
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    assert w.state.t == 3


def test_edit_input_retraces(digit_window, qtbot):
    w = digit_window
    w.editor.edit.setFocus()
    w.editor.edit.clear()
    qtbot.keyClicks(w.editor.edit, "1 2 3 4 5 6 7 8")
    with qtbot.waitSignal(w.state.events.trace):
        qtbot.keyClick(w.editor.edit, Qt.Key.Key_Return)
    assert w.state.timesteps == 8
    assert not w.editor.edit.hasFocus()  # Enter gives the arrow keys back to stepping
    qtbot.keyClick(w, Qt.Key.Key_Right)
    assert w.state.t == 1
    w.state.set_t(0)
    expected = digit_model().trace(np.eye(10, dtype=np.float32)[[list(range(1, 9))]])
    np.testing.assert_allclose(
        w.heatmaps.maps["cell"].data, expected.layer("lstm").cell[0].T, rtol=1e-6
    )
    ticks = w.heatmaps.maps["cell"].plot.getAxis("bottom")._tickLevels[0]
    assert [s for _, s in ticks] == [str(i) for i in range(1, 9)]
    # a bad input: dialog, nothing changed, still usable
    w.editor.edit.setText("1 2 x")
    w.editor.apply()
    assert "only 0-9" in w.last_error
    assert w.error_dialog.isVisible()
    w.error_dialog.close()
    assert w.state.timesteps == 8
    w.state.set_t(2)
    _views_at(w, 2)


def test_same_shape_retrace_redraws_data_only(digit_window):
    """A new trace of the same shape (a training snapshot, a what-if edit) must show the
    new values while keeping the plot items, the axes' ticks and the user's zoom: that is
    what keeps the window responsive while a model trains."""
    w = digit_window
    doc = w.state
    doc.set_units([1, 3])
    doc.set_t(2)
    hm = w.heatmaps.maps["cell"]
    hm.plot.vb.setXRange(1, 3, padding=0)  # the user zoomed in
    curves = list(w.unit_lines.curves)
    bars = dict(w.step_bars.items)
    left = hm.plot.getAxis("left")
    w.heatmaps.grab()  # paint once: the axis renders its ticks into a picture
    picture = left.picture
    assert picture is not None
    other = digit_model(seed=7).trace(doc.x)  # other weights, same shapes
    doc.set_trace(other, engine="NumPy · snapshot 2")
    assert doc.trace is other
    assert w.unit_lines.curves == curves and w.step_bars.items == bars
    assert hm.plot.vb.viewRange()[0] == pytest.approx([1, 3])
    assert left.picture is picture  # the axis was not re-rendered
    _views_at(w, 2)
    _xs, ys = w.unit_lines.curves[1].getData()
    q = w.unit_lines.quantity
    np.testing.assert_allclose(ys, other.layer("lstm").per_unit(q)[0][:, 3], rtol=1e-6)
    # a trace of another shape resets the view and rebuilds the items
    doc.set_input(np.eye(10, dtype=np.float32)[[[1, 2, 3]]])
    assert doc.timesteps == 3
    assert hm.plot.vb.viewRange()[0] == pytest.approx([0, 3])
    _views_at(w, doc.t)


def test_switch_layer_and_all_layers(window, qtbot):
    w = window
    w.state.set_model(digit_model(stacked=True), None, digit_info())
    combo = w.selection_panel.layer_combo
    assert combo.count() == 2
    w.state.set_t(3)
    combo.setCurrentIndex(1)
    combo.activated.emit(1)
    assert w.state.layer == "lstm_b"
    assert w.heatmaps.maps["hidden"].data.shape == (12, 6)
    _views_at(w, 3)
    w.selection_panel.all_layers.setChecked(True)
    assert set(w.heatmaps.maps) == {
        f"{n}:{q}" for n in ("lstm_a", "lstm_b") for q in ("forget_gate", "cell", "hidden")
    }
    lt_a = w.state.trace.layer("lstm_a")
    np.testing.assert_array_equal(w.heatmaps.maps["lstm_a:cell"].data, lt_a.cell[0].T)
    assert w.heatmaps.maps["lstm_a:cell"].cursor_t() == 3
    w.selection_panel.all_layers.setChecked(False)
    assert "forget_gate" in w.heatmaps.maps


def test_unit_filter_from_panel(digit_window):
    w = digit_window
    sp = w.selection_panel
    sp.filter_combo.setCurrentIndex(sp.filter_combo.findData("active"))
    sp.filter_k.setValue(3)
    sp._apply_filter()
    assert len(w.state.rows) == 3
    assert w.heatmaps.maps["forget_gate"].data.shape == (3, 6)
    _views_at(w, 0)
    sp.filter_combo.setCurrentIndex(sp.filter_combo.findData("list"))
    sp.filter_list.setText("9, 1")
    sp._apply_filter()
    assert list(w.state.rows) == [9, 1]  # in the order typed


def test_presentation_mode(digit_window, qtbot):
    w = digit_window
    assert w.model_dock.isVisible()
    qtbot.keyClick(w, Qt.Key.Key_F11)
    assert w.presentation
    assert not w.model_dock.isVisible()
    assert not w.detail_dock.isVisible()
    assert w.theme.font_px >= 24
    assert w.theme.tick_px >= 24
    assert w.heatmaps.maps["forget_gate"].plot.getAxis("bottom").style["tickFont"].pixelSize() >= 24
    qtbot.keyClick(w, Qt.Key.Key_Right)
    _views_at(w, 1)
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert not w.presentation
    assert w.model_dock.isVisible()


def test_open_bad_file_shows_dialog(window, qtbot, tmp_path):
    w = window
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"this is not a zip file")
    with qtbot.waitSignal(w.state.events.failed, timeout=10000):
        w.open_model(bad)
    assert "broken.keras" in w.last_error
    assert w.error_dialog.isVisible()
    w.error_dialog.close()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    # still usable: open a real model afterwards
    w.state.set_model(digit_model(), None, digit_info())
    qtbot.keyClick(w, Qt.Key.Key_Right)
    assert w.state.t == 1
    # an input the model cannot take
    arr = tmp_path / "wrong.npy"
    np.save(arr, np.zeros((5, 3), np.float32))
    w.open_input(arr)
    qtbot.waitUntil(lambda: "wrong.npy" in (w.last_error or ""), timeout=10000)
    assert "expects 10 features" in w.last_error
    w.open_path(tmp_path / "notes.txt.zip")
    assert "cannot open files of type '.zip'" in w.last_error


def test_output_view_and_strip(char_window):
    w = char_window
    doc = w.state
    doc.set_t(2)
    so = doc.trace.step_output[0, 2]
    best = int(np.argmax(so))
    label, p = w.output_view.shown[0]
    assert label == doc.info.vocab[best].replace(" ", "␣")
    assert p == pytest.approx(float(so[best]))
    assert w.token_strip._preds[2] == label


def test_plot_widgets_menus_docks(digit_window):
    import pyqtgraph as pg
    from PySide6.QtWidgets import QLabel

    w = digit_window
    pw = w.plot_widgets()
    for q in QUANTITIES:
        assert isinstance(pw[f"heatmap_{q}"], pg.PlotItem)
    assert isinstance(pw["unit_lines"], pg.PlotItem)
    assert isinstance(pw["bars"], pg.PlotItem)
    titles = [a.text() for a in w.menuBar().actions()]
    assert titles == ["&File", "&View", "&Train", "&Analysis", "&Help"]
    assert w.menu("Train") is w.menu("Train")
    extra = w.menu("Tools")
    assert [a.text() for a in w.menuBar().actions()][-2:] == ["&Tools", "&Help"]
    assert extra.title() == "&Tools"
    dock = w.add_dock(QLabel("hi"), "Extra")
    assert dock.widget().text() == "hi"


def test_freeze_gc_takes_the_windows_objects_out_of_collections():
    import gc
    import weakref

    from lstmviz.app.main import freeze_gc

    class Node:
        me: object = None

    enabled = gc.isenabled()
    gc.disable()  # as during the start-up (pause_gc): no collection meanwhile
    try:
        kept = Node()
        kept.me = kept  # alive, in a cycle
        lost = Node()
        lost.me = lost  # a cycle nothing refers to any more
        gone = weakref.ref(lost)
        del lost
        gc.freeze()  # as resume_gc leaves the start-up's objects, the cycle among them
        freeze_gc()
        assert gone() is None  # collected all the same
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects())  # out of every collection
    finally:
        gc.unfreeze()  # the test session's objects go back to the collector
        if enabled:
            gc.enable()


def test_unit_equations_match_contributions(digit_window):
    from lstmviz.app.unit_detail import unit_equations

    lt = digit_window.state.layer_trace
    for t in (0, 3):
        contrib = lt.contributions(t, 0)
        v = unit_equations(lt, t, 0, 4)
        for gate in ("input_gate", "forget_gate", "candidate", "output_gate"):
            for k in ("Wx", "Uh", "b", "z"):
                assert v[gate][k] == pytest.approx(float(contrib[gate][k][4]), abs=1e-5)
        c_prev = lt.prev_state(t, 0)[1][4]
        f, i, g = (v[q]["value"] for q in ("forget_gate", "input_gate", "candidate"))
        assert v["c"] == pytest.approx(f * c_prev + i * g, abs=1e-5)
    text = digit_window.unit_detail.text()
    assert "f = σ(Wf·x + Uf·h0 + bf)" in text
    assert "c = f·c_prev + i·g" in text
    assert "h = o·tanh(c)" in text


def test_a_panel_that_fails_to_build_is_a_dialog(qtbot, monkeypatch):
    from lstmviz.app import main_window as mw
    from lstmviz.app.panels import PanelSpec

    w = mw.MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)

    def boom(window):
        raise RuntimeError("the panel broke")

    spec = w.panels.specs["what_if"]
    w.panels.specs["what_if"] = PanelSpec(**{**spec.__dict__, "build": boom})
    qtbot.keyClick(
        w, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
    )
    qtbot.waitUntil(lambda: w.last_error is not None, timeout=3000)
    assert "What-if could not be opened" in w.last_error and "the panel broke" in w.last_error
    assert w.panels.built("what_if") is None
    w.error_dialog.close()
    w.close()


def test_welcome_page_without_model(window):
    assert window.stack.currentIndex() == 0
    window.transport.forward()  # no crash without a trace
    assert window.state.trace is None


def test_drop_files_opens_them(digit_window, qtbot, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    w = digit_window
    arr = tmp_path / "seq.npy"
    np.save(arr, np.eye(10, dtype=np.float32)[[1, 1, 2]])  # (T, F): one sequence
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(arr))])
    ev = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(w.state.events.trace, timeout=10000):
        w.dropEvent(ev)
    assert w.state.token_labels() == ["1", "1", "2"]
    assert str(arr.resolve()) in w.recent_files()


def test_long_input_traces_in_a_worker(digit_window, qtbot, monkeypatch):
    """Above the size limit tracing runs off the GUI thread; the window shows progress and
    stays responsive; the trace arrives through trace_changed."""
    from lstmviz.state import viewer

    w = digit_window
    monkeypatch.setattr(viewer, "SYNC_TRACE_VALUES", 100)
    x = np.eye(10, dtype=np.float32)[np.arange(400) % 10]  # (400, 10)
    busy = []
    w.state.events.busy.connect(busy.append)
    with qtbot.waitSignal(w.state.events.trace, timeout=20000):
        w.state.set_input(x)
        assert w.trace_runner.is_running() or w.state.timesteps == 400
        w.run_worker(lambda progress, should_stop: 1, None, "another task")  # no cancel
    assert busy[0] == "Tracing 400 timesteps"
    assert busy[-1] == ""
    assert w.busy_label.text() == ""
    assert w.state.timesteps == 400
    qtbot.keyClick(w, Qt.Key.Key_End)
    _views_at(w, 399)


def test_raw_outputs_and_float_inputs(window):
    """A model whose output is not a probability (a hidden sequence) and whose input is
    several float features: values are shown as values, inputs as little bar charts."""
    from lstmviz.engine.cell import LSTMWeights
    from lstmviz.engine.layers import LSTM, InputLayer
    from lstmviz.engine.model import Model, Node

    rng = np.random.default_rng(3)
    lstm = LSTM(
        "lstm",
        LSTMWeights(rng.normal(0, 1, (6, 20)), rng.normal(0, 1, (5, 20)), np.zeros(20)),
        return_sequences=True,
    )
    m = Model(
        "seq",
        [Node(InputLayer("input", (None, None, 6)), 0, []), Node(lstm, 0, [("input", 0, 0)])],
        [("input", 0, 0)],
        [("lstm", 0, 0)],
    )
    window.state.set_model(m, None, None, rng.normal(0, 1, (1, 4, 6)).astype(np.float32))
    window.state.set_t(2)
    ov = window.output_view
    assert not ov.probabilities
    h = window.state.trace.layer("lstm").hidden[0, 2]
    _label, v = ov.shown[0]
    assert v == pytest.approx(float(h.max()))  # ranked by value, like every kind of output
    assert window.token_strip._features().shape == (4, 6)
    assert window.token_strip._preds is None  # raw outputs: no "prediction" row
    window.token_strip.repaint()


def test_example_gallery_lists_and_opens(window, qtbot):
    from lstmviz.examples import list_examples

    examples = list_examples()
    dlg = window.show_gallery()
    assert dlg.list.count() == len(examples)
    if not examples:
        assert "No examples" in dlg.details.text()
        dlg.close()
        return
    dlg.list.setCurrentRow(0)
    assert examples[0].title in dlg.details.text()
    with qtbot.waitSignal(window.state.events.trace, timeout=20000):
        dlg._accept()
    assert window.state.model_path == str(examples[0].path)
    assert window.state.timesteps > 0


def test_bidirectional_backward_layer(window):
    """The backward half of a Bidirectional: its unreached part is on the left, and the
    unit detail's previous state comes from t+1."""
    from lstmviz.engine.cell import LSTMWeights
    from lstmviz.engine.layers import LSTM, Bidirectional, InputLayer
    from lstmviz.engine.model import Model, Node

    rng = np.random.default_rng(5)

    def lstm(name, back):
        return LSTM(
            name,
            LSTMWeights(
                rng.normal(0, 1, (10, 12)), rng.normal(0, 1, (3, 12)), rng.normal(0, 1, 12)
            ),
            return_sequences=True,
            go_backwards=back,
        )

    bi = Bidirectional("bi", lstm("fw", False), lstm("bw", True), "concat")
    m = Model(
        "bi",
        [Node(InputLayer("input", (None, None, 10)), 0, []), Node(bi, 0, [("input", 0, 0)])],
        [("input", 0, 0)],
        [("bi", 0, 0)],
    )
    doc = window.state
    doc.set_model(m, None, digit_info())
    assert doc.layer_names == ["bi/forward", "bi/backward"]
    doc.set_layer("bi/backward")
    doc.set_t(2)
    hm = window.heatmaps.maps["forget_gate"]
    shade = hm.dim.shaded()
    assert (shade.left(), shade.width()) == (0, 2)  # positions 0, 1 not reached yet
    lt = doc.layer_trace
    u = doc.unit
    eq = window.unit_detail.values
    assert eq["c_prev"] == pytest.approx(float(lt.cell[0, 3, u]))  # c from t+1
    assert "runs backwards" in window.unit_detail.text()
    _views_at(window, 2)


def test_slider_and_transport_buttons(digit_window, qtbot):
    w = digit_window
    w.transport.slider.setValue(4)  # a drag: rate-limited, the last value always arrives
    qtbot.waitUntil(lambda: w.state.t == 4, timeout=3000)
    _views_at(w, 4)
    qtbot.mouseClick(w.transport.start_button, Qt.MouseButton.LeftButton)
    assert w.state.t == 0
    qtbot.mouseClick(w.transport.forward_button, Qt.MouseButton.LeftButton)
    assert w.state.t == 1
    qtbot.mouseClick(w.transport.end_button, Qt.MouseButton.LeftButton)
    assert w.state.t == 5
    qtbot.mouseClick(w.transport.back_button, Qt.MouseButton.LeftButton)
    assert w.state.t == 4
    assert w.transport.slider.value() == 4


def test_hover_shows_the_value(digit_window, qtbot):
    w = digit_window
    qtbot.waitUntil(lambda: w.heatmaps.maps["cell"].plot.vb.width() > 10)
    pos = w.heatmaps.scene_pos_of("cell", 2, 5)
    w.heatmaps._on_moved((pos,))
    v = float(w.state.layer_trace.cell[0, 2, 5])
    msg = w.statusBar().currentMessage()
    assert msg.startswith("cell state c · unit 5 · t = 2 ('3')")
    assert msg.endswith(f"{v:+.3f}")


def test_input_editor_shows_short_inputs_and_leaves_long_ones_out(digit_window):
    from lstmviz.app.token_strip import MAX_EDIT_TEXT

    w = digit_window
    w.state.set_input(np.eye(10, dtype=np.float32)[[[4, 2]]])
    assert w.editor.edit.text() == "4 2"
    steps = MAX_EDIT_TEXT // 2 + 1  # "d d d ...": 2 characters a step
    w.state.set_input(np.eye(10, dtype=np.float32)[np.arange(steps)[None] % 10])
    assert w.editor.edit.text() == ""
    assert "long input" in w.editor.edit.placeholderText()


def test_peak_decimate_keeps_every_extreme_and_stays_inside_the_steps():
    from lstmviz.app.plots import peak_decimate

    for n in (5, 800, 801, 1001, 3000, 10_007):
        y = np.random.default_rng(n).normal(size=n)
        xs, ys = peak_decimate(y, 800)
        assert len(xs) == len(ys) <= 800
        assert ys.max() == y.max() and ys.min() == y.min()
        assert xs.min() >= 0 and xs.max() <= n - 1  # no bin past the last step
        if n <= 800:
            np.testing.assert_array_equal(xs, np.arange(n))
            np.testing.assert_array_equal(ys, y)


def test_busy_indicator_only_for_work_that_takes_a_while(window, qtbot):
    """A job done at once leaves the progress bar hidden (no flicker); one that runs on
    shows it, and the bar goes when the job ends."""
    import time

    from lstmviz.app.main_window import BUSY_AFTER_MS

    done = []
    window.run_worker(lambda progress, should_stop: 1, done.append, "quick")
    qtbot.waitUntil(lambda: done == [1], timeout=5000)
    qtbot.wait(BUSY_AFTER_MS + 100)
    assert not window.progress_bar.isVisible()

    def slow(progress, should_stop):
        end = time.monotonic() + 3 * BUSY_AFTER_MS / 1000
        while time.monotonic() < end and not should_stop():
            time.sleep(0.01)
        return 2

    window.run_worker(slow, done.append, "slow")
    assert window.busy_label.text() == "slow…"  # said at once
    qtbot.waitUntil(window.progress_bar.isVisible, timeout=5000)
    qtbot.waitUntil(lambda: done == [1, 2], timeout=5000)
    qtbot.waitUntil(lambda: not window.progress_bar.isVisible(), timeout=5000)
    assert window.busy_label.text() == ""


def test_a_big_trace_reaches_the_views_one_event_loop_turn_at_a_time(
    digit_window, qtbot, monkeypatch
):
    """A big trace: the heatmaps (laid out, then drawn), the curves, the bars, the output
    view and the unit's equations each take it in their own event-loop turn (heatmaps first);
    once the loop is idle every view shows it, exactly as a small trace drawn at once."""
    from PySide6.QtWidgets import QApplication

    from lstmviz.app import stagger

    w = digit_window
    monkeypatch.setattr(stagger, "BIG_TRACE_BYTES", 0)  # every trace counts as big
    before = w.heatmaps.maps["cell"].data.copy()
    curves_before = [c.getData()[1].copy() for c in w.unit_lines.curves]
    x = np.eye(10, dtype=np.float32)[[2, 5, 5, 8, 0, 1, 3]]  # another input, one step longer
    w.state.set_input(x)
    assert w.state.timesteps == 7
    assert stagger.pending(w.state) == 6  # not drawn yet: the loop has not turned
    np.testing.assert_array_equal(w.heatmaps.maps["cell"].data, before)
    QApplication.processEvents()  # one turn: the heatmaps laid out
    QApplication.processEvents()  # and one drawn: not yet the curves
    assert stagger.pending(w.state) == 4
    assert w.heatmaps.maps["cell"].data.shape[1] == 7
    for c, ys in zip(w.unit_lines.curves, curves_before, strict=True):
        np.testing.assert_array_equal(c.getData()[1], ys)
    qtbot.waitUntil(lambda: stagger.pending(w.state) == 0, timeout=5000)
    _views_at(w, w.state.t)
    qtbot.keyClick(w, Qt.Key.Key_End)
    _views_at(w, 6)
    # flush draws what is queued at once (before a screenshot)
    w.state.set_input(x[:5])
    assert stagger.pending(w.state) == 6
    stagger.flush(w.state)
    assert stagger.pending(w.state) == 0
    _views_at(w, w.state.t)
