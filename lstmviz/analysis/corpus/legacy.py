"""Corpora traced by older lstmviz versions: a folder of memory-mapped ``.npy`` files.

The folder (format version 1)::

    corpus.json                  manifest (format_version 1, layers, units, quantities, ...)
    offsets.npy                  (n_sequences + 1,) int64 sequence boundaries
    done.npy                     (n_sequences,) bool, present when tracing was stopped
    inputs.npy                   (N,) int32 token ids, or (N, F) float32 features
    <layer>/<quantity>.npy       (units, N) float16 or float32, unit-major

:class:`LegacyCorpusStore` reads it with the same interface as the Zarr store (search and
statistics work on it); :func:`convert_corpus` rewrites it as a Zarr store
(``lstmviz corpus convert OLD_DIR --out NEW.zarr``).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from ... import budget
from ...errors import LstmvizError
from ._common import (
    CHUNK_STEPS,
    FORMAT_VERSION,
    MANIFEST_ATTR,
    Progress,
    ShouldStop,
    layer_key,
    normalize_location,
)
from .store import CorpusBase, CorpusStore

LEGACY_VERSION = 1
MANIFEST = "corpus.json"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class LegacyCorpusStore(CorpusBase):
    """A memory-mapped corpus folder of format version 1 (read only)."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        super().__init__()
        self.location = str(path)
        self.folder = path
        d = manifest
        self.layers = [str(x) for x in d["layers"]]
        self.quantities = [str(x) for x in d["quantities"]]
        self.units = {str(k): int(v) for k, v in d["units"].items()}
        self.n_steps = int(d["n_steps"])
        self.dtype = str(d["dtype"])
        self.meta = dict(d.get("meta", {}))
        self.tokenizer = None
        self.writable = False
        self._offsets = np.load(path / "offsets.npy", allow_pickle=False).astype(np.int64)
        if self._offsets.ndim != 1 or int(self._offsets[-1]) != self.n_steps:
            raise LstmvizError(
                f"{path / 'offsets.npy'}: does not end at n_steps={self.n_steps}; the folder "
                "is damaged"
            )
        done_path = path / "done.npy"
        complete = bool(d.get("complete", True))
        if done_path.is_file():
            self._done = np.load(done_path, allow_pickle=False).astype(bool)
        else:
            self._done = np.full(self.n_sequences, complete, bool)
        self.complete = complete and bool(self._done.all())
        self._position_done: np.ndarray | None = None

    @property
    def offsets(self) -> np.ndarray:
        return self._offsets

    @property
    def done(self) -> np.ndarray:
        return self._done

    def _file(self, layer: str, quantity: str) -> Path:
        return self.folder / _safe(layer) / f"{quantity}.npy"

    def array(self, layer: str | None = None, quantity: str = "hidden") -> np.ndarray:
        """The memory-mapped ``(units, N)`` array of one layer's quantity (read-only)."""
        layer = self.layer(layer)
        self.check_quantity(quantity)
        return np.load(self._file(layer, quantity), mmap_mode="r", allow_pickle=False)

    def read(
        self, layer: str | None, quantity: str, u0: int, u1: int, start: int, stop: int
    ) -> np.ndarray:
        budget.check_array(
            (max(u1 - u0, 0), max(stop - start, 0)),
            4,
            f"{self.location}: {layer} {quantity} units {u0}:{u1}, positions {start}:{stop}",
        )
        a = self.array(layer, quantity)
        return np.array(a[u0:u1, start:stop], np.float32)

    def inputs(self) -> np.ndarray:
        return np.load(self.folder / "inputs.npy", mmap_mode="r", allow_pickle=False)

    def traced_mask(self, start: int, stop: int) -> np.ndarray | None:
        if self.done.all():
            return None
        if self._position_done is None:
            self._position_done = np.repeat(self.done, np.diff(self.offsets))
        return self._position_done[start:stop]


