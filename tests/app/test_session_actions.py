"""File → Save/Open Session, autosave, restore after a crash (kill -9), on the real window."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from lstmviz import LstmvizError, Session
from lstmviz.app import session_actions as SA
from lstmviz.examples import EXAMPLES_DIR

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("LSTMVIZ_DATA_DIR", str(d))
    return d


@pytest.fixture
def models(tmp_path):
    """Copies of two bundled examples (with their sidecars), so tests may change them."""
    out = {}
    for name in ("stacked_lstm", "digit_sum"):
        src = EXAMPLES_DIR / f"{name}.keras"
        if not src.is_file():
            pytest.skip(f"bundled example {name} missing")
        shutil.copy(src, tmp_path / src.name)
        side = EXAMPLES_DIR / f"{name}.lstmviz.json"
        if side.is_file():
            shutil.copy(side, tmp_path / side.name)
        out[name] = tmp_path / src.name
    return out


def _install(w):
    """The window's sessions menu, autosave and recovery (with the rest of its menus)."""
    w.build_actions()
    return w.session_actions


def _make_window(qtbot):
    from lstmviz.app.main_window import MainWindow

    w = MainWindow(actions=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


@pytest.fixture
def window(qtbot, data_dir):
    w = _make_window(qtbot)
    actions = _install(w)
    yield w
    if w.error_dialog is not None:
        w.error_dialog.close()
    if actions.restore_box is not None:
        actions.restore_box.close()
    w.close()


def _settled(w):
    return w.state.trace is not None and not w.state.busy and not w.runner.is_running()


def _open(qtbot, w, path):
    w.open_model(path)
    qtbot.waitUntil(lambda: _settled(w) and w.state.model_path == str(path), timeout=20000)


def _open_session(qtbot, w, path):
    done = []
    w.session_actions.open_session(path, then=lambda: done.append(1))
    qtbot.waitUntil(lambda: bool(done) or w.last_error is not None, timeout=20000)


def test_menu_entries(window):
    texts = [a.text() for a in window.menu("File").actions()]
    assert "Save s&ession…" in texts
    assert "Open &session…" in texts
    assert window.session_actions.save_action.shortcut().toString() == "Ctrl+S"
    assert window.session_actions.timer.isActive()
    assert window.session_actions.timer.interval() == 30_000


def test_save_and_open_session_restores_everything(qtbot, window, models, tmp_path):
    w, doc = window, window.state
    _open(qtbot, w, models["stacked_lstm"])
    names = doc.layer_names
    assert len(names) == 2
    doc.set_layer(names[1])
    doc.set_units([1, 3])
    doc.set_unit_filter("list", [0, 1, 3])
    doc.set_t(doc.timesteps - 2)
    state = (doc.layer, doc.selected_units, doc.t, doc.batch, doc.unit_filter)
    x = np.array(doc.x, copy=True)
    p = w.session_actions.save_session(tmp_path / "mine")  # suffix added
    assert p.name == "mine.lstmviz"
    assert p.is_file()

    _open(qtbot, w, models["digit_sum"])  # something else on screen
    assert doc.layer != state[0]
    _open_session(qtbot, w, p)
    assert w.last_error is None
    assert doc.model_path == str(models["stacked_lstm"])
    assert (doc.layer, doc.selected_units, doc.t, doc.batch, doc.unit_filter) == state
    np.testing.assert_array_equal(doc.x, x)
    assert "Opened session" in w.last_status


def test_save_and_open_through_the_menu_dialogs(qtbot, window, models, tmp_path, monkeypatch):
    w = window
    _open(qtbot, w, models["digit_sum"])
    w.state.set_t(2)
    target = tmp_path / "via_menu.lstmviz"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    w.session_actions.save_action.trigger()
    assert Session.load(target).t == 2
    w.state.set_t(0)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(target), ""))
    w.session_actions.open_action.trigger()
    qtbot.waitUntil(lambda: w.state.t == 2, timeout=20000)


