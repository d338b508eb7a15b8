"""Trace a corpus into a Zarr store with Dask tasks (threads here, or a cluster).

The token stream (every sequence one after the other, ``N`` positions) is cut into blocks of
``block_steps`` positions; one task traces block ``b`` and writes positions
``b*B:(b+1)*B`` of every stored array -- whole chunks, so tasks never write the same chunk
and can run anywhere that reaches the store. A sequence that starts in an earlier block is
traced again from its start when that costs at most one block (the outputs at step t of a
forward LSTM depend only on steps <= t); a longer one continues from the LSTM states the
previous task hands on, so only such tasks wait for each other. The same blocks are traced
the same way whatever the scheduler, so a corpus traced on a cluster equals one traced here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import budget
from ...engine.model import Model
from ...errors import InputError, LstmvizError
from ._common import (
    CHUNK_STEPS,
    CHUNK_UNITS,
    F16_MAX,
    FORMAT_VERSION,
    INDEX_BLOCK,
    MANIFEST_ATTR,
    TASK_BYTES,
    Progress,
    ShouldStop,
    bytes_per_step,
    check_quantities,
    default_block_steps,
    file_sha256,
    is_url,
    layer_key,
    normalize_location,
    weights_sha256,
)
from .scheduler import TaskSpec, resolve, run_tasks
from .store import CorpusStore, open_group

# layers that act on each timestep on its own: a long sequence may be traced in pieces
# (carrying the LSTM states over) only when every layer of the model is one of these
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


def splittable(model: Model) -> bool:
    """True when a sequence may be traced in pieces: forward LSTMs and per-step layers only."""
    for lay in model.layers.values():
        if lay.kind not in _PER_STEP:
            return False
        if lay.kind == "LSTM" and getattr(lay, "go_backwards", False):
            return False
    return True


def as_sequences(model: Model, sequences: Any) -> list[Any]:
    """The corpus as a list of sequences (views, nothing copied), shapes checked."""
    want = 1 if model.takes_tokens else 2
    what = "(T,) token ids" if model.takes_tokens else "(T, features)"
    if isinstance(sequences, np.ndarray):
        if sequences.ndim == want + 1:
            seqs = [sequences[k] for k in range(sequences.shape[0])]
        elif sequences.ndim == want:
            seqs = [sequences]
        else:
            raise InputError(
                "sequences: expected an array of shape "
                + ("(n, T) token ids" if model.takes_tokens else "(n, T, features)")
                + f"; found shape {sequences.shape}"
            )
    else:
        try:
            seqs = [s if isinstance(s, np.ndarray) else np.asarray(s) for s in sequences]
        except TypeError:
            raise InputError(
                f"sequences: expected an array or a list of arrays; found "
                f"{type(sequences).__name__}"
            ) from None
    if not seqs:
        raise InputError("sequences: the corpus is empty (no sequences)")
    feats = model.input_features
    for k, s in enumerate(seqs):
        if s.ndim != want or s.shape[0] == 0:
            raise InputError(
                f"sequences: sequence {k} has shape {s.shape}; expected {what} with T >= 1"
            )
        if model.takes_tokens and not np.issubdtype(s.dtype, np.integer):
            raise InputError(
                f"sequences: sequence {k} holds {s.dtype} values; token ids must be integers"
            )
        if not model.takes_tokens and feats is not None and s.shape[1] != feats:
            raise InputError(
                f"sequences: sequence {k} has {s.shape[1]} features per step; the model "
                f"takes {feats}"
            )
    if model.takes_tokens:
        emb = model.embedding
        vocab = int(emb.input_dim) if emb is not None else None
        for k, s in enumerate(seqs):
            lo, hi = int(s.min()), int(s.max())
            if lo < 0 or (vocab is not None and hi >= vocab):
                raise InputError(
                    f"sequences: sequence {k} holds token id {lo if lo < 0 else hi}; the "
                    f"model's vocabulary has ids 0..{vocab - 1 if vocab else '?'}"
                )
    return seqs


# ------------------------------------------------------------------------------ plan
@dataclass(frozen=True)
class Piece:
    """Sequence ``seq`` (starting at stream position ``start``): steps ``t0:t1`` traced,
    steps ``w0:w1`` written; ``carry``: starts from the states the previous task handed on."""

    seq: int
    start: int
    t0: int
    t1: int
    w0: int
    w1: int
    carry: bool


def plan_blocks(
    offsets: np.ndarray, block_steps: int, can_split: bool
) -> tuple[list[list[Piece]], list[bool]]:
    """The pieces each block traces, and for each block whether the next one continues
    from its final states."""
    n = int(offsets[-1])
    n_blocks = -(-n // block_steps)
    blocks: list[list[Piece]] = []
    hand_on = [False] * n_blocks
    for b in range(n_blocks):
        p0, p1 = b * block_steps, min(n, (b + 1) * block_steps)
        k0 = int(np.searchsorted(offsets, p0, side="right")) - 1
        k1 = int(np.searchsorted(offsets, p1, side="left"))
        pieces = []
        for k in range(k0, k1):
            s, e = int(offsets[k]), int(offsets[k + 1])
            w0, w1 = max(p0, s) - s, min(p1, e) - s
            if not can_split:
                pieces.append(Piece(k, s, 0, e - s, w0, w1, False))
            elif s < p0 and p0 - s > block_steps:
                pieces.append(Piece(k, s, w0, w1, w0, w1, True))
                hand_on[b - 1] = True
            else:
                pieces.append(Piece(k, s, 0, w1, w0, w1, False))
        blocks.append(pieces)
    return blocks, hand_on


# ------------------------------------------------------------------------------ the task
def batches(pieces: list[Piece], pad: bool) -> list[tuple[bool, list[int]]]:
    """Pieces traced together: ``(carry, indices)``. A carried piece runs alone (it starts
    from its own states). With ``pad``, the longest piece left opens a batch that takes every
    piece at least half as long (padding wastes at most half of it: an LSTM on a batch costs
    little more than on one sequence, the recurrent weights are read once per step);
    without, only pieces of equal length share a batch."""
    out: list[tuple[bool, list[int]]] = []
    free = []
    for i, pc in enumerate(pieces):
        if pc.carry:
            out.append((True, [i]))
        else:
            free.append(i)
    if not pad:
        by_len: dict[int, list[int]] = {}
        for i in free:
            by_len.setdefault(pieces[i].t1 - pieces[i].t0, []).append(i)
        return out + [(False, v) for v in by_len.values()]
    free.sort(key=lambda i: -(pieces[i].t1 - pieces[i].t0))
    while free:
        longest = pieces[free[0]].t1 - pieces[free[0]].t0
        take = [i for i in free if 2 * (pieces[i].t1 - pieces[i].t0) >= longest]
        out.append((False, take))
        free = free[len(take) :]
    return out


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    """Sequences stacked into one batch, zero-padded at the end to the longest."""
    n = max(len(a) for a in arrays)
    if all(len(a) == n for a in arrays):
        return np.stack(arrays)
    x = np.zeros((len(arrays), n, *arrays[0].shape[1:]), arrays[0].dtype)
    for k, a in enumerate(arrays):
        x[k, : len(a)] = a
    return x


def _to_store(a: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    if dtype == np.float16:
        a = np.clip(a, -F16_MAX, F16_MAX)
    return a.astype(dtype, copy=False)


def _target(target: Any) -> Any:
    if isinstance(target, tuple):  # (location, storage options as JSON): on a cluster worker
        import json

        return open_group(target[0], "r+", json.loads(target[1]) or None)
    return target


def trace_block(
    model: Model,
    target: Any,
    block: int,
    p0: int,
    p1: int,
    pieces: list[Piece],
    xs: list[Any],
    names: list[str],
    keys: list[str],
    quantities: list[str],
    dtype: str,
    hand_on: bool,
    pad: bool,
    prev: Any,
) -> dict[str, Any]:
    """Trace one block of the token stream and write it (see the module docstring).

    ``pad``: pieces of different lengths may share a batch, zero-padded at the end (only
    for models whose step t depends on steps <= t alone).

    ``xs[i]`` holds the inputs of ``pieces[i]`` (its steps ``t0:t1``); ``prev`` is the
    previous task's result, whose ``"carry"`` holds the LSTM states at the end of its block
    when ``pieces[0]`` continues a sequence. Returns ``{"block", "steps", "carry"}``.
    """
    group = _target(target)
    np_dtype = np.dtype(dtype)
    width = p1 - p0
    first = np.asarray(xs[0][:1])
    in_block = np.empty((width, *first.shape[1:]), np.int32 if first.ndim == 1 else np.float32)
    stage = {
        (n, q): np.empty((model.lstm(n).units, width), np_dtype) for n in names for q in quantities
    }
    carry_out = None
    for carry, members in batches(pieces, pad):
        state = None
        if carry:
            if not isinstance(prev, dict) or prev.get("carry") is None:
                raise LstmvizError(
                    f"corpus block {block}: continues a sequence but the previous block "
                    "handed on no LSTM states"
                )
            state = prev["carry"]
        x = _stack([np.asarray(xs[i]) for i in members])  # (B, L[, F]), zero-padded at the end
        tr = model.trace(x, initial_state=state, step_outputs=False)
        for j, i in enumerate(members):
            pc = pieces[i]
            a, b = pc.w0 - pc.t0, pc.w1 - pc.t0  # steps to write, within the traced piece
            d0 = pc.start + pc.w0 - p0  # where they go in the block
            d1 = d0 + (b - a)
            in_block[d0:d1] = x[j, a:b]
            for n in names:
                lt = tr.layer(n)
                for q in quantities:
                    stage[(n, q)][:, d0:d1] = _to_store(lt.get(q)[j, a:b].T, np_dtype)
            if hand_on and pc.start + pc.w1 == p1:
                carry_out = {
                    lt.name: (np.array(lt.h[-1][j : j + 1]), np.array(lt.c[-1][j : j + 1]))
                    for lt in tr.layers
                }
        del tr
    group["inputs"][p0:p1] = in_block
    for n, key in zip(names, keys, strict=True):
        for q in quantities:
            group[f"states/{key}/{q}"][:, p0:p1] = stage[(n, q)]
    return {"block": block, "steps": width, "carry": carry_out}


# ------------------------------------------------------------------------------ the store
def _compressor() -> Any:
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")


def _existing(location: str, storage_options: dict[str, Any] | None) -> str:
    """``"none"``, ``"corpus"`` (a store traced by lstmviz, safe to replace) or
    ``"other"``."""
    from pathlib import Path

    if not is_url(location):
        p = Path(location)
        if not p.exists():
            return "none"
        if p.is_dir() and not any(p.iterdir()):
            return "none"
        if (p / "corpus.json").is_file():
            return "legacy"
        if not (p / "zarr.json").is_file():
            return "other"
    try:
        group = open_group(location, "r", storage_options)
    except LstmvizError:
        return "none" if is_url(location) else "other"
    return "corpus" if MANIFEST_ATTR in dict(group.attrs) else "other"


def create_store(
    location: str,
    manifest: dict[str, Any],
    offsets: np.ndarray,
    storage_options: dict[str, Any] | None,
) -> Any:
    """Create the Zarr group and its (empty) arrays; replaces an earlier lstmviz corpus at
    ``location`` but refuses anything else there."""
    import zarr

    state = _existing(location, storage_options)
    if state == "legacy":
        raise LstmvizError(
            f"{location}: holds a corpus in the older folder format; convert it with "
            f"`lstmviz corpus convert {location} --out NEW.zarr` or choose another location"
        )
    if state == "other":
        raise LstmvizError(
            f"{location}: exists and is not a corpus traced by lstmviz; choose a new or empty "
            "location (nothing was written)"
        )
    if is_url(location):
        group = zarr.open_group(location, mode="w", storage_options=storage_options or None)
    else:
        from zarr.storage import LocalStore

        group = zarr.open_group(LocalStore(location), mode="w")
    n = int(manifest["n_steps"])
    block_steps = int(manifest["block_steps"])
    chunk = min(CHUNK_STEPS, block_steps)
    comp = _compressor()
    group.create_array(
        "offsets", data=np.asarray(offsets, np.int64), chunks=(min(len(offsets), 1 << 20),)
    )
    n_blocks = -(-n // block_steps)
    group.create_array("done", shape=(n_blocks,), dtype="bool", chunks=(max(n_blocks, 1),))
    ins = manifest["inputs"]
    if ins["kind"] == "ids":
        group.create_array(
            "inputs", shape=(n,), dtype="int32", chunks=(chunk,), compressors=comp, fill_value=0
        )
    else:
        f = int(ins["features"])
        group.create_array(
            "inputs",
            shape=(n, f),
            dtype="float32",
            chunks=(chunk, f),
            compressors=comp,
            fill_value=0.0,
        )
    for lay in manifest["layers"]:
        u = int(lay["units"])
        for q in manifest["quantities"]:
            group.create_array(
                f"states/{lay['key']}/{q}",
                shape=(u, n),
                dtype=manifest["dtype"],
                chunks=(min(u, CHUNK_UNITS), chunk),
                compressors=comp,
                fill_value=0.0,
                dimension_names=("unit", "position"),
            )
    group.attrs[MANIFEST_ATTR] = manifest
    return group


# ------------------------------------------------------------------------------ the entry point
def _check_block_steps(block_steps: int) -> int:
    b = int(block_steps)
    if b < 16 or b > INDEX_BLOCK or b & (b - 1):
        raise LstmvizError(
            f"block_steps must be a power of two from 16 to {INDEX_BLOCK}; found {block_steps}"
        )
    return b


def trace_corpus(
    model: Model,
    sequences: Any,
    out: Any,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    *,
    quantities: Sequence[str] = ("hidden", "cell"),
    layers: Sequence[str] | None = None,
    dtype: str = "float16",
    scheduler: Any = None,
    info: Any = None,
    block_steps: int | None = None,
    storage_options: dict[str, Any] | None = None,
    chunk_steps: int | None = None,
) -> CorpusStore:
    """Trace every sequence of a corpus and store the chosen quantities in a Zarr group.

    Parameters
    ----------
    model : Model
        A loaded lstmviz model with one input.
    sequences : array or list of arrays
        ``(n, T)`` token ids / ``(n, T, F)`` features, or a list of sequences of any lengths
        (each ``(T,)`` or ``(T, F)``). A memory-mapped array is read block by block.
    out : str or path
        Where to write the Zarr group: a local folder (``corpus.zarr``) or an fsspec URL
        (``s3://bucket/corpus.zarr``). An earlier lstmviz corpus there is replaced; anything
        else there is refused.
    progress : callable, optional
        ``progress(done_steps, total_steps)``, called as tracing tasks finish.
    should_stop : callable, optional
        Polled while tracing; when it returns True, tasks not yet started are dropped and the
        store is closed as incomplete (``store.complete`` False, ``store.done`` says which
        sequences hold values).
    quantities : sequence of str
        Quantities to keep (default hidden and cell; any of
        :data:`lstmviz.engine.QUANTITIES`).
    layers : sequence of str, optional
        LSTM trace names to keep (default: all).
    dtype : {"float16", "float32"}
        Storage type; float16 halves disk and I/O (see :mod:`lstmviz.analysis.corpus.store`).
    scheduler : None, str or dask.distributed.Client
        None: Dask's local threaded scheduler (one thread per core); ``"sync"``: one
        thread; an address (``"tcp://host:8786"``): the ``dask.distributed`` cluster there;
        a ``Client``: that cluster. Cluster workers need lstmviz installed and must reach
        ``out`` (a shared folder or an object-store URL).
    info : ModelInfo, optional
        The model's vocabulary, written to the manifest (``tokenizer``) so the corpus shows
        tokens without the model.
    block_steps : int, optional
        Positions per tracing task (a power of two; default: the largest up to 65536 whose
        trace fits in a quarter of this machine's memory budget shared by its cores, 256 MiB
        to 2 GiB per task, whatever the scheduler). Memory stays proportional to it; longer
        blocks trace in longer batches, which is faster.
    storage_options : dict, optional
        fsspec options for a URL ``out`` (credentials, endpoint...).
    chunk_steps : int, optional
        The older name of ``block_steps`` (rounded down to a power of two, at least 16).

    Returns
    -------
    CorpusStore
        Opened on the written store.
    """
    t_start = time.perf_counter()
    if len(model.inputs) != 1:
        raise LstmvizError(
            f"{model.source or model.name}: corpus tracing needs a single-input model; this "
            f"one has {len(model.inputs)} inputs"
        )
    if dtype not in ("float16", "float32"):
        raise LstmvizError(f"dtype: expected 'float16' or 'float32'; found {dtype!r}")
    qs = check_quantities(quantities)
    names = list(model.lstm_trace_names)
    if layers is not None:
        for name in layers:
            if name not in names:
                raise LstmvizError(
                    f"layers: no LSTM layer {name!r}; LSTM layers: {', '.join(names)}"
                )
        names = list(dict.fromkeys(layers))
    if chunk_steps is not None and block_steps is None:
        block_steps = max(16, 1 << (max(int(chunk_steps), 1).bit_length() - 1))
    seqs = as_sequences(model, sequences)
    lengths = np.array([len(s) for s in seqs], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n = int(offsets[-1])
    if block_steps is not None:
        _check_block_steps(block_steps)
    can_split = splittable(model)
    location = normalize_location(out)
    keys = [layer_key(nm) for nm in names]
    if len(set(keys)) != len(keys):
        raise LstmvizError(f"layers: {names} map to clashing array names {keys}")
    first = seqs[0]
    tok = None
    if info is not None and getattr(info, "vocab", None):
        tok = {"kind": str(info.token_kind), "vocab": [str(v) for v in info.vocab]}
    elif info is not None:
        tok = {"kind": str(info.token_kind), "vocab": []}
    from ..._version import __version__

    with resolve(scheduler) as sched:
        if block_steps is not None:
            bs = int(block_steps)
        else:
            # from this machine's budget and cores whatever the scheduler: the same blocks,
            # traced the same way, give the same store here and on a cluster
            lo, hi = TASK_BYTES
            share = budget.get_budget() // (4 * max(1, os.cpu_count() or 1))
            bs = default_block_steps(model, int(min(hi, max(lo, share))))
        if not can_split and int(lengths.max()) > bs:
            k = int(lengths.argmax())
            raise LstmvizError(
                f"sequences: sequence {k} has {int(lengths.max())} steps, more than "
                f"block_steps={bs}, and this model cannot be traced in pieces (it has layers "
                "that look across timesteps or run backwards); pass a larger block_steps or "
                "split the corpus"
            )
        task_bytes = bytes_per_step(model) * 2 * bs
        if not sched.distributed:
            budget.check(
                task_bytes * sched.workers,
                what=(
                    f"tracing the corpus: {sched.workers} tasks at once of {bs} positions "
                    f"({budget.format_bytes(task_bytes)} each)"
                ),
                hint="pass a smaller block_steps",
            )
        manifest: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "lstmviz_version": __version__,
            "model": {
                "name": model.name,
                "source": str(model.source or ""),
                "format": str(model.format or ""),
                "file_sha256": file_sha256(str(model.source or "")),
                "weights_sha256": weights_sha256(model),
            },
            "tokenizer": tok,
            "layers": [
                {"name": nm, "key": k, "units": int(model.lstm(nm).units)}
                for nm, k in zip(names, keys, strict=True)
            ],
            "quantities": qs,
            "dtype": dtype,
            "n_steps": n,
            "n_sequences": len(seqs),
            "block_steps": bs,
            "inputs": {
                "kind": "ids" if model.takes_tokens else "features",
                "features": None if model.takes_tokens else int(first.shape[1]),
            },
            "complete": False,
            "done_steps": 0,
            "scheduler": sched.label,
        }
        group = create_store(location, manifest, offsets, storage_options)
        blocks, hand_on = plan_blocks(offsets, bs, can_split)
        done = np.zeros(len(blocks), bool)
        if sched.distributed:
            import json

            target: Any = (location, json.dumps(storage_options or {}, sort_keys=True))
        else:
            target = group
        shared_model = sched.share(model)
        specs = []
        for b, pieces in enumerate(blocks):
            p0, p1 = b * bs, min(n, (b + 1) * bs)
            xs = [seqs[pc.seq][pc.t0 : pc.t1] for pc in pieces]
            specs.append(
                TaskSpec(
                    trace_block,
                    (
                        shared_model,
                        target,
                        b,
                        p0,
                        p1,
                        pieces,
                        xs,
                        names,
                        keys,
                        qs,
                        dtype,
                        hand_on[b],
                        can_split,
                    ),
                    after=b - 1 if pieces[0].carry else None,
                    key="trace",
                )
            )
        steps_done = [0]
        last_flush = [time.monotonic()]

        def on_done(i: int, result: Any) -> None:
            done[i] = True
            steps_done[0] += int(result["steps"])
            if progress is not None:
                progress(steps_done[0], n)
            now = time.monotonic()
            if now - last_flush[0] > 2.0:  # a crash leaves the finished blocks marked
                last_flush[0] = now
                group["done"][:] = done

        if progress is not None:
            progress(0, n)
        finished = run_tasks(sched, specs, on_done, should_stop)
        group["done"][:] = done
        manifest["complete"] = bool(finished and done.all())
        manifest["done_steps"] = steps_done[0]
        manifest["seconds"] = round(time.perf_counter() - t_start, 3)
        group.attrs[MANIFEST_ATTR] = manifest
    return CorpusStore(group, location, storage_options)
