"""The Analysis menu and its panels (docks): Decomposition, Unit search, What-if, Compare,
Saturation, Check my LSTM, Corpus; and the causal analyses: Interventions, Activation
patching, Attribution, State space, Logit attribution.

:func:`analysis_panels` declares them for the main window, which builds each the first time
it opens. Every panel computes with :mod:`lstmviz.analysis` (NumPy only) from the window's
state, and only while its dock is visible.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QWidget

from ..panels import PanelSpec
from .attribution import AttributionPanel
from .check import CheckPanel
from .common import Panel
from .compare import ComparePanel
from .corpus import CorpusPanel
from .decomposition import DecompositionPanel
from .interventions import InterventionsPanel
from .logit_lens import LogitLensPanel
from .patching import PatchingPanel
from .saturation import SaturationPanel
from .state_space import StateSpacePanel
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
    (
        "interventions",
        "Interventions",
        "Ctrl+Alt+8",
        "Ablate or clamp units and see the output change; rank units by their effect",
    ),
    (
        "patching",
        "Activation patching",
        "Ctrl+Alt+9",
        "Clean vs corrupted input: where in time and in which path the answer travels",
    ),
    (
        "attribution",
        "Attribution",
        "Ctrl+Alt+0",
        "Which input tokens and units account for an output; connectivity; memory paths",
    ),
    (
        "state_space",
        "State space",
        "Ctrl+Alt+-",
        "PCA of the state with the trajectory; fixed points and their stability",
    ),
    (
        "logit_attribution",
        "Logit attribution",
        "Ctrl+Alt+=",
        "Each unit's direct contribution to an output of the Dense head; the logit lens",
    ),
)

__all__ = ["PANELS", "Panel", "analysis_panels"]


def _builder(key: str) -> Callable[[Any], QWidget]:
    def build(window: Any) -> QWidget:
        state = window.state
        panel: Panel
        if key == "decomposition":
            panel = DecompositionPanel(state)
        elif key == "unit_search":
            panel = UnitSearchPanel(state)
        elif key == "what_if":
            panel = WhatIfPanel(state)
        elif key == "compare":
            panel = ComparePanel(state)
        elif key == "saturation":
            panel = SaturationPanel(state)
        elif key == "check":
            panel = CheckPanel(state, window)
        elif key == "interventions":
            panel = InterventionsPanel(state)
        elif key == "patching":
            panel = PatchingPanel(state)
        elif key == "attribution":
            panel = AttributionPanel(state)
        elif key == "state_space":
            panel = StateSpacePanel(state)
        elif key == "logit_attribution":
            panel = LogitLensPanel(state)
        else:
            panel = CorpusPanel(state, window)
        panel.error.connect(window.show_error)
        return panel

    return build


def analysis_panels() -> list[PanelSpec]:
    """The Analysis menu's panels, as the main window declares its docks (each built the
    first time it opens, tabbed at the bottom)."""
    return [
        PanelSpec(key, title, "Analysis", shortcut, tip, _builder(key), height=340)
        for key, title, shortcut, tip in PANELS
    ]
