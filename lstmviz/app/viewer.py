"""``lstmviz.show``: the window from Python and notebooks, and the handle it returns.

>>> viewer = lstmviz.show(model, x)     # a torch / Keras model, a loaded model or a file
>>> viewer.t = 5                        # step to t = 5
>>> viewer.layer = "lstm_l1"            # another LSTM layer
>>> viewer.set_input(x2)                # the framework runs the model again
>>> viewer.screenshot("gates.png")      # the window as it is, as an (H, W, 4) array

In Jupyter or IPython the window opens without blocking: Qt's event loop is integrated as
``%gui qt`` does (``get_ipython().enable_gui("qt")``) and the handle comes back at once, as
``napari.view_image`` does. In a script ``show`` blocks until the window is closed, unless
``block=False`` (then :meth:`Viewer.run` blocks later).

The handle talks to the window through its public methods and its state
(:class:`lstmviz.state.ViewerState`: ``set_t``, ``set_layer``, ``set_input``, ...): the same
calls the app's own widgets make.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, LstmvizError

#: How long :class:`Viewer` waits for a trace computed off the GUI thread (seconds).
TRACE_TIMEOUT = 600.0


def _ipython() -> Any:
    """The running IPython shell, or None (plain Python, a script)."""
    import sys

    ipython = sys.modules.get("IPython")  # not imported: not running under IPython
    getter = getattr(ipython, "get_ipython", None)
    return getter() if callable(getter) else None


def _application() -> Any:
    """The QApplication (created if needed), after checking that Qt can open a window."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        from .main import xcb_problem

        problem = xcb_problem()
        if problem is not None:
            raise LstmvizError(
                problem.replace("lstmviz: error: ", "", 1)
                + "\nWithout a window, in a notebook: trace = lstmviz.trace(model, x), then "
                "trace.plot(t=...) and trace.animate() draw the gates inline"
            )
        app = QApplication(["lstmviz"])
        app.setApplicationName("lstmviz")
        app.setOrganizationName("lstmviz")
    return app


def _integrate_event_loop(shell: Any) -> None:
    """Let the IPython kernel (or terminal) run Qt's event loop between cells: ``%gui qt``."""
    enable = getattr(shell, "enable_gui", None)
    if enable is None:
        return
    try:
        enable("qt")
    except (RuntimeError, ValueError) as e:  # another GUI loop is active
        raise LstmvizError(
            f"cannot integrate Qt's event loop with IPython ({e}); run `%gui qt` in a fresh "
            "kernel, or call lstmviz.show(..., block=True)"
        ) from None
    _keep_kernel_awake(shell)


def _keep_kernel_awake(shell: Any) -> None:
    """Make sure a Jupyter kernel gets back to its own loop between cells.

    Between cells ipykernel runs Qt's event loop and leaves it when the descriptor of its
    shell socket fires. On a loaded machine a request could arrive without that wake-up, and the
    kernel then sat in Qt's loop for ever (the cell after ``lstmviz.show`` never ran). A timer
    hands control back to the kernel four times a second, as IPython's input hooks do: the
    kernel handles what is waiting and enters Qt's loop again a millisecond later. Nothing
    happens outside a kernel or while a cell runs (ipykernel's notifier is off then).
    """
    kernel = getattr(shell, "kernel", None)
    if kernel is None or getattr(kernel, "_lstmviz_keep_awake", None) is not None:
        return
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    def back_to_the_kernel() -> None:
        notifier = getattr(kernel, "_qt_notifier", None)
        loop = getattr(getattr(kernel, "app", None), "qt_event_loop", None)
        if notifier is None or loop is None or not notifier.isEnabled():
            return  # not in ipykernel's loop between cells
        notifier.setEnabled(False)
        loop.quit()

    timer = QTimer(QApplication.instance())
    timer.setInterval(250)
    timer.timeout.connect(back_to_the_kernel)
    timer.start()
    kernel._lstmviz_keep_awake = timer


