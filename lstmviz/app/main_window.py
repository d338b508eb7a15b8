"""The main window: token strip, six heatmaps, line plots, bars, unit detail, output view,
transport bar; menus, keyboard shortcuts, drag-and-drop, presentation mode.

The window composes everything explicitly: the views are built in :meth:`_build_views`; the
sessions, export and training menus and the dockable panels (Train, Analysis ▸ ...) in
:meth:`MainWindow.build_actions` (the panels are declared as :class:`~.panels.PanelSpec`
and built the first time they open). Every view gets the window's
:class:`~lstmviz.state.ViewerState` and subscribes to its events.
"""

from __future__ import annotations

import html
import logging
import os
import platform
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QKeyCombination, QObject, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..errors import LstmvizError
from ..state import ViewerState
from . import dialogs
from .answers import warm_imports
from .heatmaps import HeatmapGrid
from .model_panel import ModelPanel, SelectionPanel
from .panels import Panels, PanelSpec
from .plots import OutputView, StepBars, UnitLines
from .presentation import BlankCover, PresenterWindow, StoryBar, audience_screens
from .style import NORMAL, PRESENTATION, Theme, stylesheet
from .token_strip import InputEditor, TokenStrip
from .transport import Transport
from .unit_detail import UnitDetail
from .workers import TaskRunner, Worker, background

if TYPE_CHECKING:
    from .diagram_view import DiagramView, EquationsView
    from .export_actions import ExportActions
    from .lessons import LessonActions
    from .session_actions import SessionActions
    from .train_panel import EngineChoice

log = logging.getLogger(__name__)

#: how long after it is built the window starts importing the model readers in the background
LOADER_WARM_MS = 1000


def import_loaders() -> None:
    """Import what opening a model file needs (on a background thread: no widget)."""
    import contextlib

    from ..io import inputs, keras, meta  # noqa: F401

    with contextlib.suppress(ImportError):
        import h5py  # noqa: F401


MENU_ORDER = ("File", "View", "Train", "Analysis", "Help")
#: The least height of the line plots and bars under the heatmaps (their data areas keep about
#: 80 px, so ticks do not pile up; with less room they fold away and the heatmaps keep theirs;
#: drag the splitter down to hide them).
BOTTOM_MIN_PX = 180
#: presentation mode: the big view's height that a panel opened under it leaves at least
#: (the cell diagram's large type has room from there on)
STAGE_PX = 300
#: a bottom panel opened before the first trace is fitted again this long after it (ms)
FIT_AFTER_TRACE_MS = 300
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")  # more when lstmviz.io knows more formats
INPUT_SUFFIXES = (".npy", ".npz", ".csv", ".txt", ".tsv")
MAX_RECENT = 10
#: the progress bar and the busy cursor appear when a job has run this long (milliseconds)
BUSY_AFTER_MS = 150

_configured = False


def model_suffixes() -> tuple[str, ...]:
    """File suffixes lstmviz can open as models."""
    from .. import io

    formats = getattr(io, "MODEL_FORMATS", None)
    return tuple(formats) if formats else MODEL_SUFFIXES


def _is_checkpoint(p: Path) -> bool:
    """A TF1 checkpoint named by its prefix (``model.ckpt``) or a folder holding one."""
    from ..io.more_formats import resolve_model_path, tf1_prefix

    try:
        return tf1_prefix(resolve_model_path(p)) is not None
    except LstmvizError:
        return False


def configure_pyqtgraph() -> None:
    """Global pyqtgraph options, set once."""
    global _configured
    if not _configured:
        pg.setConfigOptions(
            antialias=True, imageAxisOrder="row-major", background="#17191e", foreground="#e8e8ea"
        )
        _configured = True


