"""The Analysis menu and its panels (docks): Decomposition, Unit search, What-if, Compare,
Saturation, Check my LSTM, Corpus.

``install(window)`` is called by the main window when this package exists. Every panel
computes with :mod:`lstmviz.analysis` (NumPy only) from the window's state, and only
while its dock is visible.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from .check import CheckPanel
from .common import Panel
from .compare import ComparePanel
from .corpus import CorpusPanel
from .decomposition import DecompositionPanel
from .saturation import SaturationPanel
from .unit_search import UnitSearchPanel
from .whatif import WhatIfPanel

#: (key, title, shortcut, tooltip)
PANELS = (
    (
        "decomposition",
        "Decomposition",
        "Ctrl+Alt+1",
        "What each unit's cell keeps (f·c_prev) versus writes (i·g), and memory lifetimes",
    ),
    (
        "unit_search",
        "Unit search",
        "Ctrl+Alt+2",
        "Rank units by correlation with a probe, a regex or a painted mask",
    ),
    (
        "what_if",
        "What-if",
        "Ctrl+Alt+3",
        "Change the input at one step and diff everything downstream",
    ),
    (
        "compare",
        "Compare",
        "Ctrl+Alt+4",
        "Two models or two training snapshots side by side, units aligned",
    ),
    ("saturation", "Saturation", "Ctrl+Alt+5", "Gate saturation per unit and dead units"),
    (
        "check",
        "Check my LSTM",
        "Ctrl+Alt+6",
        "Compare your from-scratch LSTM's arrays with the model; the likely mistake named",
    ),
    (
        "corpus",
        "Corpus",
        "Ctrl+Alt+7",
        "Trace a whole corpus to disk and search it for hidden-state patterns",
    ),
)

__all__ = ["PANELS", "Panel", "install", "make_panels", "uninstall"]


def make_panels(state: Any, window: Any = None) -> dict[str, Panel]:
    """Every analysis panel on ``state`` (``window``, if given, for heatmap overlays)."""
    return {
        "decomposition": DecompositionPanel(state),
        "unit_search": UnitSearchPanel(state),
        "what_if": WhatIfPanel(state),
        "compare": ComparePanel(state),
        "saturation": SaturationPanel(state),
        "check": CheckPanel(state, window),
        "corpus": CorpusPanel(state, window),
    }


def install(window: Any) -> None:
    """Add the Analysis menu and one (hidden) dock per panel to ``window``."""
    panels = make_panels(window.state, window)
    menu = window.menu("Analysis")
    window.analysis_panels = panels
    window.analysis_docks = {}
    first = None
    for key, title, shortcut, tip in PANELS:
        panel = panels[key]
        panel.error.connect(window.show_error)
        dock = window.add_dock(panel, title, Qt.DockWidgetArea.BottomDockWidgetArea)
        dock.setObjectName(f"dock_analysis_{key}")
        dock.setToolTip(tip)
        if first is None:
            first = dock
        else:
            window.tabifyDockWidget(first, dock)
        dock.hide()
        act: QAction = dock.toggleViewAction()
        act.setText(title)
        act.setShortcut(QKeySequence(shortcut))
        act.setToolTip(tip)
        act.setStatusTip(tip)
        menu.addAction(act)
        window.analysis_docks[key] = dock
    menu.setToolTipsVisible(True)


def uninstall(window: Any) -> None:
    """Stop background work (the corpus tracer) when the window closes."""
    panels = getattr(window, "analysis_panels", {})
    corpus = panels.get("corpus")
    if corpus is not None:
        corpus.shutdown()
    check = panels.get("check")
    if check is not None:
        check.runner.shutdown()