def test_embedded_model_opens_when_the_file_is_gone(qtbot, window, models, tmp_path):
    w = window
    _open(qtbot, w, models["digit_sum"])
    w.state.set_t(3)
    p = w.session_actions.save_session(tmp_path / "e.lstmviz", embed=True)
    plain = w.session_actions.save_session(tmp_path / "p.lstmviz", embed=False)
    _open(qtbot, w, models["stacked_lstm"])
    models["digit_sum"].unlink()
    before = w.state.model
    _open_session(qtbot, w, plain)  # no model anywhere: an error, the model shown stays
    assert "missing" in w.last_error
    assert w.state.model is before
    w.error_dialog.close()
    w.last_error = None
    _open_session(qtbot, w, p)
    assert w.state.model.name == "digit_sum"
    assert w.state.t == 3
    assert "embedded" in w.last_error  # told which copy is shown


def test_changed_model_file_warns(qtbot, window, models, tmp_path):
    w = window
    _open(qtbot, w, models["digit_sum"])
    p = w.session_actions.save_session(tmp_path / "s.lstmviz", embed=False)
    with open(models["digit_sum"], "ab") as fh:
        fh.write(b"\0")  # still loads (zip comment-ish tail), but the hash differs
    _open_session(qtbot, w, p)
    assert w.last_error is not None
    assert "changed since the session was saved" in w.last_error


def test_damaged_session_keeps_the_model_shown(qtbot, window, models, tmp_path):
    w = window
    _open(qtbot, w, models["digit_sum"])
    before = w.state.model
    bad = tmp_path / "bad.lstmviz"
    good = w.session_actions.save_session(tmp_path / "good.lstmviz")
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _open_session(qtbot, w, bad)
    assert w.last_error is not None
    assert "bad.lstmviz" in w.last_error
    assert w.error_dialog is not None
    assert w.error_dialog.isVisible()
    assert w.state.model is before


def test_open_path_and_drop_route_sessions(qtbot, window, models, tmp_path):
    w = window
    _open(qtbot, w, models["digit_sum"])
    w.state.set_t(4)
    p = w.session_actions.save_session(tmp_path / "d.lstmviz")
    w.state.set_t(0)
    w.open_path(str(p))
    qtbot.waitUntil(lambda: w.state.t == 4, timeout=20000)


def test_autosave_writes_the_current_state(qtbot, window, models, data_dir):
    w, a = window, window.session_actions
    assert a.autosave() is None  # nothing open yet: nothing written
    _open(qtbot, w, models["stacked_lstm"])
    w.state.set_t(2)
    p = a.autosave()
    assert p == a.autosave_path
    assert p.parent == data_dir
    s = Session.load(p)
    assert s.t == 2
    assert s.model_path == str(models["stacked_lstm"])
    assert s.model_bytes is not None  # small models are embedded in autosaves
    a.timer.setInterval(50)  # the timer writes it too
    w.state.set_t(1)
    qtbot.waitUntil(lambda: Session.load(a.autosave_path).t == 1, timeout=5000)


def test_clean_exit_leaves_no_marker(qtbot, data_dir, models):
    w = _make_window(qtbot)
    a = _install(w)
    _open(qtbot, w, models["digit_sum"])
    a.autosave()
    assert a.lock_path.is_file()
    assert a.autosave_path.is_file()
    w.close()
    assert not a.lock_path.exists()
    assert not a.autosave_path.exists()
    assert Session.load(data_dir / "last-session.lstmviz").model_path == str(models["digit_sum"])
    w2 = _make_window(qtbot)
    a2 = _install(w2)
    assert a2.offer_restore() is None  # a clean exit: nothing to offer
    w2.close()


def _dead_pid() -> int:
    pid = 999_999
    while SA._pid_alive(pid):
        pid -= 1
    return pid


def test_restore_offer_after_an_unclean_exit(qtbot, data_dir, models):
    data_dir.mkdir(parents=True)
    pid = _dead_pid()
    Session(model_path=str(models["stacked_lstm"]), t=1, layer=None, units=[2]).save(
        data_dir / f"autosave-{pid}-0.lstmviz"
    )
    (data_dir / f"running-{pid}-0.lock").write_text(f"{pid}\n")
    w = _make_window(qtbot)
    a = _install(w)
    qtbot.waitUntil(lambda: a.restore_box is not None and a.restore_box.isVisible(), timeout=5000)
    assert "did not close cleanly" in a.restore_box.text()
    assert not (data_dir / f"running-{pid}-0.lock").exists()  # offered once only
    qtbot.mouseClick(
        a.restore_box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton
    )
    qtbot.waitUntil(lambda: _settled(w) and w.state.t == 1, timeout=20000)
    assert w.state.model_path == str(models["stacked_lstm"])
    assert w.state.selected_units == [2]
    kept = list((data_dir / "recovered").glob("*.lstmviz"))  # kept after the restore
    assert len(kept) == 1 and kept[0].name.endswith(f"-{pid}-0.lstmviz")
    w.close()


