"""Acceptance: the real main window, driven with the mouse and the keyboard as a user drives it.

Every entry of every menu is clicked with the mouse, every shortcut pressed, every button of
every panel clicked, and each must show a visible effect on the state or a view. A menu entry
or a shortcut added later without an effect here fails :func:`test_every_menu_entry_is_covered`
and :func:`test_the_key_table_is_what_the_window_binds`. Layout invariants are read from the
widgets at 1600x900 and 1920x1080 with each panel open, and a screenshot is checked pixel by
pixel against the colour map.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialog,
    QLabel,
    QWidget,
)

from lstmviz.examples import EXAMPLES_DIR
from lstmviz.io.session import Session

from .acceptance import activate, buttons, click, click_menu, menu_entries, press, wait_settled

DIGITS = EXAMPLES_DIR / "digit_sum.keras"
STACKED = EXAMPLES_DIR / "stacked_lstm.keras"
ADDER = EXAMPLES_DIR / "binary_addition.keras"
TOY = EXAMPLES_DIR / "toy_classification.keras"
TRAIN_TIMEOUT = 180_000


@pytest.fixture
def app(full_window, answers):
    """The whole window, as the ``lstmviz`` command builds it, showing the digit-sum example."""
    return full_window(DIGITS)


def _dialog(title_part: str) -> QDialog | None:
    for top in QApplication.topLevelWidgets():
        if isinstance(top, QDialog) and top.isVisible() and title_part in top.windowTitle():
            return top
    return None


def _raised(dock) -> bool:
    """Visible and on top of its tab group (not behind another tab)."""
    return dock.isVisible() and not dock.visibleRegion().isEmpty()


def _open(qtbot, w, path):
    w.open_model(path)
    qtbot.waitUntil(lambda: w.state.model_path == str(path), timeout=20000)
    wait_settled(qtbot, w)


# --- the effect of each menu entry ---------------------------------------------------------
def _file_entries(qtbot, w, answers, tmp_path):
    answers["Open a model"] = str(ADDER)
    click_menu(qtbot, w, "File", "Open model…")
    qtbot.waitUntil(lambda: w.state.model_path == str(ADDER), timeout=20000)
    wait_settled(qtbot, w)
    _open(qtbot, w, DIGITS)

    x = np.eye(10, dtype=np.float32)[[1, 2, 3, 4, 5, 6, 7]]
    np.save(tmp_path / "seven.npy", x)
    answers["Open an input sequence"] = str(tmp_path / "seven.npy")
    click_menu(qtbot, w, "File", "Open input…")
    qtbot.waitUntil(lambda: w.state.timesteps == 7, timeout=20000)

    click_menu(qtbot, w, "File", "Examples", "Gallery…")
    qtbot.waitUntil(lambda: w.gallery.isVisible(), timeout=5000)
    w.gallery.close()
    from lstmviz.examples import list_examples

    for ex in list_examples():
        click_menu(qtbot, w, "File", "Examples", ex.title)
        qtbot.waitUntil(lambda p=str(ex.path): w.state.model_path == p, timeout=30000)
        wait_settled(qtbot, w)
    recent = w.recent_files()
    assert recent and recent[0] == str(Path(list_examples()[-1].path).resolve())
    _open(qtbot, w, DIGITS)
    click_menu(qtbot, w, "File", "Recent", str(Path(list_examples()[-1].path).resolve()))
    qtbot.waitUntil(lambda: w.state.model_path == str(list_examples()[-1].path), timeout=30000)
    wait_settled(qtbot, w)
    _open(qtbot, w, DIGITS)

    w.state.set_t(3)
    answers["Save session"] = str(tmp_path / "work.lstmviz")
    click_menu(qtbot, w, "File", "Save session…")
    qtbot.waitUntil((tmp_path / "work.lstmviz").is_file, timeout=10000)
    assert Session.load(tmp_path / "work.lstmviz").t == 3
    w.state.set_t(0)
    answers["Open session"] = str(tmp_path / "work.lstmviz")
    click_menu(qtbot, w, "File", "Open session…")
    qtbot.waitUntil(lambda: w.state.t == 3, timeout=20000)

    # File > Recover lists every kept autosave; clicking one opens it
    kept = w.session_actions.recovered_dir
    kept.mkdir(parents=True, exist_ok=True)
    Session(model_path=str(STACKED), t=1).save(kept / "autosave-kept.lstmviz")
    label = w.session_actions.recovered()[0].label
    click_menu(qtbot, w, "File", "Recover", label)
    qtbot.waitUntil(lambda: w.state.model_path == str(STACKED) and w.state.t == 1, timeout=20000)
    wait_settled(qtbot, w)
    _open(qtbot, w, DIGITS)

    embed = w.session_actions.embed_action
    before = embed.isChecked()
    click_menu(qtbot, w, "File", "Embed the model in saved sessions")
    assert embed.isChecked() is not before

    for entry, title in (
        ("Figure (PNG, SVG, PDF)…", "figure"),
        ("Animation (GIF, MP4)…", "animation"),
        ("Trace data (NPZ, CSV, JSON)…", "data"),
    ):
        click_menu(qtbot, w, "File", "Export", entry)
        qtbot.waitUntil(lambda t=title: _dialog("Export") is not None, timeout=5000)
        dlg = _dialog("Export")
        assert title in dlg.windowTitle().lower()
        dlg.close()

    answers["Save a screenshot"] = str(tmp_path / "shot.png")
    click_menu(qtbot, w, "File", "Save screenshot…")
    assert (tmp_path / "shot.png").read_bytes()[:4] == b"\x89PNG"


def _view_entries(qtbot, w, answers, tmp_path):
    click_menu(qtbot, w, "View", "Presentation mode")
    assert w.presentation and w.state.options.presentation
    press(qtbot, w, "Escape")
    assert not w.presentation

    _open(qtbot, w, STACKED)
    click_menu(qtbot, w, "View", "All layers at once")
    assert w.state.options.all_layers and w.heatmaps.all_layers
    assert len(w.heatmaps.maps) == 3 * len(w.state.layer_names)
    click_menu(qtbot, w, "View", "All layers at once")
    assert not w.heatmaps.all_layers
    _open(qtbot, w, DIGITS)

    vb = w.heatmaps.maps["cell"].plot.vb
    vb.setRange(xRange=(1, 2), yRange=(3, 4), padding=0)
    click_menu(qtbot, w, "View", "Reset zoom")
    (x0, x1), _ = vb.viewRange()
    assert x0 <= 0.01 and x1 >= w.state.timesteps - 0.01

    w.panels.open("what_if")
    click_menu(qtbot, w, "View", "Reset layout")
    assert not w.panels.docks["what_if"].isVisible()
    assert w.model_dock.isVisible() and w.detail_dock.isVisible()

    for entry, dock in (("Model", w.model_dock), ("Unit detail and output", w.detail_dock)):
        click_menu(qtbot, w, "View", entry)
        assert not dock.isVisible()
        click_menu(qtbot, w, "View", entry)
        assert dock.isVisible()

    _lecture_view_entries(qtbot, w)

    click_menu(qtbot, w, "View", "Engine", "Keras")
    qtbot.waitUntil(lambda: w.state.engine == "Keras", timeout=TRAIN_TIMEOUT)
    assert "engine: Keras" in w.engine_label.text()
    click_menu(qtbot, w, "View", "Engine", "NumPy")
    qtbot.waitUntil(lambda: w.state.engine == "NumPy", timeout=20000)


def _lecture_view_entries(qtbot, w):
    """The cell diagram, presentation mode's big view, predict-then-reveal, colour levels."""
    click_menu(qtbot, w, "View", "Cell diagram")
    assert _raised(w.panels.docks["diagram"])
    assert w.panels.built("diagram").view.isVisible()
    click_menu(qtbot, w, "View", "Presentation view: diagram, equations, heatmaps")
    assert w.panels.docks["diagram"].isVisible()  # outside presentation: the diagram panel
    w.set_presentation(True, fullscreen=False)
    before = w.state.options.presentation_view
    press(qtbot, w, "V")  # the menu bar is hidden in presentation mode: its key
    assert w.state.options.presentation_view != before
    press(qtbot, w, "Escape")
    click_menu(qtbot, w, "View", "Hide the future (predict, then reveal)")
    assert w.state.options.hide_future and w.hide_future_action.isChecked()
    assert w.token_strip.hidden(w.state.t + 1)
    click_menu(qtbot, w, "View", "Hide the future (predict, then reveal)")
    assert not w.state.options.hide_future
    lt = w.state.layer_trace
    click_menu(qtbot, w, "View", "Colour levels", "Lock colour levels")
    assert w.state.options.lock_levels and w.state.level_lock.locked
    kept = w.state.color_levels("cell", lt)
    w.state.set_text("9 9 9 9 9 9 9 9 9 9 9 9")  # another input: the locked levels stay
    assert w.state.color_levels("cell") == kept
    click_menu(qtbot, w, "View", "Colour levels", "Widen to the trace on screen")
    lo, hi = w.state.color_levels("cell")
    assert lo <= kept[0] and hi >= kept[1]
    click_menu(qtbot, w, "View", "Colour levels", "Lock colour levels")
    assert not w.state.level_lock.locked


