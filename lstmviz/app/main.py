"""``lstmviz [MODEL] [--input FILE] [--text T] [--layer NAME] [--step T] [--size WxH]
[--screenshot OUT.png] [--presentation]``: open the app, or render it headless to a PNG.

``lstmviz LESSON.lstmviz-lesson [--lesson-step N] [--presentation] [--screenshot OUT.png]``
opens a lesson at its step N (1 is the first)."""

from __future__ import annotations

import argparse
import ctypes.util
import os
import re
import sys
from pathlib import Path
from typing import Any

from ..errors import LstmvizError

#: Debian/Ubuntu packages of the libraries Qt's xcb platform plugin links to.
XCB_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
}


def xcb_hint(missing: list[str]) -> str:
    """The message for missing libraries of Qt's xcb plugin, naming what to install."""
    pkgs = list(dict.fromkeys(XCB_PACKAGES.get(m, _guess_package(m)) for m in missing))
    return (
        "lstmviz: error: Qt cannot start its X11 (xcb) platform plugin because "
        + (
            f"the library {missing[0]} is missing.\n"
            if len(missing) == 1
            else f"these libraries are missing: {', '.join(missing)}.\n"
        )
        + f"Install {'it' if len(missing) == 1 else 'them'} and start lstmviz again:\n"
        f"    sudo apt-get install {' '.join(pkgs)}        (Debian, Ubuntu)\n"
        "Or run without a display: lstmviz MODEL --screenshot out.png"
    )


def _guess_package(soname: str) -> str:
    base, _, ver = soname.partition(".so.")
    name = base.lower()
    return f"{name}-{ver}" if name[-1:].isdigit() else f"{name}{ver}"


XCB_CURSOR_HINT = xcb_hint(["libxcb-cursor.so.0"])


def parse_args(argv: list[str]) -> argparse.Namespace:
    from ..io import MODEL_FORMATS
    from .keys import keys_text

    formats = "\n".join(f"  {suffix:<13} {what}" for suffix, what in MODEL_FORMATS.items())
    p = argparse.ArgumentParser(
        prog="lstmviz",
        description="Open an LSTM model and step through a sequence, watching every gate.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Model files:\n{formats}\n  .lstmviz      a saved session (model, input, view)\n"
        "  .lstmviz-lesson  a lesson: scripted steps the clicker (PageDown) moves through\n"
        "  A TF1 checkpoint opens by its prefix (model.ckpt) too.\n\n"
        f"Keys in the window:\n{keys_text()}\n\n"
        "Subcommands: lstmviz info|trace|train|export ... (see lstmviz SUBCOMMAND -h)",
    )
    p.add_argument(
        "model",
        nargs="?",
        help="a model file (formats below), a .lstmviz session or a .lstmviz-lesson "
        "(default: a bundled example)",
    )
    p.add_argument("--input", help="input sequence: .npy, .npz (one array per model input), .csv")
    p.add_argument("--text", help='input typed as text, e.g. "4 7 3" or "hello"')
    p.add_argument("--layer", help="LSTM layer to show first")
    p.add_argument("--step", type=int, default=0, help="timestep to show first")
    p.add_argument("--size", default="1600x900", help="window size WxH (default 1600x900)")
    p.add_argument(
        "--screenshot",
        metavar="OUT.png",
        help="render the window without a display, save it as PNG and exit",
    )
    p.add_argument(
        "--presentation",
        action="store_true",
        help="start in presentation mode (large fonts, full screen)",
    )
    p.add_argument(
        "--lesson-step",
        type=int,
        metavar="N",
        help="a lesson: open it at step N (1 is the first; default 1)",
    )
    a = p.parse_args(argv)
    m = re.fullmatch(r"(\d+)[x×X](\d+)", a.size.strip())
    if m is None or not (200 <= int(m.group(1)) <= 10000 and 200 <= int(m.group(2)) <= 10000):
        raise LstmvizError(f"--size must look like 1600x900 (200..10000 each); got {a.size!r}")
    a.width, a.height = int(m.group(1)), int(m.group(2))
    if a.input is not None and a.text is not None:
        raise LstmvizError("give either --input or --text, not both")
    if a.step < 0:
        raise LstmvizError(f"--step must be >= 0; got {a.step}")
    a.is_lesson = a.model is not None and a.model.lower().endswith(".lstmviz-lesson")
    if a.lesson_step is not None and not a.is_lesson:
        raise LstmvizError("--lesson-step N opens a lesson at a step: give a .lstmviz-lesson file")
    if a.lesson_step is not None and a.lesson_step < 1:
        raise LstmvizError(f"--lesson-step counts from 1 (the first step); got {a.lesson_step}")
    if a.is_lesson:
        given = [
            opt
            for opt, v in (
                ("--input", a.input),
                ("--text", a.text),
                ("--layer", a.layer),
                ("--step", a.step or None),
            )
            if v is not None
        ]
        if given:
            raise LstmvizError(
                f"{given[0]} does not apply to a lesson: each lesson step sets its input, layer "
                "and timestep (use --lesson-step N to start at step N)"
            )
    if a.screenshot is not None and Path(a.screenshot).suffix.lower() != ".png":
        raise LstmvizError(f"--screenshot must name a .png file; got {a.screenshot!r}")
    if a.screenshot is not None and not Path(a.screenshot).resolve().parent.is_dir():
        raise LstmvizError(
            f"--screenshot {a.screenshot}: the folder {Path(a.screenshot).parent} does not "
            "exist; create it first or save somewhere else"
        )
    return a