def open_legacy(path: Path) -> LegacyCorpusStore:
    man = path / MANIFEST
    try:
        d = json.loads(man.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LstmvizError(f"{man}: not valid JSON ({e})") from None
    if not isinstance(d, dict) or d.get("format_version") != LEGACY_VERSION:
        found = d.get("format_version") if isinstance(d, dict) else d
        raise LstmvizError(
            f"{man}: unknown format_version {found!r} (this lstmviz reads {LEGACY_VERSION} "
            "and Zarr stores)"
        )
    for key in ("layers", "quantities", "units", "n_steps", "dtype"):
        if key not in d:
            raise LstmvizError(f"{man}: lacks {key!r}")
    return LegacyCorpusStore(path, d)


def convert_corpus(
    source: str | Path,
    out: str,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    *,
    storage_options: dict[str, Any] | None = None,
    block_steps: int = 1 << 16,
) -> CorpusStore:
    """Rewrite a memory-mapped corpus folder (older lstmviz) as a Zarr store.

    Values are copied unchanged (same dtype), so a search on the converted store gives the
    same matches. Of a corpus whose tracing was stopped, a block of positions holding any
    untraced sequence is marked untraced.

    Parameters
    ----------
    source : path
        The folder with ``corpus.json``.
    out : str
        The Zarr store to write (a local path or an fsspec URL; must not hold anything else).
    progress, should_stop : callable, optional
        ``progress(done_positions, total)``; ``should_stop()`` polled between blocks (the
        store is left marked incomplete).
    storage_options : dict, optional
        fsspec options for ``out``.
    block_steps : int
        Positions copied per step (a multiple of 4096).

    Returns
    -------
    CorpusStore
    """
    from .store import open_corpus
    from .tracing import create_store

    old = open_corpus(source)
    if not isinstance(old, LegacyCorpusStore):
        raise LstmvizError(
            f"{source}: already a Zarr corpus; nothing to convert (copy it to move it)"
        )
    if block_steps <= 0 or block_steps % CHUNK_STEPS:
        raise LstmvizError(
            f"block_steps must be a positive multiple of {CHUNK_STEPS}; found {block_steps}"
        )
    location = normalize_location(out)
    ins = old.inputs()
    manifest = {
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {**old.meta, "converted_from": old.location},
        "tokenizer": None,
        "layers": [{"name": n, "key": layer_key(n), "units": old.units[n]} for n in old.layers],
        "quantities": list(old.quantities),
        "dtype": old.dtype,
        "n_steps": old.n_steps,
        "n_sequences": old.n_sequences,
        "block_steps": block_steps,
        "inputs": {
            "kind": "ids" if ins.ndim == 1 else "features",
            "features": None if ins.ndim == 1 else int(ins.shape[1]),
        },
        "complete": False,
        "scheduler": "convert",
    }
    group = create_store(location, manifest, old.offsets, storage_options)
    n = old.n_steps
    n_blocks = -(-n // block_steps)
    done = np.zeros(n_blocks, bool)
    if progress is not None:
        progress(0, n)
    stopped = False
    for b in range(n_blocks):
        if should_stop is not None and should_stop():
            stopped = True
            break
        p0, p1 = b * block_steps, min(n, (b + 1) * block_steps)
        group["inputs"][p0:p1] = np.asarray(ins[p0:p1])
        for name in old.layers:
            for q in old.quantities:
                src = old.array(name, q)
                group[f"states/{layer_key(name)}/{q}"][:, p0:p1] = np.asarray(src[:, p0:p1])
        mask = old.traced_mask(p0, p1)
        done[b] = mask is None or bool(mask.all())
        if progress is not None:
            progress(p1, n)
    group["done"][:] = done
    manifest["complete"] = not stopped and bool(done.all())
    group.attrs[MANIFEST_ATTR] = manifest
    return CorpusStore(group, location, storage_options)
