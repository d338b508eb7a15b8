"""Per-unit statistics over a whole corpus, as Dask array reductions over the store's chunks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import LstmvizError
from ._common import Progress, ShouldStop
from .index import as_threshold
from .scheduler import resolve
from .store import CorpusBase, CorpusStore

#: Positions per Dask chunk of a statistics pass.
STATS_STEPS = 1 << 16


@dataclass(frozen=True)
class UnitStats:
    """Statistics of every unit of one layer's quantity over the traced positions.

    Attributes
    ----------
    mean, std, min, max : ndarray, (units,)
        Over the traced positions (stored values: float16 rounding included).
    on_fraction : ndarray or None, (units,)
        Share of traced positions where the unit is ``>= threshold`` (when one was given).
    n_positions : int
        Traced positions counted.
    """

    layer: str
    quantity: str
    n_positions: int
    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    threshold: float | None = None
    on_fraction: np.ndarray | None = None


class _Stopped(Exception):
    """Raised in a Dask callback to end a local computation the user stopped."""


def _traced_ranges(store: CorpusBase) -> list[tuple[int, int]]:
    mask = store.traced_mask(0, store.n_steps)
    if mask is None:
        return [(0, store.n_steps)]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def unit_stats(
    store: CorpusBase,
    layer: str | None = None,
    quantity: str = "hidden",
    *,
    threshold: float | None = None,
    scheduler: Any = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> UnitStats:
    """Mean, standard deviation, min, max (and the share of positions ``>= threshold``) of
    every unit over the corpus, computed by Dask over chunks of 65,536 positions.

    Parameters
    ----------
    store : CorpusStore
    layer, quantity : str
        Default: the first stored layer, hidden state.
    threshold : float, optional
        Also count where each unit is on.
    scheduler : None, str or dask.distributed.Client
        As in :func:`trace_corpus` (an older folder corpus is read here only).
    progress, should_stop : callable, optional
        ``progress(done_chunks, total_chunks)`` (locally); stopping raises
        :class:`LstmvizError`.

    Returns
    -------
    UnitStats
    """
    import dask
    import dask.array as da
    from dask.callbacks import Callback

    layer = store.layer(layer)
    store.check_quantity(quantity)
    thr = as_threshold(threshold) if threshold is not None else None
    units = store.units[layer]
    ranges = _traced_ranges(store)
    n_pos = sum(b - a for a, b in ranges)
    if n_pos == 0:
        raise LstmvizError(f"{store.location}: no position was traced; nothing to count")
    if isinstance(store, CorpusStore):
        arr = store.array(layer, quantity)
        x = da.from_zarr(arr, chunks=(units, STATS_STEPS))
    else:
        x = da.from_array(store.array(layer, quantity), chunks=(units, STATS_STEPS))
    if ranges != [(0, store.n_steps)]:
        x = da.concatenate([x[:, a:b] for a, b in ranges], axis=1)
    x = x.astype(np.float32)
    parts = [
        x.mean(axis=1, dtype=np.float64),
        x.std(axis=1, dtype=np.float64),
        x.min(axis=1),
        x.max(axis=1),
    ]
    if thr is not None:
        parts.append((x >= thr).sum(axis=1, dtype=np.int64))
    with resolve(scheduler) as sched:
        if sched.distributed and not isinstance(store, CorpusStore):
            raise LstmvizError(
                f"{store.location}: an older corpus folder is read in this process only; "
                "leave the scheduler out, or convert it (`lstmviz corpus convert`)"
            )
        if sched.distributed:
            if progress is not None:
                progress(0, 1)
            out = dask.compute(*parts, scheduler=sched.client)
            if progress is not None:
                progress(1, 1)
        else:
            total = [0]
            done = [0]

            def start(dsk: Any) -> None:
                total[0] = len(dsk)

            def pretask(_key: Any, _dsk: Any, _state: Any) -> None:
                if should_stop is not None and should_stop():
                    raise _Stopped

            def posttask(*_args: Any) -> None:
                done[0] += 1
                if progress is not None:
                    progress(done[0], max(total[0], done[0]))

            try:
                with Callback(start=start, pretask=pretask, posttask=posttask):
                    out = dask.compute(
                        *parts,
                        scheduler="sync" if sched.kind == "sync" else "threads",
                        num_workers=sched.workers,
                    )
            except _Stopped:
                raise LstmvizError("the statistics pass was stopped") from None
    mean, std, mn, mx = (np.asarray(a, np.float64) for a in out[:4])
    on = np.asarray(out[4], np.float64) / n_pos if thr is not None else None
    return UnitStats(
        layer, quantity, n_pos, mean, std, mn, mx, None if thr is None else float(thr), on
    )