def xcb_problem(env: dict[str, str] | None = None) -> str | None:
    """The reason Qt's xcb plugin will fail to load, if we can tell before Qt aborts.

    Qt's xcb platform plugin (used when ``QT_QPA_PLATFORM`` is unset or ``xcb`` and an X
    display is set) needs ``libxcb-cursor.so.0`` (since Qt 6.5) and a few more xcb
    libraries that minimal systems lack; without them Qt prints a generic message and
    aborts the process. ``ldd`` on the plugin names exactly what is missing.
    """
    env = dict(os.environ if env is None else env)
    platform = env.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux"):
        return None
    if (
        platform in ("", "xcb")
        and not env.get("DISPLAY")
        and not (platform == "" and env.get("WAYLAND_DISPLAY"))
    ):
        return (
            "lstmviz: error: no display to open a window on (DISPLAY is not set).\n"
            "Start lstmviz from a desktop session, or render without a display:\n"
            "    lstmviz MODEL --screenshot out.png"
        )
    if platform not in ("", "xcb"):
        return None
    if platform == "" and env.get("WAYLAND_DISPLAY"):
        return None  # Qt prefers wayland there
    missing = _missing_xcb_libraries()
    if missing is None:  # no ldd: check the one library that is missing most often
        missing = (
            [] if _have_library("xcb-cursor", "libxcb-cursor.so.0") else ["libxcb-cursor.so.0"]
        )
    return xcb_hint(missing) if missing else None