def _lesson_entries(qtbot, w, answers, tmp_path):
    lesson = (
        Path(__file__).resolve().parents[2]
        / "lstmviz"
        / "assets"
        / "lessons"
        / "digit_sum.lstmviz-lesson"
    )
    answers["Open a lesson"] = str(lesson)
    click_menu(qtbot, w, "File", "Open lesson…")
    qtbot.waitUntil(lambda: w.lessons.run is not None and w.lessons.run.asking, timeout=20000)
    wait_settled(qtbot, w)
    click_menu(qtbot, w, "Lesson", "Reveal the answer")
    assert not w.lessons.run.asking and not w.state.options.hide_answer
    click_menu(qtbot, w, "Lesson", "Next step")
    qtbot.waitUntil(lambda: w.lessons.run.index == 1, timeout=20000)
    assert w.state.t == w.lessons.run.step.t
    click_menu(qtbot, w, "Lesson", "Previous step")
    qtbot.waitUntil(lambda: w.lessons.run.index == 0, timeout=20000)
    click_menu(qtbot, w, "Lesson", "Presenter view")
    qtbot.waitUntil(lambda: w.presenter is not None and w.presenter.isVisible(), timeout=5000)
    assert "step 1 of 5" in w.presenter.where.text()
    w.presenter.close()
    w.presenter = None
    activate(qtbot, w)
    click_menu(qtbot, w, "Lesson", "Add this view as a step…")
    qtbot.waitUntil(lambda: w.lessons.dialog.isVisible(), timeout=5000)
    w.lessons.dialog.caption.setPlainText("A step added in the app.")
    click(qtbot, w.lessons.dialog.buttons.button(w.lessons.dialog.buttons.StandardButton.Ok))
    assert len(w.lessons.run.lesson.steps) == 6 and w.lessons.run.index == 1
    answers["Save lesson"] = str(tmp_path / "saved.lstmviz-lesson")
    click_menu(qtbot, w, "Lesson", "Save lesson…")
    assert (tmp_path / "saved.lstmviz-lesson").is_file()
    # exports of a one-step lesson (a new one: the view on screen) keep this test quick
    w.lessons.close_lesson()
    w.lessons.add_step("One step.")
    assert len(w.lessons.run.lesson.steps) == 1
    for entry, title, name, head in (
        ("Export handout (PDF)…", "Export handout", "h.pdf", b"%PDF-"),
        ("Export video (MP4)…", "Export video", "v.mp4", None),
    ):
        answers[title] = str(tmp_path / name)
        with qtbot.waitSignal(w.lessons.exported, timeout=TRAIN_TIMEOUT):
            click_menu(qtbot, w, "Lesson", entry)
        data = (tmp_path / name).read_bytes()
        assert data[:5] == head if head else data[4:8] == b"ftyp"
    click_menu(qtbot, w, "Lesson", "Close lesson")
    assert w.lessons.run is None and not w.story_bar.isVisible()


def _train_entries(qtbot, w, answers, tmp_path):
    from lstmviz.train.tasks import TrainConfig

    click_menu(qtbot, w, "Train", "Train")
    panel = w.panels.built("train")
    assert panel is not None and _raised(w.panels.docks["train"])
    panel.epochs.setValue(50)  # long enough to pause and cancel it
    panel.steps.setValue(50)
    del TrainConfig
    click_menu(qtbot, w, "Train", "Start training")
    qtbot.waitUntil(lambda: panel.state == "training", timeout=TRAIN_TIMEOUT)
    click_menu(qtbot, w, "Train", "Pause / resume")
    qtbot.waitUntil(lambda: panel.state == "paused", timeout=20000)
    click_menu(qtbot, w, "Train", "Pause / resume")
    qtbot.waitUntil(lambda: panel.state == "training", timeout=20000)
    click_menu(qtbot, w, "Train", "Cancel")
    qtbot.waitUntil(lambda: panel.state == "cancelled", timeout=60000)
    answers["Save trained model"] = str(tmp_path / "trained.keras")
    click_menu(qtbot, w, "Train", "Save trained model as .keras…")
    qtbot.waitUntil((tmp_path / "trained.keras").is_file, timeout=60000)


def _analysis_entries(qtbot, w, answers, tmp_path):
    for key, spec in w.panels.specs.items():
        if spec.menu != "Analysis":
            continue
        click_menu(qtbot, w, "Analysis", spec.title)
        assert _raised(w.panels.docks[key]), key
        assert w.panels.built(key) is not None
        press(qtbot, w, spec.shortcut)  # pressing it again raises, never closes
        assert _raised(w.panels.docks[key]), key


def _help_entries(qtbot, w, answers, tmp_path):
    click_menu(qtbot, w, "Help", "Keyboard shortcuts")
    qtbot.waitUntil(lambda: w.shortcuts_box.isVisible(), timeout=5000)
    assert "Ctrl+Alt+3" in w.shortcuts_box.text()
    w.shortcuts_box.close()
    click_menu(qtbot, w, "Help", "About lstmviz")
    qtbot.waitUntil(lambda: w.about_box.isVisible(), timeout=5000)
    assert "lstmviz" in w.about_box.text()
    w.about_box.close()


COVERED = {
    "File": _file_entries,
    "View": _view_entries,
    "Train": _train_entries,
    "Analysis": _analysis_entries,
    "Lesson": _lesson_entries,
    "Help": _help_entries,
}


