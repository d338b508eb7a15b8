"""File -> Export and right-click "Export this plot…": figures, animations and trace data.

- **Figure** (PNG, SVG, PDF): the six heatmaps drawn by the publication renderer
  (:mod:`lstmviz.export.figure`, the same as ``lstmviz export``) in paper or slide style, or
  the window as it is on screen. SVG and PDF keep text as text.
- **Animation** (GIF, MP4): one frame per timestep; the six heatmaps are rendered in a
  worker thread, the window (or a plot as on screen) is recorded on the GUI thread. Both
  show a progress dialog with Cancel; a cancelled export leaves no file.
- **Trace data** (NPZ, CSV, JSON): :func:`lstmviz.export.export_trace` in a worker.
- **Right-click on any plot**: export that one plot (heatmaps through the publication
  renderer or as on screen; the other plots as on screen).

Every function that writes takes the path as an argument (:func:`export_figure`,
:func:`export_animation`, :func:`export_data`, :func:`export_plot`), so tests and scripts
bypass the dialogs; the menu actions ask with :class:`ExportDialog` first.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QEvent,
    QIODevice,
    QMarginsF,
    QObject,
    QPoint,
    QRect,
    QRectF,
    QSize,
    QSizeF,
    Qt,
)
from PySide6.QtGui import QAction, QColor, QImage, QKeySequence, QPageSize, QPainter, QPdfWriter
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..engine.trace import QUANTITIES, TITLES
from ..errors import LstmvizError
from ..export import ExportCancelled
from ..export.formats import ANIMATION_FORMATS, DATA_FORMATS, FIGURE_FORMATS, FORMATS, check_output
from ..export.style import STYLES
from ..io.atomic import atomic_write_bytes
from . import dialogs
from .workers import TaskRunner, Worker

if TYPE_CHECKING:  # the writers load when something is exported
    from ..export import Source

log = logging.getLogger(__name__)

SCREEN = "screen"  # style: render with Qt as on screen
KINDS = {
    "figure": ("Export figure", FIGURE_FORMATS),
    "animation": ("Export animation", ANIMATION_FORMATS),
    "data": ("Export trace data", DATA_FORMATS),
}


def _filter(formats: tuple[str, ...]) -> str:
    parts = [f"{FORMATS[f][1].split(' (')[0].split(',')[0]} (*.{f})" for f in formats]
    return ";;".join(parts)


def _plot_quantity(name: str) -> tuple[str | None, str] | None:
    """``"heatmap_forget_gate"`` -> ``(None, "forget_gate")``; ``"heatmap_lstm:cell"`` ->
    ``("lstm", "cell")``; other plots -> None."""
    if not name.startswith("heatmap_"):
        return None
    key = name[len("heatmap_") :]
    layer, _, q = key.rpartition(":")
    if q not in QUANTITIES:
        return None
    return (layer or None), q


# --- rendering with Qt (the window, or a plot as on screen) ------------------------------------
def _source_rect(target: Any) -> QRectF:
    if isinstance(target, QWidget):
        return QRectF(0, 0, max(target.width(), 1), max(target.height(), 1))
    return target.sceneBoundingRect()


def _paint(target: Any, painter: QPainter, w: float, h: float) -> None:
    """Draw ``target`` (a widget or a scene item) scaled into ``(0, 0, w, h)``."""
    src = _source_rect(target)
    if isinstance(target, QWidget):
        painter.save()
        try:
            painter.scale(w / src.width(), h / src.height())
            target.render(painter, QPoint(0, 0))
        finally:
            painter.restore()
    else:
        target.scene().render(painter, QRectF(0, 0, w, h), src)


def _background(target: Any) -> QColor:
    widget = target if isinstance(target, QWidget) else (target.scene().views() or [None])[0]
    if widget is None:
        return QColor("white")
    bg = widget.backgroundBrush().color() if hasattr(widget, "backgroundBrush") else None
    if bg is None or bg.alpha() == 0:
        bg = widget.palette().window().color()
    return bg


def qt_pixel_size(target: Any, size_in: tuple[float, float] | None, dpi: float) -> tuple[int, int]:
    """Pixel size of a Qt export: ``size_in`` inches at ``dpi``, or the on-screen size
    scaled by ``dpi / 96``."""
    if size_in is not None:
        return max(1, round(size_in[0] * dpi)), max(1, round(size_in[1] * dpi))
    r = _source_rect(target)
    return max(1, round(r.width() * dpi / 96)), max(1, round(r.height() * dpi / 96))


def render_qt_image(target: Any, size_px: tuple[int, int], dpi: float = 96) -> QImage:
    """``target`` drawn into a QImage of ``size_px`` (RGB)."""
    w, h = size_px
    img = QImage(w, h, QImage.Format.Format_RGB32)
    img.setDotsPerMeterX(round(dpi / 0.0254))
    img.setDotsPerMeterY(round(dpi / 0.0254))
    img.fill(_background(target))
    painter = QPainter(img)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    try:
        _paint(target, painter, w, h)
    finally:
        painter.end()
    return img


def qimage_to_array(img: QImage) -> np.ndarray:
    """A QImage as ``(H, W, 3)`` uint8."""
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), np.uint8, count=bpl * h)
    return buf.reshape(h, bpl)[:, : w * 3].reshape(h, w, 3).copy()


def render_qt(
    target: Any,
    path: str | Path,
    fmt: str,
    size_in: tuple[float, float] | None,
    dpi: float,
    title: str = "lstmviz",
) -> Path:
    """Write ``target`` (a widget or a pyqtgraph item) as PNG, SVG or PDF, atomically.

    SVG (``QSvgGenerator``) and PDF (``QPdfWriter``) are vector output with real text.
    """
    w, h = qt_pixel_size(target, size_in, dpi)
    if fmt == "png":
        img = render_qt_image(target, (w, h), dpi)
        data = QByteArray()
        buf = QBuffer(data)
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        if not img.save(buf, "PNG"):  # type: ignore[call-overload]  # PySide takes str
            raise LstmvizError(f"{path}: could not encode the PNG image")
        buf.close()
        atomic_write_bytes(path, bytes(data.data()))
        return Path(path)
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if fmt == "svg":
        from PySide6.QtSvg import QSvgGenerator

        gen = QSvgGenerator()
        gen.setOutputDevice(buf)
        gen.setSize(QSize(w, h))
        gen.setViewBox(QRect(0, 0, w, h))
        gen.setResolution(round(dpi))
        gen.setTitle(title)
        gen.setDescription("exported by lstmviz")
        painter = QPainter(gen)
        try:
            painter.fillRect(QRectF(0, 0, w, h), _background(target))
            _paint(target, painter, w, h)
        finally:
            painter.end()
    elif fmt == "pdf":
        pdf = QPdfWriter(buf)
        pdf.setResolution(round(dpi))
        pdf.setPageSize(
            QPageSize(
                QSizeF(w / dpi * 72, h / dpi * 72),
                QPageSize.Unit.Point,
                "lstmviz",
                QPageSize.SizeMatchPolicy.ExactMatch,
            )
        )
        pdf.setPageMargins(QMarginsF(0, 0, 0, 0))
        pdf.setTitle(title)
        pdf.setCreator("lstmviz")
        painter = QPainter(pdf)
        try:
            vp = painter.viewport()
            painter.fillRect(QRectF(vp), _background(target))
            _paint(target, painter, vp.width(), vp.height())
        finally:
            painter.end()
    else:
        buf.close()
        raise LstmvizError(f"{path}: a plot is exported as .png, .svg or .pdf here, not .{fmt}")
    buf.close()
    atomic_write_bytes(path, bytes(data.data()))
    return Path(path)


# --- options and the dialog ------------------------------------------------------------------
@dataclass
class ExportOptions:
    """What the export dialog asks. ``what``: ``"grid"`` (the six heatmaps through the
    publication renderer), ``"window"`` or a plot name from ``window.plot_widgets()``."""

    path: str = ""
    what: str = "grid"
    style: str = "paper"  # "paper", "slide" or "screen"
    size: tuple[float, float] | None = None  # inches; None: the style's size
    dpi: float | None = None
    fps: float = 4.0
    all_layers: bool = True
    all_batch: bool = True
    values: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class ExportDialog(QDialog):
    """Asks where and how to export: file, what, style, size, DPI, frames per second, and
    for data which layers and batch items.

    Parameters
    ----------
    kind : {"figure", "animation", "data", "plot"}
    window : MainWindow
    plot : str, optional
        For ``kind="plot"``: the plot name.
    """

    def __init__(
        self, kind: str, window: Any, plot: str | None = None, start_dir: str = ""
    ) -> None:
        super().__init__(window)
        self.kind = kind
        self.plot = plot
        self.window_ = window
        doc = window.state
        if kind == "plot":
            heat = _plot_quantity(plot or "")
            self.formats = FIGURE_FORMATS + ANIMATION_FORMATS
            title = f"Export plot: {TITLES[heat[1]] if heat else plot}"
        else:
            title, self.formats = KINDS[kind]
            heat = None
        self.setWindowTitle(title)
        form = QFormLayout()
        stem = Path(doc.model_path).stem if doc.model_path else "lstmviz"
        suffix = {"figure": "pdf", "animation": "mp4", "data": "npz"}.get(kind, "png")
        name = f"{stem}_{plot.removeprefix('heatmap_').replace(':', '_')}" if plot else stem
        self.path = QLineEdit(str(Path(start_dir or ".") / f"{name}.{suffix}"))
        self.path.setToolTip(
            "The format follows the extension: " + ", ".join(f".{f}" for f in self.formats)
        )
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form.addRow("File:", row)

        self.what = QComboBox()
        if kind in ("figure", "animation"):
            self.what.addItem("The six heatmaps of the layer (publication figure)", "grid")
            self.what.addItem("The window as it is on screen", "window")
            form.addRow("What:", self.what)
        self.style_combo = QComboBox()
        if kind != "data":
            if kind != "plot" or heat is not None:
                self.style_combo.addItem("Paper column (7 pt text, white)", "paper")
                self.style_combo.addItem("Slide 16:9 (16 pt text, white)", "slide")
            if kind == "plot":
                self.style_combo.addItem("As on screen", SCREEN)
            form.addRow("Style:", self.style_combo)
            self.what.currentIndexChanged.connect(self._update)
            self.style_combo.currentIndexChanged.connect(self._update)
        self.width_in = QDoubleSpinBox()
        self.height_in = QDoubleSpinBox()
        for sb in (self.width_in, self.height_in):
            sb.setRange(0.5, 60.0)
            sb.setDecimals(2)
            sb.setSingleStep(0.25)
            sb.setSuffix(" in")
            sb.valueChanged.connect(self._update_pixels)
        self.default_size = QCheckBox("default")
        self.default_size.setChecked(True)
        self.default_size.setToolTip("The style's size (paper: 7 in wide; slide: 13.3 in)")
        self.default_size.toggled.connect(self._update)
        srow = QHBoxLayout()
        srow.addWidget(self.width_in)
        srow.addWidget(QLabel("\u00d7"))
        srow.addWidget(self.height_in)
        srow.addWidget(self.default_size)
        self.dpi = QSpinBox()
        self.dpi.setRange(30, 1200)
        self.dpi.setSuffix(" dpi")
        self.dpi.valueChanged.connect(self._update_pixels)
        self.pixels = QLabel()
        self.fps = QDoubleSpinBox()
        self.fps.setRange(0.5, 60)
        self.fps.setValue(4.0)
        self.fps.setSuffix(" frames/s")
        self.fps.setToolTip("One frame per timestep")
        if kind != "data":
            form.addRow("Size:", srow)
            form.addRow("Resolution:", self.dpi)
            form.addRow("", self.pixels)
        if kind in ("animation", "plot"):
            form.addRow("Speed:", self.fps)
        self.all_layers = QCheckBox(f"All LSTM layers (else only {doc.layer})")
        self.all_layers.setChecked(True)
        self.all_batch = QCheckBox(f"All batch items (else only item {doc.batch})")
        self.all_batch.setChecked(True)
        self.values = QCheckBox("JSON: include every value (else metadata only)")
        if kind == "data":
            form.addRow(self.all_layers)
            form.addRow(self.all_batch)
            form.addRow(self.values)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        v = QVBoxLayout(self)
        v.addLayout(form)
        v.addWidget(buttons)
        self._update()

    def _browse(self) -> None:
        path = dialogs.ask_save_file(
            self, self.windowTitle(), self.path.text(), _filter(self.formats)
        )
        if path:
            self.path.setText(path)

    def _update(self) -> None:
        style = self.style_combo.currentData() or "paper"
        what = self.what.currentData() or "grid"
        on_screen = style == SCREEN or (self.kind in ("figure", "animation") and what == "window")
        self.style_combo.setEnabled(not (self.kind in ("figure", "animation") and what == "window"))
        if on_screen:
            target = self._target()
            r = _source_rect(target) if target is not None else QRectF(0, 0, 960, 540)
            w, h = r.width() / 96, r.height() / 96
            dpi = 96 if self.kind in ("animation", "plot") else 192
        else:
            st = STYLES[style]
            n = 1 if self.kind == "plot" else 6
            w, h = st.size_for(n)
            dpi = st.animation_dpi if self.kind == "animation" else st.dpi
        if self.default_size.isChecked():
            for sb, v in ((self.width_in, w), (self.height_in, h)):
                sb.blockSignals(True)
                sb.setValue(v)
                sb.blockSignals(False)
            self.dpi.blockSignals(True)
            self.dpi.setValue(int(dpi))
            self.dpi.blockSignals(False)
        self.width_in.setEnabled(not self.default_size.isChecked())
        self.height_in.setEnabled(not self.default_size.isChecked())
        self._update_pixels()

    def _target(self) -> Any:
        if self.kind == "plot" and self.plot:
            return self.window_.plot_widgets().get(self.plot)
        return self.window_

    def _update_pixels(self) -> None:
        w = self.width_in.value() * self.dpi.value()
        h = self.height_in.value() * self.dpi.value()
        self.pixels.setText(f"{round(w)} \u00d7 {round(h)} pixels (PNG, animation frames)")

    def _accept(self) -> None:
        try:
            fmt = check_output(self.path.text(), force=True)[1]
        except LstmvizError as e:
            QMessageBox.warning(self, self.windowTitle(), str(e))
            return
        if fmt not in self.formats:
            QMessageBox.warning(
                self,
                self.windowTitle(),
                f"{self.path.text()}: here the format is one of "
                + ", ".join(f".{f}" for f in self.formats),
            )
            return
        p = Path(self.path.text()).expanduser()
        if p.exists():
            answer = QMessageBox.question(
                self, self.windowTitle(), f"{p.name} already exists. Replace it?"
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.accept()

    def options(self) -> ExportOptions:
        custom = not self.default_size.isChecked()
        what = self.plot if self.kind == "plot" else (self.what.currentData() or "grid")
        return ExportOptions(
            path=str(Path(self.path.text()).expanduser()),
            what=what or "grid",
            style=self.style_combo.currentData() or "paper",
            size=(self.width_in.value(), self.height_in.value()) if custom else None,
            dpi=float(self.dpi.value()),
            fps=self.fps.value(),
            all_layers=self.all_layers.isChecked(),
            all_batch=self.all_batch.isChecked(),
            values=self.values.isChecked(),
        )


# --- the actions -------------------------------------------------------------------------------
class ExportActions(QObject):
    """The File -> Export submenu, right-click menus on plots and the export jobs.

    Exports run on their own :class:`TaskRunner`, so an export never cancels a trace being
    computed (and a new trace does not cancel an export).
    """

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.state = window.state
        self.runner = TaskRunner(self)
        self.runner.failed.connect(self._on_failed)
        self.progress_dialog: QProgressDialog | None = None
        self.last_path: Path | None = None
        self.last_dir = ""
        self._hooked: set[int] = set()
        self._hooked_widgets: set[int] = set()
        self._build_menu()
        self.state.events.trace.connect(self._on_trace_changed)
        self.state.events.model.connect(self._on_trace_changed)
        self._on_trace_changed()

    # --- menu ---------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        w = self.window
        file = w.menu("File")
        self.menu = QMenu("&Export", file)
        self.menu.setObjectName("menu_export")
        self.menu.setToolTipsVisible(True)
        before = next((a for a in file.actions() if "screenshot" in a.text().lower()), None)
        if before is None:
            before = next((a for a in file.actions() if "quit" in a.text().lower()), None)
        if before is not None:
            file.insertMenu(before, self.menu)
            file.insertSeparator(before)
        else:
            file.addMenu(self.menu)

        def action(text: str, slot: Callable[[], Any], key: str | None, tip: str) -> QAction:
            a = QAction(text, w)
            if key:
                a.setShortcut(QKeySequence(key))
            a.setToolTip(tip)
            a.setStatusTip(tip)
            a.triggered.connect(lambda _=False: slot())
            self.menu.addAction(a)
            w.addAction(a)
            return a

        self.figure_action = action(
            "&Figure (PNG, SVG, PDF)…",
            lambda: self.ask("figure"),
            "Ctrl+E",
            "The six heatmaps for a paper or a slide, or the window; SVG/PDF keep real text",
        )
        self.animation_action = action(
            "&Animation (GIF, MP4)…",
            lambda: self.ask("animation"),
            "Ctrl+Shift+E",
            "One frame per timestep: the cursor moves, the future is dimmed",
        )
        self.data_action = action(
            "Trace &data (NPZ, CSV, JSON)…",
            lambda: self.ask("data"),
            None,
            "Every gate, cell and hidden state: NPZ arrays, long CSV, JSON metadata",
        )
        self.actions_ = [self.figure_action, self.animation_action, self.data_action]

    def _on_trace_changed(self) -> None:
        ok = self.state.trace is not None
        for a in self.actions_:
            a.setEnabled(ok)
        self._hook_plots()

    # --- right-click on plots -------------------------------------------------------------------
    def _hook_plots(self) -> None:
        for name, item in self.window.plot_widgets().items():
            if isinstance(item, QWidget):
                if id(item) not in self._hooked_widgets:
                    item.installEventFilter(self)
                    self._hooked_widgets.add(id(item))
                continue
            scene = item.scene() if hasattr(item, "scene") else None
            if scene is None or id(scene) in self._hooked or not hasattr(scene, "sigMouseClicked"):
                continue
            scene.sigMouseClicked.connect(lambda ev, s=scene: self._on_scene_clicked(s, ev))
            self._hooked.add(id(scene))
            del name

    def plot_at(self, scene: Any, scene_pos: Any) -> str | None:
        """Name of the plot of ``window.plot_widgets()`` under ``scene_pos`` in ``scene``."""
        for name, item in self.window.plot_widgets().items():
            if (
                isinstance(item, QGraphicsItem)
                and item.scene() is scene
                and item.isVisible()
                and item.sceneBoundingRect().contains(scene_pos)
            ):
                return name
        return None

    def _on_scene_clicked(self, scene: Any, ev: Any) -> None:
        if ev.button() != Qt.MouseButton.RightButton or self.state.trace is None:
            return
        name = self.plot_at(scene, ev.scenePos())
        if name is None:
            return
        ev.accept()
        self.context_menu(name).popup(ev.screenPos().toPoint())

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # Qt override
        if event.type() == QEvent.Type.ContextMenu and self.state.trace is not None:
            for name, item in self.window.plot_widgets().items():
                if item is obj:
                    pos = event.globalPos()  # type: ignore[attr-defined]  # a QContextMenuEvent
                    self.context_menu(name).popup(pos)
                    return True
        return False

    def context_menu(self, name: str) -> QMenu:
        """The right-click menu of plot ``name``."""
        m = QMenu(self.window)
        m.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        a = m.addAction("Export this plot…")
        a.triggered.connect(lambda _=False, n=name: self.ask("plot", n))
        if _plot_quantity(name) is not None:
            m.addAction("Export the six heatmaps…").triggered.connect(
                lambda _=False: self.ask("figure")
            )
        m.addAction("Export an animation…").triggered.connect(lambda _=False: self.ask("animation"))
        m.addAction("Export the trace data…").triggered.connect(lambda _=False: self.ask("data"))
        return m

    # --- dialogs ------------------------------------------------------------------------------
    def ask(self, kind: str, plot: str | None = None) -> ExportDialog | None:
        """Open the export dialog; on Save, run the export. Returns the dialog (for tests)."""
        if self.state.trace is None:
            self.window.show_error("Open a model first: there is nothing to export yet.")
            return None
        dlg = ExportDialog(kind, self.window, plot, start_dir=self.last_dir or str(Path.cwd()))
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def accepted() -> None:
            o = dlg.options()
            self.last_dir = str(Path(o.path).parent)
            self.run(kind, o)

        dlg.accepted.connect(accepted)
        dlg.open()
        return dlg

    def run(self, kind: str, o: ExportOptions) -> Worker | Path | None:
        """Run an export described by ``o`` (what the dialog's Save does)."""
        try:
            if kind == "figure":
                return export_figure(self.window, o.path, o.what, o.style, o.size, o.dpi)
            if kind == "animation":
                return export_animation(self.window, o.path, o.what, o.style, o.size, o.dpi, o.fps)
            if kind == "data":
                return export_data(self.window, o.path, o.all_layers, o.all_batch, o.values)
            return export_plot(self.window, o.what, o.path, o.style, o.size, o.dpi, o.fps)
        except ExportCancelled as e:
            self.window.status(str(e))
        except LstmvizError as e:
            self.window.show_error(str(e))
        return None

    # --- running work -------------------------------------------------------------------------
    def start(self, fn: Callable[..., Any], label: str, progress: bool = False) -> Worker:
        """Run ``fn(progress, should_stop)`` in the export worker, with a progress dialog
        (Cancel stops it) when ``progress``."""
        self._close_progress()
        if progress:
            dlg = QProgressDialog(f"{label}…", "Cancel", 0, 0, self.window)
            dlg.setWindowTitle("lstmviz export")
            dlg.setWindowModality(Qt.WindowModality.WindowModal)
            dlg.setMinimumDuration(0)
            dlg.setAutoClose(False)
            dlg.setAutoReset(False)
            dlg.canceled.connect(self.cancel)
            dlg.show()
            self.progress_dialog = dlg

        def on_progress(i: int, n: int) -> None:
            d = self.progress_dialog
            if d is not None:
                d.setMaximum(max(n, 1))
                d.setValue(i)
                d.setLabelText(f"{label}: frame {i} of {n}" if n > 1 else f"{label}…")

        def finished(path: Any) -> None:
            self._close_progress()
            self.last_path = Path(path)
            self.window.status(f"Exported {path}")

        return self.runner.start(
            fn,
            finished,
            label,
            on_progress=on_progress,
            on_failed=lambda _msg: self._close_progress(),
        )

    def cancel(self) -> None:
        """Cancel the running export (nothing is written)."""
        running = self.runner.is_running()
        self.runner.cancel()
        self._close_progress()
        if running:
            self.window.status("Export cancelled; nothing was written")

    def _close_progress(self) -> None:
        d = self.progress_dialog
        self.progress_dialog = None
        if d is not None:
            with contextlib.suppress(RuntimeError):  # already deleted with the window
                d.canceled.disconnect(self.cancel)
                d.close()
                d.deleteLater()

    def _on_failed(self, msg: str) -> None:
        self._close_progress()
        self.window.show_error(msg)

    def shutdown(self) -> None:
        self.runner.shutdown()
        self._close_progress()


# --- the export jobs (the dialogs call these; tests call them directly) -------------------------
def _actions(window: Any) -> ExportActions:
    ext = getattr(window, "export_actions", None)
    if ext is None:
        raise LstmvizError("the export actions are not installed in this window")
    return ext


def _source(window: Any) -> Source:
    from ..export import Source

    doc = window.state
    text = None
    with contextlib.suppress(LstmvizError, ValueError, IndexError, TypeError, AttributeError):
        text = doc.input_text() or None  # the input as typed (digits, text)
    return Source(
        model=doc.model,
        model_path=doc.model_path,
        input_kind="app",
        input_text=text,
        info=doc.info,
        extra={"t": doc.t, "layer": doc.layer, "batch": doc.batch},
    )


def _shown_units(doc: Any) -> list[int] | None:
    mode = doc.unit_filter[0] if isinstance(doc.unit_filter, tuple) else "all"
    rows = getattr(doc, "rows", None)
    if mode == "all" or rows is None or len(rows) == 0:
        return None
    return [int(u) for u in rows]


def _require_trace(window: Any) -> Any:
    tr = window.state.trace
    if tr is None:
        raise LstmvizError("there is no trace to export: open a model first")
    return tr


def _grid_job(
    window: Any,
    path: str,
    quantities: tuple[str, ...],
    layer: str | None,
    style: str,
    size: tuple[float, float] | None,
    dpi: float | None,
    fps: float,
    step: bool,
) -> Callable[..., Any]:
    doc = window.state
    trace = _require_trace(window)
    source = _source(window)
    kwargs: dict[str, Any] = dict(
        layer=layer or doc.layer or None,
        batch=doc.batch,
        quantities=quantities,
        units=_shown_units(doc),
        step=doc.t if step else None,
        style=style,
        size=size,
        dpi=dpi,
        fps=fps,
        force=True,
    )
    if doc.level_lock.locked:  # the figure keeps the colour scales the window shows
        from ..analysis.levels import LevelLock

        kwargs["levels"] = LevelLock.from_dict(doc.level_lock.to_dict())

    def job(progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> Path:
        from ..export import export_trace

        return export_trace(
            path, trace, source, progress=progress, should_stop=should_stop, **kwargs
        )

    return job


def export_figure(
    window: Any,
    path: str | Path,
    what: str = "grid",
    style: str = "paper",
    size: tuple[float, float] | None = None,
    dpi: float | None = None,
) -> Worker | Path:
    """Write a figure (PNG, SVG or PDF): ``what="grid"`` -> the six heatmaps of the current
    layer, batch item and timestep through the publication renderer, in a worker (returns
    the :class:`Worker`); ``what="window"`` -> the window as on screen (returns the path)."""
    path = str(path)
    fmt = check_output(path, force=True)[1]
    if fmt not in FIGURE_FORMATS:
        raise LstmvizError(f"{path}: a figure is .png, .svg or .pdf")
    if what == "window":
        out = render_qt(window, path, fmt, size, dpi or 192, title=window.windowTitle())
        window.status(f"Exported {out}")
        return out
    job = _grid_job(window, path, QUANTITIES, None, style, size, dpi, 4.0, step=True)
    return _actions(window).start(job, f"Exporting {Path(path).name}")


def export_animation(
    window: Any,
    path: str | Path,
    what: str = "grid",
    style: str = "paper",
    size: tuple[float, float] | None = None,
    dpi: float | None = None,
    fps: float = 4.0,
) -> Worker | Path:
    """Write a GIF or MP4 with one frame per timestep: the six heatmaps (in a worker, with a
    progress dialog and Cancel; returns the :class:`Worker`) or the window as on screen
    (recorded on the GUI thread; returns the path)."""
    path = str(path)
    fmt = check_output(path, force=True)[1]
    if fmt not in ANIMATION_FORMATS:
        raise LstmvizError(f"{path}: an animation is .gif or .mp4")
    if what == "window":
        return record_animation(window, window, path, size, dpi or 96, fps)
    job = _grid_job(window, path, QUANTITIES, None, style, size, dpi, fps, step=False)
    return _actions(window).start(job, f"Exporting {Path(path).name}", progress=True)


def export_data(
    window: Any,
    path: str | Path,
    all_layers: bool = True,
    all_batch: bool = True,
    values: bool = False,
) -> Worker:
    """Write the trace as NPZ, CSV or JSON in a worker (returns the :class:`Worker`)."""
    path = str(path)
    fmt = check_output(path, force=True)[1]
    if fmt not in DATA_FORMATS:
        raise LstmvizError(f"{path}: trace data is .npz, .csv or .json")
    doc = window.state
    trace = _require_trace(window)
    source = _source(window)
    layer = None if all_layers else doc.layer
    batch = None if all_batch else doc.batch

    def job(progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> Path:
        from ..export import export_trace

        return export_trace(
            path,
            trace,
            source,
            layer=layer,
            batch=batch,
            values=values,
            force=True,
            progress=progress,
            should_stop=should_stop,
        )

    return _actions(window).start(job, f"Exporting {Path(path).name}", progress=fmt == "csv")


def export_plot(
    window: Any,
    name: str,
    path: str | Path,
    style: str = "paper",
    size: tuple[float, float] | None = None,
    dpi: float | None = None,
    fps: float = 4.0,
) -> Worker | Path:
    """Export one plot of ``window.plot_widgets()``: a heatmap through the publication
    renderer (``style`` paper/slide, in a worker) or any plot as on screen
    (``style="screen"``); PNG/SVG/PDF, or GIF/MP4 with one frame per timestep."""
    path = str(path)
    fmt = check_output(path, force=True)[1]
    plots = window.plot_widgets()
    if name not in plots:
        raise LstmvizError(f"no plot named {name!r}; plots: {', '.join(plots)}")
    heat = _plot_quantity(name)
    if heat is not None and style != SCREEN:
        layer, q = heat
        job = _grid_job(window, path, (q,), layer, style, size, dpi, fps, step=True)
        return _actions(window).start(
            job, f"Exporting {Path(path).name}", progress=fmt in ANIMATION_FORMATS
        )
    target = plots[name]
    if fmt in ANIMATION_FORMATS:
        return record_animation(window, target, path, size, dpi or 96, fps)
    out = render_qt(target, path, fmt, size, dpi or 192, title=name)
    window.status(f"Exported {out}")
    return out


def record_animation(
    window: Any,
    target: Any,
    path: str,
    size: tuple[float, float] | None,
    dpi: float,
    fps: float,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Step through every timestep, drawing ``target`` (the window or a plot) as on screen
    into one frame each, and write a GIF or MP4. Runs on the GUI thread (widgets cannot be
    drawn elsewhere) with a progress dialog; Cancel leaves no file and the timestep as it
    was."""
    from ..export.animation import write_gif_frames, write_mp4_frames

    doc = window.state
    _require_trace(window)
    n = doc.timesteps
    t0 = doc.t
    transport = getattr(window, "transport", None)
    if transport is not None and hasattr(transport, "set_playing"):
        transport.set_playing(False)
    px = qt_pixel_size(target, size, dpi)
    px = (px[0] + px[0] % 2, px[1] + px[1] % 2)
    dlg = QProgressDialog(f"Recording {Path(path).name}…", "Cancel", 0, n, window)
    dlg.setWindowTitle("lstmviz export")
    dlg.setWindowModality(Qt.WindowModality.WindowModal)
    dlg.setMinimumDuration(0)
    dlg.show()

    def frames() -> Iterator[np.ndarray]:
        for t in range(n):
            QApplication.processEvents()
            if dlg.wasCanceled() or (should_stop is not None and should_stop()):
                raise ExportCancelled(
                    f"recording cancelled at frame {t} of {n}; nothing was written"
                )
            doc.set_t(t)
            QApplication.processEvents()
            yield qimage_to_array(render_qt_image(target, px, dpi))
            dlg.setValue(t + 1)

    try:
        write = write_gif_frames if path.lower().endswith(".gif") else write_mp4_frames
        out = write(path, frames(), fps)
    finally:
        dlg.close()
        dlg.deleteLater()
        doc.set_t(t0)
    window.status(f"Exported {out}")
    return out
