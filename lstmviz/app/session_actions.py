"""File → Save Session… / Open Session… / Recover, autosave, and the restore offer after a crash.

``SessionActions(window)`` (made by the main window) adds the menu entries, starts the autosave
timer (every 30 s, and at each training snapshot when the training panel announces one),
and -- when a previous lstmviz died without closing (crash, ``kill -9``) -- offers to restore
its last autosave. Autosaves and instance markers live in the user's data directory
(``QStandardPaths.AppDataLocation``; ``LSTMVIZ_DATA_DIR`` overrides it, and tests never touch
the real one). When that folder cannot be created or written, a temporary folder is used for
the run and a warning says so: the menu entries and autosave are always there.

Files in the data directory, per running window ``<pid>-<n>``:
``running-<pid>-<n>.lock`` (removed on a clean exit) and ``autosave-<pid>-<n>.lstmviz``;
``last-session.lstmviz`` is the session at the last clean exit. The autosave of every window
that ended without closing is kept in ``recovered/`` as ``<date>-<time>-<pid>-<n>.lstmviz``
(one file per window, never overwritten, never deleted by lstmviz) and listed, by time and
model, in File ▸ Recover.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QByteArray, QObject, QStandardPaths, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMessageBox

from ..errors import LstmvizError
from ..io.atomic import clean_stale_temps
from ..io.session import SUFFIX, Session
from ..state.session import apply_selection, session_from_state
from . import dialogs

log = logging.getLogger(__name__)

AUTOSAVE_MS = 30_000
#: a background autosave during a trace is retried this often until the trace is in
BUSY_RETRY_MS = 500
SNAPSHOT_GAP_S = 2.0  # autosaves at training snapshots come at most this often
_LOCK_RE = re.compile(r"running-(\d+)-(\d+)\.lock$")
_counter = itertools.count()


RECOVERED_DIR = "recovered"
_RECOVERED_RE = re.compile(r"^\d{8}-\d{6}-\d+-\d+(-\d+)?\.lstmviz$")


def preferred_data_dir() -> Path:
    """Where autosaves should go: ``$LSTMVIZ_DATA_DIR``, else (in tests) a temporary
    directory, else Qt's per-user application data directory."""
    env = os.environ.get("LSTMVIZ_DATA_DIR")
    if env:
        return Path(env)
    if os.environ.get("LSTMVIZ_TESTING"):
        return Path(tempfile.gettempdir()) / f"lstmviz-testing-{os.getpid()}"
    loc = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(loc) if loc else Path.home() / ".local" / "share" / "lstmviz"


def resolve_data_dir() -> tuple[Path, str | None]:
    """The data folder to use and, when the preferred one cannot be created or written (a
    read-only home, a file in its place), a temporary folder and the warning to show."""
    p = preferred_data_dir()
    try:
        p.mkdir(parents=True, exist_ok=True)
        if not os.access(p, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "it is not writable")
        return p, None
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e)
    try:
        tmp = Path(tempfile.mkdtemp(prefix="lstmviz-data-"))
    except OSError:
        tmp = Path(tempfile.gettempdir())
    return tmp, (
        f"lstmviz cannot use its data folder {p} ({reason}). For this run, autosaves and "
        f"recovered sessions go to the temporary folder {tmp}, which the system may empty. "
        "Set LSTMVIZ_DATA_DIR to a folder you can write to."
    )


def data_dir() -> Path:
    """The data folder autosaves go to (see :func:`resolve_data_dir`)."""
    return resolve_data_dir()[0]


@dataclass(frozen=True)
class Recovered:
    """One kept autosave of a window that ended without closing."""

    path: Path
    when: float  # the autosave's modification time
    model: str  # what it shows, in words ("digit_sum.keras", "a model from training")
    readable: bool = True

    @property
    def label(self) -> str:
        when = time.strftime("%H:%M:%S on %d %b %Y", time.localtime(self.when))
        return f"{when} — {self.model}"


def describe_session(path: Path) -> Recovered:
    """A :class:`Recovered` for ``path``, reading only its ``session.json``."""
    try:
        when = path.stat().st_mtime
    except OSError:
        when = 0.0
    try:
        info = Session.peek(path)
    except LstmvizError as e:
        return Recovered(path, when, f"unreadable: {str(e)[-80:]}", readable=False)
    name = info["model_name"] or ("a model from training" if info["snapshots"] else "no model")
    if info["embedded"]:
        name += " (embedded)"
    return Recovered(path, when, name)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