def test_every_menu_entry_is_covered(app):
    """Each entry of the menu bar has its effect checked in this file (see COVERED)."""
    checked = {
        ("File", "Open model…"),
        ("File", "Open input…"),
        ("File", "Examples", "Gallery…"),
        ("File", "Open session…"),
        ("File", "Save session…"),
        ("File", "Embed the model in saved sessions"),
        ("File", "Export", "Figure (PNG, SVG, PDF)…"),
        ("File", "Export", "Animation (GIF, MP4)…"),
        ("File", "Export", "Trace data (NPZ, CSV, JSON)…"),
        ("File", "Save screenshot…"),
        ("File", "Quit"),
        ("View", "Presentation mode"),
        ("View", "All layers at once"),
        ("View", "Reset zoom"),
        ("View", "Reset layout"),
        ("View", "Model"),
        ("View", "Unit detail and output"),
        ("View", "Engine", "NumPy"),
        ("View", "Engine", "Keras"),
        ("View", "Cell diagram"),
        ("View", "Presentation view: diagram, equations, heatmaps"),
        ("View", "Hide the future (predict, then reveal)"),
        ("View", "Colour levels", "Lock colour levels"),
        ("View", "Colour levels", "Widen to the trace on screen"),
        ("File", "Open lesson…"),
        ("Lesson", "Next step"),
        ("Lesson", "Previous step"),
        ("Lesson", "Reveal the answer"),
        ("Lesson", "Add this view as a step…"),
        ("Lesson", "Save lesson…"),
        ("Lesson", "Export handout (PDF)…"),
        ("Lesson", "Export video (MP4)…"),
        ("Lesson", "Presenter view"),
        ("Lesson", "Close lesson"),
        ("Train", "Train"),
        ("Train", "Start training"),
        ("Train", "Pause / resume"),
        ("Train", "Cancel"),
        ("Train", "Save trained model as .keras…"),
        ("Help", "Keyboard shortcuts"),
        ("Help", "About lstmviz"),
    }
    analysis = {("Analysis", s.title) for s in app.panels.specs.values() if s.menu == "Analysis"}
    from lstmviz.examples import list_examples

    examples = {("File", "Examples", ex.title) for ex in list_examples()}
    # Recent and Recover list files (checked by clicking one in the File test)
    entries = {
        e for e in menu_entries(app) if e[:2] not in (("File", "Recent"), ("File", "Recover"))
    }
    missing = entries - checked - analysis - examples
    assert not missing, f"menu entries without an acceptance check: {sorted(missing)}"


@pytest.mark.parametrize("menu", ["File", "View", "Analysis", "Lesson", "Help"])
def test_menu_entries_have_their_effect(app, qtbot, answers, tmp_path, menu):
    COVERED[menu](qtbot, app, answers, tmp_path)
    assert app.last_error is None, app.last_error
    assert not answers, f"file dialogs expected but never shown: {answers}"


def test_train_menu_trains_pauses_cancels_and_saves(app, qtbot, answers, tmp_path):
    pytest.importorskip("tensorflow")
    _train_entries(qtbot, app, answers, tmp_path)
    assert app.last_error is None, app.last_error


def test_quit_closes_the_window(app, qtbot):
    click_menu(qtbot, app, "File", "Quit")
    qtbot.waitUntil(lambda: not app.isVisible(), timeout=5000)


# --- keys ------------------------------------------------------------------------------------
def test_the_key_table_is_what_the_window_binds(app):
    """Every shortcut the window has is in the key table (F1, --help) and vice versa."""
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QAbstractButton

    from lstmviz.app.keys import bound_keys

    for key in app.panels.specs:
        app.panels.widget(key)  # panels' own buttons have keys too
    bound: set[str] = set()
    for a in app.findChildren(QAction):
        for seq in a.shortcuts():
            bound.add(seq.toString())
    for b in app.findChildren(QAbstractButton):
        if not b.shortcut().isEmpty():
            bound.add(b.shortcut().toString())
    table = {QKeySequence(k).toString() for k in bound_keys()}
    assert bound == table, (
        f"bound but not in the key table: {sorted(bound - table)}; "
        f"in the table but not bound: {sorted(table - bound)}"
    )


def test_stepping_keys(app, qtbot):
    w = app
    w.state.set_text("1 2 3 4 5 6 7 8")
    for key, t in (
        ("Right", 1),
        ("PgDown", 2),
        ("PgUp", 1),
        ("Left", 0),
        ("End", 7),
        ("Home", 0),
    ):
        press(qtbot, w.heatmaps, key)
        assert w.state.t == t, key
        assert w.transport.slider.value() == t and w.heatmaps.maps["cell"].cursor_t() == t
    speed = w.transport.speed_index
    press(qtbot, w.heatmaps, "+")
    assert w.transport.speed_index > speed
    press(qtbot, w.heatmaps, "-")
    assert w.transport.speed_index == speed
    press(qtbot, w.heatmaps, "Space")
    assert w.transport.playing
    qtbot.waitUntil(lambda: w.state.t >= 1, timeout=10000)
    press(qtbot, w.heatmaps, "Space")
    assert not w.transport.playing


def test_clicker_start_and_blank_keys(app, qtbot):
    """A presentation clicker's other buttons: F5 (start the show) turns presentation mode
    on; B or the full stop blanks the window (black), and the next key -- the clicker's
    PageDown included -- brings the view back without stepping; typed into the input, B is
    a letter."""
    w = app
    w.state.set_text("1 2 3 4 5")
    wait_settled(qtbot, w)
    press(qtbot, w.heatmaps, "F5")
    assert w.presentation
    w.showNormal()
    w.resize(1280, 720)
    qtbot.waitUntil(lambda: w.width() == 1280, timeout=5000)
    for key in ("B", "."):
        t = w.state.t
        press(qtbot, QApplication.focusWidget() or w, key)
        qtbot.waitUntil(w.blank.isVisible, timeout=5000)
        image = w.grab().toImage()
        assert w.blank.geometry() == w.rect()
        for x, y in ((10, 10), (640, 360), (1270, 710)):  # black over every view
            assert image.pixelColor(x, y).name() == "#000000", (key, x, y)
        press(qtbot, QApplication.focusWidget() or w, "PgDown")
        assert not w.blank.isVisible() and w.state.t == t and w.presentation
    press(qtbot, w.heatmaps, "PgDown")  # then the clicker steps again
    assert w.state.t == t + 1
    press(qtbot, w.heatmaps, "Escape")
    assert not w.presentation
    edit = w.editor.edit
    edit.setFocus()
    edit.clear()
    qtbot.keyClicks(edit, "b.")
    assert edit.text() == "b." and not w.blank.isVisible()


def test_leaving_presentation_mode_keeps_the_window_size(app, qtbot):
    """F11, the three big views (V, V, V) and a panel in large type, then Escape: the window
    comes back at its size, not wider than the screen (the Model dock kept the least width of
    its large type, and the window grew from 1600 to 1975 px)."""
    w = app
    w.resize(1600, 900)
    qtbot.waitUntil(lambda: w.width() == 1600, timeout=5000)
    least = w.minimumSizeHint()
    widths = (w.model_dock.width(), w.detail_dock.width())
    press(qtbot, w.heatmaps, "F11")
    assert w.presentation
    w.showNormal()
    w.resize(1600, 900)
    qtbot.waitUntil(lambda: w.width() == 1600, timeout=5000)
    for _ in range(3):
        press(qtbot, QApplication.focusWidget() or w, "V")
        _settle(qtbot, w)
        w.grab()  # painted, as on the projector
    press(qtbot, w, w.panels.specs["what_if"].shortcut)  # a panel built in large type
    qtbot.waitUntil(lambda: _raised(w.panels.docks["what_if"]), timeout=5000)
    _settle(qtbot, w)
    press(qtbot, QApplication.focusWidget() or w, "Escape")
    assert not w.presentation
    _settle(qtbot, w)
    assert (w.width(), w.height()) == (1600, 900)
    assert w.minimumSizeHint().width() <= least.width() + 40, (least, w.minimumSizeHint())
    # the side docks as wide as before (the Model dock came back 409 px wide, not 288)
    assert abs(w.model_dock.width() - widths[0]) <= 4, (w.model_dock.width(), widths)
    assert abs(w.detail_dock.width() - widths[1]) <= 4, (w.detail_dock.width(), widths)
    assert not _layout_problems(w)


