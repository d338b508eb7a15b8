"""Analysis that answers "what does this unit do?" -- NumPy only, no Qt, no TensorFlow.

=====================  ===================================================================
decompose              the cell split into what it keeps (f·c_prev) and writes (i·g)
memory_lifetime        how long a value written at each step survives (forget-gate product)
retention              the running product of forget gates after one step
rank_units             units ranked by Pearson correlation with a signal
probes                 built-in signals: position, carry bit, inside quotes, bracket depth,
                       regex, painted masks
what_if                change one input token, diff everything downstream
compare, align_units   two models / snapshots on the same input, units aligned
saturation, dead_units gate saturation fractions and units that carry nothing
diagnose, Diagnosis    "Check my LSTM": a from-scratch implementation against the model,
                       with the likely mistake named
trace_corpus,          a whole corpus traced into a Zarr store by Dask tasks (threads or a
find_pattern,          cluster); LSTMVis-style pattern search over a bit-packed index,
unit_stats             per-unit statistics (lstmviz.analysis.corpus)
outputs                what an output is (probabilities, log-probabilities, logits, bits,
                       values), its top-k by value, labels safe to display
=====================  ===================================================================
"""

# The names imported for type checkers below are the package's public names (``__all__`` is
# built from the table that loads them, so a linter cannot see that they are used).
# ruff: noqa: F401

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported on first use, by __getattr__ below
    from . import outputs, probes
    from .attribution import Attribution, attribute, occlusion
    from .compare import Comparison, align_units, compare
    from .corpus import (
        CorpusStore,
        Match,
        PatternResult,
        UnitStats,
        convert_corpus,
        find_pattern,
        open_corpus,
        select_units,
        trace_corpus,
        unit_stats,
    )
    from .decompose import decompose, mean_lifetime, memory_lifetime, retention
    from .diagnose import Diagnosis, diagnose
    from .dynamics import FixedPoint, StatePCA, fixed_points, state_pca
    from .gradients import (
        Connectivity,
        IntegratedGradients,
        MemoryPaths,
        connectivity,
        gradient,
        gradient_x_input,
        integrated_gradients,
        integrated_gradients_full,
        loss_target,
        memory_paths,
    )
    from .interventions import (
        AblationScan,
        Intervention,
        InterventionEffect,
        ablate,
        ablation_scan,
        intervene,
        intervention_effect,
        mean_values,
        sample_with_intervention,
    )
    from .logit_attribution import LogitAttribution, logit_attribution
    from .lrp import LRPResult, lrp
    from .patching import PatchingResult, activation_patching
    from .saturation import dead_units, gate_histograms, saturation, saturation_split
    from .search import correlations, rank_units
    from .whatif import WhatIf, what_if

#: what loads on first use: {submodule: the public names it gives the package}. The
#: TYPE_CHECKING imports above say the same for type checkers
#: (tests/analysis/test_lazy_package.py checks that the two agree).
_LAZY: dict[str, tuple[str, ...]] = {
    "compare": ("Comparison", "align_units", "compare"),
    "decompose": ("decompose", "mean_lifetime", "memory_lifetime", "retention"),
    "diagnose": ("Diagnosis", "diagnose"),
    "logit_attribution": ("LogitAttribution", "logit_attribution"),
    "lrp": ("LRPResult", "lrp"),
    "saturation": ("dead_units", "gate_histograms", "saturation", "saturation_split"),
    "outputs": (),
    "probes": (),
    "attribution": ("Attribution", "attribute", "occlusion"),
    "corpus": (
        "CorpusStore",
        "Match",
        "PatternResult",
        "UnitStats",
        "convert_corpus",
        "find_pattern",
        "open_corpus",
        "select_units",
        "trace_corpus",
        "unit_stats",
    ),
    "dynamics": ("FixedPoint", "StatePCA", "fixed_points", "state_pca"),
    "gradients": (
        "Connectivity",
        "IntegratedGradients",
        "MemoryPaths",
        "connectivity",
        "gradient",
        "gradient_x_input",
        "integrated_gradients",
        "integrated_gradients_full",
        "loss_target",
        "memory_paths",
    ),
    "interventions": (
        "AblationScan",
        "Intervention",
        "InterventionEffect",
        "ablate",
        "ablation_scan",
        "intervene",
        "intervention_effect",
        "mean_values",
        "sample_with_intervention",
    ),
    "patching": ("PatchingResult", "activation_patching"),
    "search": ("correlations", "rank_units"),
    "whatif": ("WhatIf", "what_if"),
}
_HOME = {name: module for module, names in _LAZY.items() for name in names}

#: submodules whose package attribute is the function of the same name
#: (``lstmviz.analysis.compare`` is :func:`compare`, whichever import comes first)
_SAME_NAME = frozenset(m for m, names in _LAZY.items() if m in names)

__all__ = ["outputs", "probes", *_HOME]


class _Package(ModuleType):
    """The package's module type: when the import system binds a submodule to the package
    (``import lstmviz.analysis.compare`` sets ``lstmviz.analysis.compare``), a function of
    the submodule's name keeps the attribute."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            name in _SAME_NAME
            and isinstance(value, ModuleType)
            and value.__name__ == f"{__name__}.{name}"
            and hasattr(value, name)
        ):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> object:
    """A public name (or submodule) of the package, imported on first use.

    Importing one analysis module (the viewer's ``lstmviz.analysis.levels`` at start-up) runs
    this package first; importing every analysis here would load the corpus machinery,
    gradients, attribution, ... into a window that has not asked for them yet.
    """
    home = _HOME.get(name) or (name if name in _LAZY else None)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module: ModuleType = import_module(f"{__name__}.{home}")
    value = getattr(module, name) if name in _HOME else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
