"""Dataset-wide view: trace a corpus into a Zarr store with Dask, then search it like LSTMVis.

==================  ==========================================================================
trace_corpus        trace every sequence (Dask tasks: local threads, or a dask.distributed
                    cluster) into a chunked, compressed Zarr store with a manifest
open_corpus         open a store from a local path or any fsspec URL (or an older folder)
find_pattern        the LSTMVis match: where else a set of units is on, over the bit-packed,
                    unit-major on/off index, as a Dask reduction over blocks
select_units        the units on over a brushed range
unit_stats          per-unit mean, std, min, max, share on: Dask array reductions
convert_corpus      rewrite an older memory-mapped corpus folder as a Zarr store
get_index           the on/off index of a layer's quantity at a threshold (built once)
==================  ==========================================================================

Command line: ``lstmviz corpus trace|find|stats|info|convert`` (``lstmviz corpus --help``).
"""

from .index import OnIndex, get_index
from .legacy import LegacyCorpusStore, convert_corpus
from .search import Match, PatternResult, find_pattern, select_units
from .stats import UnitStats, unit_stats
from .store import CorpusBase, CorpusStore, open_corpus
from .tracing import trace_corpus

__all__ = [
    "CorpusBase",
    "CorpusStore",
    "LegacyCorpusStore",
    "Match",
    "OnIndex",
    "PatternResult",
    "UnitStats",
    "convert_corpus",
    "find_pattern",
    "get_index",
    "open_corpus",
    "select_units",
    "trace_corpus",
    "unit_stats",
]