def test_panel_shortcuts_open_raised_and_focused(app, qtbot):
    w = app
    for key, spec in w.panels.specs.items():
        press(qtbot, w, spec.shortcut)
        assert _raised(w.panels.docks[key]), key
        press(qtbot, w, spec.shortcut)  # again: still there, never closed
        assert _raised(w.panels.docks[key]), key
    press(qtbot, w, "F1")
    qtbot.waitUntil(lambda: w.shortcuts_box.isVisible(), timeout=5000)
    w.shortcuts_box.close()
    press(qtbot, w, "F11")
    assert w.presentation
    press(qtbot, w, "Escape")
    assert not w.presentation


# --- the buttons of the core views and of every panel ----------------------------------------
def test_core_buttons(app, qtbot, answers, tmp_path):
    w = app
    w.editor.edit.setText("9 9 9")
    click(qtbot, w.editor.apply_button)
    assert w.state.input_text() == "9 9 9"
    np.save(tmp_path / "four.npy", np.eye(10, dtype=np.float32)[[1, 2, 3, 4]])
    answers["Open an input sequence"] = str(tmp_path / "four.npy")
    click(qtbot, w.editor.load_button)
    qtbot.waitUntil(lambda: w.state.timesteps == 4, timeout=20000)
    tr = w.transport
    for button, t in (
        (tr.end_button, 3),
        (tr.start_button, 0),
        (tr.forward_button, 1),
        (tr.back_button, 0),
    ):
        click(qtbot, button)
        assert w.state.t == t
    speed = tr.speed_index
    click(qtbot, tr.faster_button)
    assert tr.speed_index > speed
    click(qtbot, tr.slower_button)
    assert tr.speed_index == speed
    click(qtbot, tr.play_button)
    assert tr.playing
    click(qtbot, tr.play_button)
    assert not tr.playing
    _open(qtbot, w, STACKED)
    box = w.selection_panel.all_layers
    click(qtbot, box)
    assert w.state.options.all_layers and box.isChecked()
    click(qtbot, box)
    assert not w.state.options.all_layers
    # every button of the core views was pressed above
    core = set(buttons(w.centralWidget())) | set(buttons(w.model_dock.widget()))
    pressed = {
        w.editor.apply_button,
        w.editor.load_button,
        tr.end_button,
        tr.start_button,
        tr.forward_button,
        tr.back_button,
        tr.faster_button,
        tr.slower_button,
        tr.play_button,
        box,
    }
    assert core <= pressed, f"buttons without a check: {[b.text() for b in core - pressed]}"


def test_what_if_buttons(app, qtbot):
    w = app
    p = w.panels.open("what_if")
    p.step.setValue(2)
    p.token.setCurrentIndex(9)
    click(qtbot, p.run_btn)
    qtbot.waitUntil(lambda: p.result is not None, timeout=20000)  # computed off the GUI thread
    assert not p.stack.is_empty
    assert "changed step 2" in p.summary.text()
    # the time axes name the change at its step: the old token, then the new one
    before = w.state.token_labels()[2]

    def labels(plot):
        return [text for _, text in plot.getAxis("bottom")._tickLevels[0]]

    assert f"{before}→9" in labels(p.div_plot)
    assert labels(p.side_plots[0])[2] == before and labels(p.side_plots[1])[2] == "9"
    click(qtbot, p.apply_btn)
    assert w.state.token_labels()[2] == "9"
    assert w.last_error is None


def test_compare_buttons(app, qtbot, answers):
    w = app
    p = w.panels.open("compare")
    click(qtbot, p.pin_btn)
    assert p.pinned is not None
    w.state.set_text("1 2 3 4 5")
    assert not p.stack.is_empty and p.comparison is not None
    click(qtbot, p.clear_btn)
    assert p.pinned is None and p.stack.is_empty
    answers["Model B"] = str(DIGITS)
    click(qtbot, p.open_btn)
    qtbot.waitUntil(lambda: p.comparison is not None, timeout=20000)
    assert w.last_error is None


def test_check_buttons(app, qtbot, answers, tmp_path):
    from tests.app.test_analysis_panels import _buggy

    w = app
    p = w.panels.open("check")
    st = _buggy(w.state.layer_trace)
    np.savez(tmp_path / "mine.npz", hidden=st["hidden"], cell=st["cell"])
    answers["Student arrays"] = str(tmp_path / "mine.npz")
    click(qtbot, p.load_btn)
    qtbot.waitUntil(lambda: p.diagnosis is not None, timeout=20000)
    assert not p.stack.is_empty
    w.state.set_t(0)
    click(qtbot, p.goto_btn)
    assert w.state.t == p.diagnosis.first_step
    # its outlines on the main heatmaps go with the panel and come back with it
    assert p.overlay_points("cell") > 0
    dock = w.panels.docks["check"]
    click(qtbot, dock.findChild(QAbstractButton, "qt_dockwidget_closebutton"))
    qtbot.waitUntil(lambda: not dock.isVisible(), timeout=5000)
    assert p.overlay_points("cell") == 0
    press(qtbot, w, w.panels.specs["check"].shortcut)
    qtbot.waitUntil(lambda: p.overlay_points("cell") > 0, timeout=5000)


def test_train_panel_buttons(app, qtbot, answers, tmp_path):
    pytest.importorskip("tensorflow")
    w = app
    p = w.panels.open("train")
    click(qtbot, p.follow)
    assert not p.follow.isChecked()
    click(qtbot, p.follow)
    click(qtbot, p.own_arch)
    assert p.own_arch.isChecked()
    click(qtbot, p.own_arch)
    p.epochs.setValue(50)
    click(qtbot, p.start_btn)
    qtbot.waitUntil(lambda: p.state == "training", timeout=TRAIN_TIMEOUT)
    click(qtbot, p.pause_btn)
    qtbot.waitUntil(lambda: p.state == "paused", timeout=20000)
    click(qtbot, p.cancel_btn)
    qtbot.waitUntil(lambda: p.state == "cancelled", timeout=60000)
    answers["Save trained model"] = str(tmp_path / "t.keras")
    click(qtbot, p.save_btn)
    qtbot.waitUntil((tmp_path / "t.keras").is_file, timeout=60000)


# --- layout at the sizes users have -------------------------------------------------------
SIZES = [(1600, 900), (1920, 1080)]


#: The least data area (inside the axes) of any plot on screen, in pixels: ticks, bars and
#: curves stay readable.
PLOT_DATA_MIN_PX = (60, 80)  # width, height


def _crowded_ticks(item) -> list[str]:
    """Tick labels set by the app (not pyqtgraph's own, which space themselves) that run into
    each other: "10111213" instead of 10, 11, 12, 13."""
    from PySide6.QtGui import QFontMetrics

    out = []
    (x0, x1), (y0, y1) = item.vb.viewRange()
    for side, lo, hi, length in (
        ("bottom", x0, x1, item.vb.width()),
        ("left", y0, y1, item.vb.height()),
    ):
        axis = item.getAxis(side)
        levels = getattr(axis, "_tickLevels", None)
        if not axis.isVisible() or not levels or hi <= lo or not axis.style["showValues"]:
            continue
        fm = QFontMetrics(axis.style["tickFont"] or axis.font())
        ticks = sorted((v, str(t)) for v, t in levels[0] if lo <= v <= hi and str(t))
        px = length / (hi - lo)
        for (va, a), (vb, b) in itertools.pairwise(ticks):
            gap = (vb - va) * px
            need = (  # 4 px between two labels, rows of labels 80% of a line apart
                (fm.horizontalAdvance(a) + fm.horizontalAdvance(b)) / 2 + 4
                if side == "bottom"
                else fm.height() * 0.8
            )
            if gap < need:
                out.append(f"{side} tick labels {a!r} and {b!r} {gap:.0f} px apart")
                break
    return out