def test_restore_declined(qtbot, data_dir, models):
    data_dir.mkdir(parents=True)
    pid = _dead_pid()
    Session(model_path=str(models["digit_sum"]), t=1).save(data_dir / f"autosave-{pid}-3.lstmviz")
    (data_dir / f"running-{pid}-3.lock").write_text(f"{pid}\n")
    w = _make_window(qtbot)
    a = _install(w)
    qtbot.waitUntil(lambda: a.restore_box is not None, timeout=5000)
    qtbot.mouseClick(a.restore_box.button(QMessageBox.StandardButton.No), Qt.MouseButton.LeftButton)
    assert w.state.model is None
    assert not w.runner.is_running()
    assert a.stale_autosaves() == []
    w.close()


CHILD = r"""
import sys, time
from PySide6.QtWidgets import QApplication
app = QApplication(["lstmviz"])
from lstmviz.app.main_window import MainWindow
w = MainWindow()
w.open_model(sys.argv[1])
def ready():
    d = w.state
    if d.trace is None or d.busy or w.runner.is_running():
        return False
    d.set_t(3)
    w.session_actions.autosave()
    print("ready", flush=True)
    return True
while not ready():
    app.processEvents()
    time.sleep(0.01)
while True:
    app.processEvents()
    time.sleep(0.05)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_kill_9_then_next_start_offers_restore(qtbot, data_dir, models):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LSTMVIZ_DATA_DIR": str(data_dir),
        "QT_QPA_PLATFORM": "offscreen",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(models["digit_sum"])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert list(data_dir.glob("running-*.lock"))  # the killed app could not clean up
    w = _make_window(qtbot)
    a = _install(w)
    qtbot.waitUntil(lambda: a.restore_box is not None, timeout=5000)
    qtbot.mouseClick(
        a.restore_box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton
    )
    qtbot.waitUntil(lambda: _settled(w) and w.state.t == 3, timeout=20000)
    assert w.state.model_path == str(models["digit_sum"])
    w.close()


def test_training_snapshots_round_trip(tmp_path):
    from lstmviz.train.core import ModelSpec, Snapshot

    spec = ModelSpec({"class_name": "Sequential", "config": {"layers": []}}, "m", "3.15")
    snaps = [
        Snapshot(
            e,
            2,
            10 * e,
            {
                "lstm": [np.full((3, 8), e, np.float32), np.ones((2, 8), np.float32)],
                "dense": [np.zeros((2, 1), np.float32)],
            },
            spec,
            {"loss": 1.0 / (e + 1)},
        )
        for e in range(3)
    ]
    s = Session(model_path=None, snapshots=[SA.snapshot_to_dict(sn) for sn in snaps])
    back = Session.load(s.save(tmp_path / "t.lstmviz"))
    assert back == s
    again = [SA.dict_to_snapshot(d) for d in back.snapshots]
    for a, b in zip(snaps, again, strict=True):
        assert (a.epoch, a.batch, a.step, a.metrics) == (b.epoch, b.batch, b.step, b.metrics)
        assert a.spec.config == b.spec.config
        assert a.weights.keys() == b.weights.keys()
        for k in a.weights:
            for x, y in zip(a.weights[k], b.weights[k], strict=True):
                np.testing.assert_array_equal(x, y)


def test_data_dir_never_the_real_one_in_tests(monkeypatch):
    monkeypatch.delenv("LSTMVIZ_DATA_DIR", raising=False)
    assert os.environ.get("LSTMVIZ_TESTING")
    d = SA.data_dir()
    assert str(d).startswith(str(Path(__import__("tempfile").gettempdir())))
    time.sleep(0)


def test_command_line_opens_a_session(qtbot, data_dir, models, tmp_path):
    from PySide6.QtGui import QImage

    from lstmviz.app import main as app_main

    p = Session(model_path=str(models["stacked_lstm"]), t=1, units=[2]).save(
        tmp_path / "cli.lstmviz", embed_model=True
    )
    out = tmp_path / "shot.png"
    assert app_main.main([str(p), "--screenshot", str(out), "--size", "1200x700"]) == 0
    img = QImage(str(out))
    assert (img.width(), img.height()) == (1200, 700)
    # a damaged session is an error naming the file
    bad = tmp_path / "bad.lstmviz"
    bad.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(LstmvizError, match=r"bad\.lstmviz"):
        app_main.main([str(bad), "--screenshot", str(tmp_path / "b.png")])


# ------------------------------------------------------------------------------------------
# with the real training panel (lstmviz.app.train_panel), training replaced by a fake loop
# ------------------------------------------------------------------------------------------
def _fake_snapshots(n: int):
    """Snapshots of the bundled digit_sum model with scaled weights (no TensorFlow); the
    first is the one training takes before its first batch (batch -1, step 0)."""
    import json
    import zipfile

    import lstmviz
    from lstmviz.train.core import ModelSpec, Snapshot

    path = EXAMPLES_DIR / "digit_sum.keras"
    with zipfile.ZipFile(path) as zf:
        spec = ModelSpec(json.loads(zf.read("config.json")), "digit_sum", "3")
    m = lstmviz.load_model(path)
    lw = m.layers["lstm"].weights
    dense = m.layers["digit_sum"]
    return [
        Snapshot(
            0,
            10 * i - 1,  # the weights after batch 10 i - 1; -1: before the first batch
            10 * i,
            {
                "lstm": [lw.kernel * (1 + 0.2 * i), lw.recurrent_kernel, lw.bias],
                "digit_sum": [dense.kernel, dense.bias],
            },
            spec,
            {"loss": 2.0 / (i + 1), "accuracy": 0.1 * i},
        )
        for i in range(n)
    ]


@pytest.fixture
def full_window(qtbot, data_dir):
    pytest.importorskip("lstmviz.app.train_panel")
    from lstmviz.app.main_window import MainWindow

    w = MainWindow()  # every menu and panel, as the app starts
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.panels is not None and w.session_actions is not None
    w.open_model(EXAMPLES_DIR / "digit_sum.keras")
    qtbot.waitUntil(lambda: _settled(w), timeout=20000)
    yield w
    if w.error_dialog is not None:
        w.error_dialog.close()
    w.close()


def test_autosave_at_each_training_snapshot_and_timeline_round_trip(
    qtbot, full_window, tmp_path, models
):
    w, panel, a = full_window, full_window.panels.widget("train"), full_window.session_actions
    snaps = _fake_snapshots(3)
    panel._switched_model = False  # as start() sets it
    for s in snaps:
        panel._add_snapshot(s)  # what the panel does when the worker hands one on
    qtbot.waitUntil(
        lambda: a.autosave_path.is_file() and len(Session.load(a.autosave_path).snapshots) == 3,
        timeout=10000,
    )
    panel.show_snapshot(1)
    w.state.set_t(2)
    p = a.save_session(tmp_path / "trained.lstmviz")

    _open(qtbot, w, models["stacked_lstm"])
    panel.snapshots = []
    _open_session(qtbot, w, p)
    assert w.last_error is None
    assert len(panel.snapshots) == 3
    for x, y in zip(snaps, panel.snapshots, strict=True):
        assert (x.step, x.metrics) == (y.step, y.metrics)
        np.testing.assert_array_equal(x.weights["lstm"][0], y.weights["lstm"][0])
    assert panel.shown_snapshot == 1
    assert w.state.t == 2
    assert "snapshot" in w.state.engine
    expect = snaps[1].engine_model().trace(w.state.x).layer(w.state.layer).hidden
    np.testing.assert_allclose(w.state.layer_trace.hidden, expect, rtol=1e-6)


def _patch_training(monkeypatch, body):
    """Replace the training loop (in this process, or the child-process runner) by ``body``;
    the panel, its worker and everything after stay real. No TensorFlow."""
    import importlib

    import lstmviz.train.backend as backend
    import lstmviz.train.core as core

    monkeypatch.setattr(backend, "keras_module", lambda *a, **k: None)

    def fake_train(task, config=None, progress=None, should_stop=None, on_snapshot=None, **kw):
        return body(should_stop, on_snapshot)

    monkeypatch.setattr(core, "train", fake_train)
    try:
        process = importlib.import_module("lstmviz.train.process")
    except ImportError:
        return

    def fake_in_process(task, config, *, on_message, should_stop=lambda: False, **kw):
        return body(should_stop, lambda snap: on_message("snapshot", snap))

    if hasattr(process, "train_in_process"):
        monkeypatch.setattr(process, "train_in_process", fake_in_process)


def test_training_worker_raising_mid_epoch_keeps_last_good_weights(qtbot, full_window, monkeypatch):
    w, panel, doc = full_window, full_window.panels.widget("train"), full_window.state
    snaps = _fake_snapshots(3)

    def body(should_stop, on_snapshot):
        on_snapshot(snaps[0])
        on_snapshot(snaps[1])
        raise RuntimeError("loss exploded in epoch 2, batch 7")

    _patch_training(monkeypatch, body)
    panel.start()
    qtbot.waitUntil(
        lambda: panel.state == "failed" and not panel.runner.is_running(), timeout=20000
    )
    assert "loss exploded in epoch 2, batch 7" in w.last_error
    assert w.error_dialog is not None
    assert w.error_dialog.isVisible()
    assert len(panel.snapshots) == 2
    # the last good weights are on screen
    expect = snaps[1].engine_model().trace(doc.x).layer(doc.layer).hidden
    np.testing.assert_allclose(doc.layer_trace.hidden, expect, rtol=1e-6)
    w.error_dialog.close()
    doc.set_t(3)  # still usable
    assert doc.t == 3

    # and the autosave holds the good snapshots
    def autosaved_both() -> bool:  # the writer thread may not have written it yet
        path = w.session_actions.autosave_path
        return path.is_file() and len(Session.load(path).snapshots) == 2

    qtbot.waitUntil(autosaved_both, timeout=30000)


def test_closing_the_window_during_training_stops_the_worker(qtbot, data_dir, monkeypatch, qtlog):
    pytest.importorskip("lstmviz.app.train_panel")
    import threading

    from lstmviz.app.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    w.open_model(EXAMPLES_DIR / "digit_sum.keras")
    qtbot.waitUntil(lambda: _settled(w), timeout=20000)
    panel = w.panels.widget("train")
    snaps = _fake_snapshots(1)
    running, stopped = threading.Event(), threading.Event()

    def body(should_stop, on_snapshot):
        on_snapshot(snaps[0])
        running.set()
        while not should_stop():  # the Keras callback's check, between batches
            time.sleep(0.005)
        stopped.set()
        raise RuntimeError("stopped")  # whatever happens after the stop is dropped

    _patch_training(monkeypatch, body)
    panel.start()
    assert running.wait(20)
    worker = panel.runner.current
    assert worker is not None
    assert worker.is_running()
    w.close()
    assert stopped.is_set()
    assert not worker.is_running()
    assert not any("Destroyed while thread" in r.message for r in qtlog.records)


def test_background_autosave_writes_the_newest_state(qtbot, window, models):
    w, a = window, window.session_actions
    _open(qtbot, w, models["digit_sum"])
    for t in (1, 2, 3, 4):  # requests while a write is in flight: the newest wins
        w.state.set_t(t)
        assert a.autosave(background=True) == a.autosave_path
    a.wait_for_autosave()
    assert Session.load(a.autosave_path).t == 4
    writer = a._writer  # one writer thread for every background autosave
    assert writer is not None and writer.is_alive()
    w.state.set_t(2)
    a.autosave(background=True)
    a.wait_for_autosave()
    assert Session.load(a.autosave_path).t == 2 and a._writer is writer
    w.close()  # waits for any write, then removes the autosave; the writer thread ends
    assert not a.autosave_path.exists()
    writer.join(10)
    assert not writer.is_alive()


def test_engine_choice_saved_and_restored(qtbot, full_window, tmp_path, monkeypatch):
    w = full_window
    choice = w.engine_choice
    calls = []
    monkeypatch.setattr(type(choice), "_keras_trace", lambda self: calls.append(1))  # no TF
    choice.set_engine("Keras")
    p = w.session_actions.save_session(tmp_path / "k.lstmviz")
    assert Session.load(p).engine == "keras"
    choice.set_engine("NumPy")
    _open_session(qtbot, w, p)
    assert choice.engine == "Keras"
    assert len(calls) >= 2


def test_window_layout_saved_and_restored(qtbot, window, models, tmp_path):
    w = window
    _open(qtbot, w, models["digit_sum"])
    w.detail_dock.hide()
    p = w.session_actions.save_session(tmp_path / "layout.lstmviz")
    assert "window_state" in Session.load(p).view
    w.detail_dock.show()
    _open_session(qtbot, w, p)
    assert not w.detail_dock.isVisible()
    assert "not restored" not in w.last_status


# ------------------------------------------------------------------------------------------
# nothing lost: embedded models, every crashed window's autosave, a data folder that fails
# ------------------------------------------------------------------------------------------
def _click_menu_entry(qtbot, menu, text):
    menu.popup(menu.parentWidget().mapToGlobal(menu.parentWidget().rect().center()))
    qtbot.waitUntil(menu.isVisible, timeout=5000)
    action = next(x for x in menu.actions() if text in x.text())
    qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center())


def _press_save(qtbot, w, target, monkeypatch):
    """File ▸ Save session…, clicked in the File menu, the dialog answering ``target``."""
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    _click_menu_entry(qtbot, w.menu("File"), "Save s&ession")
    qtbot.waitUntil(lambda: Path(target).is_file(), timeout=10000)


def test_resave_and_autosave_keep_an_embedded_model(qtbot, window, models, tmp_path, monkeypatch):
    w, a = window, window.session_actions
    _open(qtbot, w, models["digit_sum"])
    w.state.set_t(3)
    shared = a.save_session(tmp_path / "shared.lstmviz", embed=True)
    models["digit_sum"].unlink()  # a colleague receives the session only
    _open(qtbot, w, models["stacked_lstm"])
    _open_session(qtbot, w, shared)
    assert w.state.model.name == "digit_sum" and w.state.t == 3
    w.error_dialog.close()  # "using the copy embedded in the session"
    w.state.set_t(4)
    again = tmp_path / "again.lstmviz"
    _press_save(qtbot, w, again, monkeypatch)
    assert "embedded in it again" in w.last_status
    s = Session.load(again)
    assert s.model_bytes is not None and s.t == 4
    assert s.load_model().name == "digit_sum"  # reopens: the model came along
    auto = a.autosave()
    assert auto is not None
    assert Session.load(auto).load_model().name == "digit_sum"


def _crash(data_dir, pid, n, model, t):
    """What a window of process ``pid`` leaves when it is killed: its marker and autosave."""
    data_dir.mkdir(parents=True, exist_ok=True)
    Session(model_path=str(model), t=t).save(data_dir / f"autosave-{pid}-{n}.lstmviz")
    (data_dir / f"running-{pid}-{n}.lock").write_text(f"{pid}\n")


def test_every_crashed_window_keeps_its_autosave(qtbot, data_dir, models):
    pid = _dead_pid()
    _crash(data_dir, pid, 0, models["digit_sum"], t=1)  # two windows of one process
    _crash(data_dir, pid, 1, models["stacked_lstm"], t=2)
    w = _make_window(qtbot)
    a = _install(w)
    qtbot.waitUntil(lambda: a.restore_box is not None, timeout=5000)
    assert "other recovered session" in a.restore_box.informativeText()
    qtbot.mouseClick(a.restore_box.button(QMessageBox.StandardButton.No), Qt.MouseButton.LeftButton)
    kept = sorted((data_dir / "recovered").glob("*.lstmviz"))
    assert len(kept) == 2  # one per window, none overwritten
    labels = [r.label for r in a.recovered()]
    assert any("digit_sum.keras" in x for x in labels)
    assert any("stacked_lstm.keras" in x for x in labels)
    w.close()

    # the next crash (after declining) keeps its autosave too, beside the first two
    pid2 = _dead_pid() - 7
    _crash(data_dir, pid2, 0, models["digit_sum"], t=4)
    w2 = _make_window(qtbot)
    a2 = _install(w2)
    qtbot.waitUntil(lambda: a2.restore_box is not None, timeout=5000)
    qtbot.mouseClick(
        a2.restore_box.button(QMessageBox.StandardButton.No), Qt.MouseButton.LeftButton
    )
    assert len(list((data_dir / "recovered").glob("*.lstmviz"))) == 3
    assert all(p.is_file() for p in kept)

    # File ▸ Recover lists all three by time and model; clicking one restores it, and keeps it
    a2._fill_recover_menu()
    entries = [x.text() for x in a2.recover_menu.actions() if x.isEnabled() and x.text()]
    assert len(entries) == 3 and all(" — " in e for e in entries)
    _click_menu_entry(qtbot, a2.recover_menu, "stacked_lstm.keras")
    qtbot.waitUntil(lambda: _settled(w2) and w2.state.t == 2, timeout=20000)
    assert w2.state.model_path == str(models["stacked_lstm"])
    assert len(list((data_dir / "recovered").glob("*.lstmviz"))) == 3
    w2.close()


def test_an_unreadable_autosave_is_kept_not_deleted(qtbot, data_dir, models):
    pid = _dead_pid()
    data_dir.mkdir(parents=True)
    (data_dir / f"autosave-{pid}-0.lstmviz").write_bytes(b"PK\x03\x04 torn")
    (data_dir / f"running-{pid}-0.lock").write_text(f"{pid}\n")
    w = _make_window(qtbot)
    a = _install(w)
    qtbot.waitUntil(lambda: "cannot be read" in w.last_status, timeout=5000)
    assert a.restore_box is None
    (kept,) = a.recovered()
    assert not kept.readable and kept.path.is_file()
    w.close()


def test_a_data_folder_that_cannot_be_created_falls_back_with_a_warning(
    qtbot, tmp_path, monkeypatch, models
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    monkeypatch.setenv("LSTMVIZ_DATA_DIR", str(blocker / "lstmviz"))
    w = _make_window(qtbot)
    a = _install(w)
    qtbot.waitUntil(lambda: a.data_warning_box is not None and a.data_warning_box.isVisible())
    assert str(blocker / "lstmviz") in a.data_warning_box.text()
    assert "temporary folder" in a.data_warning_box.text()
    texts = [x.text() for x in w.menu("File").actions()]
    assert "Save s&ession…" in texts and "Open &session…" in texts and "&Recover" in texts
    assert a.dir.is_dir() and a.dir != blocker / "lstmviz"
    _open(qtbot, w, models["digit_sum"])
    auto = a.autosave()
    assert auto is not None and auto.parent == a.dir  # autosave works, in the fallback
    qtbot.mouseClick(
        a.data_warning_box.button(QMessageBox.StandardButton.Ok), Qt.MouseButton.LeftButton
    )
    w.close()


def test_background_autosave_waits_for_a_trace_in_progress(qtbot, window, models, monkeypatch):
    """An autosave asked for while a trace is computed is written once the trace is in (a
    session of tens of MB written beside a trace stalled the window), with the new state."""
    from lstmviz.app import session_actions

    w, a = window, window.session_actions
    _open(qtbot, w, models["digit_sum"])
    a._after_busy.setInterval(20)
    monkeypatch.setattr(session_actions, "BUSY_RETRY_MS", 20)
    a.autosave_path.unlink(missing_ok=True)
    w.state._set_busy("Tracing 6 timesteps")  # as the state does while its runner traces
    assert a.autosave(background=True) == a.autosave_path
    qtbot.wait(200)
    a.wait_for_autosave()
    assert not a.autosave_path.exists()  # nothing written during the trace
    w.state.set_t(3)
    w.state._set_busy("")  # the trace is in
    qtbot.waitUntil(a.autosave_path.is_file, timeout=5000)
    a.wait_for_autosave()
    assert Session.load(a.autosave_path).t == 3


def test_background_autosave_waits_while_the_views_draw_a_big_trace(
    qtbot, window, models, monkeypatch
):
    """A big trace reaches the views over several event-loop turns: an autosave asked for
    meanwhile is written once every view has drawn it (the writer would hold the GIL)."""
    from lstmviz.app import session_actions, stagger

    w, a = window, window.session_actions
    _open(qtbot, w, models["digit_sum"])
    a._after_busy.setInterval(20)
    monkeypatch.setattr(session_actions, "BUSY_RETRY_MS", 20)
    monkeypatch.setattr(stagger, "BIG_TRACE_BYTES", 0)  # every trace counts as big
    a.autosave_path.unlink(missing_ok=True)
    w.state.set_input(w.state.x)  # traced at once (small); its views draw over the next turns
    assert stagger.pending(w.state) > 0
    assert a.autosave(background=True) == a.autosave_path
    a.wait_for_autosave()
    assert not a.autosave_path.exists()  # nothing written while the views draw
    qtbot.waitUntil(a.autosave_path.is_file, timeout=5000)  # written once they have drawn
    assert stagger.pending(w.state) == 0