# ------------------------------------------------------------------------------------------
# training snapshots <-> session snapshots
# ------------------------------------------------------------------------------------------
def snapshot_to_dict(snap: Any) -> dict[str, Any]:
    """A :class:`lstmviz.train.core.Snapshot` as a session snapshot (JSON + arrays)."""
    layers = list(snap.weights)
    weights = [np.asarray(a) for k in layers for a in snap.weights[k]]
    spec = snap.spec
    return {
        "epoch": int(snap.epoch),
        "batch": int(snap.batch),
        "weights": weights,
        "step": int(snap.step),
        "layers": layers,
        "counts": [len(snap.weights[k]) for k in layers],
        "metrics": {k: float(v) for k, v in dict(snap.metrics).items()},
        "spec": {"config": spec.config, "name": spec.name, "keras_version": spec.keras_version},
    }


def dict_to_snapshot(d: dict[str, Any]) -> Any:
    """The inverse of :func:`snapshot_to_dict` (raises LstmvizError when it does not fit)."""
    from ..train.core import ModelSpec, Snapshot

    try:
        layers, counts, spec = d["layers"], d["counts"], d["spec"]
        ws = list(d["weights"])
        if sum(counts) != len(ws) or len(layers) != len(counts):
            raise ValueError("layer counts do not match the weights")
        weights, i = {}, 0
        for k, n in zip(layers, counts, strict=True):
            weights[str(k)] = ws[i : i + n]
            i += n
        return Snapshot(
            int(d["epoch"]),
            int(d["batch"]),
            int(d.get("step", 0)),
            weights,
            ModelSpec(
                spec["config"],
                str(spec.get("name", "training")),
                str(spec.get("keras_version", "3")),
            ),
            {str(k): float(v) for k, v in (d.get("metrics") or {}).items()},
        )
    except (KeyError, TypeError, ValueError) as e:
        raise LstmvizError(f"session: a training snapshot is malformed ({e})") from None