class MainWindow(QMainWindow):
    """The lstmviz main window around one :class:`~lstmviz.app.state.ViewerState`."""

    #: the menus and panels of :meth:`build_actions` are in place
    actions_built = Signal()

    def __init__(
        self,
        state: ViewerState | None = None,
        actions: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self.setWindowTitle("lstmviz")
        self.setAcceptDrops(True)
        self.setDockOptions(
            QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks
        )
        self.state = state if state is not None else ViewerState()
        self.runner = TaskRunner(self)
        self.runner.failed.connect(self.show_error)
        self.runner.running_changed.connect(self._on_running_changed)
        self.runner.progress.connect(self._on_progress)
        # traces get their own runner: an export or a save started meanwhile must not cancel
        # the trace the state is waiting for (and vice versa)
        self.trace_runner = TaskRunner(self)  # its errors reach the dialog as events.failed
        self.trace_runner.running_changed.connect(self._on_running_changed)
        self.state.runner = self._trace_runner
        # the modules the views read a new trace with load in the tracing job, not in the
        # event-loop turn that shows the trace
        self.state.preparers.append(warm_imports)
        self.state.ask_layout = self._ask_layout
        # the model readers (h5py above all) load on a background thread once the window has
        # been idle a moment: imported by the first open's job instead, they held the GIL
        # while the window drew its side panels (a 78 ms stall)
        QTimer.singleShot(LOADER_WARM_MS, self, self._warm_loaders)
        self.state.events.failed.connect(self.show_error)
        self.state.events.busy.connect(self._on_busy_changed)
        self.theme: Theme = NORMAL
        self.presentation = False
        self._switching = False  # set_presentation() is hiding or showing the docks
        self._dock_min: dict[QDockWidget, QSize] = {}  # docks' least sizes before presentation
        self._dock_size: dict[QDockWidget, QSize] = {}  # shown docks' sizes before it
        #: a bottom dock opened before the first trace, fitted again when it comes
        self._fit_after_trace: tuple[QDockWidget, int] | None = None
        self.last_error: str | None = None
        self.last_status = ""  # the newest status-bar message (it fades after a while)
        self.error_dialog: QMessageBox | None = None
        self.panels: Panels | None = None
        self.lessons: LessonActions | None = None
        self.presenter: PresenterWindow | None = None
        self.session_actions: SessionActions | None = None
        self.export_actions: ExportActions | None = None
        self.engine_choice: EngineChoice | None = None
        self._build_pending: Callable[[], None] | None = None
        self._menus: dict[str, QMenu] = {}
        self._docks_before: dict[QDockWidget, bool] = {}
        self._recent_mem: list[str] = []
        self._qsettings: QSettings | None = None

        self._build_views()
        self._build_menus()
        self._build_shortcuts()
        self._build_status()
        self.state.events.model.connect(self._on_model_changed)
        self.state.events.trace.connect(self._on_trace_changed)
        self.heatmaps.hovered.connect(self._on_hovered)
        self.heatmaps.overhead_changed.connect(self._fit_central)
        self.theme = NORMAL  # the views styled themselves with NORMAL when they were built
        self.setStyleSheet(stylesheet(NORMAL))
        self.resize(1600, 900)
        # the welcome page stands alone; the side panels appear with the first model
        self._panels_shown = False
        for d in (self.model_dock, self.detail_dock):
            d.hide()
        self._default_layout = self.saveState()
        if actions:
            self.build_actions()

    # --- construction ----------------------------------------------------------------------
    def _build_views(self) -> None:
        doc = self.state
        self.editor = InputEditor(doc)
        self.editor.error.connect(self.show_error)
        self.editor.load_requested.connect(self.choose_input)
        self.editor.done.connect(self._focus_views)
        self.token_strip = TokenStrip(doc)
        self.heatmaps = HeatmapGrid(doc)
        self.unit_lines = UnitLines(doc)
        self.step_bars = StepBars(doc)
        self.transport = Transport(doc)
        self.unit_detail = UnitDetail(doc)
        self.output_view = OutputView(doc)
        self.model_panel = ModelPanel(doc)
        self.selection_panel = SelectionPanel(doc)
        self.selection_panel.error.connect(self.show_error)
        self.state.options.events.all_layers.connect(self.heatmaps.set_all_layers)

        main = QWidget()
        v = QVBoxLayout(main)
        v.setContentsMargins(6, 4, 6, 2)
        v.setSpacing(3)
        v.addWidget(self.editor)
        v.addWidget(self.token_strip)
        self.bottom = QSplitter(Qt.Orientation.Horizontal)
        self.bottom.addWidget(self.unit_lines)
        self.bottom.addWidget(self.step_bars)
        self.bottom.setStretchFactor(0, 1)
        self.bottom.setStretchFactor(1, 1)
        self.bottom.setMinimumHeight(BOTTOM_MIN_PX)
        self.vsplit = _FitSplitter(self._fit_central)
        self.vsplit.addWidget(self.heatmaps)
        self.vsplit.addWidget(self.bottom)
        self.vsplit.setCollapsible(0, False)  # the heatmaps never vanish
        self.vsplit.setChildrenCollapsible(True)
        self.vsplit.setStretchFactor(0, 5)
        self.vsplit.setStretchFactor(1, 2)
        self.vsplit.setSizes([560, 200])
        # presentation mode shows one big view at a time: the heatmaps, the cell diagram or
        # the equations (state.options.presentation_view), with the story bar under it; the
        # diagram and the equations are built the first time they are shown (_stage)
        self.middle = QStackedWidget()
        self.middle.addWidget(self.vsplit)
        self._stages: dict[str, DiagramView | EquationsView] = {}
        v.addWidget(self.middle, 1)
        self.story_bar = StoryBar(doc)
        self.story_bar.setVisible(False)
        v.addWidget(self.story_bar)
        v.addWidget(self.transport)
        doc.options.events.presentation_view.connect(self._apply_stage)

        self.welcome = self._build_welcome()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(main)
        self.main_page = main
        self.setCentralWidget(self.stack)

        # the model's description scrolls on its own; the Show controls (layer, batch item,
        # units) stay in view under it however long the description is
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(4, 4, 4, 4)
        g1 = QGroupBox("Model")
        g1v = QVBoxLayout(g1)
        g1v.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.model_panel)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        g1v.addWidget(scroll)
        g2 = QGroupBox("Show")
        QVBoxLayout(g2).addWidget(self.selection_panel)
        lv.addWidget(g1, 1)
        lv.addWidget(g2)
        self.model_dock = self.add_dock(left, "Model", Qt.DockWidgetArea.LeftDockWidgetArea)
        self.model_dock.setMinimumWidth(220)

        right = QSplitter(Qt.Orientation.Vertical)
        detail_scroll = QScrollArea()
        detail_scroll.setWidgetResizable(True)
        detail_scroll.setWidget(self.unit_detail)
        right.addWidget(detail_scroll)
        right.addWidget(self.output_view)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        right.setSizes([560, 240])
        self.right_split = right
        self.detail_dock = self.add_dock(
            right, "Unit detail and output", Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.detail_dock.setMinimumWidth(260)
        self.resizeDocks([self.model_dock, self.detail_dock], [288, 335], Qt.Orientation.Horizontal)

    def _fit_central(self) -> None:
        """Heatmaps first: when the window (or a panel opened below) leaves too little height
        for every unit's row and the line plots, the line plots fold away; they come back
        when there is room again."""
        total = self.vsplit.height()
        need = self._vsplit_need()
        sizes = self.vsplit.sizes()
        if total < need:
            if sizes[1] > 0:
                self._bottom_folded = True
                self.vsplit.setSizes([total, 0])
        elif getattr(self, "_bottom_folded", False) and sizes[1] == 0:
            self._bottom_folded = False
            self.vsplit.setSizes([max(total * 5 // 7, total - 260), min(total * 2 // 7, 260)])
        elif sizes[1] > 0 and sizes[0] < total - need + self.heatmaps.wanted_height():
            # both fit, but the splitter shrank them in proportion: the heatmaps first
            want = self.heatmaps.wanted_height()
            if sizes[0] < want:
                self.vsplit.setSizes([want, total - want - self.vsplit.handleWidth()])

    def _vsplit_need(self) -> int:
        """The height the heatmaps and the line plots under them need together."""
        hm = self.heatmaps
        # the heatmaps never get less than their own minimum either (a model with few units
        # wants less than that): counting only what they want let the splitter push the line
        # plots' axes out at the bottom
        least = max(hm.wanted_height(), hm.minimumHeight(), hm.minimumSizeHint().height())
        return least + BOTTOM_MIN_PX + self.vsplit.handleWidth()

    def _build_welcome(self) -> QWidget:
        w = QWidget()
        v = QVBoxLayout(w)
        v.addStretch(1)
        title = QLabel(
            "<div style='font-size:34px; font-weight:700'>lstmviz</div>"
            "<div style='font-size:18px; color:#9aa0a6'>Open up an LSTM and watch "
            "it think: every gate, cell and hidden state, step by step.</div>"
        )
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title.setWordWrap(True)
        v.addWidget(title)
        row = QHBoxLayout()
        row.addStretch(1)
        open_button = QPushButton("Open a model… (Ctrl+O)")
        open_button.setMinimumHeight(40)
        open_button.clicked.connect(self.choose_model)
        row.addWidget(open_button)
        row.addStretch(1)
        v.addLayout(row)
        self.welcome_examples = QVBoxLayout()
        v.addLayout(self.welcome_examples)
        hint = QLabel(
            "or drop a model file (.keras, .h5, ...) here · File → Examples lists "
            "the bundled examples"
        )
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setStyleSheet("color: #9aa0a6")
        v.addWidget(hint)
        v.addStretch(2)
        return w

    def _build_menus(self) -> None:
        mb = self.menuBar()
        for name in MENU_ORDER:
            self.menu(name)
        file = self.menu("File")
        self._action(file, "&Open model…", self.choose_model, QKeySequence.StandardKey.Open)
        self._action(file, "Open &input…", self.choose_input, "Ctrl+I")
        self.examples_menu = file.addMenu("&Examples")
        self.recent_menu = file.addMenu("&Recent")
        self.examples_menu.aboutToShow.connect(self._fill_examples)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._fill_examples()
        self._fill_recent()
        file.addSeparator()
        self._action(file, "Save &screenshot…", self.choose_screenshot, "Ctrl+Shift+S")
        file.addSeparator()
        self._action(file, "&Quit", self.close, "Ctrl+Q")
        view = self.menu("View")
        self.presentation_action = self._action(
            view, "&Presentation mode", self.toggle_presentation, "F11"
        )
        self.presentation_action.setCheckable(True)
        self.state.options.events.presentation.connect(
            lambda on: self.set_presentation(on, fullscreen=on and self.isVisible())
        )
        self.all_layers_action = self._action(
            view, "&All layers at once", lambda: self._toggle_option("all_layers")
        )
        self.all_layers_action.setCheckable(True)
        self.state.options.events.all_layers.connect(
            lambda on: self.all_layers_action.setChecked(on)
        )
        self._action(
            view,
            "Presentation &view: diagram, equations, heatmaps",
            self.cycle_presentation_view,
            "V",
        )
        self.hide_future_action = self._action(
            view,
            "&Hide the future (predict, then reveal)",
            lambda: self._toggle_option("hide_future"),
        )
        self.hide_future_action.setCheckable(True)
        self.state.options.events.hide_future.connect(
            lambda on: self.hide_future_action.setChecked(bool(on))
        )
        levels = view.addMenu("&Colour levels")
        self.lock_levels_action = self._action(
            levels, "&Lock colour levels", lambda: self._toggle_option("lock_levels")
        )
        self.lock_levels_action.setCheckable(True)
        self.lock_levels_action.setToolTip(
            "Keep the colour scales fixed across inputs and training snapshots, so that "
            "epoch 1 and epoch 12 can be compared by eye (locked while training)"
        )
        self.state.options.events.lock_levels.connect(
            lambda on: self.lock_levels_action.setChecked(bool(on))
        )
        self._action(levels, "&Widen to the trace on screen", self.widen_levels)
        levels.setToolTipsVisible(True)
        self._action(view, "&Reset zoom", self.reset_zoom, "Ctrl+0")
        self._action(view, "Reset &layout", self.reset_layout, "Ctrl+Shift+0")
        view.addSeparator()
        view.addAction(self.model_dock.toggleViewAction())
        view.addAction(self.detail_dock.toggleViewAction())
        helpm = self.menu("Help")
        self._action(helpm, "&Keyboard shortcuts", self.show_shortcuts, "F1")
        self._action(helpm, "&About lstmviz", self.show_about)
        mb.setNativeMenuBar(False)

    def _action(
        self, menu: QMenu | None, text: str, slot: Callable[[], Any], shortcut: Any = None
    ) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        a.triggered.connect(lambda _=False: slot())
        if menu is not None:
            menu.addAction(a)
        self.addAction(a)
        return a

    def _build_shortcuts(self) -> None:
        tr = self.transport
        self.blank = BlankCover(self)
        keys: list[tuple[str, Callable[[], Any], tuple[Any, ...]]] = [
            ("Step forward", tr.forward, (Qt.Key.Key_Right,)),
            ("Step back", tr.back, (Qt.Key.Key_Left,)),
            ("Next (clicker)", lambda: self.page(1), (Qt.Key.Key_PageDown,)),
            ("Back (clicker)", lambda: self.page(-1), (Qt.Key.Key_PageUp,)),
            ("Go to start", tr.to_start, (Qt.Key.Key_Home,)),
            ("Go to end", tr.to_end, (Qt.Key.Key_End,)),
            ("Play / pause", tr.toggle_play, (Qt.Key.Key_Space,)),
            ("Faster", tr.faster, (Qt.Key.Key_Plus, Qt.Key.Key_Equal)),
            ("Slower", tr.slower, (Qt.Key.Key_Minus,)),
            ("Leave presentation mode", lambda: self.set_presentation(False), (Qt.Key.Key_Escape,)),
            # a presentation clicker's other buttons: "start the show" and "blank screen"
            (
                "Presentation mode (clicker)",
                lambda: self.set_presentation(True),
                (Qt.Key.Key_F5, QKeyCombination(Qt.KeyboardModifier.ShiftModifier, Qt.Key.Key_F5)),
            ),
            ("Blank screen (clicker)", self.blank.toggle, (Qt.Key.Key_B, Qt.Key.Key_Period)),
        ]
        self.key_actions: dict[str, QAction] = {}
        for text, slot, ks in keys:
            a = QAction(text, self)
            a.setShortcuts([QKeySequence(k) for k in ks])
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            a.triggered.connect(lambda _=False, s=slot: s())
            self.addAction(a)
            self.key_actions[text] = a

    def _build_status(self) -> None:
        sb = self.statusBar()
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setVisible(False)
        self.busy_label = QLabel()
        self._busy_later = QTimer(self)
        self._busy_later.setSingleShot(True)
        self._busy_later.setInterval(BUSY_AFTER_MS)
        self._busy_later.timeout.connect(self._show_busy)
        self.engine_label = QLabel()
        self.engine_label.setToolTip("What computed the trace shown")
        sb.addPermanentWidget(self.busy_label)
        sb.addPermanentWidget(self.progress_bar)
        sb.addPermanentWidget(self.engine_label)

    # --- public API for extensions -------------------------------------------------------------
    def menu(self, name: str) -> QMenu:
        """The top-level menu ``name`` ("File", "View", "Train", "Analysis", "Help"),
        created on first use (in that order; other names go before Help)."""
        m = self._menus.get(name)
        if m is not None:
            return m
        m = QMenu(f"&{name}", self)
        m.setObjectName(f"menu_{name.lower()}")
        later = (
            [self._menus[n] for n in MENU_ORDER[MENU_ORDER.index(name) + 1 :] if n in self._menus]
            if name in MENU_ORDER
            else ([self._menus["Help"]] if "Help" in self._menus else [])
        )
        if later:
            self.menuBar().insertMenu(later[0].menuAction(), m)
        else:
            self.menuBar().addMenu(m)
        self._menus[name] = m
        return m

    def add_dock(
        self,
        widget: QWidget,
        title: str,
        area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
        key: str | None = None,
    ) -> QDockWidget:
        """Put ``widget`` in a dock titled ``title``; returns the dock.

        Docks move and close but do not float: a drag on a splitter or a title never tears
        a panel off the window (the dock layout is saved; View ▸ Reset layout restores it).
        """
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key or title.lower().replace(' ', '_')}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        dock.visibilityChanged.connect(self._on_dock_visibility)
        return dock

    def _on_dock_visibility(self, *_: Any) -> None:
        # a panel opened or closed under the big view: at once, before the window grows to
        # the old least height (not while presentation mode itself hides or shows the docks)
        if self.presentation and not self._switching:
            self._apply_stage()

    def bottom_panel_open(self) -> bool:
        """Whether a dock (the Train panel, an analysis panel) is shown under the views."""
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        return any(
            d.isVisible() and self.dockWidgetArea(d) == bottom
            for d in self.findChildren(QDockWidget)
        )

    def before_dock_shown(self, dock: QDockWidget) -> None:
        """Called just before ``dock`` is shown: in presentation mode the views above make
        room for a bottom panel first (showing the dock resizes the window at once to fit
        everyone's least height: it grew past a 1280 x 720 screen)."""
        if (
            self.presentation
            and self.dockWidgetArea(dock) == Qt.DockWidgetArea.BottomDockWidgetArea
        ):
            self._apply_stage(squeeze=True)
            # the least heights now, not when the queued relayout comes (after the dock)
            page_layout, own = self.main_page.layout(), self.layout()
            if page_layout is not None:
                page_layout.activate()
            self.stack.updateGeometry()
            if own is not None:
                own.invalidate()

    def fit_dock(self, dock: QDockWidget, height: int, keep_line_plots: bool = False) -> None:
        """Give a bottom dock ``height`` pixels, less if the views above need the room;
        ``keep_line_plots``: less again where that leaves the line plots under the heatmaps
        their least height (they fold away otherwise)."""
        if self.dockWidgetArea(dock) != Qt.DockWidgetArea.BottomDockWidgetArea:
            return
        central = self.centralWidget()
        least = central.minimumSizeHint().height() if central is not None else 0
        room = self.height() - least - 80
        if self.presentation:  # the big view above keeps the height its large type needs
            room += 80 - max(STAGE_PX - self.middle.minimumSizeHint().height(), 0)
        elif keep_line_plots and (self.state.trace is None or not self.vsplit.isVisible()):
            # opened before a model (or its trace): fitted again once the views have one
            self._fit_after_trace = (dock, height)
        elif keep_line_plots and central is not None:
            bar = self.statusBar()
            bottom = bar.geometry().top() if bar.isVisible() else self.height()
            available = bottom - central.geometry().top() - 3  # the separator
            views = central.height() - self.vsplit.height() + self._vsplit_need()
            if available - views >= dock.minimumSizeHint().height():
                room = min(room, available - views)
        self.resizeDocks([dock], [max(120, min(height, room))], Qt.Orientation.Vertical)

    def reset_layout(self) -> None:
        """View ▸ Reset layout: every panel back in its default place and size."""
        if self.presentation:
            self.set_presentation(False)
        self.restoreState(self._default_layout)
        if self.panels is not None:
            self.panels.close_all()
        self._panels_shown = False
        if self.state.model is not None:
            self._show_panels_once()
        self.resizeDocks([self.model_dock, self.detail_dock], [288, 335], Qt.Orientation.Horizontal)
        self.vsplit.setSizes([560, 200])

    def plot_widgets(self) -> dict[str, Any]:
        """Every named view: ``heatmap_<quantity>``, ``unit_lines``,
        ``bars``, ``output`` (pyqtgraph PlotItems), ``token_strip``, ``unit_detail`` (widgets)."""
        out: dict[str, Any] = {}
        for key, hm in self.heatmaps.maps.items():
            out[f"heatmap_{key}"] = hm.plot
        out["unit_lines"] = self.unit_lines.plot
        out["bars"] = self.step_bars.plot
        out["output"] = self.output_view.plot
        out["token_strip"] = self.token_strip
        out["unit_detail"] = self.unit_detail
        return out

    def show_error(self, message: str) -> None:
        """Show ``message`` in an error dialog (non-blocking); the app stays usable."""
        self.last_error = str(message)
        log.info("%s", message)  # the dialog shows it; the CLI prints fatal ones
        self.statusBar().showMessage(str(message).splitlines()[0][:200], 10000)
        if self.error_dialog is not None:
            self.error_dialog.close()
        box = QMessageBox(
            QMessageBox.Icon.Critical, "lstmviz", str(message), QMessageBox.StandardButton.Ok, self
        )
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        self.error_dialog = box
        box.open()

    def run_worker(
        self,
        fn: Callable[..., Any],
        on_finished: Callable[[Any], None] | None = None,
        label: str = "",
        **kwargs: Any,
    ) -> Worker:
        """Run ``fn(progress, should_stop)`` off the GUI thread; ``on_finished(result)`` runs
        on the GUI thread. Errors go to :meth:`show_error`. A new call cancels the previous
        one. Keyword arguments: ``on_failed``, ``on_partial``, ``on_progress``."""
        return self.runner.start(fn, on_finished, label, **kwargs)

    def status(self, message: str, ms: int = 5000) -> None:
        """Show ``message`` in the status bar for ``ms`` milliseconds."""
        self.last_status = message
        self.statusBar().showMessage(message, ms)

    # --- opening files -------------------------------------------------------------------------
    def open_model(
        self,
        path: str | os.PathLike[str],
        x: Any = None,
        text: str | None = None,
        input_path: str | None = None,
        then: Callable[[], None] | None = None,
        preload: Any = None,
    ) -> None:
        """Load and trace the model at ``path`` in one worker job and show it (with ``x``,
        ``text`` or ``input_path`` as input, else its example input). ``then()`` runs once
        it is shown. ``preload``: a future of :func:`.main.load_model_files` already started for
        this path."""
        path = str(path)

        def opened() -> None:
            self._add_recent(path)
            if then is not None:
                then()

        self.status(f"Opening {path}…", 3000)
        # the side panels appear (and are laid out) now, while the worker reads and traces,
        # rather than in the same event-loop turn as the first trace (as `lstmviz FILE` does)
        self.show_panels()
        self.state.open(
            path,
            x=x,
            text=text,
            input_path=input_path,
            on_opened=opened,
            load=preload.result if preload is not None else None,
        )

    def open_input(self, path: str | os.PathLike[str]) -> None:
        """Read an input file (.npy / .csv) and trace the current model on it."""
        if self.state.model is None:
            self.show_error("Open a model before loading an input.")
            return
        path = str(path)
        model, info = self.state.model, self.state.info

        def read(progress: Any, should_stop: Any) -> Any:
            from ..io.inputs import load_input

            return load_input(model, path=path, info=info)

        def loaded(x: Any) -> None:
            try:
                self.state.set_input(x)
            except LstmvizError as e:
                self.show_error(f"{path}: {e}")
                return
            self._add_recent(path)

        self.run_worker(read, loaded, f"Reading {Path(path).name}")

    def open_path(self, path: str | os.PathLike[str]) -> None:
        """Open a model, an input, a session or a lesson file, by its suffix."""
        from ..io.lesson import SUFFIX as LESSON_SUFFIX
        from ..io.session import SUFFIX as SESSION_SUFFIX

        p = Path(path)
        suffix = p.suffix.lower()
        if suffix == LESSON_SUFFIX:
            self.ensure_actions()
            if self.lessons is not None:
                self.lessons.open_lesson(p)
            return
        if suffix == SESSION_SUFFIX:
            self.ensure_actions()
            if self.session_actions is not None:
                self.session_actions.open_session(p)
            return
        if suffix in INPUT_SUFFIXES:
            self.open_input(p)
        elif suffix in model_suffixes() or _is_checkpoint(p):
            self.open_model(p)
        else:
            self.show_error(
                f"{p}: cannot open files of type {suffix or '(none)'!r}; models are "
                f"{', '.join(model_suffixes())}, inputs "
                f"{', '.join(INPUT_SUFFIXES)}"
            )

    def choose_model(self) -> None:
        pattern = " ".join(f"*{s}" for s in model_suffixes())
        path = dialogs.ask_open_file(self, "Open a model", f"Models ({pattern});;All files (*)")
        if path:
            self.open_model(path)

    def choose_input(self) -> None:
        path = dialogs.ask_open_file(
            self, "Open an input sequence", "Inputs (*.npy *.npz *.csv *.txt);;All files (*)"
        )
        if path:
            self.open_input(path)

    def choose_screenshot(self) -> None:
        path = dialogs.ask_save_file(self, "Save a screenshot", "lstmviz.png", "PNG images (*.png)")
        if path:
            from ..io.atomic import atomic_target

            try:
                with atomic_target(path) as tmp:
                    if not self.grab().save(str(tmp), "PNG"):
                        raise LstmvizError(f"{path}: could not write the screenshot")
            except LstmvizError as e:
                self.show_error(str(e))
                return
            self.status(f"Saved {path}")

    def open_example(self, name: str) -> None:
        from ..examples import get_example

        try:
            ex = get_example(name)
        except LstmvizError as e:
            self.show_error(str(e))
            return
        self.open_model(ex.path)

    def _fill_examples(self) -> None:
        from ..examples import list_examples

        self.examples_menu.clear()
        try:
            examples = list_examples()
        except LstmvizError as e:
            examples = []
            log.warning("examples: %s", e)
        gallery = self.examples_menu.addAction("&Gallery…")
        gallery.setShortcut(QKeySequence("Ctrl+Shift+G"))  # Ctrl+E is File > Export > Figure
        gallery.triggered.connect(lambda _=False: self.show_gallery())
        self.examples_menu.addSeparator()
        for ex in examples:
            a = self.examples_menu.addAction(ex.title)
            a.setToolTip(ex.description)
            a.setStatusTip(ex.description)
            a.triggered.connect(lambda _=False, n=ex.name: self.open_example(n))
        if not examples:
            a = self.examples_menu.addAction("(no bundled examples)")
            a.setEnabled(False)
        self.examples_menu.setToolTipsVisible(True)
        # the welcome page lists them too
        while self.welcome_examples.count():
            item = self.welcome_examples.takeAt(0)
            old = item.widget() if item is not None else None
            if old is not None:
                old.deleteLater()
        for ex in examples:
            b = QPushButton(f"{ex.title}")
            b.setToolTip(ex.description)
            b.clicked.connect(lambda _=False, n=ex.name: self.open_example(n))
            row = QHBoxLayout()
            self.welcome_examples.addWidget(b, 0, Qt.AlignmentFlag.AlignHCenter)
            del row

    def show_gallery(self) -> Any:
        """The example gallery dialog (window-modal; the event loop keeps running)."""
        from ..examples import list_examples
        from .gallery import ExampleGallery

        dlg = ExampleGallery(list_examples(), self)
        dlg.accepted.connect(lambda: self.open_example(dlg.chosen) if dlg.chosen else None)
        dlg.setWindowModality(Qt.WindowModality.WindowModal)
        dlg.open()
        self.gallery = dlg
        return dlg

    def _toggle_option(self, name: str) -> None:
        setattr(self.state.options, name, not getattr(self.state.options, name))

    def widen_levels(self) -> None:
        """View ▸ Colour levels ▸ Widen: the locked levels grow to cover what is on screen
        (locking them if they were not)."""
        if not self.state.options.lock_levels:
            self.state.options.lock_levels = True
            self.status("Colour levels locked at the trace on screen")
            return
        grew = self.state.widen_levels()
        self.status(
            "Colour levels widened to cover the trace on screen"
            if grew
            else "The locked colour levels already cover the trace on screen"
        )

    def reset_zoom(self) -> None:
        """Show every timestep and unit again after zooming with the mouse wheel."""
        for hm in self.heatmaps.maps.values():
            hm.plot.vb.setRange(
                xRange=(0, max(hm.n_t, 1)), yRange=(0, max(hm.n_rows, 1)), padding=0
            )
        self.unit_lines.refresh()

    def save_layout(self) -> None:
        s = self._settings()
        if s is not None and not self.presentation:
            s.setValue("geometry", self.saveGeometry())
            s.setValue("state", self.saveState())
        if s is not None:
            s.sync()  # the process may end before Qt's next write

    def restore_layout(self) -> None:
        """Window geometry and dock layout of the last session (the ``lstmviz`` command)."""
        s = self._settings()
        if s is None or self.presentation:
            return
        geometry, state = s.value("geometry"), s.value("state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None and self.restoreState(state):
            self._panels_shown = True  # the docks as the user left them

    # --- recent files --------------------------------------------------------------------------
    def _settings(self) -> QSettings | None:
        if os.environ.get("LSTMVIZ_TESTING"):
            return None
        # one QSettings for the window: a change is in it at once (the Recent menu reads it
        # back) and Qt writes the file from the event loop, or when the window closes; a
        # QSettings made per call wrote the file (2-17 ms) inside the handler that changed it,
        # which held back the first frame of a model just opened
        if self._qsettings is None:
            self._qsettings = QSettings("lstmviz", "lstmviz", self)
        return self._qsettings

    def recent_files(self) -> list[str]:
        s = self._settings()
        if s is None:
            return list(self._recent_mem)
        v = s.value("recent", [])
        if isinstance(v, str):
            v = [v]
        return [str(p) for p in v] if isinstance(v, list) else []

    def _add_recent(self, path: str) -> None:
        path = str(Path(path).resolve())
        items = [path, *[p for p in self.recent_files() if p != path]][:MAX_RECENT]
        s = self._settings()
        if s is None:
            self._recent_mem = items
        else:
            s.setValue("recent", items)
            s.setValue("last_dir", str(Path(path).parent))

    def _last_dir(self) -> str:
        s = self._settings()
        return str(s.value("last_dir", "")) if s is not None else ""

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.recent_files():
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, q=p: self.open_path(q))
        if not self.recent_files():
            a = self.recent_menu.addAction("(none yet)")
            a.setEnabled(False)

    # --- drag and drop -------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
                event.acceptProposedAction()
                return

    # --- presentation mode ---------------------------------------------------------------------
    def toggle_presentation(self) -> None:
        self.set_presentation(not self.presentation)

    def set_presentation(self, on: bool, fullscreen: bool = True) -> None:
        """Presentation mode: full screen, large fonts, thick lines, side panels hidden."""
        if on == self.presentation:
            return
        self._switching = True
        try:
            self._set_presentation(on, fullscreen)
        finally:
            self._switching = False

    def _set_presentation(self, on: bool, fullscreen: bool) -> None:
        self.presentation = on
        self.state.options.presentation = on
        self.presentation_action.setChecked(on)
        if on:
            self._docks_before = {d: d.isVisible() for d in self.findChildren(QDockWidget)}
            # a dock's layout raises its least size to its content's, in large type too, and
            # never lowers it: the Model dock came back 485 px wide at least and the window
            # grew past a 1920 px screen (1975 px) on leaving presentation mode
            self._dock_min = {d: d.minimumSize() for d in self._docks_before}
            self._dock_size = {d: d.size() for d, vis in self._docks_before.items() if vis}
            for d in self._docks_before:  # every panel: the big view takes the screen
                d.setVisible(False)
            self.editor.setVisible(False)
            self.bottom.setVisible(False)
            self.menuBar().setVisible(False)
            self.statusBar().setVisible(False)
            self.set_theme(PRESENTATION)
            self._apply_stage()
            screens = audience_screens()
            if fullscreen and len(screens) >= 2:  # the projector shows this window
                self.setScreen(screens[1])
                self.move(screens[1].geometry().topLeft())
                self.show_presenter(screens[0])
            if fullscreen:
                self.showFullScreen()
        else:
            # normal type first: docks shown in large type grew the window past the screen
            self.set_theme(NORMAL)
            for d, least in self._dock_min.items():
                d.setMinimumSize(least)
            for d, vis in self._docks_before.items():
                d.setVisible(vis)
            self.editor.setVisible(True)
            self.bottom.setVisible(True)
            self.menuBar().setVisible(True)
            self.statusBar().setVisible(True)
            self._apply_stage()
            # the side docks as wide as they were (they came back a third wider, and the
            # bars under the heatmaps lost their axes)
            side = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea)
            back = [d for d in self._dock_size if d.isVisible() and self.dockWidgetArea(d) in side]
            widths = [self._dock_size[d].width() for d in back]
            sizes = dict(self._dock_min)

            def restore() -> None:  # once the shown docks took the normal type
                for dock, size in sizes.items():
                    dock.setMinimumSize(size)
                if back:
                    self.resizeDocks(back, widths, Qt.Orientation.Horizontal)

            QTimer.singleShot(0, self, restore)  # dropped with the window
            if self.presenter is not None:
                self.presenter.close()
                self.presenter = None
            if self.isFullScreen():
                self.showNormal()

    @property
    def stage_diagram(self) -> DiagramView:
        """Presentation mode's big cell diagram (built on first use)."""
        return self._stage("diagram")  # type: ignore[return-value]

    @property
    def stage_equations(self) -> EquationsView:
        """Presentation mode's big equations (built on first use)."""
        return self._stage("equations")  # type: ignore[return-value]

    def _stage(self, view: str) -> DiagramView | EquationsView:
        """The big view ``view`` ("diagram" or "equations") of presentation mode: built, in
        the window's theme, the first time it is asked for (most sessions never show it)."""
        got = self._stages.get(view)
        if got is None:
            from .diagram_view import DiagramView, EquationsView

            built: DiagramView | EquationsView = (
                DiagramView(self.state, big=True)
                if view == "diagram"
                else EquationsView(self.state, big=True)
            )
            built.set_theme(self.theme)
            self.middle.addWidget(built)
            self._stages[view] = got = built
        return got

    def _apply_stage(self, *_: Any, squeeze: bool = False) -> None:
        """The big view of presentation mode (the heatmaps in the normal window); the story
        bar shows in presentation mode and while a lesson is open."""
        view = self.state.options.presentation_view
        if self.presentation and view in ("diagram", "equations"):
            self.middle.setCurrentWidget(self._stage(view))
        else:
            self.middle.setCurrentIndex(0)
        lesson_open = self.lessons is not None and self.lessons.run is not None
        # presentation mode with a panel under the big view (a 1280 x 720 projector has no
        # room for all of it in large type): the big prediction goes (the token strip's output
        # row shows it), the token strip drops its row of correct answers (a wrong output is
        # red), and the story bar shows only a lesson's caption
        squeezed = self.presentation and (squeeze or self.bottom_panel_open())
        self.story_bar.setVisible((self.presentation and not squeezed) or lesson_open)
        self.story_bar.prediction.setVisible(self.presentation and not squeezed)
        self.token_strip.set_compact(squeezed)

    def cycle_presentation_view(self) -> None:
        """V: presentation mode shows the cell diagram, then the equations, then the
        heatmaps (outside presentation mode: opens the Cell diagram panel)."""
        from ..state.viewer import PRESENTATION_VIEWS

        opts = self.state.options
        if not self.presentation:
            if self.panels is not None:
                self.panels.open("diagram")
            return
        k = (
            PRESENTATION_VIEWS.index(opts.presentation_view)
            if opts.presentation_view in (PRESENTATION_VIEWS)
            else -1
        )
        opts.presentation_view = PRESENTATION_VIEWS[(k + 1) % len(PRESENTATION_VIEWS)]

    def page(self, step: int) -> None:
        """The clicker (PageDown / PageUp): the next / previous lesson step when a lesson is
        open (a question first, then its answer), else one timestep."""
        if self.lessons is not None and self.lessons.run is not None:
            self.lessons.page(step)
        else:
            self.state.step(step)

    def show_presenter(self, screen: Any = None) -> PresenterWindow:
        """The presenter's window (notes, next step, controls), on ``screen`` when given."""
        if self.presenter is None:
            self.presenter = PresenterWindow(self)
        if screen is not None:
            self.presenter.setScreen(screen)
            self.presenter.move(screen.geometry().topLeft())
            self.presenter.showMaximized()
        else:
            self.presenter.show()
        self.presenter.raise_()
        return self.presenter

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.setStyleSheet(stylesheet(theme))
        for stage in self._stages.values():
            stage.set_theme(theme)
        for v in (
            self.story_bar,
            self.heatmaps,
            self.unit_lines,
            self.step_bars,
            self.token_strip,
            self.unit_detail,
            self.output_view,
            self.model_panel,
        ):
            v.set_theme(theme)
        if theme is PRESENTATION:
            self.vsplit.setSizes([620, 250])
        else:
            self.vsplit.setSizes([560, 200])

    # --- dialogs -------------------------------------------------------------------------------
    def show_about(self) -> None:
        import numpy as np
        import PySide6
        from PySide6.QtCore import qVersion

        from .. import __version__

        box = QMessageBox(QMessageBox.Icon.NoIcon, "About lstmviz", "", parent=self)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        self.about_box = box
        box.setText(
            f"<h3>lstmviz {__version__}</h3><p>Open up an LSTM and watch it think.</p>"
            f"<p>Python {platform.python_version()} · NumPy {np.__version__}<br>"
            f"PySide6 {PySide6.__version__} (Qt {qVersion()}) · pyqtgraph {pg.__version__}<br>"
            f"{platform.system()} {platform.machine()}</p>",
        )
        box.open()

    def show_shortcuts(self) -> QMessageBox:
        """Help ▸ Keyboard shortcuts (F1): every key of the app (:mod:`.keys`)."""
        from .keys import keys_text

        box = QMessageBox(QMessageBox.Icon.Information, "Keyboard shortcuts", "", parent=self)
        box.setText(f"<pre style='font-size:13px'>{html.escape(keys_text())}</pre>")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        self.shortcuts_box = box
        box.open()
        return box

    # --- state -> window --------------------------------------------------------------------
    def _on_hovered(self, text: str) -> None:
        """The value under the mouse: in the status bar, or (presentation mode, no status
        bar) in a tooltip."""
        if self.presentation:
            from PySide6.QtGui import QCursor
            from PySide6.QtWidgets import QToolTip

            QToolTip.showText(QCursor.pos(), text, self.heatmaps)
        else:
            self.statusBar().showMessage(text, 4000)

    def _focus_views(self) -> None:
        """Keyboard focus back on the plots, where the arrow keys step through time."""
        self.heatmaps.setFocus(Qt.FocusReason.OtherFocusReason)

    def _on_model_changed(self) -> None:
        doc = self.state
        self.stack.setCurrentIndex(1)
        self._focus_views()
        self.statusBar().clearMessage()
        if doc.model_path:
            name = Path(doc.model_path).name
        else:
            name = doc.model.name if doc.model is not None else ""
        title = doc.info.title if doc.info is not None and doc.info.title else ""
        self.setWindowTitle(f"{title + ' — ' if title else ''}{name} — lstmviz")

    def show_panels(self) -> None:
        """Show the side panels (they are hidden on the welcome page until a model opens)."""
        self._show_panels_once()

    def _show_panels_once(self) -> None:
        if self._panels_shown:
            return
        self._panels_shown = True
        for d in (self.model_dock, self.detail_dock):
            if self.presentation:
                self._docks_before[d] = True  # shown when presentation mode ends
            else:
                d.show()

    def _on_trace_changed(self) -> None:
        self.stack.setCurrentIndex(1)
        self._show_panels_once()
        pending, self._fit_after_trace = self._fit_after_trace, None
        if pending is not None:  # a panel opened before the first trace: fit it now
            dock, height = pending

            def fit() -> None:
                if dock.isVisible():
                    self.fit_dock(dock, height, keep_line_plots=True)

            # after the views above took their new sizes (the token strip's rows, the maps)
            QTimer.singleShot(FIT_AFTER_TRACE_MS, dock, fit)  # dropped with the dock
        from ..budget import format_bytes

        tr = self.state.trace
        size = format_bytes(tr.nbytes) if tr is not None else "–"
        self.engine_label.setText(
            f"engine: {self.state.engine} · T = {self.state.timesteps} · trace {size}"
        )
        if self.isVisible():
            # the views took the new trace and their sizes changed (the token strip's rows,
            # the model's description, the labels): lay the window out now, so the next frame
            # is drawn once at its final layout (a frame drawn first at the old layout showed
            # the views jump, and the whole window was drawn twice)
            QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)

    def _trace_runner(
        self,
        job: Callable[..., Any],
        on_done: Callable[[Any], None],
        on_failed: Callable[[str], None],
        label: str,
    ) -> Worker:
        return self.trace_runner.start(job, on_done, label, on_failed=on_failed)

    def _ask_layout(self, model: Any, inputs: list[str]) -> bool | None:
        """Ask how a graph's inputs are laid out when its shapes cannot tell (some ONNX
        exports): never guessed."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("How is the input laid out?")
        box.setText(
            f"{Path(model.source).name if model.source else model.name}: the graph does not "
            f"say whether its input {', '.join(inputs)} is time-major or batch-first."
        )
        box.setInformativeText(
            "PyTorch's nn.LSTM is time-major (T, batch, features) unless batch_first=True; "
            "Keras and most exports with batch_first=True are batch-first."
        )
        tm = box.addButton("Time-major (T, batch, …)", QMessageBox.ButtonRole.AcceptRole)
        bf = box.addButton("Batch-first (batch, T, …)", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        self.layout_box = box
        box.exec()
        clicked = box.clickedButton()
        return True if clicked is tm else False if clicked is bf else None

    def _on_busy_changed(self, label: str) -> None:
        self.busy_label.setText(f"{label}…" if label else "")

    def _on_running_changed(self, running: bool, label: str) -> None:
        running = self.runner.is_running() or self.trace_runner.is_running()
        self.busy_label.setText(f"{label}…" if running and label else "")
        if running:
            self.progress_bar.setRange(0, 0)
            # the progress bar and the busy cursor show for work that takes a while: a job
            # done at once (opening a small model, most traces) does not make them flicker
            if not self.progress_bar.isVisible():
                self._busy_later.start()
            return
        self._busy_later.stop()
        self.progress_bar.setVisible(False)
        while QApplication.overrideCursor() is not None:
            QApplication.restoreOverrideCursor()

    def _show_busy(self) -> None:
        if not (self.runner.is_running() or self.trace_runner.is_running()):
            return
        self.progress_bar.setVisible(True)
        if QApplication.overrideCursor() is None:
            QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)

    def _on_progress(self, i: int, n: int) -> None:
        self.progress_bar.setRange(0, max(n, 1))
        self.progress_bar.setValue(i)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        self.transport.set_playing(False)
        # ask every task to stop and give cooperative ones a moment; a trace inside the
        # engine cannot be interrupted, but its daemon thread never holds the app open
        self.runner.shutdown(200)
        self.trace_runner.shutdown(200)
        self._shut_down_actions()
        super().closeEvent(event)

    # --- menus and panels beyond the core views ----------------------------------------------
    def build_actions(self) -> None:
        """Sessions (File ▸ Save/Open session, autosave, recovery), export (File ▸ Export,
        plot right-click menus), training (Train menu, View ▸ Engine) and the dockable panels
        (Train, Analysis ▸ ...; built on first open). Called once; later calls do nothing."""
        if self.panels is not None:
            return
        from .analysis import analysis_panels
        from .export_actions import ExportActions
        from .lessons import LessonActions
        from .session_actions import SessionActions
        from .train_panel import EngineChoice, add_train_menu, train_panel_spec

        self.panels = Panels(self, [train_panel_spec(), diagram_panel_spec(), *analysis_panels()])
        add_train_menu(self, self.panels)
        self.engine_choice = EngineChoice(self, self.panels)
        self.export_actions = ExportActions(self)
        self.session_actions = SessionActions(self)
        self.lessons = LessonActions(self)
        self.state.events.model.connect(self.lessons._update_actions)
        self._default_layout = self.saveState()
        self._build_pending = None
        self.actions_built.emit()

    def build_actions_after_first_paint(self, wait_for_trace: bool = True) -> None:
        """:meth:`build_actions` once the window has painted (with a trace when
        ``wait_for_trace``): the start-up path of the ``lstmviz`` command, so the user sees
        the model first and the menus and docks follow a moment later."""
        window = self

        def build() -> None:
            if self._build_pending is None:
                return
            self._build_pending = None
            self.heatmaps.viewport().removeEventFilter(self._paint_watch)
            welcome = self.stack.widget(0)
            if welcome is not None:
                welcome.removeEventFilter(self._paint_watch)
            self.build_actions()

        class _Watch(QObject):
            def eventFilter(self, obj: Any, ev: Any) -> bool:
                if ev.type() == QEvent.Type.Paint and (
                    not wait_for_trace or window.state.trace is not None
                ):
                    QTimer.singleShot(30, build)  # after the first frame is out
                return False

        self._paint_watch = _Watch(self)
        self.heatmaps.viewport().installEventFilter(self._paint_watch)
        welcome = self.stack.widget(0)
        if not wait_for_trace and welcome is not None:
            welcome.installEventFilter(self._paint_watch)
        self.state.events.failed.connect(lambda _m: QTimer.singleShot(0, build))
        QTimer.singleShot(5000, build)  # whatever happens, not later than this
        self._build_pending = build

    def _warm_loaders(self) -> None:
        if "h5py" not in sys.modules:
            background(import_loaders, name="lstmviz warm-up")

    def ensure_actions(self) -> None:
        """Build the deferred menus and panels now (before a screenshot, say)."""
        if self._build_pending is not None:
            self._build_pending()

    def _shut_down_actions(self) -> None:
        """Stop the background work of panels and actions (closing must not fail)."""
        if self.presenter is not None:
            self.presenter.close()
        for part in (self.engine_choice, self.export_actions, self.session_actions, self.lessons):
            if part is None:
                continue
            try:
                part.shutdown()
            except Exception:  # noqa: BLE001 - closing must not fail
                log.error("shutting down %s failed:\n%s", part, traceback.format_exc())
        if self.panels is not None:
            for key in self.panels.specs:
                widget = self.panels.built(key)
                stop = getattr(widget, "shutdown", None)
                if stop is None:
                    continue
                try:
                    stop()
                except Exception:  # noqa: BLE001 - closing must not fail
                    log.error("shutting down panel %s failed:\n%s", key, traceback.format_exc())


def diagram_panel_spec() -> PanelSpec:
    """The Cell diagram dock, as the main window declares its panels (built on first open,
    when :mod:`.diagram_view` and the diagram's layout are imported)."""

    def build(window: MainWindow) -> QWidget:
        from .diagram_view import DiagramPanel

        return DiagramPanel(window)

    return PanelSpec(
        key="diagram",
        title="Cell diagram",
        menu="View",
        shortcut="Ctrl+D",
        tip="The LSTM cell with the selected unit's numbers on every wire, at this step",
        build=build,
        height=400,
    )


def _excepthook_for(window: MainWindow) -> Callable[..., None]:
    """Uncaught exceptions in slots become an error dialog instead of a crash."""

    def hook(etype: type[BaseException], value: BaseException, tb: Any) -> None:
        if issubclass(etype, KeyboardInterrupt):
            sys.__excepthook__(etype, value, tb)
            return
        text = "".join(traceback.format_exception(etype, value, tb))
        log.error("uncaught exception:\n%s", text)
        if isinstance(value, LstmvizError):
            window.show_error(str(value))
        else:
            window.show_error(
                f"Unexpected error: {etype.__name__}: {value}\n\nDetails were written to the log."
            )

    return hook


class _FitSplitter(QSplitter):
    """A vertical splitter that calls ``fit()`` after each resize (see
    :meth:`MainWindow._fit_central`)."""

    def __init__(self, fit: Callable[[], None]) -> None:
        super().__init__(Qt.Orientation.Vertical)
        self._fit = fit
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(fit)

    def resizeEvent(self, ev: Any) -> None:
        super().resizeEvent(ev)
        self._timer.start(0)

    def minimumSizeHint(self) -> QSize:
        """The heatmaps' least height only: the line plots below fold away when there is
        no room for them (a splitter counts every child's minimum, and the window grew
        taller than the screen with a panel open)."""
        hint = super().minimumSizeHint()
        first = self.widget(0)
        if first is None:
            return hint
        least = max(first.minimumHeight(), first.minimumSizeHint().height())
        return QSize(hint.width(), least)