def _axis_cut(view, item) -> list[str]:
    """Axis titles and tick labels that reach out of the plot widget (cut at its edge)."""
    from PySide6.QtCore import QRectF

    # what of the view is on screen: its viewport, less what its parents cut off (a widget
    # taller than the room its layout has is drawn cut at the bottom)
    port = view.viewport()
    seen = port.visibleRegion().boundingRect() & port.rect()
    shown = view.mapToScene(seen).boundingRect().adjusted(-1, -1, 1, 1)
    out = []
    for side in ("left", "bottom", "right", "top"):
        axis = item.getAxis(side)
        if axis is None or not axis.isVisible():
            continue
        if axis.label.isVisible() and axis.labelText:
            # the text's own box, without the margin its document keeps around it
            m = axis.label.document().documentMargin() - 1
            r = axis.label.sceneBoundingRect().adjusted(m, m, -m, -m)
            if not shown.contains(r):
                over = max(
                    shown.left() - r.left(),
                    r.right() - shown.right(),
                    shown.top() - r.top(),
                    r.bottom() - shown.bottom(),
                )
                out.append(
                    f"{side} axis title {axis.labelText!r} cut at the widget's edge ({over:.0f} px)"
                )
        if axis.style["showValues"]:
            # the tick labels are drawn inside the axis's own rectangle
            r = axis.mapRectToScene(QRectF(axis.boundingRect()))
            inner = r.intersected(shown)
            if side in ("bottom", "top") and inner.height() < r.height() - 1:
                out.append(f"{side} tick labels cut ({inner.height():.0f} of {r.height():.0f} px)")
            if side in ("left", "right") and inner.width() < r.width() - 1:
                out.append(f"{side} tick labels cut ({inner.width():.0f} of {r.width():.0f} px)")
    return out


def _plot_problems(w) -> list[str]:
    """Every plot shown (not folded away, not behind another tab): a readable data area and
    a title that fits."""
    import pyqtgraph as pg

    grid = {hm.plot for hm in w.heatmaps.maps.values()}  # checked per unit row
    out = []
    for view in w.findChildren(pg.GraphicsView):
        if not view.isVisible() or view.visibleRegion().isEmpty():
            continue
        for item in view.scene().items():
            if not isinstance(item, pg.PlotItem) or not item.isVisible():
                continue
            if isinstance(item, pg.ColorBarItem):  # a colour bar (a PlotItem inside), no data
                continue
            crowded = _crowded_ticks(item)
            cut = _axis_cut(view, item)
            if item in grid:
                out.extend(f"heatmap: {c}" for c in crowded + cut)
                continue
            title = item.titleLabel.item.toPlainText() if item.titleLabel.isVisible() else ""
            name = f"{view.window().windowTitle() or type(view.parent()).__name__}"
            where = f"{type(view.parentWidget()).__name__} plot {title[:40]!r} ({name})"
            out.extend(f"{where}: {c}" for c in crowded + cut)
            if item.legend is not None and item.legend.isVisible():
                names = [label.text for _, label in item.legend.items]
                if len(names) != len(set(names)):
                    out.append(f"{where}: legend lists {names}")
            box = item.vb.sceneBoundingRect().adjusted(-1, -1, 1, 1)
            for text in item.vb.addedItems:  # value labels stay inside the data area
                if not isinstance(text, pg.TextItem) or not text.isVisible():
                    continue
                if text.toPlainText() and not box.contains(text.sceneBoundingRect()):
                    out.append(f"{where}: label {text.toPlainText()!r} cut at the edge")
            vb = item.vb
            if vb.width() < PLOT_DATA_MIN_PX[0] or vb.height() < PLOT_DATA_MIN_PX[1]:
                out.append(f"{where}: data area {vb.width():.0f}x{vb.height():.0f} px")
            if title:
                need = item.titleLabel.item.boundingRect().width()
                if need > item.width() + 2:
                    out.append(f"{where}: title needs {need:.0f} px of {item.width():.0f}")
    return out


def _layout_problems(w) -> list[str]:

    out = []
    want = getattr(w, "_asked_size", None)  # what the test resized it to
    if want is not None and (w.width() > want[0] or w.height() > want[1]):
        out.append(f"window grew to {w.width()}x{w.height()} (minimum sizes add up to more)")
    out += _inside_problems(w)
    # the notes ("showing the k most active units", "locked colours") cover no part of a map:
    # its title, its data, its axes and their tick labels
    grid = w.heatmaps
    for name, note in (("top-k", grid.note), ("colour levels", grid.levels_note)):
        if not note.isVisible():
            continue
        if not grid.rect().contains(note.geometry()):
            out.append(f"the {name} note leaves the heatmaps' view")
        for key, hm in grid.maps.items():
            plot = hm.plot
            parts = {"title": plot.titleLabel, "data": plot.vb}
            parts.update({f"{side} axis": plot.getAxis(side) for side in ("left", "bottom")})
            for part, item in parts.items():
                if not item.isVisible():
                    continue
                r = grid.mapFromScene(item.sceneBoundingRect()).boundingRect()
                if r.intersects(note.geometry()):
                    out.append(f"the {name} note covers the {part} of heatmap {key}")
    return out


def _colour_bar_problems(w) -> list[str]:
    """The heatmaps' colour bars: their labels apart, and none past the bar's right edge."""
    out = []
    for key, hm in w.heatmaps.maps.items():
        if not hm.bar.isVisible():
            continue
        drawn = hm.bar.label_rects()
        for (a, ra), (b, rb) in itertools.combinations(drawn, 2):
            if ra.intersects(rb):
                out.append(f"heatmap {key}: colour bar labels {a!r} and {b!r} overlap")
        right = hm.bar.boundingRect().right() + 1
        out += [f"heatmap {key}: colour bar label {a!r} cut" for a, r in drawn if r.right() > right]
    return out


