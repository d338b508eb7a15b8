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
=====================  ===================================================================
"""

from . import probes
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
