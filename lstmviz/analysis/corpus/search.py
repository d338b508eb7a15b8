"""LSTMVis-style pattern search over a traced corpus, as a Dask reduction over blocks.

The user brushes a range of positions and picks a threshold; the pattern is a set of units
that are *on* (``value >= threshold``) there. A *match* is a maximal run of positions, within
one sequence, where every unit of the set is on. Matches are ranked by how close their length
is to the brushed range's, then by the units' mean value over the match (stronger first),
then by position; the brushed range itself is left out.

Each Dask task searches one block of positions on the bit-packed index (:mod:`.index`): it
ANDs the units' bit rows (rarest units first, stopping when the block has no position left;
a block where a unit is never on is skipped unread), cuts runs at sequence starts, and reads
float values only for the runs that can still make the ranking. Runs that cross a block edge
are joined as the blocks' summaries are combined in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import LstmvizError
from ._common import CHUNK_UNITS, INDEX_BLOCK, Progress, ShouldStop
from .index import OnIndex, as_threshold, get_index
from .scheduler import TaskSpec, resolve, run_tasks
from .store import CorpusBase


@dataclass(frozen=True)
class Match:
    """One range of the corpus where the selected units are on.

    ``start``/``stop`` are positions in the token stream; ``sequence``/``t`` locate the start
    within its sequence; ``mean`` is the selected units' mean value over the range.
    """

    start: int
    stop: int
    sequence: int
    t: int
    mean: float

    @property
    def length(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class PatternResult:
    """The answer of :func:`find_pattern`: ranked matches and how many there were."""

    units: tuple[int, ...]
    threshold: float
    query: tuple[int, int]
    matches: list[Match]
    n_matches: int
    on_fraction: float  # share of all positions where every selected unit is on


def select_units(
    store: CorpusBase,
    t0: int,
    t1: int,
    threshold: float,
    layer: str | None = None,
    quantity: str = "hidden",
) -> list[int]:
    """LSTMVis's selection: the units at or above ``threshold`` at every position of
    ``t0:t1`` (positions in the token stream)."""
    if not 0 <= int(t0) < int(t1) <= store.n_steps:
        raise LstmvizError(
            f"range {t0}:{t1} is outside the corpus (positions 0..{store.n_steps}); brush a "
            "range inside it"
        )
    thr = as_threshold(threshold)
    w = store.window(t0, t1, layer, quantity)  # (L, U)
    return [int(u) for u in np.flatnonzero((w >= thr).all(axis=0))]


# ------------------------------------------------------------------------------ summaries
@dataclass
class Run:
    """A run of on positions; ``open_left``/``open_right``: it may continue into the block
    before/after (the edge is not a sequence boundary)."""

    start: int
    stop: int
    total: float  # sum over the run of the units' mean value
    open_left: bool = False
    open_right: bool = False


@dataclass
class Summary:
    """What a block (or a stretch of neighbouring blocks) contributes to the answer."""

    p0: int
    p1: int
    n_on: int = 0
    n_runs: int = 0  # closed runs outside the query
    cand: list[Run] = field(default_factory=list)  # the best closed runs, ranked
    left: Run | None = None  # the run open to the left, if any
    right: Run | None = None  # the run open to the right (may be ``left``)


@dataclass(frozen=True)
class Query:
    units: tuple[int, ...]
    threshold: float
    t0: int
    t1: int
    max_matches: int
    layer: str
    quantity: str
    by_mean: bool = True

    @property
    def qlen(self) -> int:
        return self.t1 - self.t0

    def outside(self, r: Run) -> bool:
        return r.stop <= self.t0 or r.start >= self.t1

    def key(self, r: Run) -> tuple[int, float, int]:
        n = r.stop - r.start
        return (abs(n - self.qlen), -(r.total / n) if self.by_mean else 0.0, r.start)


def _add_closed(s: Summary, q: Query, runs: list[Run]) -> None:
    for r in runs:
        if q.outside(r):
            s.n_runs += 1
            s.cand.append(r)
    s.cand.sort(key=q.key)
    del s.cand[q.max_matches :]


def combine(a: Summary, b: Summary, q: Query) -> Summary:
    """The summary of ``a`` followed by ``b`` (``a.p1 == b.p0``): runs open across the seam
    are joined; a run open towards a neighbour that does not continue it is closed."""
    out = Summary(a.p0, b.p1, a.n_on + b.n_on, a.n_runs + b.n_runs, a.cand + b.cand)
    left, right = a.left, b.right
    closed: list[Run] = []
    ar, bl = a.right, b.left
    if ar is not None and bl is not None:
        j = Run(ar.start, bl.stop, ar.total + bl.total, ar.open_left, bl.open_right)
        if ar is a.left:
            left = j
        if bl is b.right:
            right = j
        if not (j.open_left or j.open_right):
            closed.append(j)
    else:
        if ar is not None:
            r = Run(ar.start, ar.stop, ar.total, ar.open_left, False)
            if ar is a.left:
                left = r
            if not r.open_left:
                closed.append(r)
        if bl is not None:
            r = Run(bl.start, bl.stop, bl.total, False, bl.open_right)
            if bl is b.right:
                right = r
            if not r.open_right:
                closed.append(r)
    out.left = left if left is not None and left.open_left else None
    out.right = right if right is not None and right.open_right else None
    out.cand.sort(key=q.key)
    del out.cand[q.max_matches :]
    _add_closed(out, q, closed)
    return out


# ------------------------------------------------------------------------------ one block
def _means(store: CorpusBase, q: Query, runs: list[Run], p0: int, p1: int) -> None:
    """Fill ``run.total`` from the stored values (read over spans of nearby runs)."""
    if not runs:
        return
    k = len(q.units)
    piece = max(64, (1 << 23) // max(k, 1))  # at most 32 MiB of float32 per read
    runs = sorted(runs, key=lambda r: r.start)
    spans: list[list[Run]] = [[runs[0]]]
    for r in runs[1:]:
        if r.start - spans[-1][-1].stop < 4096:
            spans[-1].append(r)
        else:
            spans.append([r])
    for span in spans:
        a, b = max(p0, span[0].start), min(p1, max(r.stop for r in span))
        m = np.empty(b - a, np.float64)
        for s0 in range(a, b, piece):
            s1 = min(b, s0 + piece)
            rows = store.read_rows(q.layer, q.quantity, q.units, s0, s1)
            m[s0 - a : s1 - a] = rows.mean(axis=0, dtype=np.float64)
        cs = np.concatenate([[0.0], np.cumsum(m)])
        for r in span:
            r.total = float(cs[min(r.stop, p1) - a] - cs[max(r.start, p0) - a])


def search_block(
    store: CorpusBase,
    index: OnIndex,
    q: Query,
    p0: int,
    p1: int,
    seq_starts: np.ndarray,
    counts: np.ndarray,
    prev: Any,
) -> Summary:
    """Search positions ``p0:p1`` (``p0`` a multiple of 64). ``seq_starts``: the sequence
    boundaries in ``p0..p1``, both ends included when they are one (the corpus end is);
    ``counts``: the units' on-counts in the index block holding ``p0``, in ``q.units``
    order."""
    del prev
    s = Summary(p0, p1)
    if (counts == 0).any():  # a unit never on here: nothing can match, nothing read
        return s
    count_of = dict(zip(q.units, counts.tolist(), strict=True))
    groups: dict[int, list[int]] = {}
    for u in q.units:
        groups.setdefault(u // CHUNK_UNITS, []).append(u)
    # rarest first: the AND empties soonest, and the remaining rows are never read
    order = sorted(groups, key=lambda g: min(count_of[u] for u in groups[g]))
    acc: np.ndarray | None = None
    for g in order:
        g0, g1 = min(groups[g]), max(groups[g]) + 1
        rows = index.read(g0, g1, p0, p1)  # (g1 - g0, bytes)
        # every row read is in the pattern (a run of units): no copy of the selection
        sel = rows if len(groups[g]) == g1 - g0 else rows[[u - g0 for u in groups[g]]]
        r = np.bitwise_and.reduce(sel, axis=0)
        acc = r if acc is None else np.bitwise_and(acc, r, out=acc)
        if not acc.any():
            return s
    assert acc is not None
    on = np.unpackbits(acc, count=p1 - p0).astype(bool)
    s.n_on = int(np.count_nonzero(on))
    bounds = np.asarray(seq_starts, np.int64)
    starts_here = np.zeros(p1 - p0, bool)
    starts_here[bounds[bounds < p1] - p0] = True
    prev_on = np.concatenate([[False], on[:-1]])
    run_start = on & (~prev_on | starts_here)
    next_on = np.concatenate([on[1:], [False]])
    next_start = np.concatenate([starts_here[1:], [True]])
    run_end = on & (~next_on | next_start)
    starts = np.flatnonzero(run_start) + p0
    stops = np.flatnonzero(run_end) + 1 + p0
    if len(starts) == 0:
        return s
    left_open = bool(on[0]) and not starts_here[0]
    right_open = bool(on[-1]) and not bool((bounds == p1).any())
    runs = [Run(int(a), int(b), 0.0) for a, b in zip(starts, stops, strict=True)]
    if left_open:
        runs[0].open_left = True
    if right_open:
        runs[-1].open_right = True
    edges = [r for r in runs if r.open_left or r.open_right]
    closed = [r for r in runs if not (r.open_left or r.open_right) and q.outside(r)]
    s.n_runs = len(closed)
    if closed:
        diffs = np.abs(np.array([r.stop - r.start for r in closed]) - q.qlen)
        if len(closed) > q.max_matches:
            cut = np.partition(diffs, q.max_matches - 1)[q.max_matches - 1]
            closed = [r for r, d in zip(closed, diffs, strict=True) if d <= cut]
    if q.by_mean:
        _means(store, q, closed + edges, p0, p1)
    closed.sort(key=q.key)
    s.cand = closed[: q.max_matches]
    if left_open:
        s.left = runs[0]
    if right_open:
        s.right = runs[-1]
    return s


# ------------------------------------------------------------------------------ the query
def _block_size(chunk: int | None) -> int:
    if chunk is None:
        return INDEX_BLOCK
    c = max(64, int(chunk))
    p = 64
    while p < c:
        p *= 2
    return min(p, INDEX_BLOCK)


def find_pattern(
    store: CorpusBase,
    unit_set: Sequence[int] | None,
    t0: int,
    t1: int,
    threshold: float,
    *,
    layer: str | None = None,
    quantity: str = "hidden",
    max_matches: int = 100,
    chunk: int | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    scheduler: Any = None,
    save_index: bool | None = None,
    rank: str = "mean",
) -> PatternResult:
    """Find every range of the corpus where a set of units is on, LSTMVis-style.

    A position is *on* when every unit of ``unit_set`` is ``>= threshold`` there (stored
    values, compared in float32; untraced positions are off); a match is a maximal run of on
    positions within one sequence. Matches are ranked by how close their length is to the
    query range ``t0:t1``, then by the units' mean value over the match (higher first), then
    by position. The query range itself is left out.

    Parameters
    ----------
    store : CorpusStore
        From :func:`open_corpus` or :func:`trace_corpus`.
    unit_set : sequence of int or None
        The units; None or empty: :func:`select_units` over ``t0:t1``.
    t0, t1 : int
        The brushed range, positions in the token stream (``store.position(seq, t)``).
    threshold : float
    layer, quantity : str
        Where to look (default: the first stored layer, hidden state).
    max_matches : int
        How many ranked matches to return (all are counted in ``n_matches``).
    chunk : int, optional
        Positions per search task (rounded up to a power of two from 64 to 2**20;
        default 2**20).
    progress : callable, optional
        ``progress(done_positions, total)``: first while the on/off index is built (once
        per layer, quantity and threshold), then while searching.
    should_stop : callable, optional
        Polled between tasks; stopping raises :class:`LstmvizError` ("stopped").
    scheduler : None, str or dask.distributed.Client
        As in :func:`trace_corpus`.
    save_index : bool, optional
        Keep the on/off index in the store (default: when it is a local folder).
    rank : {"mean", "position"}
        How matches of the same length difference are ordered: by the units' mean (reads
        the stored values of the selected units around every tied match -- for a common
        pattern that is most of the corpus) or by position (the search reads the index
        alone; the means are computed for the listed matches only).

    Returns
    -------
    PatternResult
    """
    layer = store.layer(layer)
    store.check_quantity(quantity)
    thr = as_threshold(threshold)
    t0, t1 = int(t0), int(t1)
    if not 0 <= t0 < t1 <= store.n_steps:
        raise LstmvizError(
            f"range {t0}:{t1} is outside the corpus (positions 0..{store.n_steps}); brush a "
            "range inside it"
        )
    if int(max_matches) < 1:
        raise LstmvizError(f"max_matches: expected at least 1; found {max_matches}")
    if rank not in ("mean", "position"):
        raise LstmvizError(f"rank: expected 'mean' or 'position'; found {rank!r}")
    units = (
        [int(u) for u in unit_set]
        if unit_set is not None and len(unit_set) > 0
        else select_units(store, t0, t1, float(thr), layer, quantity)
    )
    n_units = store.units[layer]
    bad = [u for u in units if not 0 <= u < n_units]
    if bad:
        raise LstmvizError(f"units: {bad} outside layer {layer!r} (units 0..{n_units - 1})")
    units = list(dict.fromkeys(units))
    if not units:
        return PatternResult((), float(thr), (t0, t1), [], 0, 0.0)
    index = get_index(
        store,
        layer,
        quantity,
        float(thr),
        scheduler=scheduler,
        progress=progress,
        should_stop=should_stop,
        save=save_index,
    )
    if index is None:
        raise LstmvizError("the search was stopped")
    q = Query(tuple(units), float(thr), t0, t1, int(max_matches), layer, quantity, rank == "mean")
    n = store.n_steps
    bs = min(_block_size(chunk), index.block)
    offsets = store.offsets
    ucols = np.asarray(units, np.int64)
    specs = []
    for b in range(-(-n // bs)):
        p0, p1 = b * bs, min(n, (b + 1) * bs)
        i0 = int(np.searchsorted(offsets, p0, side="left"))
        i1 = int(np.searchsorted(offsets, p1, side="right"))
        bounds = offsets[i0:i1]
        counts = index.counts[p0 // index.block, ucols]
        specs.append(TaskSpec(search_block, (store, index, q, p0, p1, bounds, counts), key="find"))
    results: dict[int, Summary] = {}
    merged: list[Summary | None] = [None]
    nxt = [0]
    done = [0]

    def on_done(i: int, summary: Summary) -> None:
        results[i] = summary
        while nxt[0] in results:  # combine in order, as results arrive
            s = results.pop(nxt[0])
            merged[0] = s if merged[0] is None else combine(merged[0], s, q)
            nxt[0] += 1
        done[0] += summary.p1 - summary.p0
        if progress is not None:
            progress(done[0], n)

    if progress is not None:
        progress(0, n)
    with resolve(scheduler) as sched:
        if not run_tasks(sched, specs, on_done, should_stop):
            raise LstmvizError("the search was stopped")
    total = merged[0]
    assert total is not None and total.p1 == n and total.left is None and total.right is None
    if not q.by_mean:  # the means of the listed matches only
        _means(store, q, total.cand, 0, n)
    seq_idx = np.searchsorted(offsets, [r.start for r in total.cand], side="right") - 1
    matches = [
        Match(r.start, r.stop, int(k), int(r.start - offsets[k]), r.total / (r.stop - r.start))
        for r, k in zip(total.cand, seq_idx, strict=True)
    ]
    return PatternResult(
        tuple(units), float(thr), (t0, t1), matches, total.n_runs, total.n_on / max(n, 1)
    )