def _inside_problems(w) -> list[str]:
    from lstmviz.app.analysis.common import PlotStack
    from lstmviz.app.fit_label import html_width
    from lstmviz.app.heatmaps import ROW_PX

    out = _plot_problems(w) + _colour_bar_problems(w)
    if w.model_dock.isVisible():  # the Show controls never scroll away under the description
        for c in w.selection_panel.findChildren(QWidget):
            if not isinstance(c, (QComboBox, QAbstractButton, QAbstractSpinBox)):
                continue
            if c.isVisible() and c.visibleRegion().isEmpty():
                out.append(f"Show control {c.toolTip()[:40] or type(c).__name__!r} out of view")
    for key, hm in w.heatmaps.maps.items():
        h = hm.plot.vb.height()
        if hm.n_rows and h / hm.n_rows < ROW_PX - 0.01:
            out.append(f"heatmap {key}: {h / hm.n_rows:.1f} px per unit row")
        if hm.plot.vb.width() < 40:
            out.append(f"heatmap {key}: data area {hm.plot.vb.width():.0f} px wide")
    for stack in w.findChildren(PlotStack):
        if not stack.isVisible():
            continue
        if stack.height() < 150:
            out.append(f"{stack.parent().__class__.__name__}: plot area {stack.height()} px tall")
    for combo in w.findChildren(QComboBox):
        if not combo.isVisible() or not combo.currentText() or combo.isEditable():
            continue
        # a box that shortens its text itself (FitComboBox) must show at least a word
        shown = combo.shown_text() if hasattr(combo, "shown_text") else combo.currentText()
        if shown != combo.currentText() and len(shown.rstrip("…").split()) == 0:
            out.append(f"combo box {combo.currentText()!r} shows {shown!r}")
            continue
        need = combo.fontMetrics().horizontalAdvance(shown) + 24  # + the arrow
        if need > combo.width():
            out.append(f"combo box {shown!r} cut ({need} px in {combo.width()})")
    for label in w.findChildren(QLabel):
        if not label.isVisible() or label.wordWrap() or not label.text():
            continue
        if label.textFormat() == Qt.TextFormat.RichText or "<" in label.text():
            need = html_width(label, label.text())
        else:
            need = label.fontMetrics().horizontalAdvance(label.text())
        if need > label.contentsRect().width() + 2:
            out.append(f"label {label.text()[:80]!r} clipped ({need:.0f} px in {label.width()} px)")
    return out


def _settle(qtbot, w) -> None:
    """Until the layout stops moving (relayouts are queued after each resize)."""

    def geometry():
        return [round(hm.plot.vb.height()) for hm in w.heatmaps.maps.values()] + [
            w.vsplit.sizes()[0],
            w.heatmaps.ncol,
        ]

    last = [None]

    def still() -> bool:
        now = geometry()
        same = now == last[0]
        last[0] = now
        return same

    qtbot.wait(100)
    qtbot.waitUntil(still, timeout=5000)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_layout_with_each_panel_open(app, qtbot, width, height):
    w = app
    w.resize(width, height)
    w._asked_size = (width, height)
    w.panels.close_all()
    _settle(qtbot, w)
    problems = {"(no panel)": _layout_problems(w)}
    for key in w.panels.specs:
        w.panels.close_all()
        w.panels.open(key)
        _settle(qtbot, w)
        problems[key] = _layout_problems(w)
    bad = {k: v for k, v in problems.items() if v}
    assert not bad, bad


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_train_panel_leaves_the_line_plots(app, qtbot, width, height):
    """The Train panel opened with Ctrl+T on the digit-sum example (32 units): its settings
    scroll rather than fold away the line plots under the heatmaps (at 1600 x 900 they did),
    and the end of a run (the story's verdict, its button) does not grow it."""
    from lstmviz.app.main_window import BOTTOM_MIN_PX

    w = app
    w.resize(width, height)
    w._asked_size = (width, height)
    _settle(qtbot, w)
    press(qtbot, w, w.panels.specs["train"].shortcut)
    qtbot.waitUntil(lambda: _raised(w.panels.docks["train"]), timeout=5000)
    _settle(qtbot, w)
    assert w.vsplit.sizes()[1] >= BOTTOM_MIN_PX, w.vsplit.sizes()
    assert w.unit_lines.isVisible() and not w.unit_lines.visibleRegion().isEmpty()
    assert not _layout_problems(w)
    panel = w.panels.widget("train")
    for widget in (panel.start_btn, panel.progress, panel.timeline, panel.follow):
        assert not widget.visibleRegion().isEmpty(), widget
    # a run ended without the story: its two-sentence verdict and the bundled model's button
    panel._set_story(
        "This run has no clear story: the model gets the running sum right only 18 % of "
        "the time (the story needs 99 %). Train longer, or open the bundled model."
    )
    panel.bundled_btn.setVisible(True)
    _settle(qtbot, w)
    assert w.vsplit.sizes()[1] >= BOTTOM_MIN_PX, w.vsplit.sizes()
    assert not _layout_problems(w)


def test_train_panel_opened_before_a_model_leaves_the_line_plots(qtbot, tmp_path, monkeypatch):
    """Ctrl+T on the welcome page, then a model: the panel is fitted again once the views
    have a trace (fitted before, it folded the line plots away at 1600 x 900)."""
    from lstmviz.app.main_window import BOTTOM_MIN_PX, MainWindow

    monkeypatch.setenv("LSTMVIZ_DATA_DIR", str(tmp_path / "data"))
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1600, 900)
    activate(qtbot, w)
    press(qtbot, w, w.panels.specs["train"].shortcut)
    qtbot.waitUntil(lambda: _raised(w.panels.docks["train"]), timeout=5000)
    w.open_model(DIGITS)
    wait_settled(qtbot, w)
    qtbot.waitUntil(lambda: w.vsplit.sizes()[1] >= BOTTOM_MIN_PX, timeout=5000)
    _settle(qtbot, w)
    assert w.vsplit.sizes()[1] >= BOTTOM_MIN_PX and (w.width(), w.height()) == (1600, 900)
    w.close()


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_layout_with_few_units(app, qtbot, width, height):
    """A model with few units (the binary-addition example: 4) wants short heatmaps, less
    than their least height: with the Train panel open the line plots' time axis was pushed
    out at the bottom, and with an analysis panel the maps' time axes."""
    w = app
    w.resize(width, height)
    w._asked_size = (width, height)
    _open(qtbot, w, ADDER)
    problems = {}
    for key in ("train", "decomposition", "check", "diagram"):
        w.panels.close_all()
        press(qtbot, w, w.panels.specs[key].shortcut)
        qtbot.waitUntil(lambda k=key: _raised(w.panels.docks[k]), timeout=5000)
        _settle(qtbot, w)
        problems[key] = _layout_problems(w)
    bad = {k: v for k, v in problems.items() if v}
    assert not bad, bad


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_layout_with_the_longest_descriptions(app, qtbot, width, height):
    """Examples whose description fills the Model dock: it scrolls, the Show controls stay in
    view, and no view loses its readable size."""
    w = app
    w.resize(width, height)
    w._asked_size = (width, height)
    problems = {}
    # the toy classification's layer "first_lstm (16 units)" was cut in the Layer box
    for path in (STACKED, TOY, EXAMPLES_DIR / "char_textgen.keras"):
        _open(qtbot, w, path)
        _settle(qtbot, w)
        problems[path.name] = _layout_problems(w)
    # a panel open under the character model's many units: the heatmaps fall back to a top-k
    w.panels.open("saturation")
    _settle(qtbot, w)
    problems["char_textgen.keras + Saturation"] = _layout_problems(w)
    # the side docks dragged as narrow as they go
    w.resizeDocks([w.model_dock, w.detail_dock], [1, 1], Qt.Orientation.Horizontal)
    _settle(qtbot, w)
    problems["narrow docks"] = _layout_problems(w)
    bad = {k: v for k, v in problems.items() if v}
    assert not bad, bad


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_layout_with_analysis_results_shown(app, qtbot, answers, tmp_path, width, height):
    """The panels whose plots appear only after a first action (the causal ones:
    tests/app/test_causal_panels.py), with that action's result shown."""
    from tests.app.test_analysis_panels import _buggy

    w = app
    w.resize(width, height)
    w._asked_size = (width, height)
    problems = {}
    p = w.panels.open("what_if")
    p.step.setValue(3)
    click(qtbot, p.run_btn)
    qtbot.waitUntil(lambda: p.result is not None, timeout=20000)
    _settle(qtbot, w)
    problems["what_if"] = _layout_problems(w)
    w.panels.close_all()
    p = w.panels.open("check")
    st = _buggy(w.state.layer_trace)
    np.savez(tmp_path / "mine.npz", hidden=st["hidden"], cell=st["cell"])
    answers["Student arrays"] = str(tmp_path / "mine.npz")
    click(qtbot, p.load_btn)
    qtbot.waitUntil(lambda: p.diagnosis is not None, timeout=20000)
    _settle(qtbot, w)
    problems["check"] = _layout_problems(w)
    w.panels.close_all()
    p = w.panels.open("corpus")
    _trace_a_corpus(qtbot, p, answers, tmp_path, 40)
    _settle(qtbot, w)
    problems["corpus"] = _layout_problems(w)
    w.panels.close_all()
    p = w.panels.open("compare")
    click(qtbot, p.pin_btn)
    w.state.set_text("4 7 3 0 1")
    _settle(qtbot, w)
    problems["compare"] = _layout_problems(w)
    w.panels.close_all()
    p = w.panels.open("interventions")  # on the digit-sum example: output bars, a legend
    p.units_edit.setText("3")
    click(qtbot, p.add_btn)
    qtbot.waitUntil(lambda: p.effect is not None and not p.runner.is_running(), timeout=20000)
    _settle(qtbot, w)
    problems["interventions"] = _layout_problems(w)
    bad = {k: v for k, v in problems.items() if v}
    assert not bad, bad


