"""Dataset-wide view: trace a whole corpus to disk, then search it like LSTMVis.

Storage
-------
:func:`trace_corpus` writes one directory::

    corpus.json                          manifest (format_version, layers, units, sizes, ...)
    offsets.npy                          (n_sequences + 1,) int64: sequence k is positions
                                         offsets[k]:offsets[k + 1] of the token stream
    inputs.npy                           (N,) int32 token ids, or (N, F) float32 features
    <layer>/<quantity>.npy               (units, N) float16 (or float32), unit-major

``N`` is the total number of token-steps. Every array is a plain ``.npy`` file, opened with
``np.load(..., mmap_mode="r")``: nothing is loaded until it is read.

Why unit-major ``(units, N)``: the pattern query of LSTMVis reads a few units over the whole
corpus; with one contiguous row per unit it reads ``len(unit_set) · N`` values instead of all
``units · N``. Showing a window of positions reads ``units`` short contiguous pieces.

Why float16 by default: 10 million token-steps × 256 units is 5.1 GB per quantity in float16
and 10.2 GB in float32. Hidden states, gates and (bounded) candidates lie in [-1, 1], where
float16 keeps about 3.3 significant digits (spacing ≤ 2**-11 ≈ 0.0005) -- finer than any
colour map or threshold slider needs; cell states are clipped to float16's range (±65504).
Pass ``dtype="float32"`` for exact values.

Writing streams: each batch of sequences is traced, converted, and written with positioned
writes (``os.pwrite``), so memory stays bounded by one batch (``chunk_steps`` token-steps)
however large the corpus; nothing is memory-mapped for writing, so the page cache is not
charged to the process.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.model import Model
from ..engine.trace import QUANTITIES
from ..errors import InputError, LstmvizError

FORMAT_VERSION = 1
MANIFEST = "corpus.json"
_F16_MAX = 65504.0
# layers that act on each timestep independently: a long sequence may be split between
# batches (carrying the LSTM states over) only when every non-LSTM layer is one of these
_PER_STEP = {
    "InputLayer",
    "Embedding",
    "Dense",
    "TimeDistributed",
    "Activation",
    "Dropout",
    "SpatialDropout1D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "Masking",
    "LayerNormalization",
    "BatchNormalization",
    "LSTM",
}

Progress = Callable[[int, int], Any]
ShouldStop = Callable[[], bool]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


# ------------------------------------------------------------------------------ the store
@dataclass
class CorpusStore:
    """A traced corpus on disk (see the module docstring for the layout).

    Attributes
    ----------
    path : Path
        The directory.
    layers : list of str
        LSTM trace names stored (``"lstm"``, ``"bidi/forward"``...).
    quantities : list of str
        Quantities stored per layer.
    units : dict
        ``{layer: units}``.
    n_steps : int
        Token-steps written (all of them when ``complete``).
    offsets : ndarray, (n_sequences + 1,)
        Sequence boundaries in the token stream.
    complete : bool
        False when tracing was stopped early: only sequences whose ``done`` flag is set hold
        values.
    """

    path: Path
    layers: list[str]
    quantities: list[str]
    units: dict[str, int]
    n_steps: int
    offsets: np.ndarray
    dtype: str
    complete: bool = True
    done: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_sequences(self) -> int:
        return int(len(self.offsets) - 1)

    def _file(self, layer: str, quantity: str) -> Path:
        if layer not in self.layers:
            raise LstmvizError(
                f"{self.path}: no layer {layer!r} in the corpus; layers: {', '.join(self.layers)}"
            )
        if quantity not in self.quantities:
            raise LstmvizError(
                f"{self.path}: quantity {quantity!r} was not stored; stored: "
                f"{', '.join(self.quantities)}"
            )
        return self.path / _safe(layer) / f"{quantity}.npy"

    def array(self, layer: str | None = None, quantity: str = "hidden") -> np.ndarray:
        """The memory-mapped ``(units, N)`` array of one layer's quantity (read-only)."""
        return np.load(self._file(layer or self.layers[0], quantity), mmap_mode="r")

    def window(
        self, start: int, stop: int, layer: str | None = None, quantity: str = "hidden"
    ) -> np.ndarray:
        """Positions ``start:stop`` of the token stream as ``(stop - start, units)`` float32."""
        start, stop = max(0, int(start)), min(self.n_steps, int(stop))
        a = self.array(layer, quantity)
        return np.asarray(a[:, start:stop], dtype=np.float32).T.copy()

    def inputs(self) -> np.ndarray:
        """The memory-mapped inputs: ``(N,)`` ids or ``(N, F)`` features."""
        return np.load(self.path / "inputs.npy", mmap_mode="r")

    def sequence_of(self, position: int) -> tuple[int, int]:
        """``(sequence index, t within it)`` of a position in the token stream."""
        if not 0 <= position < self.n_steps:
            raise IndexError(f"position {position} outside 0..{self.n_steps - 1}")
        k = int(np.searchsorted(self.offsets, position, side="right")) - 1
        return k, int(position - self.offsets[k])

    def position(self, sequence: int, t: int = 0) -> int:
        """Position in the token stream of step ``t`` of ``sequence``."""
        return int(self.offsets[sequence] + t)

    def read_rows(
        self, layer: str | None, quantity: str, units: Sequence[int], start: int, stop: int
    ) -> np.ndarray:
        """``(len(units), stop - start)`` float32, read with plain file reads (no mapping,
        so scanning the whole corpus does not grow the process's memory)."""
        path = self._file(layer or self.layers[0], quantity)
        arr = np.load(path, mmap_mode="r")
        itemsize = arr.dtype.itemsize
        base, n = arr.offset, arr.shape[1]
        dtype = arr.dtype
        del arr
        out = np.empty((len(units), stop - start), np.float32)
        with open(path, "rb") as fh:
            for k, u in enumerate(units):
                fh.seek(base + (int(u) * n + start) * itemsize)
                out[k] = np.fromfile(fh, dtype=dtype, count=stop - start)
        return out