# ------------------------------------------------------------------------------------------
class SessionActions(QObject):
    """The session menu entries, autosave and restore of one main window."""

    _autosave_failed = Signal(str)

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.dir, self.data_warning = resolve_data_dir()
        self.recovered_dir = self.dir / RECOVERED_DIR
        self.data_warning_box: QMessageBox | None = None
        tag = f"{os.getpid()}-{next(_counter)}"
        self.lock_path = self.dir / f"running-{tag}.lock"
        self.autosave_path = self.dir / f"autosave-{tag}{SUFFIX}"
        self.restore_box: QMessageBox | None = None
        self.restore_candidate: Path | None = None
        self.session_path: Path | None = None  # the file last saved to / opened
        self.loaded_snapshots: list[dict[str, Any]] = []  # from an opened session
        self.last_autosave: float | None = None
        self._closed = False
        self._restoring = False
        # background autosaves go to one writer thread that stays up: starting a thread per
        # autosave made the GUI thread wait until the new thread ran (Thread.start), up to
        # tens of milliseconds when the cores are busy
        self._writer: threading.Thread | None = None
        self._writer_cv = threading.Condition()
        self._next: tuple[Session, bool] | None = None  # the newest state wins
        self._writing = False
        self._autosave_failed.connect(self._on_autosave_failed)
        self._build_menu()
        self.timer = QTimer(self)
        self.timer.setInterval(AUTOSAVE_MS)
        self.timer.timeout.connect(lambda: self.autosave(background=True))
        self.timer.start()
        # a background autosave asked for while a trace is computed waits for it: the trace
        # on screen is about to change, and writing a session (tens of MB with the model)
        # beside a trace took the GUI thread's core and the GIL (a 61 ms stall at a snapshot)
        self._after_busy = QTimer(self)
        self._after_busy.setSingleShot(True)
        self._after_busy.setInterval(BUSY_RETRY_MS)
        self._after_busy.timeout.connect(lambda: self.autosave(background=True))
        self._write_lock()
        self._connect_training()
        QTimer.singleShot(0, self, self.offer_restore)  # once the window is up (never after)
        if self.data_warning:
            QTimer.singleShot(0, self, self.show_data_warning)

    def shutdown(self) -> None:
        """The window closes: keep the last session, stop autosaving (see :meth:`close`)."""
        self.close()

    # ---- menu -------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        w = self.window
        file = w.menu("File")
        before = next((a for a in file.actions() if a.isSeparator()), None)

        def action(text: str, slot: Callable[[], Any], key: str, tip: str) -> QAction:
            a = QAction(text, w)
            a.setShortcut(QKeySequence(key))
            a.setStatusTip(tip)
            a.setToolTip(tip)
            a.triggered.connect(lambda _=False: slot())
            file.insertAction(before, a) if before is not None else file.addAction(a)
            w.addAction(a)
            return a

        self.open_action = action(
            "Open &session…",
            self.choose_open,
            "Ctrl+Shift+O",
            "Open a saved .lstmviz session: model, input, selection, view and training timeline",
        )
        self.save_action = action(
            "Save s&ession…",
            self.choose_save,
            "Ctrl+S",
            "Save everything you set up to a .lstmviz file",
        )
        self.embed_action = QAction("Embed the model in saved sessions", w)
        self.embed_action.setCheckable(True)
        self.embed_action.setChecked(True)
        self.embed_action.setStatusTip(
            "Store the model file inside the session, so it opens "
            "on another machine or after the model file changed"
        )
        if before is not None:
            file.insertAction(before, self.embed_action)
        else:
            file.addAction(self.embed_action)
        self.recover_menu = QMenu("&Recover", w)
        self.recover_menu.setToolTipsVisible(True)
        self.recover_menu.menuAction().setStatusTip(
            "Autosaves of windows that ended without closing (a crash, kill -9), by time "
            "and model: open one"
        )
        self.recover_menu.aboutToShow.connect(self._fill_recover_menu)
        if before is not None:
            file.insertMenu(before, self.recover_menu)
        else:
            file.addMenu(self.recover_menu)
        self._fill_recover_menu()

    def _fill_recover_menu(self) -> None:
        menu = self.recover_menu
        menu.clear()
        kept = self.recovered()
        for r in kept:
            a = menu.addAction(r.label)
            a.setToolTip(str(r.path))
            a.setStatusTip(f"Open the autosave kept in {r.path}")
            a.setEnabled(r.readable)
            a.triggered.connect(lambda _=False, p=r.path: self.recover(p))
        if not kept:
            none = menu.addAction("No recovered sessions")
            none.setEnabled(False)
        menu.addSeparator()
        where = menu.addAction(f"Kept in {self.recovered_dir}")
        where.setEnabled(False)
        if self.data_warning:
            warn = menu.addAction("⚠ The data folder is temporary this run")
            warn.setToolTip(self.data_warning)
            warn.setEnabled(False)

    # ---- the current state --------------------------------------------------------------------
    def current_session(self) -> Session | None:
        """The window's state as a :class:`Session` (None when no model is open)."""
        state = self.window.state
        if state.model is None:
            return None
        view: dict[str, Any] = {}
        with contextlib.suppress(AttributeError, TypeError):  # docks, toolbars, splitters
            view["window_state"] = bytes(self.window.saveState().toBase64()).decode("ascii")
        shown = getattr(self._train_panel(), "shown_snapshot", None)
        if isinstance(shown, int):
            view["training_snapshot_shown"] = shown
        s = session_from_state(state, view=view, snapshots=self._training_snapshots())
        # a model opened from a session's embedded copy may exist nowhere else: keep it
        s.keep_embedded(state.model)
        choice = getattr(self.window, "engine_choice", None)  # View ▸ Engine (train_panel)
        s.engine = str(getattr(choice, "engine", "numpy") or "numpy").lower()
        return s

    def _training_snapshots(self) -> list[dict[str, Any]]:
        panel = self._train_panel()
        snaps = getattr(panel, "snapshots", None) if panel is not None else None
        if callable(snaps):
            snaps = snaps()
        if not snaps:
            return list(self.loaded_snapshots)
        out = []
        for s in snaps:
            try:
                out.append(s if isinstance(s, dict) else snapshot_to_dict(s))
            except (AttributeError, TypeError, ValueError) as e:
                log.warning("snapshot not saved: %s", e)
        return out

    def _connect_training(self) -> None:
        """Autosave at each training snapshot (and when training ends), when the training
        panel (``lstmviz.app.train_panel``) is there."""
        self._pending = QTimer(self)
        self._pending.setSingleShot(True)
        self._pending.timeout.connect(lambda: self.autosave(background=True))

        def connect(panel: Any) -> None:
            panel.snapshot_added.connect(self._on_snapshot)
            panel.trained.connect(self._on_snapshot)

        if self.window.panels is not None:
            self.window.panels.on_built("train", connect)

    def _train_panel(self) -> Any:
        """The Train panel if it was opened, else None."""
        panels = self.window.panels
        return panels.built("train") if panels is not None else None

    def _on_snapshot(self, *_: Any) -> None:
        """Autosave now -- or, when the last one is under SNAPSHOT_GAP_S old, as soon as it is
        (snapshots can come many times a second; every one of them ends up saved)."""
        if self._restoring:
            return
        wait = (
            0.0
            if self.last_autosave is None
            else SNAPSHOT_GAP_S - (time.time() - self.last_autosave)
        )
        if wait <= 0:
            self._pending.stop()
            self.autosave(background=True)
        elif not self._pending.isActive():
            self._pending.start(int(wait * 1000) + 1)

    # ---- saving -------------------------------------------------------------------------------
    def save_session(self, path: str | os.PathLike[str], embed: bool | None = None) -> Path:
        """Save the current state to ``path`` (``.lstmviz`` added when missing)."""
        s = self.current_session()
        if s is None:
            raise LstmvizError("nothing to save: open a model first")
        p = Path(path)
        if p.suffix.lower() != SUFFIX:
            p = p.with_name(p.name + SUFFIX)
        embed = self.embed_action.isChecked() if embed is None else embed
        kept = s.model_bytes is not None  # the embedded copy it was opened with
        on_disk = bool(s.model_path) and Path(str(s.model_path)).is_file()
        s.save(p, embed_model=bool(embed and on_disk))
        self.session_path = p
        with contextlib.suppress(AttributeError):
            self.window._add_recent(str(p))
        if kept:
            self.window.status(
                f"Saved session {p}, with the model embedded in it again (the session it was "
                "opened from carried it)",
                10000,
            )
        else:
            self.window.status(f"Saved session {p}")
        return p

    def choose_save(self) -> None:
        doc = self.window.state
        if doc.model is None:
            self.window.show_error("Nothing to save yet: open a model first.")
            return
        stem = Path(doc.model_path).stem if doc.model_path else "session"
        start = str(self.session_path or Path.cwd() / f"{stem}{SUFFIX}")
        path = dialogs.ask_save_file(
            self.window, "Save session", start, f"lstmviz sessions (*{SUFFIX})"
        )
        if path:
            try:
                self.save_session(path)
            except LstmvizError as e:
                self.window.show_error(str(e))

    def autosave(self, background: bool = False) -> Path | None:
        """Write the autosave file (nothing when no model is open).

        The state is taken on the GUI thread; with ``background`` the file is written on a
        thread (a long training timeline takes a while to write), at most one at a time --
        a request while one is being written is written right after it.
        """
        if self._closed:
            return None
        if background and self._drawing():
            self._after_busy.start()  # again once the trace is in and drawn
            return self.autosave_path
        try:
            s = self.current_session()
            if s is None:
                return None
            # embed small models: the autosave must survive the model file changing (a model
            # that came embedded is kept embedded whatever its size)
            small = s.model_bytes is not None or (
                bool(s.model_path)
                and Path(str(s.model_path)).is_file()
                and Path(str(s.model_path)).stat().st_size <= 64 * 2**20
            )
        except (LstmvizError, OSError) as e:
            self._autosave_failed.emit(str(e))
            return None
        if not background:
            self.wait_for_autosave()
            return self.autosave_path if self._write(s, bool(small)) else None
        with self._writer_cv:
            self._next = (s, bool(small))  # the newest state wins
            self._writer_cv.notify_all()
            start = self._writer is None
            if start:
                self._writer = threading.Thread(
                    target=self._write_loop, name="lstmviz autosave", daemon=True
                )
        if start and self._writer is not None:
            self._writer.start()  # once: it then waits for the next autosave
        return self.autosave_path

    def _drawing(self) -> bool:
        """A trace is being computed, or the views are still drawing a big one over several
        event-loop turns (lstmviz/app/stagger.py): a session written now would hold the GIL
        while the window needs it."""
        from . import stagger

        st = self.window.state
        return bool(st.busy) or stagger.pending(st) > 0 or stagger.held(st) > 0

    def _write(self, s: Session, embed: bool) -> bool:
        try:
            s.save(self.autosave_path, embed_model=embed)
        except (LstmvizError, OSError) as e:
            self._autosave_failed.emit(str(e))  # queued to the GUI thread
            return False
        self.last_autosave = time.time()
        return True

    def _write_loop(self) -> None:
        while True:
            with self._writer_cv:
                while self._next is None and not self._closed:
                    self._writer_cv.wait()
                if self._next is None:  # closed, nothing left to write
                    return
                (s, embed), self._next = self._next, None
                self._writing = True
            try:
                self._write(s, embed)
            finally:
                with self._writer_cv:
                    self._writing = False
                    self._writer_cv.notify_all()

    def wait_for_autosave(self, timeout: float = 60.0) -> None:
        """Wait until the background autosaves asked for have been written."""
        with self._writer_cv:
            self._writer_cv.wait_for(lambda: self._next is None and not self._writing, timeout)

    def _on_autosave_failed(self, msg: str) -> None:
        log.warning("autosave failed: %s", msg)
        self.window.status(f"Autosave failed: {msg}", 8000)

    # ---- opening ------------------------------------------------------------------------------
    def choose_open(self) -> None:
        path = dialogs.ask_open_file(
            self.window, "Open session", f"lstmviz sessions (*{SUFFIX});;All files (*)"
        )
        if path:
            self.open_session(path)

    def open_session(
        self, path: str | os.PathLike[str], then: Callable[[], None] | None = None
    ) -> Any:
        """Read a session in a worker, then show its model, input, selection and view.

        Errors (a damaged file, a missing model) go to the window's error dialog; the model
        shown before stays.
        """
        path = str(path)

        def load(progress: Any, should_stop: Any) -> Any:
            from ..io.meta import load_info

            s = Session.load(path)
            model = self._model_for(s)
            info = None
            if s.model_path and Path(s.model_path).is_file():
                with contextlib.suppress(LstmvizError):
                    info = load_info(s.model_path)
            return s, model, info

        def loaded(result: Any) -> None:
            s, model, info = result
            self._show(s, model, info, path, then)

        self.window.status(f"Opening session {path}…", 3000)
        return self.window.run_worker(load, loaded, f"Opening {Path(path).name}")

    def _model_for(self, s: Session) -> Any:
        if s.model_path or s.model_bytes is not None:
            return s.load_model()
        for snap in reversed(s.snapshots):  # a model that only lived in a training run
            if "spec" in snap:
                from ..io.keras import dry_run

                model = dict_to_snapshot(snap).engine_model()
                # its config and weights come from the file: run it once, small, as every
                # model file is at load (refused with a message, not failing later)
                dry_run(model, f"{s.source}: the model of its training timeline")
                return model
        raise LstmvizError(f"{s.source}: the session names no model")

    def _show(
        self, s: Session, model: Any, info: Any, path: str, then: Callable[[], None] | None
    ) -> None:
        doc = self.window.state
        mpath = s.model_path if s.model_path and Path(s.model_path).is_file() else None
        try:
            doc.set_model(model, mpath, info, s.input)
        except LstmvizError as e:
            self.window.show_error(f"{path}: {e}")
            return
        self.session_path = Path(path)
        self.loaded_snapshots = list(s.snapshots)
        with contextlib.suppress(AttributeError):
            self.window._add_recent(path)
        done = {"v": False, "connected": False}

        def apply(*_: Any) -> None:
            if done["v"] or doc.trace is None or doc.busy:
                return
            done["v"] = True
            if done["connected"]:
                doc.events.trace.disconnect(apply)
            problems = self._apply_selection(s)
            problems += self._restore_training(s)
            msgs = s.warnings + problems
            self.window.status("; ".join(msgs) if msgs else f"Opened session {path}", 10000)
            if s.warnings:
                self.window.show_error(
                    "The session opened, with a warning:\n" + "\n".join(s.warnings)
                )
            if then is not None:
                then()

        if doc.trace is not None and not doc.busy:
            apply()
        else:
            done["connected"] = True
            doc.events.trace.connect(apply)

    def _restore_training(self, s: Session) -> list[str]:
        """Put a session's training snapshots back on the training panel's timeline."""
        snaps = [d for d in s.snapshots if "spec" in d]
        if not snaps or self.window.panels is None:
            return []
        panel = self.window.panels.widget("train")
        try:
            objs = [dict_to_snapshot(d) for d in snaps]
        except LstmvizError as e:
            return [f"training timeline not restored: {e}"]
        shown = s.view.get("training_snapshot_shown")
        self._restoring = True
        try:
            panel.load_snapshots(objs, shown if isinstance(shown, int) else None)
        except (LstmvizError, AttributeError, TypeError, ValueError) as e:
            return [f"training timeline not restored: {e}"]
        finally:
            self._restoring = False
        return []

    def _apply_selection(self, s: Session) -> list[str]:
        problems = apply_selection(s, self.window.state)
        for name in ("all_layers", "lock_levels", "hide_future"):
            if isinstance(s.view.get(name), bool):
                setattr(self.window.state.options, name, s.view[name])
        choice = getattr(self.window, "engine_choice", None)
        names = {n.lower(): n for n in getattr(choice, "actions", {})}
        if choice is not None and s.engine in names and choice.engine != names[s.engine]:
            try:
                choice.set_engine(names[s.engine])
            except LstmvizError as e:
                problems.append(f"engine not restored: {e}")
        state = s.view.get("window_state")
        if isinstance(state, str) and len(state) < 2**20:
            ok = self.window.restoreState(QByteArray.fromBase64(state.encode("ascii", "replace")))
            if not ok:
                problems.append("the window layout was not restored")
        return problems

    # ---- crash detection ------------------------------------------------------------------
    def _write_lock(self) -> None:
        try:
            self.lock_path.write_text(f"{os.getpid()}\n{time.time()}\n")
        except OSError as e:
            log.warning("cannot write %s: %s", self.lock_path, e)

    def stale_autosaves(self) -> list[tuple[Path, Path | None]]:
        """``(lock, autosave or None)`` of every lstmviz window that ended without closing,
        oldest first."""
        out = []
        for lock in self.dir.glob("running-*.lock"):
            m = _LOCK_RE.search(lock.name)
            if m is None or lock == self.lock_path or _pid_alive(int(m.group(1))):
                continue
            auto = self.dir / f"autosave-{m.group(1)}-{m.group(2)}{SUFFIX}"
            out.append((lock, auto if auto.is_file() else None))
        # temporary files of writes a kill interrupted (this and older lstmviz versions)
        clean_stale_temps(self.dir)
        for tmp in self.dir.glob(f".autosave-*{SUFFIX}.*.tmp"):
            m = re.match(r"\.autosave-(\d+)-", tmp.name)
            if m and not _pid_alive(int(m.group(1))):
                with contextlib.suppress(OSError):
                    tmp.unlink()
        return sorted(out, key=lambda la: la[1].stat().st_mtime if la[1] else 0)

    def _keep(self, src: Path, stem: str) -> Path | None:
        """Move ``src`` into the recovered folder as ``<stem>.lstmviz`` (``<stem>-2``... when
        taken); never replaces a file there. Returns the new path, None when it failed."""
        try:
            self.recovered_dir.mkdir(exist_ok=True)
        except OSError as e:
            log.warning("cannot create %s: %s", self.recovered_dir, e)
            return None
        for k in range(1, 1000):
            dst = self.recovered_dir / (f"{stem}{SUFFIX}" if k == 1 else f"{stem}-{k}{SUFFIX}")
            try:
                os.link(src, dst)  # fails if dst exists: nothing is overwritten
            except FileExistsError:
                continue
            except OSError:  # no hard links on this file system
                if dst.exists():
                    continue
                try:
                    os.replace(src, dst)
                except OSError as e:
                    log.warning("cannot keep %s: %s", src, e)
                    return None
                return dst
            with contextlib.suppress(OSError):
                os.unlink(src)
            return dst
        return None  # pragma: no cover

    def keep_stale(self) -> list[Path]:
        """Move the autosave of every window that ended without closing into the recovered
        folder, one file each, named by time and window; drop their markers. A marker stays
        when its autosave could not be moved (tried again next start). Returns the new
        files, oldest first."""
        kept: list[Path] = []
        legacy = self.dir / f"recovered{SUFFIX}"  # what older versions kept (one file)
        if legacy.is_file():
            when = time.strftime("%Y%m%d-%H%M%S", time.localtime(legacy.stat().st_mtime))
            self._keep(legacy, f"{when}-0-0")
        for lock, auto in self.stale_autosaves():
            if auto is not None:
                m = _LOCK_RE.search(lock.name)
                tag = f"{m.group(1)}-{m.group(2)}" if m else "0-0"
                try:
                    mtime = auto.stat().st_mtime
                except OSError:
                    continue
                when = time.strftime("%Y%m%d-%H%M%S", time.localtime(mtime))
                dst = self._keep(auto, f"{when}-{tag}")
                if dst is None:
                    continue  # keep the marker: offered again next time
                kept.append(dst)
            with contextlib.suppress(OSError):
                lock.unlink()
        return kept

    def recovered(self) -> list[Recovered]:
        """Every kept autosave, newest first."""
        try:
            paths = [
                p
                for p in self.recovered_dir.iterdir()
                if p.suffix == SUFFIX and not p.name.startswith(".") and p.is_file()
            ]
        except OSError:
            paths = []
        out = [describe_session(p) for p in paths]
        return sorted(out, key=lambda r: (r.when, r.path.name), reverse=True)

    def recover(self, path: str | os.PathLike[str]) -> Any:
        """Open a kept autosave (File ▸ Recover). The file stays where it is."""
        return self.open_session(path)

    def offer_restore(self) -> QMessageBox | None:
        """After an unclean exit, keep its autosave(s) and ask (without blocking) whether to
        restore the newest one; the others are in File ▸ Recover."""
        new = self.keep_stale()
        self._fill_recover_menu()
        if not new:
            return None
        newest = describe_session(max(new, key=lambda p: p.stat().st_mtime))
        if not newest.readable:
            log.warning("the crashed session cannot be read: %s", newest.model)
            self.window.status(
                f"lstmviz did not close cleanly last time; its autosave cannot be read "
                f"({newest.model}). It is kept in {newest.path}.",
                15000,
            )
            return None
        self.restore_candidate = newest.path
        others = len(self.recovered()) - 1
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Restore session?",
            f"lstmviz did not close cleanly last time.\n\nRestore the session "
            f"autosaved at {newest.label.replace(' — ', ' (')})?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self.window,
        )
        box.setInformativeText(
            f"It is kept in {newest.path}; File ▸ Recover opens it later"
            + (
                f", with {others} other recovered session{'s' if others != 1 else ''}."
                if others > 0
                else "."
            )
        )
        box.setDefaultButton(QMessageBox.StandardButton.Yes)
        box.button(QMessageBox.StandardButton.Yes).setText("&Restore")
        box.button(QMessageBox.StandardButton.No).setText("&Not now")
        box.finished.connect(self._on_restore_answer)
        self.restore_box = box
        box.open()
        return box

    def _on_restore_answer(self, result: int) -> None:
        box, self.restore_box = self.restore_box, None
        yes = box is not None and box.clickedButton() is box.button(QMessageBox.StandardButton.Yes)
        if yes and self.restore_candidate is not None:
            self.recover(self.restore_candidate)

    def show_data_warning(self) -> QMessageBox | None:
        """Say (without blocking) that the data folder is a temporary one this run."""
        if not self.data_warning:
            return None
        log.warning("%s", self.data_warning)
        self.window.status(self.data_warning, 0)
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Autosave folder",
            self.data_warning,
            QMessageBox.StandardButton.Ok,
            self.window,
        )
        self.data_warning_box = box
        box.open()
        return box

    # ---- clean exit ---------------------------------------------------------------------------
    def close(self) -> None:
        """A clean exit: keep the session as ``last-session.lstmviz``, drop the marker."""
        if self._closed:
            return
        self._closed = True
        self.timer.stop()
        if getattr(self, "_pending", None) is not None:
            self._pending.stop()
        self.wait_for_autosave()  # a write in flight must not recreate the file below
        with self._writer_cv:
            self._writer_cv.notify_all()  # the writer thread ends
        for box in (self.restore_box, self.data_warning_box):
            if box is not None:
                box.close()
        try:
            s = self.current_session()
            if s is not None:
                s.save(self.dir / f"last-session{SUFFIX}")
        except (LstmvizError, OSError) as e:
            log.warning("could not keep the last session: %s", e)
        for p in (self.autosave_path, self.lock_path):
            with contextlib.suppress(OSError):
                p.unlink()