def _missing_xcb_libraries() -> list[str] | None:
    """Libraries the Qt xcb plugin links to that the dynamic linker cannot find (None when
    that cannot be checked)."""
    import importlib.util
    import shutil
    import subprocess

    spec = importlib.util.find_spec("PySide6")
    ldd = shutil.which("ldd")
    if spec is None or not spec.submodule_search_locations or ldd is None:
        return None
    qt = Path(next(iter(spec.submodule_search_locations))) / "Qt"
    files = [
        qt / "plugins" / "platforms" / "libqxcb.so",
        *sorted((qt / "lib").glob("libQt6XcbQpa.so*"))[:1],
    ]
    missing: list[str] = []
    for f in files:
        if not f.is_file():
            continue
        try:
            out = subprocess.run(
                [ldd, str(f)], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        for line in out.splitlines():
            if "not found" in line:
                missing.append(line.split("=>")[0].strip())
    if not _have_library("xcb-cursor", "libxcb-cursor.so.0"):
        missing.append("libxcb-cursor.so.0")  # loaded at run time, not linked
    return list(dict.fromkeys(missing))


def _have_library(name: str, soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
        return True
    except OSError:
        pass
    return ctypes.util.find_library(name) is not None


def main(argv: list[str] | None = None) -> int:
    """Run the app (or take a screenshot); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parse_args(argv)
    if a.model is not None and Path(a.model).suffix.lower() != ".lstmviz":
        from ..io.more_formats import resolve_model_path

        resolve_model_path(a.model)  # a model file, or a TF1 checkpoint by its prefix
    elif a.model is not None and not Path(a.model).is_file():
        raise LstmvizError(f"{a.model}: no such session file")
    if a.input is not None and not Path(a.input).is_file():
        raise LstmvizError(f"{a.input}: no such input file")
    if a.screenshot is not None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    else:
        problem = xcb_problem()
        if problem is not None:
            print(problem, file=sys.stderr)
            return 3
    return _run(a)


def _run(a: argparse.Namespace) -> int:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    model_path = a.model
    if model_path is None:
        from ..examples import default_example

        ex = default_example()
        model_path = str(ex.path) if ex is not None else None
    is_session = model_path is not None and Path(model_path).suffix.lower() == ".lstmviz"
    is_lesson = bool(getattr(a, "is_lesson", False))
    # read the model while Qt, pyqtgraph and the window come up
    preload = (
        start_loading(model_path, text=a.text, input_path=a.input)
        if model_path is not None and not is_session and not is_lesson
        else None
    )
    app = QApplication.instance() or QApplication(["lstmviz"])
    app.setApplicationName("lstmviz")
    app.setOrganizationName("lstmviz")
    from .main_window import _excepthook_for

    window = build_window(a.width, a.height, with_model=model_path is not None)
    if a.screenshot is not None:
        window.state.options.animate = False  # the picture shows every number
    old_hook = sys.excepthook
    sys.excepthook = _excepthook_for(window)
    state: dict[str, Any] = {"ready": False}

    def after_load() -> None:
        doc = window.state
        try:
            if a.layer:
                doc.set_layer(a.layer)
            if a.step:
                if doc.trace is not None and a.step >= doc.timesteps:
                    raise LstmvizError(
                        f"--step {a.step} is past the end: the input has "
                        f"{doc.timesteps} timesteps (0..{doc.timesteps - 1})"
                    )
                doc.set_t(a.step)
        except LstmvizError as e:
            window.show_error(str(e))
            state["error"] = str(e)
        state["ready"] = True

    if model_path is not None:

        def when_traced() -> None:
            doc = window.state
            if doc.trace is not None and not doc.busy:
                after_load()
            else:
                doc.events.trace.connect(_once(after_load))

        if is_session or is_lesson:
            window.ensure_actions()  # the session and lesson menus open these
        if is_lesson and window.lessons is not None:

            def lesson_ready() -> None:
                state["ready"] = True

            step = (a.lesson_step or 1) - 1
            if not window.lessons.open_lesson(model_path, step=step, then=lesson_ready):
                state["error"] = window.last_error or "the lesson could not be opened"
                state["ready"] = True
        elif is_session and window.session_actions is not None:
            window.session_actions.open_session(model_path, then=when_traced)
        else:
            window.open_model(
                model_path, text=a.text, input_path=a.input, then=when_traced, preload=preload
            )
    else:
        state["ready"] = True
    if a.screenshot is None:
        window.restore_layout()  # the last session's geometry and docks (before presentation)
        if a.size != "1600x900":
            window.resize(a.width, a.height)
    if a.presentation:
        window.set_presentation(True, fullscreen=a.screenshot is None)
    if a.screenshot is not None:
        window.show()
        loop = QEventLoop()
        timer = QTimer()
        timer.setInterval(20)

        def poll() -> None:
            if (
                state["ready"]
                and not window.runner.is_running()
                and not window.trace_runner.is_running()
                and not window.state.busy
            ) or window.last_error is not None:
                loop.quit()

        timer.timeout.connect(poll)
        timer.start()
        QTimer.singleShot(120_000, loop.quit)
        loop.exec()
        timer.stop()
        sys.excepthook = old_hook
        if window.last_error is not None and (window.state.trace is None or "error" in state):
            window.close()
            raise LstmvizError(window.last_error)
        window.ensure_actions()
        from .stagger import flush

        flush(window.state)  # a big trace still on its way to some views: drawn now
        for _ in range(3):
            app.processEvents()
        out = Path(a.screenshot)
        pixmap = window.grab()
        from ..io.atomic import atomic_target

        with atomic_target(out) as tmp:  # never a half-written PNG
            saved = pixmap.save(str(tmp), "PNG")
            if not saved:
                window.close()
                raise LstmvizError(f"{out}: could not write the screenshot")
        print(f"wrote {out} ({pixmap.width()}x{pixmap.height()})")
        if window.last_error is not None:
            print(f"lstmviz: warning: {window.last_error}", file=sys.stderr)
        window.close()
        return 0

    # Once the window and its extensions exist, their ~80,000 Python objects live as long as
    # the app: moved out of the garbage collector's view, a full collection no longer walks
    # them (44 ms with the Train panel: a visible stall while a model trains).
    window.actions_built.connect(_once(freeze_gc))
    if a.presentation:
        window.showFullScreen()
    else:
        window.show()
    try:
        return int(app.exec())
    finally:
        sys.excepthook = old_hook


def start_loading(path: str, text: str | None = None, input_path: str | None = None) -> Any:
    """Start reading a model (and its input) on a background thread; returns a
    :class:`concurrent.futures.Future` of ``(model, info, x)`` for
    :meth:`MainWindow.open_model`'s ``preload``.

    The ``lstmviz`` command's start-up begins here: the cyclic garbage collector pauses
    (:func:`pause_gc`) until the window built by :func:`build_window` is complete.
    """
    pause_gc()
    from .workers import background

    future = background(load_model_files, str(path), None, text, input_path, name="lstmviz preload")
    # the window's modules (pyqtgraph, the views) import while the file is being read
    from . import main_window  # noqa: F401

    return future


def load_model_files(
    path: str, x: Any = None, text: str | None = None, input_path: str | None = None
) -> tuple[Any, Any, Any]:
    """``(model, info, x)`` read from disk (no Qt: runs on any thread)."""
    from ..io import load_model
    from ..io.inputs import load_input
    from ..io.meta import load_info

    model = load_model(path)
    info = load_info(path)
    if x is None and (text is not None or input_path is not None):
        x = load_input(model, path=input_path, text=text, info=info)
    return model, info, x


def build_window(width: int = 1600, height: int = 900, with_model: bool = True) -> Any:
    """The main window as ``lstmviz`` starts it: extensions install right after the first
    paint (of the model, when one is being opened), so the model shows up early."""
    from .main_window import MainWindow

    window = MainWindow(actions=False)
    window.resize(width, height)
    if with_model:  # lay the side panels out now, while the model loads
        window.show_panels()
    window.build_actions_after_first_paint(wait_for_trace=with_model)
    window.actions_built.connect(_once(resume_gc))
    return window


#: the collector was enabled when :func:`pause_gc` paused it
_gc_paused = {"v": False}


def pause_gc() -> None:
    """Pause the cyclic garbage collector for the start-up (:func:`resume_gc` ends it).

    Starting the window allocates ~10^5 objects that live as long as the app (modules,
    classes, widgets, plot items); each of the ~170 collections that allocation set off
    walked the young ones again and one walked everything: 50-70 ms of the start-up. They
    are collected once, after the window is complete (``gc.freeze`` then keeps them out of
    later collections, :func:`freeze_gc`).
    """
    import gc

    if gc.isenabled():
        gc.disable()
        _gc_paused["v"] = True


def resume_gc() -> None:
    """Turn the collector back on after :func:`pause_gc`.

    What the start-up made is moved out of the collector's view first (``gc.freeze``):
    enabled as it was, the first collection would have walked all of it (~35 ms), in the
    middle of the user's first click. Reference counting freed everything acyclic
    meanwhile; the few cycles the start-up left (~120 objects) go when :func:`freeze_gc`
    collects everything once.
    """
    import gc

    if _gc_paused["v"]:
        _gc_paused["v"] = False
        gc.freeze()
        gc.enable()


def freeze_gc() -> None:
    """Collect everything once, then move every object alive now out of the garbage
    collector's view (``gc.freeze``)."""
    import gc

    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _once(fn: Any) -> Any:
    done = {"v": False}

    def run(*_: Any) -> None:
        if not done["v"]:
            done["v"] = True
            fn()

    return run
