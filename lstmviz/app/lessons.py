"""Lessons in the app: open a ``.lstmviz-lesson``, let the clicker drive it, author and export.

:class:`LessonActions` (made by the main window) adds File ▸ Open lesson… and the Lesson
menu. With a lesson open, PageDown / PageUp (the clicker) move through its steps; each step
sets the model, the input, the timestep, the layer, the highlighted units and the view, and
shows the caption. A step that asks questions first shows the question with the answer
hidden (the model's output at that step and the cell's update), and the next click reveals
it: predict, then reveal. "Add this view as a step…" turns what is on screen into a new step
(a caption and a question typed in a small dialog); the lesson is saved as a
``.lstmviz-lesson`` (:mod:`lstmviz.io.lesson`) and exported as a PDF handout or an MP4 through
:func:`lstmviz.export.lesson.export_lesson`, in a worker, with progress.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from ..errors import LstmvizError
from ..io.lesson import SUFFIX, Lesson, LessonStep, load_lesson, save_lesson
from ..state.viewer import MAX_FOCUS
from . import dialogs

log = logging.getLogger(__name__)


@dataclass
class LessonRun:
    """A lesson being shown: which step, and whether its question is still being asked."""

    lesson: Lesson
    index: int = 0
    asking: bool = False

    @property
    def step(self) -> LessonStep:
        return self.lesson.steps[self.index]


class StepDialog(QDialog):
    """ "Add this view as a step": the caption, a question to ask first, notes."""

    def __init__(self, parent: QWidget | None, hide_future: bool, where: str) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add this view as a lesson step")
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"The step shows what is on screen now: {where}."))
        form = QFormLayout()
        self.caption = QPlainTextEdit()
        self.caption.setPlaceholderText("What to say about this view, in plain words")
        self.caption.setMinimumHeight(90)
        self.question = QLineEdit()
        self.question.setPlaceholderText("Optional: a question to ask before revealing the answer")
        self.notes = QLineEdit()
        self.notes.setPlaceholderText("Optional: notes for your screen only")
        self.hide_future = QCheckBox("Hide the later steps (predict, then reveal)")
        self.hide_future.setChecked(hide_future)
        form.addRow("Caption", self.caption)
        form.addRow("Ask first", self.question)
        form.addRow("Notes", self.notes)
        form.addRow("", self.hide_future)
        lay.addLayout(form)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add step")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.resize(640, 320)


class LessonActions(QObject):
    """File ▸ Open lesson…, the Lesson menu, the clicker's steps, authoring and export.

    Signals: ``step_shown(int)`` (a step's view is in place: its 0-based index),
    ``exported(str)`` (a handout or video was written).
    """

    step_shown = Signal(int)
    exported = Signal(str)

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.run: LessonRun | None = None
        self._applied: tuple[str, str] | None = None  # (model path, input text) on screen
        self._model: Any = None  # the model and input object the lesson put on screen
        self._x: Any = None
        self._build_menus()
        self._update_actions()

    # --- menus ---------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        w = self.window
        file = w.menu("File")
        before = next((a for a in file.actions() if a.isSeparator()), None)
        self.open_action = QAction("Open &lesson…", w)
        self.open_action.setShortcut(QKeySequence("Ctrl+L"))
        tip = "Open a .lstmviz-lesson: scripted steps the clicker (PageDown) moves through"
        self.open_action.setStatusTip(tip)
        self.open_action.setToolTip(tip)
        self.open_action.triggered.connect(lambda _=False: self.choose_open())
        if before is not None:
            file.insertAction(before, self.open_action)
        else:
            file.addAction(self.open_action)
        w.addAction(self.open_action)

        menu = w.menu("Lesson")
        menu.setToolTipsVisible(True)
        self.menu = menu
        self.actions: dict[str, QAction] = {}
        for key, text, slot, tip in (
            ("next", "&Next step", lambda: self.page(1), "The next step (the clicker: PageDown)"),
            (
                "previous",
                "&Previous step",
                lambda: self.page(-1),
                "The step before (the clicker: PageUp)",
            ),
            (
                "reveal",
                "&Reveal the answer",
                self.reveal,
                "Show the answer to this step's question, and its caption",
            ),
            (
                "add",
                "&Add this view as a step…",
                self.choose_add_step,
                "Turn what is on screen (model, input, step, layer, units, view) into a step",
            ),
            ("save", "&Save lesson…", self.choose_save, "Save the lesson as .lstmviz-lesson"),
            (
                "handout",
                "Export &handout (PDF)…",
                lambda: self.choose_export("pdf"),
                "One page per step: the question, the view, the caption",
            ),
            (
                "video",
                "Export &video (MP4)…",
                lambda: self.choose_export("mp4"),
                "1920 x 1080: each step's question, then its answer",
            ),
            (
                "presenter",
                "Presenter &view",
                self.show_presenter,
                "Your screen while the projector shows the lesson: notes, next step, controls",
            ),
            ("close", "&Close lesson", self.close_lesson, "Back to stepping through time"),
        ):
            a = QAction(text, w)
            a.setStatusTip(tip)
            a.setToolTip(tip)
            a.triggered.connect(lambda _=False, s=slot: s())
            menu.addAction(a)
            self.actions[key] = a

    def _update_actions(self) -> None:
        running = self.run is not None
        for key in ("next", "previous", "save", "handout", "video", "close"):
            self.actions[key].setEnabled(running)
        self.actions["reveal"].setEnabled(running and bool(self.run and self.run.asking))
        self.actions["add"].setEnabled(self.window.state.model is not None)

    # --- opening -------------------------------------------------------------------------------
    def choose_open(self) -> None:
        from ..examples import ASSETS

        dialogs.start_in(ASSETS / "lessons")  # the bundled lessons, the first time
        path = dialogs.ask_open_file(
            self.window, "Open a lesson", f"Lessons (*{SUFFIX});;All files (*)"
        )
        if path:
            self.open_lesson(path)

    def open_lesson(
        self,
        path: str | os.PathLike[str],
        step: int = 0,
        then: Callable[[], None] | None = None,
    ) -> bool:
        """Open the lesson at ``path`` and show its step ``step`` (0-based); ``then()`` runs
        once that step is on screen. False (and an error dialog) when it cannot be read."""
        try:
            lesson = load_lesson(path)
        except LstmvizError as e:
            self.window.show_error(str(e))
            return False
        n = len(lesson.steps)
        if not 0 <= step < n:
            self.window.show_error(
                f"{path}: the lesson has {n} step{'s' if n != 1 else ''} (1..{n}); "
                f"there is no step {step + 1}"
            )
            return False
        self.start(lesson, step, then)
        self.window._add_recent(str(path))
        return True

    def start(self, lesson: Lesson, step: int = 0, then: Callable[[], None] | None = None) -> None:
        """Show ``lesson`` (already read) from its step ``step``."""
        self.run = LessonRun(lesson)
        self.show_step(step, then=then)
        self.window.status(f"Lesson: {lesson.title} — PageDown for the next step", 6000)

    # --- stepping ---------------------------------------------------------------------
    def page(self, dk: int) -> None:
        """The clicker: forward reveals a question's answer first, then goes to the next
        step; back goes to the step before."""
        run = self.run
        if run is None:
            self.window.state.step(dk)
            return
        if dk > 0:
            if run.asking:
                self.reveal()
            elif run.index + 1 < len(run.lesson.steps):
                self.show_step(run.index + 1)
            else:
                self.window.status("That was the last step of the lesson", 4000)
        elif run.index > 0:
            self.show_step(run.index - 1, asking=False)
        else:
            self.window.status("This is the first step of the lesson", 4000)

    def reveal(self) -> None:
        """Show the answer to the current step's question, and its caption."""
        run = self.run
        if run is None or not run.asking:
            return
        run.asking = False
        self.window.state.options.hide_answer = False
        self._show_caption()
        self._update_actions()
        self._refresh_presenter()

    def show_step(
        self, k: int, asking: bool | None = None, then: Callable[[], None] | None = None
    ) -> None:
        """Show step ``k`` (0-based): its model, input, layer, units, t and view; its
        question first when it asks one (``asking`` overrides)."""
        run = self.run
        if run is None:
            raise LstmvizError("no lesson is open")
        les = run.lesson
        if not 0 <= k < len(les.steps):
            raise LstmvizError(f"the lesson has {len(les.steps)} steps; there is no step {k + 1}")
        run.index = k
        step = les.steps[k]
        run.asking = bool(step.ask) if asking is None else asking
        try:
            path = self._model_path(les)
        except LstmvizError as e:
            self.window.show_error(str(e))
            return
        text = les.input_of(step)
        st = self.window.state

        def finish() -> None:
            if self.run is not run or run.index != k:
                return  # the lecturer clicked on meanwhile
            try:
                self._apply(step, run.asking)
            except LstmvizError as e:
                self.window.show_error(f"{les.path or les.title}: step {k + 1}: {e}")
            self.step_shown.emit(k)
            if then is not None:
                then()

        same_model = (
            st.model is not None
            and st.model_path is not None
            and Path(st.model_path).resolve() == Path(path).resolve()
            and st.model.source == getattr(self._model, "source", None)
        )
        same_input = self._applied == (path, text) and st.x is self._x
        if not same_model:
            self._applied = (path, text)

            def opened() -> None:
                self._model, self._x = st.model, st.x
                self._when_traced(finish)

            self.window.open_model(path, text=text or None, then=opened)
        elif not same_input:
            self._applied = (path, text)
            try:
                if text:
                    st.set_text(text)
                else:
                    from ..io.inputs import example_input

                    st.set_input(example_input(st.model, st.info))
            except LstmvizError as e:
                self.window.show_error(f"{les.path or les.title}: step {k + 1}: input: {e}")
                return
            self._x = st.x
            self._when_traced(finish)
        else:
            finish()

    def _when_traced(self, fn: Callable[[], None]) -> None:
        st = self.window.state
        if st.trace is not None and not st.busy:
            fn()
            return
        done = {"v": False}

        def once(*_: Any) -> None:
            if done["v"] or st.busy or st.trace is None:
                return
            done["v"] = True
            st.events.trace.disconnect(once)
            fn()

        st.events.trace.connect(once)

    def _model_path(self, les: Lesson) -> str:
        kind, ref = les.model_ref()
        if kind == "example":
            from ..examples import get_example

            return str(get_example(str(ref)).path)
        p = Path(ref)
        if not p.exists():
            raise LstmvizError(
                f"{les.path or 'lesson'}: 'model' {les.model!r} not found (looked for {p}); "
                "paths are relative to the lesson file"
            )
        return str(p)

    def _apply(self, step: LessonStep, asking: bool) -> None:
        w = self.window
        st = w.state
        opts = st.options
        st.set_layer(step.layer or st.layer_names[0])
        if step.units:
            st.set_units(step.units)
        opts.focus_units = tuple(step.units[:MAX_FOCUS])
        opts.highlight = ""
        opts.presentation_view = step.view
        opts.diagram_layer = step.view == "diagram" and not step.units
        opts.hide_future = step.hide_future
        opts.hide_answer = asking
        st.set_t(step.t)
        if not w.presentation:
            if step.view == "diagram" and w.panels is not None:
                w.panels.open("diagram")
            elif step.view == "equations":
                w.detail_dock.show()
                w.detail_dock.raise_()
        self._show_caption()
        w._apply_stage()
        self._update_actions()
        self._refresh_presenter()

    def _show_caption(self) -> None:
        run = self.run
        bar = self.window.story_bar.caption
        if run is None:
            bar.clear_step()
            return
        step = run.step
        question = " ".join(step.ask) if run.asking else ""
        bar.show_step(run.index, len(run.lesson.steps), question, step.caption)

    def _refresh_presenter(self) -> None:
        p = self.window.presenter
        if p is not None:
            p.refresh()

    def close_lesson(self) -> None:
        """Back to stepping through time (the view stays as it is)."""
        if self.run is None:
            return
        self.run = None
        self._applied = self._model = self._x = None
        opts = self.window.state.options
        opts.hide_answer = False
        opts.hide_future = False
        opts.focus_units = ()
        self._show_caption()
        self.window._apply_stage()
        self._update_actions()
        self._refresh_presenter()
        self.window.status("Lesson closed", 3000)

    def show_presenter(self) -> None:
        self.window.show_presenter()

    # --- authoring ---------------------------------------------------------------------
    def current_view(self) -> str:
        """What is on screen: presentation mode's big view, else the cell diagram when its
        panel is open, else the heatmaps."""
        w = self.window
        if w.presentation:
            return str(w.state.options.presentation_view)
        panels = w.panels
        if panels is not None and "diagram" in panels.docks and panels.docks["diagram"].isVisible():
            return "diagram"
        return "heatmaps"

    def _model_ref(self) -> str:
        """How a new lesson names the model on screen: a bundled example by name, else the
        file's absolute path."""
        st = self.window.state
        path = st.model_path
        if not path or not Path(path).is_file():
            raise LstmvizError(
                "the model on screen has no file (a training snapshot, a live model): save it "
                "as .keras first, then add steps"
            )
        from ..examples import list_examples

        for ex in list_examples():
            if Path(ex.path).resolve() == Path(path).resolve():
                return ex.name
        return str(Path(path).resolve())

    def add_step(
        self, caption: str, question: str = "", notes: str = "", hide_future: bool | None = None
    ) -> LessonStep:
        """Add what is on screen as a step after the current one (a new lesson when none is
        open) and show it."""
        w = self.window
        st = w.state
        if st.model is None or st.trace is None:
            raise LstmvizError("open a model first: a step shows a model on an input")
        view = self.current_view()
        units = list(st.selected_units)
        if view == "diagram":
            units = [] if st.options.diagram_layer else units[:1]
        try:
            text = st.input_text()
        except (LstmvizError, ValueError, IndexError):
            text = ""
        ref = self._model_ref()
        run = self.run
        here = Path(st.model_path or "").resolve()
        if run is not None and Path(self._model_path(run.lesson)).resolve() != here:
            raise LstmvizError(
                "a lesson shows one model; the model on screen is not the lesson's "
                f"({run.lesson.model}). Close the lesson to start a new one."
            )
        step = LessonStep(
            t=st.t,
            caption=caption.strip(),
            view=view,
            units=units,
            layer=st.layer if st.layer != st.layer_names[0] else "",
            ask=[question.strip()] if question.strip() else [],
            hide_future=bool(st.options.hide_future if hide_future is None else hide_future),
            notes=notes.strip(),
        )
        if run is None:
            title = st.info.title if st.info is not None and st.info.title else st.model.name
            lesson = Lesson(title=f"{title}: a lesson", model=ref, steps=[], input=text)
            run = LessonRun(lesson, -1)
            self.run = run
        if text != run.lesson.input:
            step.input = text
        run.lesson.steps.insert(run.index + 1, step)
        run.index += 1
        run.asking = False
        self._applied = (self._model_path(run.lesson), text)
        self._model, self._x = st.model, st.x
        self._apply(step, False)
        w.status(f"Added step {run.index + 1} of {len(run.lesson.steps)}", 4000)
        return step

    def choose_add_step(self) -> StepDialog | None:
        """Lesson ▸ Add this view as a step…: a small dialog for the caption and question."""
        st = self.window.state
        if st.model is None:
            self.window.show_error("Open a model first: a step shows a model on an input.")
            return None
        where = (
            f"t = {st.t}, layer {st.layer}, units {st.selected_units[:4]}, {self.current_view()}"
        )
        dlg = StepDialog(self.window, st.options.hide_future, where)
        self.dialog = dlg

        def accepted() -> None:
            try:
                self.add_step(
                    dlg.caption.toPlainText(),
                    dlg.question.text(),
                    dlg.notes.text(),
                    dlg.hide_future.isChecked(),
                )
            except LstmvizError as e:
                self.window.show_error(str(e))

        dlg.accepted.connect(accepted)
        dlg.open()
        return dlg

    def save_lesson(self, path: str | os.PathLike[str]) -> Path:
        """Write the lesson (a model file it names is stored relative to the lesson when it
        lies in the lesson's folder or below, else by its absolute path)."""
        run = self.run
        if run is None:
            raise LstmvizError("no lesson is open: add a step or open a lesson first")
        les = run.lesson
        p = Path(path)
        if p.suffix != SUFFIX:
            p = p.with_name(p.name + SUFFIX)
        kind, ref = les.model_ref()
        if kind == "path":
            model = Path(ref).resolve()
            try:
                les.model = model.relative_to(p.resolve().parent).as_posix()
            except ValueError:
                les.model = str(model)
        saved = save_lesson(les, p)
        les.path = saved.resolve()
        self.window.status(f"Saved {saved}", 5000)
        return saved

    def choose_save(self) -> None:
        if self.run is None:
            self.window.show_error("No lesson is open: add a step or open a lesson first.")
            return
        les = self.run.lesson
        name = les.path.name if les.path is not None else "lesson" + SUFFIX
        path = dialogs.ask_save_file(self.window, "Save lesson", name, f"Lessons (*{SUFFIX})")
        if path:
            try:
                self.save_lesson(path)
            except LstmvizError as e:
                self.window.show_error(str(e))

    # --- export ---------------------------------------------------------------------
    def export(self, path: str | os.PathLike[str]) -> Any:
        """Write the lesson as a PDF handout or an MP4 (by the suffix) in a worker; the
        progress shows in the status bar and ``exported(path)`` follows."""
        run = self.run
        if run is None:
            raise LstmvizError("no lesson is open")
        from ..export.lesson import export_lesson

        lesson = run.lesson
        out = str(path)

        def job(progress: Any, should_stop: Any) -> str:
            return str(
                export_lesson(lesson, out, force=True, progress=progress, should_stop=should_stop)
            )

        def done(p: str) -> None:
            self.window.status(f"Exported {p}", 6000)
            self.exported.emit(p)

        kind = "handout" if out.lower().endswith(".pdf") else "video"
        return self.window.run_worker(job, done, f"Exporting the lesson {kind}")

    def choose_export(self, fmt: str) -> None:
        if self.run is None:
            self.window.show_error("No lesson is open.")
            return
        les = self.run.lesson
        stem = les.path.stem if les.path is not None else "lesson"
        if fmt == "pdf":
            title, name, filt = "Export handout", f"{stem}-handout.pdf", "PDF (*.pdf)"
        else:
            title, name, filt = "Export video", f"{stem}.mp4", "MP4 video (*.mp4)"
        path = dialogs.ask_save_file(self.window, title, name, filt)
        if path:
            if not path.lower().endswith(f".{fmt}"):
                path += f".{fmt}"
            try:
                self.export(path)
            except LstmvizError as e:
                self.window.show_error(str(e))

    def shutdown(self) -> None:
        """The window closes (nothing runs in the background of its own)."""
