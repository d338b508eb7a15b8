"""The on/off index: one bit per unit and position, ``value >= threshold``, unit-major.

A pattern query reads bits, not floats: 650 units of one position take 81 bytes instead of
1300 (float16). The index of a (layer, quantity, threshold) is built once by Dask tasks, one
per :data:`~._common.INDEX_BLOCK` positions, and kept in the store beside the states
(``index/<layer>/<quantity>/ge_<threshold>``) when the store is a local folder; for a
read-only store (a URL, an older folder) it is kept in memory for this process.

Beside the bits, ``counts[block, unit]`` holds how many positions of each index block a unit
is on: a query skips a block where one of its units is never on, and reads the rarest units
first, stopping as soon as no position of the block is left.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ... import budget
from ...errors import LstmvizError
from ._common import CHUNK_UNITS, INDEX_BLOCK, MANIFEST_ATTR, Progress, ShouldStop, is_url
from .scheduler import TaskSpec, resolve, run_tasks
from .store import CorpusBase, CorpusStore, open_group

#: Positions compared per read while building (bounded memory: 64 units × 64K positions).
BUILD_PIECE = 1 << 16


def threshold_key(threshold: float) -> str:
    """``0.3`` -> ``"ge_0.3"``: the shortest text of the float32 threshold."""
    t = np.float32(threshold)
    if not np.isfinite(t):
        raise LstmvizError(f"threshold: expected a finite number; found {threshold!r}")
    return "ge_" + np.format_float_positional(t, unique=True, trim="-")


def as_threshold(threshold: Any) -> np.float32:
    try:
        t = np.float32(float(threshold))
    except (TypeError, ValueError):
        raise LstmvizError(f"threshold: expected a number; found {threshold!r}") from None
    if not np.isfinite(t):
        raise LstmvizError(f"threshold: expected a finite number; found {threshold!r}")
    return t


@dataclass
class OnIndex:
    """The bit-packed on/off index of one layer's quantity at one threshold.

    Attributes
    ----------
    bits : zarr.Array
        ``(units, ceil(N / 8))`` uint8; bit 7 of byte j is position ``8 j`` (``np.packbits``
        order). Untraced positions are off.
    counts : ndarray
        ``(index blocks, units)`` int64: positions on per block of ``block`` positions.
    block : int
        Positions per index block (and chunk): :data:`INDEX_BLOCK`, less for a small
        corpus.
    threshold : float
        The float32 threshold: a unit is on where its stored value ``>= threshold``.
    """

    bits: Any
    counts: np.ndarray
    threshold: float
    layer: str
    quantity: str
    n_steps: int
    block: int
    saved: bool
    location: str = ""
    path: str = ""
    storage_options: str = "{}"
    _folder: str | None = field(default=None, repr=False, compare=False)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        if not self.saved:
            raise LstmvizError(
                "the on/off index of a read-only corpus lives in this process's memory; search "
                "it with the local scheduler, or copy the corpus to a folder you can write"
            )
        args = (self.location, self.storage_options, self.path, self.counts, self.threshold)
        return (_reopen_index, (*args, self.layer, self.quantity, self.n_steps, self.block))

    @property
    def units(self) -> int:
        return int(self.bits.shape[0])

    def on_fraction(self, n_traced: int | None = None) -> np.ndarray:
        """``(units,)``: share of traced positions where each unit is on."""
        n = self.n_steps if n_traced is None else n_traced
        return self.counts.sum(axis=0) / max(n, 1)

    def read(self, u0: int, u1: int, p0: int, p1: int) -> np.ndarray:
        """Packed bits of units ``u0:u1`` for positions ``p0:p1`` (``p0`` a multiple of 8):
        ``(u1 - u0, ceil((p1 - p0) / 8))`` uint8."""
        c0, c1 = p0 // 8, -(-p1 // 8)
        folder = self._direct_folder()
        if folder is None:
            return np.asarray(self.bits[u0:u1, c0:c1])
        return _read_chunks(folder, tuple(self.bits.chunks), u0, u1, c0, c1)

    def _direct_folder(self) -> str | None:
        """The local folder of the bits array when its chunk files are raw bytes (no codec but
        ``bytes``, the default chunk keys): read straight from the files, skipping Zarr's
        event-loop round trips, which dominate a scan of uncompressed bits. None otherwise."""
        if not self.saved or is_url(self.location):
            return None
        if self._folder is None:
            meta = self.bits.metadata.to_dict()
            keys = meta.get("chunk_key_encoding", {})
            plain = (
                [c.get("name") for c in meta.get("codecs", [])] == ["bytes"]
                and keys.get("name") == "default"
                and keys.get("configuration", {}).get("separator", "/") == "/"
                and np.dtype(self.bits.dtype) == np.uint8
            )
            self._folder = os.path.join(self.location, self.path, "bits") if plain else ""
        return self._folder or None

    def on(self, u: int, p0: int, p1: int) -> np.ndarray:
        """``(p1 - p0,)`` bool: where unit ``u`` is on (tests, small ranges)."""
        a = p0 - p0 % 8
        packed = self.read(u, u + 1, a, p1)[0]
        return np.unpackbits(packed, count=p1 - a).astype(bool)[p0 - a :]


def _read_chunks(
    folder: str, chunks: tuple[int, ...], u0: int, u1: int, c0: int, c1: int
) -> np.ndarray:
    """Rows ``u0:u1``, byte columns ``c0:c1`` of a raw uint8 Zarr v3 array from its chunk
    files (``c/<row>/<col>``, each a full ``chunks``-shaped C-order block; a missing file is
    all zeros, Zarr's fill value)."""
    cu, cb = int(chunks[0]), int(chunks[1])
    out = np.empty((u1 - u0, c1 - c0), np.uint8)
    for i in range(u0 // cu, (u1 - 1) // cu + 1):
        r0, r1 = max(u0, i * cu) - i * cu, min(u1, (i + 1) * cu) - i * cu
        for j in range(c0 // cb, (c1 - 1) // cb + 1):
            k0, k1 = max(c0, j * cb) - j * cb, min(c1, (j + 1) * cb) - j * cb
            dst = out[i * cu + r0 - u0 : i * cu + r1 - u0, j * cb + k0 - c0 : j * cb + k1 - c0]
            path = os.path.join(folder, "c", str(i), str(j))
            want = (r1 - r0) * cb
            if not os.path.exists(path):  # never written: Zarr's fill value
                dst[:] = 0
                continue
            with open(path, "rb") as f:
                f.seek(r0 * cb)
                if dst.flags.c_contiguous and k1 - k0 == cb:  # whole rows: straight into out
                    got = f.readinto(dst.reshape(-1).data)
                    data = None
                else:
                    data = np.fromfile(f, np.uint8, count=want)
                    got = data.size
            if got != want:
                raise LstmvizError(
                    f"{path}: an index chunk of {r0 * cb + got} bytes where {r1 * cb} or more "
                    "were expected; the index is damaged (delete the index folder to rebuild it)"
                )
            if data is not None:
                dst[:] = data.reshape(r1 - r0, cb)[:, k0:k1]
    return out


def _reopen_index(
    location: str,
    options_json: str,
    path: str,
    counts: np.ndarray,
    threshold: float,
    layer: str,
    quantity: str,
    n_steps: int,
    block: int,
) -> OnIndex:
    bits = open_group(location, "r", json.loads(options_json) or None)[path]["bits"]
    return OnIndex(
        bits,
        counts,
        threshold,
        layer,
        quantity,
        n_steps,
        block,
        True,
        location,
        path,
        options_json,
    )


def _build_block(
    store: CorpusBase,
    bits: Any,
    layer: str,
    quantity: str,
    threshold: float,
    p0: int,
    p1: int,
    prev: Any,
) -> np.ndarray:
    """Bits of every unit for positions ``p0:p1`` (one index chunk column); returns the
    ``(units,)`` on-counts."""
    del prev
    thr = np.float32(threshold)
    units = store.units[layer]
    counts = np.zeros(units, np.int64)
    mask_all = store.traced_mask(p0, p1)
    for g0 in range(0, units, CHUNK_UNITS):
        g1 = min(units, g0 + CHUNK_UNITS)
        out = np.zeros((g1 - g0, -(-(p1 - p0) // 8)), np.uint8)
        for s0 in range(p0, p1, BUILD_PIECE):
            s1 = min(p1, s0 + BUILD_PIECE)
            on = store.read(layer, quantity, g0, g1, s0, s1) >= thr  # (g, L)
            if mask_all is not None:
                on &= mask_all[s0 - p0 : s1 - p0]
            counts[g0:g1] += on.sum(axis=1)
            packed = np.packbits(on, axis=1)
            c0 = (s0 - p0) // 8
            out[:, c0 : c0 + packed.shape[1]] = packed
        bits[g0:g1, p0 // 8 : p0 // 8 + out.shape[1]] = out
    return counts


def _index_path(store: CorpusStore, layer: str, quantity: str, key: str) -> str:
    return f"index/{store._keys[layer]}/{quantity}/{key}"


def _stamp(store: CorpusBase) -> dict[str, Any]:
    """What an index must match to be reused: the corpus it was built from."""
    return {
        "created": str(store.meta.get("created", "")),
        "n_steps": int(store.n_steps),
        "done": int(np.count_nonzero(store.done)),
    }


_MEMORY: dict[tuple[str, str, str, str, str], OnIndex] = {}


def get_index(
    store: CorpusBase,
    layer: str | None,
    quantity: str,
    threshold: float,
    *,
    scheduler: Any = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    save: bool | None = None,
) -> OnIndex | None:
    """The on/off index of ``layer``'s ``quantity`` at ``threshold``: read if built before,
    else built now (Dask tasks, one per index block).

    ``save``: keep it in the store (default: when the store is a local folder this process
    may write); otherwise it lives in memory for this process. Returns None when
    ``should_stop`` stopped the build.
    """
    import zarr

    layer = store.layer(layer)
    store.check_quantity(quantity)
    thr = as_threshold(threshold)
    key = threshold_key(float(thr))
    units, n = store.units[layer], store.n_steps
    block = index_block(n)
    stamp = _stamp(store)
    persist = bool(store.writable) if save is None else bool(save)
    if persist and not isinstance(store, CorpusStore):
        raise LstmvizError(
            f"{store.location}: an older corpus folder cannot hold an index; convert it with "
            f"`lstmviz corpus convert {store.location} --out NEW.zarr`"
        )
    mem_key = (store.location, layer, quantity, key, json.dumps(stamp, sort_keys=True))
    if not persist and mem_key in _MEMORY:
        return _MEMORY[mem_key]
    options = json.dumps(getattr(store, "storage_options", {}), sort_keys=True)

    def made(bits: Any, counts: np.ndarray, saved: bool, path: str = "") -> OnIndex:
        return OnIndex(
            bits,
            counts,
            float(thr),
            layer,
            quantity,
            n,
            block,
            saved,
            store.location,
            path,
            options,
        )

    path = ""
    group = None
    if persist:
        assert isinstance(store, CorpusStore)
        path = _index_path(store, layer, quantity, key)
        group = open_group(store.location, "r+", store.storage_options)
        if path in group:
            g = group[path]
            attrs = dict(g.attrs)
            if attrs.get("complete") and attrs.get("corpus") == stamp:
                return made(g["bits"], np.asarray(g["counts"][:], np.int64), True, path)
    else:
        budget.check_array(
            (units, -(-n // 8)),
            1,
            f"{store.location}: the on/off index of {layer} {quantity} in memory",
            hint="copy the corpus to a local folder, where the index is kept on disk",
        )
    n_blocks = -(-n // block)
    shape = (units, -(-n // 8))
    chunks = (min(units, CHUNK_UNITS), block // 8)
    if group is not None:
        g = group.require_group(path)
        g.attrs.update({"complete": False})
        bits = g.create_array(
            "bits",
            shape=shape,
            dtype="uint8",
            chunks=chunks,
            compressors=None,
            fill_value=0,
            overwrite=True,
        )
    else:
        g = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
        bits = g.create_array(
            "bits", shape=shape, dtype="uint8", chunks=chunks, compressors=None, fill_value=0
        )
    counts = np.zeros((n_blocks, units), np.int64)
    with resolve(scheduler) as sched:
        if sched.distributed and group is None:
            raise LstmvizError(
                f"{store.location}: the index of a read-only corpus is built in this process; "
                "leave the scheduler out, or copy the corpus to a folder you can write"
            )
        bits_ref: Any = _BitsRef(store.location, options, path) if sched.distributed else bits
        specs = [
            TaskSpec(
                _build_block,
                (store, bits_ref, layer, quantity, float(thr), b * block, min(n, (b + 1) * block)),
                key="index",
            )
            for b in range(n_blocks)
        ]
        done = [0]

        def on_done(i: int, result: Any) -> None:
            counts[i] = result
            done[0] += min(n, (i + 1) * block) - i * block
            if progress is not None:
                progress(done[0], n)

        if progress is not None:
            progress(0, n)
        if not run_tasks(sched, specs, on_done, should_stop):
            return None
    if group is not None:
        g.create_array("counts", data=counts, chunks=counts.shape, overwrite=True)
        g.attrs.update(
            {
                "complete": True,
                "corpus": stamp,
                "threshold": float(thr),
                "block": block,
                "layer": layer,
                "quantity": quantity,
            }
        )
        return made(bits, counts, True, path)
    idx = made(bits, counts, False)
    _MEMORY.clear()  # one in-memory index at a time: they can be large
    _MEMORY[mem_key] = idx
    return idx


def index_block(n_steps: int) -> int:
    """Positions per index block: :data:`INDEX_BLOCK`, or the smallest power of two (at least
    64) that holds a smaller corpus (so a small corpus gets a small index)."""
    p = 64
    while p < n_steps and p < INDEX_BLOCK:
        p *= 2
    return p


@dataclass(frozen=True)
class _BitsRef:
    """The bits array of an index, reopened where a cluster task runs."""

    location: str
    options_json: str
    path: str

    def _array(self) -> Any:
        return _open_bits(self.location, self.options_json, self.path)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._array()[key] = value


def _open_bits(location: str, options_json: str, path: str) -> Any:
    return open_group(location, "r+", json.loads(options_json) or None)[path]["bits"]


def has_manifest(group: Any) -> bool:
    return MANIFEST_ATTR in dict(group.attrs)