class Viewer:
    """The handle :func:`show` returns: read and drive the window from code.

    Attributes ``t``, ``layer``, ``batch`` and ``units`` read and set the window's current
    timestep, LSTM layer, batch item and selected units; :meth:`set_input` and
    :meth:`set_text` trace a new input (a live model runs in its framework again);
    :meth:`screenshot` grabs the window.
    """

    def __init__(self, window: Any, model: Any) -> None:
        self.window = window
        self.model = model

    # --- the window's state (lstmviz.state.ViewerState) --------------------------------------
    @property
    def _doc(self) -> Any:
        return self.window.state

    @property
    def state(self) -> Any:
        """The window's :class:`lstmviz.state.ViewerState` (events, options, selection)."""
        return self.window.state

    @property
    def trace(self) -> Any:
        """The :class:`~lstmviz.engine.Trace` on screen."""
        return self._doc.trace

    @property
    def t(self) -> int:
        """The current timestep."""
        return int(self._doc.t)

    @t.setter
    def t(self, value: int) -> None:
        n = int(self._doc.timesteps)
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise InputError(f"viewer.t must be an integer timestep; got {value!r}")
        t = int(value) + (n if value < 0 else 0)
        if not 0 <= t < n:
            raise InputError(f"t={value} is out of range: layer {self.layer!r} has {n} timesteps")
        self._doc.set_t(t)
        self._process()

    @property
    def layer(self) -> str:
        """Trace name of the LSTM layer shown (set it by name or index)."""
        return str(self._doc.layer)

    @layer.setter
    def layer(self, value: str | int) -> None:
        names = list(self._doc.layer_names)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if not -len(names) <= int(value) < len(names):
                raise InputError(
                    f"layer index {value} out of range: the trace has {len(names)} LSTM "
                    f"layer(s): {', '.join(names)}"
                )
            value = names[int(value)]
        self._doc.set_layer(str(value))
        self._process()

    @property
    def layers(self) -> list[str]:
        """Trace names of every LSTM layer."""
        return list(self._doc.layer_names)

    @property
    def batch(self) -> int:
        return int(self._doc.batch)

    @batch.setter
    def batch(self, value: int) -> None:
        self._doc.set_batch(int(value))
        self._process()

    @property
    def units(self) -> list[int]:
        """Selected units of the current layer (the first is explained in the unit detail)."""
        return list(self._doc.selected_units)

    @units.setter
    def units(self, value: Any) -> None:
        self._doc.set_units([int(u) for u in value])
        self._process()

    @property
    def presentation(self) -> bool:
        return bool(self.window.presentation)

    @presentation.setter
    def presentation(self, on: bool) -> None:
        self.window.set_presentation(bool(on), fullscreen=False)
        self._process()

    # --- inputs --------------------------------------------------------------------------------
    def set_input(self, x: Any) -> None:
        """Trace a new input and show it.

        ``x`` is given as :func:`show` got it: for a live model exactly as the model takes it
        (the framework runs the model again); for a model file ``(batch, T, F)`` floats or
        ``(batch, T)`` token ids (a single sequence gets a batch axis).
        """
        from ..bridge.common import LiveModel, to_numpy

        m = self._doc.model
        if isinstance(m, LiveModel):
            if m.multi_input:
                if not isinstance(x, (list, tuple)) or len(x) != len(m.layouts):
                    raise InputError(
                        f"{m.name}: the model takes {len(m.layouts)} inputs; pass a list"
                    )
                xs: Any = [
                    lay.to_lstmviz(np.asarray(to_numpy(a)))
                    for lay, a in zip(m.layouts, x, strict=True)
                ]
            else:
                xs = m.layouts[0].to_lstmviz(np.asarray(to_numpy(x)))
            self._guard(lambda: self._doc.set_input(xs))
        else:
            self._guard(lambda: self._doc.set_input(x))

    def set_text(self, text: str) -> None:
        """Type an input (digits, characters, words, ids or numbers, as in the input strip)."""
        self._guard(lambda: self._doc.set_text(text))

    # --- the window ----------------------------------------------------------------------------
    def screenshot(
        self, path: str | os.PathLike[str] | None = None, size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """The window as an ``(H, W, 4)`` uint8 RGBA array; also written to ``path`` (PNG)
        when given. ``size`` resizes the window first, in pixels ``(width, height)``."""
        if size is not None:
            self.window.resize(int(size[0]), int(size[1]))
        from .stagger import flush

        flush(self.window.state)  # a big trace still on its way to some views: drawn now
        self._process()
        self._process()
        image = self.window.grab().toImage()
        from PySide6.QtGui import QImage

        image = image.convertToFormat(QImage.Format.Format_RGBA8888)
        w, h = image.width(), image.height()
        stride = image.bytesPerLine()
        buf = np.frombuffer(image.constBits(), np.uint8, count=stride * h)
        arr = np.array(buf.reshape(h, stride)[:, : 4 * w].reshape(h, w, 4), copy=True)
        if path is not None:
            p = Path(path)
            if p.suffix.lower() != ".png":
                raise InputError(f"{p}: a screenshot is written as .png")
            from ..io.atomic import atomic_target

            with atomic_target(p) as tmp:
                if not image.save(str(tmp), "PNG"):
                    raise LstmvizError(f"{p}: could not write the screenshot")
        return arr

    def show(self) -> None:
        """Show the window again (after it was closed)."""
        self.window.show()
        self.window.raise_()
        self._process()

    def close(self) -> None:
        """Close the window."""
        self.window.close()
        self._process()

    def run(self) -> None:
        """Block until the window is closed (a script that used ``block=False``)."""
        _application()
        _wait_closed(self.window)

    # --- internals -----------------------------------------------------------------------------
    def _process(self) -> None:
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance()
        if app is not None:
            app.processEvents()

    def _wait(self) -> None:
        """Wait for a trace computed off the GUI thread (long inputs)."""
        from PySide6.QtCore import QEventLoop
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance()
        if app is None:
            return
        end = time.monotonic() + TRACE_TIMEOUT
        while self._doc.busy and time.monotonic() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.005)
        self._process()

    def _guard(self, fn: Any) -> None:
        """Run a state call; a trace that fails (also in a worker) raises here."""
        before = self.window.last_error
        self.window.last_error = None
        fn()
        self._wait()
        err = self.window.last_error
        if err is not None:
            if self.window.error_dialog is not None:
                self.window.error_dialog.close()
            raise LstmvizError(err)
        self.window.last_error = before

    def __repr__(self) -> str:
        m = self._doc.model
        name = getattr(m, "name", "no model")
        return (
            f"<lstmviz Viewer: {name}, layer {self.layer!r}, t={self.t} of "
            f"{self._doc.timesteps}, {'open' if self.window.isVisible() else 'closed'}>"
        )


