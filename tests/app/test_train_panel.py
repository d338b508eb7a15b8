"""The Train panel: start, live snapshots into the state, cancel, failure dialog, timeline
scrubbing, save -> open, and the Keras engine menu (pytest-qt, real worker threads)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")

import lstmviz
from lstmviz.examples import EXAMPLES_DIR
from lstmviz.train.tasks import Batch, TrainConfig, get_task

from .models import digit_info, digit_model

TIMEOUT = 120_000
# units=32: the bundled digit_sum model's size, so snapshots retrace the open input
TINY = TrainConfig(
    epochs=2, batch_size=16, learning_rate=0.01, units=32, steps_per_epoch=6, snapshot_every=2
)


@pytest.fixture
def panel(window):
    window.build_actions()
    p = window.panels.open("train")
    yield p
    p.shutdown()


def _wait_state(qtbot, panel, states):
    qtbot.waitUntil(lambda: panel.state in states, timeout=TIMEOUT)


def test_install_adds_dock_menu_and_engine_choice(window, panel):
    texts = [a.text() for a in window.menu("Train").actions()]
    assert "Train" in texts and "&Start training" in texts
    assert window.panels.built("train") is panel
    assert window.panels.docks["train"].isVisible()
    assert set(window.engine_choice.actions) == {"NumPy", "Keras"}
    from lstmviz.train.tasks import list_tasks

    assert panel.task_combo.count() == len(list_tasks()) >= 5
    panel.task_combo.setCurrentIndex(panel.task_combo.findData("binary-addition"))
    assert panel.units.value() == 8 and panel.lr.value() == pytest.approx(0.02)
    assert panel.state == "idle" and not panel.pause_btn.isEnabled()


def test_training_run_snapshots_timeline_and_save(qtbot, window, panel, tmp_path):
    window.state.set_model(
        lstmviz.load_model(EXAMPLES_DIR / "digit_sum.keras"), EXAMPLES_DIR / "digit_sum.keras"
    )
    assert panel.selected_task.name == "digit-sum"  # preselected from the model's info
    x_before = window.state.x
    with qtbot.waitSignal(panel.trained, timeout=TIMEOUT) as blocker:
        panel.start(config=TINY)
        assert panel.state == "loading" and "TensorFlow" in panel.state_label.full_text
    result = blocker.args[0]
    assert panel.state == "finished" and "held-out accuracy" in panel.state_label.full_text
    # snapshots: before training, every 2 batches, epoch ends -> a scrubbable timeline
    steps = [s.step for s in panel.snapshots]
    assert steps[0] == 0 and steps[-1] == 12 and len(steps) >= 5
    assert panel.timeline.maximum() == len(steps) - 1 and panel.timeline.isEnabled()
    # the loss curve got every batch
    xs, ys = panel.loss_curve.getData()
    assert list(xs) == list(range(1, 13)) and np.all(np.isfinite(ys))
    # the state shows the last snapshot, on the same input
    doc = window.state
    assert doc.x is x_before and doc.engine.startswith("NumPy · snapshot")
    last = panel.engine_model(len(steps) - 1)
    np.testing.assert_allclose(doc.trace.output, last.trace(doc.x).output)
    # scrub to "before training": a different trace, the same input, t kept
    doc.set_t(3)
    panel.timeline.setValue(0)
    assert "before training" in doc.engine and doc.t == 3
    first = panel.engine_model(0).trace(doc.x)
    np.testing.assert_allclose(doc.trace.layer(0).cell, first.layer(0).cell)
    assert not np.allclose(doc.trace.layer(0).cell, last.trace(doc.x).layer(0).cell)
    assert "snapshot 1/" in panel.timeline_label.text()
    # the weights on screen are the state's: a new input is traced with them too
    assert doc.model is panel.engine_model(0)
    x3 = np.eye(10, dtype=np.float32)[[[3, 1, 4, 1, 5]]]
    doc.set_input(x3)
    assert "before training" in doc.engine
    np.testing.assert_allclose(
        doc.trace.layer(0).cell, panel.engine_model(0).trace(x3).layer(0).cell
    )
    doc.set_input(x_before)
    panel.timeline.setValue(len(steps) - 1)
    # save -> it opens in lstmviz, equal to Keras's output
    out = tmp_path / "trained.keras"
    with qtbot.waitSignal(doc.events.model, timeout=TIMEOUT):
        panel.save(str(out))
    assert doc.model_path == str(out)
    np.testing.assert_allclose(doc.trace.output, last.trace(doc.x).output, atol=1e-5)
    assert doc.info is not None and doc.info.task == "digit-sum"
    assert doc.info.extra["metrics"]["heldout_accuracy"] == pytest.approx(
        result.metrics["heldout_accuracy"], abs=1e-5
    )


def test_live_curves_are_coalesced_and_the_x_axis_is_fixed(qtbot, window, panel, monkeypatch):
    """Batch logs arrive every 0.1 s; the curves (both plots and their axes) are redrawn at
    most every CURVE_INTERVAL, so the event loop never queues a redraw per message."""
    from lstmviz.train.core import BatchLog

    panel.state = "training"
    for p in (panel.loss_plot, panel.acc_plot):
        p.setXRange(0, 40, padding=0.02)
    calls = []
    orig = panel.loss_curve.setData
    monkeypatch.setattr(
        panel.loss_curve, "setData", lambda *a, **k: (calls.append(1), orig(*a, **k))
    )
    for k in range(1, 31):
        panel._on_partial(("logs", [BatchLog(k, 40, 0, 1.0 / k, k / 40, 0.1 * k, 1.0)]))
    assert calls == [] and panel.progress.value() == 30  # progress at once, curves later
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=2000)
    xs, ys = panel.loss_curve.getData()
    assert list(xs) == list(range(1, 31)) and ys[-1] == pytest.approx(1 / 30)
    lo, hi = panel.loss_plot.vb.viewRange()[0]
    assert lo < 0.5 and 39.5 < hi < 42  # the whole run's width, not autoranged per batch
    lo, hi = panel.loss_plot.vb.viewRange()[1]
    assert lo == pytest.approx(-0.02) and hi == pytest.approx(1.02)  # 0 .. round max loss
    panel.state = "idle"


def test_other_task_switches_the_document_to_its_model(qtbot, window, panel):
    window.state.set_model(
        lstmviz.load_model(EXAMPLES_DIR / "digit_sum.keras"), EXAMPLES_DIR / "digit_sum.keras"
    )
    doc = window.state
    with qtbot.waitSignal(panel.trained, timeout=TIMEOUT):
        panel.start(
            get_task("binary-addition"),
            TrainConfig(epochs=1, batch_size=8, units=4, steps_per_epoch=4),
        )
        # at Start, while TensorFlow loads: the task's bundled model, so that the snapshots
        # are of the same shape (no window-wide switch in the middle of training)
        qtbot.waitUntil(
            lambda: str(doc.model_path).endswith("binary_addition.keras"), timeout=TIMEOUT
        )
    assert doc.model.input_features == 2 and doc.info.task == "binary-addition"
    assert doc.trace.layer(0).units == 4


def test_start_keeps_an_open_model_of_the_tasks_shape(window, panel, monkeypatch):
    """A digit-sum model without its sidecar (no task info) fits the task: Start must not
    replace it by the bundled example."""
    m = lstmviz.load_model(EXAMPLES_DIR / "digit_sum.keras")
    window.state.set_model(m, None, None)
    opened = []
    monkeypatch.setattr(window, "open_model", lambda path, *a, **k: opened.append(path))
    panel._open_task_example(get_task("digit-sum"))
    assert opened == []
    panel._open_task_example(get_task("binary-addition"))  # another task: its example
    assert [p.name for p in opened] == ["binary_addition.keras"]


def test_cancel_stops_within_a_batch_and_keeps_weights(qtbot, window, panel):
    cfg = TrainConfig(epochs=50, batch_size=8, units=4, steps_per_epoch=50, snapshot_every=5)
    panel.start(get_task("digit-sum"), cfg)
    qtbot.waitUntil(lambda: len(panel._steps) >= 3, timeout=TIMEOUT)
    with qtbot.waitSignal(panel.trained, timeout=TIMEOUT) as blocker:
        panel.cancel()
    r = blocker.args[0]
    assert r.stopped and r.steps < cfg.total_steps
    assert panel.state == "cancelled" and panel.save_btn.isEnabled()


def test_pause_and_resume(qtbot, window, panel):
    cfg = TrainConfig(epochs=20, batch_size=8, units=4, steps_per_epoch=50)
    panel.start(get_task("digit-sum"), cfg)
    qtbot.waitUntil(lambda: len(panel._steps) >= 2, timeout=TIMEOUT)
    panel.toggle_pause()
    assert panel.state == "paused" and panel.pause_btn.text() == "Resume"
    qtbot.wait(800)  # let the batches in flight arrive
    n = len(panel._steps)
    qtbot.wait(800)
    assert len(panel._steps) == n  # nothing trains while paused
    panel.toggle_pause()
    assert panel.state == "training"
    qtbot.waitUntil(lambda: len(panel._steps) > n, timeout=TIMEOUT)
    with qtbot.waitSignal(panel.trained, timeout=TIMEOUT):
        panel.cancel()


class _NaNTask:
    """digit-sum whose 5th batch is NaN (picklable: it travels to the training process)."""

    def __init__(self):
        self._t = get_task("digit-sum")

    def __getattr__(self, k):
        if k.startswith("__") or k == "_t":
            raise AttributeError(k)
        return getattr(self._t, k)

    def batch(self, rng, n, step=0):
        b = self._t.batch(rng, n, step)
        return Batch(np.full_like(b.x, np.nan), b.y, b.y_final) if step == 4 else b


def test_failure_shows_dialog_and_keeps_last_good_weights(qtbot, window, panel):
    window.state.set_model(
        lstmviz.load_model(EXAMPLES_DIR / "digit_sum.keras"), EXAMPLES_DIR / "digit_sum.keras"
    )
    cfg = TrainConfig(epochs=1, batch_size=8, units=32, steps_per_epoch=10, snapshot_every=3)
    with qtbot.waitSignal(
        panel.state_changed, timeout=TIMEOUT, check_params_cb=lambda s: s == "failed"
    ):
        panel.start(_NaNTask(), cfg)
    assert window.last_error is not None and "loss became nan" in window.last_error
    assert window.error_dialog is not None and window.error_dialog.isVisible()
    # the last good weights (after batch 4) are on screen and finite, and can be saved
    assert panel.snapshots[-1].step == 4
    assert np.all(np.isfinite(window.state.trace.layer(0).cell))
    assert panel.result is not None and panel.save_btn.isEnabled()


def test_keras_engine_menu(qtbot, window, panel):
    window.state.set_model(
        lstmviz.load_model(EXAMPLES_DIR / "digit_sum.keras"), EXAMPLES_DIR / "digit_sum.keras"
    )
    numpy_trace = window.state.trace
    with qtbot.waitSignal(window.state.events.trace, timeout=TIMEOUT):
        window.engine_choice.actions["Keras"].trigger()
    tr = window.state.trace
    assert window.state.engine == "Keras" and tr.engine == "keras"
    assert "engine: Keras" in window.engine_label.text()
    np.testing.assert_allclose(tr.layer(0).forget_gate, numpy_trace.layer(0).forget_gate, atol=1e-5)
    keras = window.engine_choice.keras
    assert keras.running  # TensorFlow runs in the engine's own process, not in the app's
    pid = keras._proc.pid
    with qtbot.waitSignal(window.state.events.trace, timeout=TIMEOUT):
        window.state.set_input(np.eye(10, dtype=np.float32)[[[1, 2, 3]]])
    qtbot.waitUntil(lambda: window.state.engine == "Keras", timeout=TIMEOUT)
    assert keras._proc.pid == pid  # the same process traced the new input
    assert window.state.trace.layer(0).timesteps == 3
    with qtbot.waitSignal(window.state.events.trace, timeout=TIMEOUT):
        window.engine_choice.actions["NumPy"].trigger()
    assert window.state.engine == "NumPy"
    qtbot.waitUntil(lambda: not keras.running, timeout=10_000)  # its memory is given back


def test_train_the_open_models_architecture(qtbot, window, panel):
    path = EXAMPLES_DIR / "toy_classification.keras"
    window.state.set_model(lstmviz.load_model(path), path)
    assert panel.own_arch.isEnabled() and panel.selected_task.name == "toy-classification"
    panel.own_arch.setChecked(True)
    cfg = TrainConfig(epochs=1, batch_size=16, units=3, steps_per_epoch=4)  # units: ignored
    with qtbot.waitSignal(panel.trained, timeout=TIMEOUT):
        panel.start(config=cfg)
    m = panel.engine_model(len(panel.snapshots) - 1)
    assert [lay.units for lay in m.lstm_layers] == [16]  # the open model's LSTM(16)
    assert window.state.engine.startswith("NumPy · snapshot")


def test_the_story_emerges_snapshot_by_snapshot(qtbot, window, panel):
    """Every snapshot is scored (the task's story metric, lstmviz.analysis.story), the curve
    shows it, colours are locked while training, and a run without the story says so and
    offers the bundled model."""
    from lstmviz.analysis.story import THRESHOLDS

    from .acceptance import click

    window.state.set_model(
        lstmviz.load_model(EXAMPLES_DIR / "digit_sum.keras"), EXAMPLES_DIR / "digit_sum.keras"
    )
    assert not window.state.options.lock_levels
    with qtbot.waitSignal(panel.trained, timeout=TIMEOUT):
        panel.start(config=TINY)
        assert window.state.options.lock_levels and window.state.level_lock.locked
    qtbot.waitUntil(
        lambda: not panel.story_runner.is_running() and panel._story_pending is None,
        timeout=TIMEOUT,
    )
    tracker = panel.tracker
    assert tracker.task.name == "digit-sum" and len(tracker.stories) >= 2
    xs, ys = panel.story_curve.getData()
    np.testing.assert_allclose(ys, [v for _, v in tracker.values()])
    assert list(xs) == sorted(xs) and xs[-1] == panel.snapshots[-1].step
    assert panel.story_line.value() == THRESHOLDS["digit-sum"]
    last = tracker.stories[-1]
    assert panel.story_label.full_text == tracker.verdict(finished=True)
    if last.present:
        assert not panel.bundled_btn.isVisible()
    else:  # two tiny epochs: no story yet; the panel says so and offers the bundled model
        assert panel.story_label.full_text.startswith("This run has no clear story")
        assert panel.bundled_btn.isVisible()
        window.state.set_model(digit_model(), None, digit_info())
        click(qtbot, panel.bundled_btn)
        qtbot.waitUntil(
            lambda: window.state.model_path == str(EXAMPLES_DIR / "digit_sum.keras"),
            timeout=TIMEOUT,
        )


def test_levels_locked_while_training_then_as_the_user_had_them(qtbot, window, panel):
    """Start locks the colour levels (epoch 1 and the last epoch compare by eye); when the
    run ends they follow each input again if the user had them unlocked, and stay locked if
    the user had locked them (View > Colour levels > Lock colour levels)."""
    from .acceptance import click, click_menu

    window.state.set_model(
        lstmviz.load_model(EXAMPLES_DIR / "digit_sum.keras"), EXAMPLES_DIR / "digit_sum.keras"
    )
    assert panel.selected_task.name == "digit-sum"
    for box, v in ((panel.epochs, 1), (panel.steps, 3), (panel.batch_size, 8)):
        box.setValue(v)
    panel.snap_every.setValue(0)
    options = window.state.options
    assert not options.lock_levels
    with qtbot.waitSignal(panel.trained, timeout=TIMEOUT):
        click(qtbot, panel.start_btn)
        assert options.lock_levels and window.state.level_lock.locked
        assert window.lock_levels_action.isChecked()  # the menu shows it too
    assert panel.state == "finished"
    assert not options.lock_levels and not window.state.level_lock.locked
    assert not window.lock_levels_action.isChecked()

    click_menu(qtbot, window, "View", "Colour levels", "Lock colour levels")
    assert options.lock_levels
    with qtbot.waitSignal(panel.trained, timeout=TIMEOUT):
        click(qtbot, panel.start_btn)
    assert panel.state == "finished"
    assert options.lock_levels and window.state.level_lock.locked


def test_presentation_mode_with_the_panel_fits_a_1080p_screen(qtbot, window, panel):
    """A lecturer trains in presentation mode (28 px type): the window still fits 1920x1080,
    Start stays in view, and no settings label is cut (the settings scroll instead)."""
    from PySide6.QtWidgets import QLabel

    window.set_presentation(True, fullscreen=False)  # hides every panel
    assert window.panels.open("train") is panel  # Ctrl+T in front of the room
    window.resize(1920, 1080)
    qtbot.waitUntil(lambda: panel.settings.maximumWidth() > 620, timeout=5000)  # re-fitted
    qtbot.wait(50)
    assert window.minimumSizeHint().height() <= 1080
    assert window.height() <= 1080
    start = panel.start_btn
    assert start.isVisible() and not start.visibleRegion().isEmpty()
    for label in panel.settings.widget().findChildren(QLabel):
        if label.isVisible() and label.text() and not label.wordWrap():
            assert label.width() >= label.sizeHint().width(), label.text()
    window.set_presentation(False)
    qtbot.waitUntil(lambda: panel.settings.maximumWidth() == 620, timeout=5000)