def _trace_a_corpus(qtbot, panel, answers, folder, count):
    """Trace ``count`` random sequences of 12 steps into ``folder`` with the Corpus panel's
    buttons, and wait for the store."""
    panel.count.setValue(count)
    panel.length.setValue(12)
    answers["Folder for the traced corpus"] = str(folder)
    click(qtbot, panel.dir_btn)
    click(qtbot, panel.trace_btn)
    qtbot.waitUntil(lambda: panel.store is not None, timeout=60000)


def _panel_at_1600x900(qtbot, w, example, key):
    """The window at 1600 x 900 on a bundled example, with panel ``key`` opened by its key."""
    w.resize(1600, 900)
    w._asked_size = (1600, 900)
    _open(qtbot, w, EXAMPLES_DIR / example)
    press(qtbot, w, w.panels.specs[key].shortcut)
    qtbot.waitUntil(lambda: _raised(w.panels.docks[key]), timeout=5000)
    return w.panels.widget(key)


def test_what_if_time_axis_on_the_text_example(app, qtbot):
    """The text-generation example (39 characters) at 1600 x 900: the changed step's tick
    "a→⏎" (old→new) is wider than one character, and its neighbours ran into it ("Sa→⏎l")."""
    w = app
    p = _panel_at_1600x900(qtbot, w, "char_textgen.keras", "what_if")
    p.step.setValue(2)
    p.token.setCurrentIndex(0)  # the newline
    click(qtbot, p.run_btn)
    qtbot.waitUntil(lambda: p.result is not None and not p.stack.is_empty, timeout=20000)
    _settle(qtbot, w)
    ticks = [lab for _, lab in p.out_plot.getAxis("bottom")._tickLevels[0]]
    assert any("→" in lab for lab in ticks), ticks  # the changed step keeps its label
    assert not _layout_problems(w)


def test_corpus_tokens_on_the_text_example(app, qtbot, answers, tmp_path):
    """The Corpus panel on the text-generation example at 1600 x 900: its map's time axis
    labels every character only where they do not touch ('W' and 'M' were 15 px apart)."""
    w = app
    p = _panel_at_1600x900(qtbot, w, "char_textgen.keras", "corpus")
    _trace_a_corpus(qtbot, p, answers, tmp_path, 50)
    _settle(qtbot, w)
    assert p.plot.getAxis("bottom")._tickLevels, "the time axis has no labels"
    assert not _layout_problems(w)


def test_what_if_result_follows_the_layer(app, qtbot):
    """On the stacked example, a what-if's result stays when the user picks the other layer
    in the Model dock: the panel shows that layer's difference (it was dropped, and Compare
    had to be pressed again); a new input drops it."""
    w = app
    _open(qtbot, w, STACKED)
    press(qtbot, w, w.panels.specs["what_if"].shortcut)
    qtbot.waitUntil(lambda: _raised(w.panels.docks["what_if"]), timeout=5000)
    p = w.panels.widget("what_if")
    p.step.setValue(1)
    click(qtbot, p.run_btn)
    qtbot.waitUntil(lambda: p.result is not None and not p.stack.is_empty, timeout=20000)
    first, second = w.state.layer_names[:2]
    assert p._images["layer"] == first
    combo = w.selection_panel.layer_combo
    combo.setFocus()
    press(qtbot, combo, "Down")  # the user picks the second layer
    qtbot.waitUntil(lambda: w.state.layer == second, timeout=5000)
    qtbot.waitUntil(lambda: p._images is not None and p._images["layer"] == second, timeout=20000)
    assert p.result is not None and not p.stack.is_empty
    assert p.summary.full_text.startswith("changed step 1")
    w.state.set_text(w.state.input_text())  # a new trace: the old what-if no longer applies
    wait_settled(qtbot, w)
    qtbot.waitUntil(lambda: p.result is None and p.stack.is_empty, timeout=5000)


#: the projectors a lecturer meets
PROJECTORS = [(1280, 720), (1920, 1080)]


def _diagram_problems(d) -> list[str]:
    """The big cell diagram as drawn: no two texts (numbers, names, box symbols, header)
    overlap, none leaves the view, none is smaller than the back row can read."""
    from PySide6.QtCore import QRectF

    from lstmviz.app.diagram_view import PRESENTATION_MIN_PX

    d.grab()
    out = []
    texts = [(f"number on {k}", r) for k, r in d.value_rects.items()]
    texts += [(repr(t), r) for t, r in d.text_rects]
    for (a, ra), (b, rb) in itertools.combinations(texts, 2):
        if ra.intersects(rb):
            out.append(f"diagram: {a} runs into {b}")
    view = QRectF(d.rect())
    out += [f"diagram: {a} leaves the view" for a, r in texts if not view.contains(r)]
    if min(d.text_px) < PRESENTATION_MIN_PX:
        out.append(f"diagram: text of {min(d.text_px)} px")
    if len(d.value_rects) < 8:  # a few left out for room; most numbers stay
        out.append(f"diagram: only {len(d.value_rects)} numbers shown ({d.dropped} left out)")
    return out


@pytest.mark.parametrize(
    ("width", "height", "panel"),
    [(*size, panel) for size in PROJECTORS for panel in (None, "train", "what_if")],
)
def test_presentation_layout(app, qtbot, width, height, panel):
    """Presentation mode (F11) on a projector, alone and with a panel opened by its
    shortcut (the What-if panel with a result shown): the window keeps the projector's
    size, the big cell diagram's texts neither overlap nor leave it, and its two other
    views (V, V) fit as well."""
    w = app
    w.state.set_text("4 7 3 9 1 8 2 6 5 3 7 1")
    wait_settled(qtbot, w)
    w.state.set_t(5)
    press(qtbot, w, "F11")
    assert w.presentation
    # the test platform's screen is 800 x 800: make the full-screen window the projector's
    w.showNormal()
    w.resize(width, height)
    qtbot.waitUntil(lambda: w.size().width() == width, timeout=5000)
    if panel is not None:
        press(qtbot, w, w.panels.specs[panel].shortcut)
        qtbot.waitUntil(lambda: _raised(w.panels.docks[panel]), timeout=5000)
    if panel == "what_if":  # with its result: the summary line and the plots
        p = w.panels.widget("what_if")
        p.step.setValue(3)
        click(qtbot, p.run_btn)
        qtbot.waitUntil(lambda: p.result is not None and not p.stack.is_empty, timeout=20000)
    assert w.middle.currentWidget() is w.stage_diagram
    problems = {}
    for view in ("diagram", "equations", "heatmaps"):
        qtbot.waitUntil(lambda v=view: w.state.options.presentation_view == v, timeout=5000)
        _settle(qtbot, w)
        got = _inside_problems(w)
        if (w.width(), w.height()) != (width, height):
            got.append(f"window grew to {w.width()}x{w.height()}")
        if view == "diagram":
            got += _diagram_problems(w.stage_diagram)
        problems[view] = got
        press(qtbot, w, "V")
    bad = {k: v for k, v in problems.items() if v}
    assert not bad, bad