def open_corpus(path: str | os.PathLike[str]) -> CorpusStore:
    """Open a directory written by :func:`trace_corpus`."""
    p = Path(path)
    man = p / MANIFEST
    if not man.is_file():
        raise LstmvizError(f"{p}: not a traced corpus (no {MANIFEST})")
    try:
        d = json.loads(man.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LstmvizError(f"{man}: not valid JSON ({e})") from None
    if d.get("format_version") != FORMAT_VERSION:
        raise LstmvizError(
            f"{man}: unknown format_version {d.get('format_version')!r} (this "
            f"lstmviz reads {FORMAT_VERSION})"
        )
    offsets = np.load(p / "offsets.npy", allow_pickle=False)
    done_path = p / "done.npy"
    done = np.load(done_path, allow_pickle=False) if done_path.is_file() else None
    return CorpusStore(
        path=p,
        layers=list(d["layers"]),
        quantities=list(d["quantities"]),
        units={k: int(v) for k, v in d["units"].items()},
        n_steps=int(d["n_steps"]),
        offsets=offsets,
        dtype=str(d["dtype"]),
        complete=bool(d.get("complete", True)),
        done=done,
        meta=dict(d.get("meta", {})),
    )


# ------------------------------------------------------------------------------ tracing
def _as_sequences(model: Model, sequences: Any) -> list[np.ndarray]:
    if isinstance(sequences, np.ndarray):
        if model.takes_tokens and sequences.ndim == 2:
            return list(sequences)
        if not model.takes_tokens and sequences.ndim == 3:
            return list(sequences)
        if sequences.ndim == (1 if model.takes_tokens else 2):
            return [sequences]
        raise InputError(
            f"sequences has shape {sequences.shape}; expected "
            + ("(n, T) token ids" if model.takes_tokens else "(n, T, features)")
        )
    seqs = [np.asarray(s) for s in sequences]
    if not seqs:
        raise InputError("the corpus is empty: no sequences")
    want = 1 if model.takes_tokens else 2
    for k, s in enumerate(seqs):
        if s.ndim != want or s.shape[0] == 0:
            raise InputError(
                f"sequence {k} has shape {s.shape}; expected "
                + ("(T,) token ids" if model.takes_tokens else "(T, features)")
                + " with T >= 1"
            )
    return seqs


def _splittable(model: Model) -> bool:
    for lay in model.layers.values():
        if lay.kind not in _PER_STEP:
            return False
        if lay.kind == "LSTM" and getattr(lay, "go_backwards", False):
            return False
    return True


def trace_corpus(
    model: Model,
    sequences: Any,
    out_dir: str | os.PathLike[str],
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    *,
    quantities: Sequence[str] = ("hidden", "cell"),
    layers: Sequence[str] | None = None,
    dtype: str = "float16",
    chunk_steps: int = 32768,
) -> CorpusStore:
    """Trace every sequence of a corpus and store the chosen quantities on disk.

    Parameters
    ----------
    model : Model
        A loaded lstmviz model.
    sequences : array or list of arrays
        ``(n, T)`` token ids / ``(n, T, F)`` features, or a list of sequences of any lengths
        (each ``(T,)`` or ``(T, F)``).
    out_dir : path
        Directory to write (created; existing store files in it are replaced).
    progress : callable, optional
        ``progress(done_steps, total_steps)``, called after every batch.
    should_stop : callable, optional
        Polled between batches; when it returns True the store is closed as incomplete.
    quantities : sequence of str
        Quantities to keep (default hidden and cell; any of
        :data:`lstmviz.engine.QUANTITIES`).
    layers : sequence of str, optional
        LSTM trace names to keep (default: all).
    dtype : {"float16", "float32"}
        Storage type; float16 halves disk and I/O (see the module docstring).
    chunk_steps : int
        Token-steps traced per batch: memory stays proportional to this.

    Returns
    -------
    CorpusStore
        Opened on the written directory.
    """
    if len(model.inputs) != 1:
        raise LstmvizError(
            f"{model.source or model.name}: corpus tracing needs a single-input "
            f"model; this one has {len(model.inputs)} inputs"
        )
    if dtype not in ("float16", "float32"):
        raise LstmvizError(f"dtype must be 'float16' or 'float32'; got {dtype!r}")
    for q in quantities:
        if q not in QUANTITIES:
            raise LstmvizError(f"unknown quantity {q!r}; expected one of {', '.join(QUANTITIES)}")
    names = list(model.lstm_trace_names)
    if layers is not None:
        for name in layers:
            if name not in names:
                raise LstmvizError(f"no LSTM layer {name!r}; LSTM layers: {', '.join(names)}")
        names = list(layers)
    seqs = _as_sequences(model, sequences)
    lengths = np.array([len(s) for s in seqs], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    total = int(offsets[-1])
    splittable = _splittable(model)
    if lengths.max() > chunk_steps and not splittable:
        raise LstmvizError(
            f"sequence of {int(lengths.max())} steps is longer than chunk_steps={chunk_steps}, "
            "and this model cannot be traced in pieces (it has layers that look across "
            "timesteps or run backwards); raise chunk_steps or split the corpus"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    units = {n: model.lstm(n).units for n in names}
    np_dtype = np.dtype(dtype)

    # inputs
    first = seqs[0]
    in_dtype = np.int32 if model.takes_tokens else np.float32
    in_shape = (total,) if model.takes_tokens else (total, first.shape[1])
    inputs = np.lib.format.open_memmap(
        out / "inputs.npy", mode="w+", dtype=in_dtype, shape=in_shape
    )
    del inputs
    np.save(out / "offsets.npy", offsets)
    # one (units, N) file per layer and quantity, created sparse; remember the data offsets
    files: dict[tuple[str, str], tuple[int, int]] = {}
    fds: list[int] = []
    try:
        for n in names:
            (out / _safe(n)).mkdir(exist_ok=True)
            for q in quantities:
                p = out / _safe(n) / f"{q}.npy"
                mm = np.lib.format.open_memmap(
                    p, mode="w+", dtype=np_dtype, shape=(units[n], total)
                )
                base = int(mm.offset)
                del mm
                fd = os.open(p, os.O_WRONLY)
                fds.append(fd)
                files[(n, q)] = (fd, base)
        in_path = out / "inputs.npy"
        in_mm = np.load(in_path, mmap_mode="r")
        in_base = int(in_mm.offset)
        del in_mm
        in_fd = os.open(in_path, os.O_WRONLY)
        fds.append(in_fd)

        done = np.zeros(len(seqs), bool)
        manifest = {
            "format_version": FORMAT_VERSION,
            "layers": names,
            "quantities": list(quantities),
            "units": units,
            "n_steps": total,
            "dtype": dtype,
            "complete": False,
            "meta": {
                "model": model.name,
                "source": str(model.source),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        }
        _write_manifest(out, manifest)

        done_steps = 0
        if progress is not None:
            progress(0, total)
        stopped = False
        for batch_idx, pieces in _batches(lengths, chunk_steps):
            if should_stop is not None and should_stop():
                stopped = True
                break
            x = np.stack([seqs[k] for k in batch_idx])  # (B, T[, F])
            _trace_batch(
                model,
                x,
                batch_idx,
                offsets,
                pieces,
                names,
                quantities,
                files,
                np_dtype,
                in_fd,
                in_base,
                chunk_steps,
                splittable,
            )
            done[batch_idx] = True
            done_steps += int(lengths[batch_idx].sum())
            if progress is not None:
                progress(done_steps, total)
    finally:
        for fd in fds:
            os.close(fd)
    np.save(out / "done.npy", done)
    manifest["complete"] = not stopped
    manifest["meta"]["done_steps"] = done_steps
    _write_manifest(out, manifest)
    return open_corpus(out)


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.replace(tmp, out / MANIFEST)


def _batches(lengths: np.ndarray, chunk_steps: int):
    """Batches of equal-length sequences with at most ``chunk_steps`` token-steps, in
    stream order within each length (so a batch is usually one contiguous stretch)."""
    order = np.argsort(lengths, kind="stable")
    k = 0
    while k < len(order):
        t = int(lengths[order[k]])
        per = max(1, chunk_steps // max(t, 1))
        j = k
        while j < len(order) and j - k < per and lengths[order[j]] == t:
            j += 1
        yield order[k:j], (t if t <= chunk_steps else chunk_steps)
        k = j


def _pwrite_rows(fd: int, base: int, n_total: int, rows: np.ndarray, start: int) -> None:
    """Write ``rows`` (units, L) into the (units, n_total) file at column ``start``."""
    item = rows.dtype.itemsize
    for u in range(rows.shape[0]):
        os.pwrite(fd, rows[u].tobytes(), base + (u * n_total + start) * item)


def _to_store(a: np.ndarray, np_dtype: np.dtype) -> np.ndarray:
    if np_dtype == np.float16:
        a = np.clip(a, -_F16_MAX, _F16_MAX)
    return a.astype(np_dtype)


def _trace_batch(
    model,
    x,
    batch_idx,
    offsets,
    piece,
    names,
    quantities,
    files,
    np_dtype,
    in_fd,
    in_base,
    chunk_steps,
    splittable,
) -> None:
    n_total = int(offsets[-1])
    steps = x.shape[1]
    # contiguous runs of sequences in the stream: one write per unit and run
    starts = offsets[batch_idx]
    runs = []
    r0 = 0
    for k in range(1, len(batch_idx) + 1):
        if k == len(batch_idx) or starts[k] != starts[k - 1] + steps:
            runs.append((r0, k))
            r0 = k
    state: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for s0 in range(0, steps, piece):
        s1 = min(steps, s0 + piece)
        xs = x[:, s0:s1]
        tr = model.trace(xs, initial_state=state or None, step_outputs=False)
        if splittable and s1 < steps:
            state = {lt.name: (np.array(lt.h[-1]), np.array(lt.c[-1])) for lt in tr.layers}
        for a, b in runs:
            col = int(starts[a]) + s0
            if s0 == 0 and s1 == steps:
                flat_in = xs[a:b].reshape((b - a) * steps, *xs.shape[2:])
                os.pwrite(
                    in_fd,
                    np.ascontiguousarray(
                        flat_in, np.int32 if flat_in.ndim == 1 else np.float32
                    ).tobytes(),
                    in_base + col * (4 if flat_in.ndim == 1 else 4 * flat_in.shape[1]),
                )
            else:
                for k in range(a, b):
                    seg = xs[k]
                    c = int(starts[k]) + s0
                    os.pwrite(
                        in_fd,
                        np.ascontiguousarray(
                            seg, np.int32 if seg.ndim == 1 else np.float32
                        ).tobytes(),
                        in_base + c * (4 if seg.ndim == 1 else 4 * seg.shape[1]),
                    )
        for n in names:
            lt = tr.layer(n)
            for q in quantities:
                fd, base = files[(n, q)]
                arr = lt.get(q)  # (B, L, U) view of the time-major buffer
                for a, b in runs:
                    if s0 == 0 and s1 == steps:
                        block = arr[a:b].reshape((b - a) * (s1 - s0), -1)  # (n·L, U)
                        rows = np.ascontiguousarray(_to_store(block.T, np_dtype))  # (U, n·L)
                        _pwrite_rows(fd, base, n_total, rows, int(starts[a]))
                    else:
                        for k in range(a, b):
                            rows = np.ascontiguousarray(_to_store(arr[k].T, np_dtype))
                            _pwrite_rows(fd, base, n_total, rows, int(starts[k]) + s0)


# ------------------------------------------------------------------------------ search
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
    on_fraction: float  # fraction of all positions where every selected unit is on


def select_units(
    store: CorpusStore,
    t0: int,
    t1: int,
    threshold: float,
    layer: str | None = None,
    quantity: str = "hidden",
) -> list[int]:
    """LSTMVis's selection: the units at or above ``threshold`` at every position of
    ``t0:t1`` (positions in the token stream)."""
    if not 0 <= t0 < t1 <= store.n_steps:
        raise LstmvizError(f"range {t0}:{t1} is outside the corpus (0..{store.n_steps})")
    w = store.window(t0, t1, layer, quantity)  # (L, U)
    return [int(u) for u in np.flatnonzero((w >= threshold).all(axis=0))]


def find_pattern(
    store: CorpusStore,
    unit_set: Sequence[int] | None,
    t0: int,
    t1: int,
    threshold: float,
    *,
    layer: str | None = None,
    quantity: str = "hidden",
    max_matches: int = 100,
    chunk: int = 1 << 20,
    progress: Progress | None = None,
) -> PatternResult:
    """Find every range of the corpus where a set of units is on, LSTMVis-style.

    A position is *on* when every unit of ``unit_set`` is ``>= threshold`` there; a match is
    a maximal run of on positions within one sequence. Matches are ranked by how close their
    length is to the query range ``t0:t1`` (LSTMVis's criterion), then by the units' mean
    value. The query range itself is left out.

    Parameters
    ----------
    store : CorpusStore
    unit_set : sequence of int or None
        The units; None or empty: :func:`select_units` over ``t0:t1``.
    t0, t1 : int
        The selected range, positions in the token stream (``store.position(seq, t)``).
    threshold : float
    layer, quantity : str
        Where to look (default: the first stored layer, hidden state).
    max_matches : int
        How many ranked matches to return (all are counted in ``n_matches``).
    chunk : int
        Positions read per pass: the scan covers the whole corpus in bounded memory.
    progress : callable, optional
        ``progress(done_positions, total)``.

    Returns
    -------
    PatternResult
    """
    layer = layer or store.layers[0]
    if not 0 <= t0 < t1 <= store.n_steps:
        raise LstmvizError(f"range {t0}:{t1} is outside the corpus (0..{store.n_steps})")
    units = list(unit_set) if unit_set else select_units(store, t0, t1, threshold, layer, quantity)
    n_units = store.units[layer]
    bad = [u for u in units if not 0 <= int(u) < n_units]
    if bad:
        raise LstmvizError(f"unit(s) {bad} outside layer {layer!r} (0..{n_units - 1})")
    total = store.n_steps
    if not units:
        return PatternResult((), float(threshold), (t0, t1), [], 0, 0.0)
    on = np.empty(total, bool)
    csum = np.empty(total + 1, np.float64)  # prefix sums of the units' mean value
    csum[0] = 0.0
    acc = 0.0
    for s in range(0, total, chunk):
        e = min(total, s + chunk)
        rows = store.read_rows(layer, quantity, units, s, e)  # (k, L)
        on[s:e] = (rows >= threshold).all(axis=0)
        m = rows.mean(axis=0, dtype=np.float64)
        np.cumsum(m, out=csum[s + 1 : e + 1])
        csum[s + 1 : e + 1] += acc
        acc = csum[e]
        if progress is not None:
            progress(e, total)
    if store.done is not None and not store.complete:  # untraced sequences hold zeros
        lens = np.diff(store.offsets)
        on &= np.repeat(store.done, lens)
    # maximal runs, cut at sequence boundaries
    seq_start = np.zeros(total, bool)
    seq_start[store.offsets[:-1][store.offsets[:-1] < total]] = True
    prev_on = np.concatenate([[False], on[:-1]])
    run_start = on & (~prev_on | seq_start)
    next_on = np.concatenate([on[1:], [False]])
    next_start = np.concatenate([seq_start[1:], [True]])
    run_end = on & (~next_on | next_start)
    starts = np.flatnonzero(run_start)
    stops = np.flatnonzero(run_end) + 1
    keep = (stops <= t0) | (starts >= t1)  # not the query itself
    starts, stops = starts[keep], stops[keep]
    qlen = t1 - t0
    means = (csum[stops] - csum[starts]) / (stops - starts)
    order = np.lexsort((-means, np.abs((stops - starts) - qlen)))[:max_matches]
    seq_idx = np.searchsorted(store.offsets, starts[order], side="right") - 1
    matches = [
        Match(
            int(starts[k]),
            int(stops[k]),
            int(sq),
            int(starts[k] - store.offsets[sq]),
            float(means[k]),
        )
        for k, sq in zip(order, seq_idx, strict=True)
    ]
    return PatternResult(
        tuple(int(u) for u in units),
        float(threshold),
        (t0, t1),
        matches,
        len(starts),
        float(on.mean()),
    )