def show(
    model: Any,
    x: Any = None,
    *args: Any,
    block: bool | None = None,
    time_major: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    layer: str | int | None = None,
    t: int | None = None,
    size: tuple[int, int] = (1600, 900),
    presentation: bool = False,
    verify: str = "auto",
) -> Viewer:
    """Open the lstmviz window on a model and return a :class:`Viewer` handle.

    Parameters
    ----------
    model : torch.nn.Module, keras.Model, lstmviz.Model or path
        A live model (its framework runs it; every LSTM inside is recorded, see
        :func:`lstmviz.trace`), a loaded model, or a model file.
    x : array_like or tensor
        The input, as the model takes it (required for a live model; a file model falls
        back to its example input).
    *args, time_major, model_kwargs
        As for :func:`lstmviz.trace`: further arguments for a live model on every call.
    block : bool, optional
        Wait until the window is closed. Default: no in IPython / Jupyter (the event loop is
        integrated, as ``%gui qt`` does), yes in a script.
    layer, t : optional
        The LSTM layer and timestep to show first.
    size : (int, int)
        Window size in pixels.
    presentation : bool
        Start in presentation mode (large type, no side panels).
    verify : {"auto", "full", "spot"}
        For a live model: how its LSTMs are checked against the framework (see
        :func:`lstmviz.bridge.live_model`).
    """
    from ..bridge.common import LiveModel, framework_of

    info = None
    path = None
    if framework_of(model) is not None:
        if x is None:
            raise InputError(
                "lstmviz.show(model, x): a live model needs an example input x, as the model "
                "takes it"
            )
        from ..bridge import live_model

        m: Any = live_model(
            model, x, *args, time_major=time_major, model_kwargs=model_kwargs, verify=verify
        )
        xs: Any = m.example_input
    else:
        if args or model_kwargs or time_major:
            raise InputError("extra model arguments are for live torch / Keras models only")
        from ..engine.model import Model

        if isinstance(model, (str, os.PathLike)):
            path = str(model)
            from ..io import load_model
            from ..io.meta import load_info

            m = load_model(path)
            info = load_info(path)
        elif isinstance(model, (Model, LiveModel)):
            m = model
        else:
            raise InputError(
                "lstmviz.show takes a torch.nn.Module, a keras.Model, a model loaded with "
                f"lstmviz.load_model or a model file; got {type(model).__name__}"
            )
        xs = None
        if x is not None:
            from ..io.inputs import load_input

            xs = x if isinstance(x, list) else load_input(m, array=x, info=info)
    shell = _ipython()
    app = _application()
    if block is None:
        block = shell is None
    from .main_window import MainWindow

    window = MainWindow()
    window.resize(int(size[0]), int(size[1]))
    window.show_panels()
    window.show()
    viewer = Viewer(window, m)
    first = getattr(m, "example_trace", None) if xs is getattr(m, "example_input", None) else None
    viewer._guard(lambda: window.state.set_model(m, path, info, xs, trace=first))
    if layer is not None:
        viewer.layer = layer
    if t is not None:
        viewer.t = t
    if presentation:
        viewer.presentation = True
    if shell is not None and not block:
        _integrate_event_loop(shell)
    viewer._process()
    if block:
        _wait_closed(window)
    del app
    return viewer


def _wait_closed(window: Any) -> None:
    """Run Qt's event loop until ``window`` is closed (other windows may stay open)."""
    from PySide6.QtCore import QEventLoop, QTimer

    if not window.isVisible():
        return
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(lambda: None if window.isVisible() else loop.quit())
    timer.start()
    loop.exec()
    timer.stop()
