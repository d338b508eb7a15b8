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
from .common import Panel

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
    # each panel's module (and the analysis it computes with) is imported when the panel is
    # first opened: the window's start-up does not pay for twelve panels nobody opened yet
    def build(window: Any) -> QWidget:
        state = window.state
        panel: Panel
        if key == "decomposition":
            from .decomposition import DecompositionPanel

            panel = DecompositionPanel(state)
        elif key == "unit_search":
            from .unit_search import UnitSearchPanel

            panel = UnitSearchPanel(state)
        elif key == "what_if":
            from .whatif import WhatIfPanel

            panel = WhatIfPanel(state)
        elif key == "compare":
            from .compare import ComparePanel

            panel = ComparePanel(state)
        elif key == "saturation":
            from .saturation import SaturationPanel

            panel = SaturationPanel(state)
        elif key == "check":
            from .check import CheckPanel

            panel = CheckPanel(state, window)
        elif key == "interventions":
            from .interventions import InterventionsPanel

            panel = InterventionsPanel(state)
        elif key == "patching":
            from .patching import PatchingPanel

            panel = PatchingPanel(state)
        elif key == "attribution":
            from .attribution import AttributionPanel

            panel = AttributionPanel(state)
        elif key == "state_space":
            from .state_space import StateSpacePanel

            panel = StateSpacePanel(state)
        elif key == "logit_attribution":
            from .logit_lens import LogitLensPanel

            panel = LogitLensPanel(state)
        else:
            from .corpus import CorpusPanel

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