# --- pixels -----------------------------------------------------------------------------------
def test_screenshot_pixels_follow_the_colour_map(app, qtbot):
    """A blank or wrongly coloured render fails: heatmap pixels at known cells are the colour
    map's colour of the trace's value there."""
    from lstmviz.app.style import colormap

    w = app
    w.state.set_t(w.state.timesteps - 1)  # nothing dimmed
    qtbot.wait(300)
    img = w.heatmaps.grab().toImage()
    lt = w.state.layer_trace
    checked = 0
    for key, cmap in (("forget_gate", "viridis"), ("cell", "CET-D1A")):
        hm = w.heatmaps.maps[key]
        lo, hi = w.state.color_levels(key, lt)
        lut = colormap(cmap).getLookupTable(nPts=256, alpha=False)
        for row in (0, hm.n_rows // 2, hm.n_rows - 1):
            for t in range(0, hm.n_t - 1):
                p = w.heatmaps.scene_pos_of(key, t, row)
                v = w.heatmaps.mapFromScene(p)
                c = img.pixelColor(v.x(), v.y())
                value = float(lt.per_unit(key)[w.state.batch, t, hm.rows[row]])
                k = int(np.clip((value - lo) / (hi - lo), 0, 1) * 255)
                want = lut[k]
                got = np.array([c.red(), c.green(), c.blue()])
                assert np.abs(got - want).max() <= 40, (key, row, t, got, want)
                checked += 1
    assert checked >= 12


# --- the causal panels' buttons (their numbers: tests/app/test_causal_panels.py) ----------------
def _every_button_pressed(panel, pressed) -> None:
    left = {b for b in buttons(panel) if b not in pressed}
    assert not left, f"buttons without a check: {[b.text() for b in left]}"


def test_interventions_buttons(app, qtbot):
    w = app
    _open(qtbot, w, ADDER)
    p = w.panels.open("interventions")
    pressed = set()
    p.units_edit.setText("2")
    p.mode.setCurrentIndex(p.mode.findData("mean"))
    click(qtbot, p.every)  # a window of steps
    assert p.t_from.isEnabled()
    click(qtbot, p.every)
    click(qtbot, p.add_btn)
    qtbot.waitUntil(lambda: p.effect is not None, timeout=20000)
    assert p.change.changed >= 1 and not p.stack.is_empty and p.list.count() == 1
    click(qtbot, p.add_btn)
    assert len(w.state.interventions) == 2
    p.list.setCurrentRow(0)
    click(qtbot, p.remove_btn)
    assert len(w.state.interventions) == 1 and p.list.count() == 1
    click(qtbot, p.clear_btn)
    assert w.state.interventions == () and p.list.count() == 0
    pressed |= {p.add_btn, p.remove_btn, p.clear_btn, p.every}
    _every_button_pressed(p, pressed)
    p.tabs.setCurrentIndex(1)
    click(qtbot, p.scan_btn)
    qtbot.waitUntil(lambda: p.scan is not None, timeout=20000)
    assert p.table.rowCount() == 4 and p.table.item(0, 0).text() == "2"
    pressed.add(p.scan_btn)
    _every_button_pressed(p, pressed)
    _open(qtbot, w, EXAMPLES_DIR / "char_textgen.keras")
    p.tabs.setCurrentIndex(0)
    p.units_edit.setText("95")
    p.quantity.setCurrentIndex(p.quantity.findData("hidden"))
    p.mode.setCurrentIndex(p.mode.findData("clamp"))
    p.value.setValue(-1.0)
    click(qtbot, p.add_btn)
    p.tabs.setCurrentIndex(2)
    p.n_tokens.setValue(40)
    click(qtbot, p.gen_btn)
    qtbot.waitUntil(lambda: p.generated is not None, timeout=30000)
    assert p.generated[0] != p.generated[1]
    assert p.text_without.toPlainText().startswith("without:")
    pressed.add(p.gen_btn)
    _every_button_pressed(p, pressed)
    assert w.last_error is None, w.last_error


def test_patching_buttons(app, qtbot):
    w = app
    w.state.set_text("4 7 3 9 1")
    p = w.panels.open("patching")
    p.pick_step.setValue(2)
    p.pick_token.setCurrentIndex(0)
    click(qtbot, p.pick_btn)
    assert p.corrupted.text() == "4 7 0 9 1"
    click(qtbot, p.run_btn)
    qtbot.waitUntil(lambda: p.result is not None, timeout=20000)
    assert not p.stack.is_empty and "What restores most" in p.summary.text()
    _every_button_pressed(p, {p.pick_btn, p.run_btn})
    assert w.last_error is None, w.last_error


def test_attribution_buttons(app, qtbot):
    w = app
    p = w.panels.open("attribution")
    pressed = {p.run_btn}
    for view in ("tokens", "connectivity", "memory"):
        p.show_what.setCurrentIndex(p.show_what.findData(view))
        if view == "connectivity":
            click(qtbot, p.all_units)  # every output unit: the norm over all ten
            pressed.add(p.all_units)
        click(qtbot, p.run_btn)
        qtbot.waitUntil(lambda v=view: p.result is not None and p.result[0] == v, timeout=30000)
        assert not p.stack.is_empty
        if view == "tokens":
            assert w.state.token_scores is not None
            click(qtbot, p.colour_strip)
            assert w.state.token_scores is None
            click(qtbot, p.colour_strip)
            assert w.state.token_scores is not None
            pressed.add(p.colour_strip)
        if view == "connectivity":
            assert p.result[1].unit is None
        _every_button_pressed(p, pressed)
    assert w.last_error is None, w.last_error


def test_state_space_buttons(app, qtbot, answers, tmp_path):
    from lstmviz.analysis import trace_corpus
    from lstmviz.app.analysis.corpus import random_corpus

    w = app
    _open(qtbot, w, EXAMPLES_DIR / "flip_flop.keras")
    p = w.panels.open("state_space")
    assert p.pca is not None and not p.stack.is_empty
    click(qtbot, p.find_btn)
    qtbot.waitUntil(lambda: bool(p.points), timeout=60000)
    assert [pt.kind for pt in p.points].count("stable") == 8
    _every_button_pressed(p, {p.find_btn})
    # the PCA fitted on a traced corpus, picked in a folder dialog
    xs = random_corpus(w.state.model, w.state.info, 20, 24)
    trace_corpus(w.state.model, xs, tmp_path / "corpus.zarr")
    answers["A traced corpus"] = str(tmp_path / "corpus.zarr")
    p.source.setCurrentIndex(p.source.findData("corpus"))
    p.source.activated.emit(p.source.currentIndex())  # what choosing it with the mouse sends
    qtbot.waitUntil(lambda: p.pca is not None and p.pca.projected is None, timeout=30000)
    assert "fitted on the corpus corpus.zarr" in p.pca_plot.titleLabel.text
    assert w.last_error is None, w.last_error
