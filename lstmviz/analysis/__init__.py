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

__all__ = [
    "Comparison",
    "CorpusStore",
    "Diagnosis",
    "Match",
    "PatternResult",
    "UnitStats",
    "WhatIf",
    "align_units",
    "compare",
    "convert_corpus",
    "correlations",
    "dead_units",
    "decompose",
    "diagnose",
    "find_pattern",
    "gate_histograms",
    "mean_lifetime",
    "memory_lifetime",
    "open_corpus",
    "outputs",
    "probes",
    "rank_units",
    "retention",
    "saturation",
    "saturation_split",
    "select_units",
    "trace_corpus",
    "unit_stats",
    "what_if",
]

# gradients, interventions, attribution and dynamics
__all__ += [
    "AblationScan",
    "Attribution",
    "Connectivity",
    "FixedPoint",
    "IntegratedGradients",
    "Intervention",
    "InterventionEffect",
    "LRPResult",
    "LogitAttribution",
    "MemoryPaths",
    "PatchingResult",
    "StatePCA",
    "ablate",
    "ablation_scan",
    "activation_patching",
    "attribute",
    "connectivity",
    "fixed_points",
    "gradient",
    "gradient_x_input",
    "integrated_gradients",
    "integrated_gradients_full",
    "intervene",
    "intervention_effect",
    "logit_attribution",
    "loss_target",
    "lrp",
    "mean_values",
    "memory_paths",
    "occlusion",
    "sample_with_intervention",
    "state_pca",
]
