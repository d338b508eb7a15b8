"""A traced corpus on disk or behind a URL: a Zarr group, read lazily.

Layout (Zarr format 3; ``N`` token-steps, ``n`` sequences)::

    STORE.zarr/
      zarr.json                  group attributes: {"lstmviz_corpus": manifest}
      offsets                    (n + 1,) int64: sequence k is positions offsets[k]:offsets[k+1]
      done                       (blocks,) bool: tracing task b (positions b*B:(b+1)*B) finished
      inputs                     (N,) int32 token ids, or (N, F) float32 features
      states/<layer>/<quantity>  (units, N) float16 (or float32), unit-major
      index/<layer>/<quantity>/ge_<threshold>/bits    (units, ceil(N/8)) uint8, bit-packed on/off
      index/<layer>/<quantity>/ge_<threshold>/counts  (index blocks, units) int64 on-counts

The manifest names the model (name, source file, SHA-256 of the file and of its weights), the
tokenizer (kind and vocabulary), the layers with their units, the quantities, the storage
type, the number of steps and sequences, the positions per tracing task (``block_steps``) and
whether tracing finished (``complete``).

Why unit-major ``(units, N)``: a pattern query reads a few units over the whole corpus, and the
on/off index packs 8 positions of one unit per byte. State chunks are ``64 units × 4096
positions``, compressed with Blosc (zstd level 1, byte shuffle): a window of the app reads one
chunk column, a tracing task writes whole chunks (no two tasks touch the same chunk).

Why float16 by default: hidden states, gates and candidates lie in [-1, 1], where float16's
spacing is at most 2**-11 ≈ 0.0005 -- finer than any colour map or threshold slider -- for
half the disk and I/O of float32; cell states are clipped to ±65504. ``dtype="float32"``
keeps exact values.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ... import budget
from ...errors import LstmvizError
from ._common import CHUNK_STEPS, FORMAT_VERSION, MANIFEST_ATTR, is_url, normalize_location

#: Positions per page of the lazy window cache (one chunk column).
PAGE_STEPS = CHUNK_STEPS
#: Pages kept per store.
PAGE_CACHE = 8


class CorpusBase:
    """What every corpus store offers (the Zarr store and the older memory-mapped folder).

    Attributes
    ----------
    location : str
        Local path or URL.
    layers : list of str
        LSTM trace names stored (``"lstm"``, ``"bidi/forward"``...).
    quantities : list of str
        Quantities stored per layer.
    units : dict
        ``{layer: units}``.
    n_steps : int
        Token-steps of the corpus.
    offsets : ndarray, (n_sequences + 1,)
        Sequence boundaries in the token stream.
    dtype : str
        ``"float16"`` or ``"float32"``.
    complete : bool
        False when tracing was stopped early; then only positions where :meth:`traced_mask`
        is True hold values.
    done : ndarray, (n_sequences,) bool
        Sequences fully traced.
    meta : dict
        Model name, source, hashes, creation time.
    """

    location: str
    layers: list[str]
    quantities: list[str]
    units: dict[str, int]
    n_steps: int
    dtype: str
    complete: bool
    meta: dict[str, Any]
    tokenizer: dict[str, Any] | None
    writable: bool

    def __init__(self) -> None:
        self._pages: OrderedDict[tuple[str, str, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pages"] = OrderedDict()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # --- geometry ---------------------------------------------------------------------------
    @property
    def path(self) -> str:
        """The location (kept for code that called it ``path``)."""
        return self.location

    @property
    def n_sequences(self) -> int:
        return int(len(self.offsets) - 1)

    def sequence_of(self, position: int) -> tuple[int, int]:
        """``(sequence index, t within it)`` of a position in the token stream."""
        if not 0 <= int(position) < self.n_steps:
            raise LstmvizError(
                f"{self.location}: position {position} is outside the corpus "
                f"(0..{self.n_steps - 1})"
            )
        k = int(np.searchsorted(self.offsets, position, side="right")) - 1
        return k, int(position - self.offsets[k])

    def position(self, sequence: int, t: int = 0) -> int:
        """Position in the token stream of step ``t`` of ``sequence``."""
        if not 0 <= int(sequence) < self.n_sequences:
            raise LstmvizError(
                f"{self.location}: sequence {sequence} is outside 0..{self.n_sequences - 1}"
            )
        length = int(self.offsets[sequence + 1] - self.offsets[sequence])
        if not 0 <= int(t) < length:
            raise LstmvizError(
                f"{self.location}: step {t} is outside sequence {sequence} (0..{length - 1})"
            )
        return int(self.offsets[sequence] + t)

    def layer(self, layer: str | None) -> str:
        """``layer`` checked (None: the first stored layer)."""
        if layer is None:
            return self.layers[0]
        if layer not in self.layers:
            raise LstmvizError(
                f"{self.location}: no layer {layer!r} in the corpus; layers: "
                f"{', '.join(self.layers)}"
            )
        return layer

    def check_quantity(self, quantity: str) -> str:
        if quantity not in self.quantities:
            raise LstmvizError(
                f"{self.location}: quantity {quantity!r} was not stored; stored: "
                f"{', '.join(self.quantities)}"
            )
        return quantity

    @property
    def offsets(self) -> np.ndarray:
        """``(n_sequences + 1,)`` int64: the sequence boundaries in the token stream."""
        raise NotImplementedError

    @property
    def done(self) -> np.ndarray:
        """``(n_sequences,)`` bool: the sequences fully traced."""
        raise NotImplementedError

    def traced_mask(self, start: int, stop: int) -> np.ndarray | None:
        """``(stop - start,)`` bool of the positions that hold traced values, or None when
        all of them do."""
        raise NotImplementedError

    # --- reading ----------------------------------------------------------------------------
    def read(
        self, layer: str | None, quantity: str, u0: int, u1: int, start: int, stop: int
    ) -> np.ndarray:
        """Units ``u0:u1`` at positions ``start:stop`` as ``(u1 - u0, stop - start)``
        float32 (the storage layout)."""
        raise NotImplementedError

    def inputs(self) -> Any:
        """The inputs, lazily: ``(N,)`` ids or ``(N, F)`` features (slice it)."""
        raise NotImplementedError

    def array(self, layer: str | None = None, quantity: str = "hidden") -> Any:
        """The lazy ``(units, N)`` array of one layer's quantity (slice it)."""
        raise NotImplementedError

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Inputs at positions ``start:stop``."""
        start, stop = max(0, int(start)), min(self.n_steps, int(stop))
        return np.asarray(self.inputs()[start:stop])

    def sequence(self, k: int) -> np.ndarray:
        """The inputs of sequence ``k``."""
        if not 0 <= int(k) < self.n_sequences:
            raise LstmvizError(
                f"{self.location}: sequence {k} is outside 0..{self.n_sequences - 1}"
            )
        return self.tokens(int(self.offsets[k]), int(self.offsets[k + 1]))

    def _page(self, layer: str, quantity: str, index: int) -> np.ndarray:
        key = (layer, quantity, index)
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
                return page
        p0 = index * PAGE_STEPS
        p1 = min(self.n_steps, p0 + PAGE_STEPS)
        page = self.read(layer, quantity, 0, self.units[layer], p0, p1)
        with self._lock:
            self._pages[key] = page
            while len(self._pages) > PAGE_CACHE:
                self._pages.popitem(last=False)
        return page

    def has_window(
        self, start: int, stop: int, layer: str | None = None, quantity: str = "hidden"
    ) -> bool:
        """True when :meth:`window` of this range is served from pages already read."""
        layer = self.layer(layer)
        start, stop = max(0, int(start)), min(self.n_steps, int(stop))
        with self._lock:
            return all(
                (layer, quantity, i) in self._pages
                for i in range(start // PAGE_STEPS, (max(stop, start + 1) - 1) // PAGE_STEPS + 1)
            )

    def window(
        self, start: int, stop: int, layer: str | None = None, quantity: str = "hidden"
    ) -> np.ndarray:
        """Positions ``start:stop`` as ``(stop - start, units)`` float32, read page by page
        (pages of :data:`PAGE_STEPS` positions are cached, so scrolling reads each once)."""
        layer = self.layer(layer)
        self.check_quantity(quantity)
        start, stop = max(0, int(start)), min(self.n_steps, int(stop))
        if stop <= start:
            return np.zeros((0, self.units[layer]), np.float32)
        budget.check_array(
            (stop - start, self.units[layer]), 4, f"{self.location}: window {start}:{stop}"
        )
        pieces = []
        for i in range(start // PAGE_STEPS, (stop - 1) // PAGE_STEPS + 1):
            page = self._page(layer, quantity, i)
            a = max(start, i * PAGE_STEPS) - i * PAGE_STEPS
            b = min(stop, (i + 1) * PAGE_STEPS) - i * PAGE_STEPS
            pieces.append(page[:, a:b])
        return np.ascontiguousarray(np.concatenate(pieces, axis=1).T)

    def read_rows(
        self, layer: str | None, quantity: str, units: Sequence[int], start: int, stop: int
    ) -> np.ndarray:
        """``(len(units), stop - start)`` float32 of the given units (each group of
        neighbouring units is read once)."""
        layer = self.layer(layer)
        self.check_quantity(quantity)
        us = np.asarray(units, np.int64)
        out = np.empty((len(us), stop - start), np.float32)
        if len(us) == 0 or stop <= start:
            return out
        order = np.argsort(us, kind="stable")
        k = 0
        while k < len(order):
            j = k
            lo = int(us[order[k]])
            while j + 1 < len(order) and int(us[order[j + 1]]) - lo < 64:
                j += 1
            hi = int(us[order[j]]) + 1
            rows = self.read(layer, quantity, lo, hi, start, stop)
            for m in range(k, j + 1):
                out[order[m]] = rows[int(us[order[m]]) - lo]
            k = j + 1
        return out

    def stored_bytes(self) -> int:
        """Bytes the store takes (0 when unknown)."""
        return 0

    def describe(self) -> str:
        """One line: sequences, steps, layers, quantities, size, location."""
        size = self.stored_bytes()
        state = "" if self.complete else " (incomplete: tracing was stopped)"
        return (
            f"{self.n_sequences:,} sequences, {self.n_steps:,} token-steps, layers "
            f"{', '.join(f'{k} ({v} units)' for k, v in self.units.items())}, "
            f"{', '.join(self.quantities)} as {self.dtype}"
            + (f": {budget.format_bytes(size)}" if size else "")
            + f" in {self.location}{state}"
        )


class CorpusStore(CorpusBase):
    """A corpus traced by :func:`~lstmviz.analysis.trace_corpus`: a Zarr group.

    Open one with :func:`open_corpus`; see the module docstring for the layout.
    """

    def __init__(
        self,
        group: Any,
        location: str,
        storage_options: dict[str, Any] | None,
        block_done: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.group = group
        self.location = location
        self.storage_options = dict(storage_options or {})
        m = read_manifest(group, location)
        self.manifest = m
        self.layers = [str(d["name"]) for d in m["layers"]]
        self.units = {str(d["name"]): int(d["units"]) for d in m["layers"]}
        self._keys = {str(d["name"]): str(d["key"]) for d in m["layers"]}
        self.quantities = [str(q) for q in m["quantities"]]
        self.n_steps = int(m["n_steps"])
        self.dtype = str(m["dtype"])
        self.block_steps = int(m["block_steps"])
        self.tokenizer = m.get("tokenizer")
        self.meta = dict(m.get("model") or {})
        self.meta["created"] = m.get("created", "")
        self._n_sequences = int(m["n_sequences"])
        self._offsets: np.ndarray | None = None
        self._done: np.ndarray | None = None
        self._arrays: dict[str, Any] = {}
        if block_done is None:
            block_done = np.asarray(group["done"][:], bool)
        self.block_done = block_done
        self.complete = bool(m.get("complete", False)) and bool(self.block_done.all())
        self.writable = not is_url(location) and os.access(location, os.W_OK)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # a cluster task reopens the group; the offsets are read only if it needs them
        return (_restore, (self.location, self.storage_options or None, self.block_done))

    @property
    def n_sequences(self) -> int:
        return self._n_sequences

    @property
    def offsets(self) -> np.ndarray:
        if self._offsets is None:
            n_seq = self._n_sequences
            budget.check_array((n_seq + 1,), 8, f"{self.location}: sequence offsets")
            off = np.asarray(self.group["offsets"][:], np.int64)
            if off.shape != (n_seq + 1,) or int(off[-1]) != self.n_steps:
                raise LstmvizError(
                    f"{self.location}: offsets do not match the manifest ({n_seq} sequences, "
                    f"{self.n_steps} steps); the store is damaged -- trace it again"
                )
            self._offsets = off
        return self._offsets

    @property
    def done(self) -> np.ndarray:
        if self._done is None:
            self._done = self._sequence_done()
        return self._done

    def _sequence_done(self) -> np.ndarray:
        if self.block_done.all():
            return np.ones(self.n_sequences, bool)
        bs = self.block_steps
        off = self.offsets
        first = off[:-1] // bs
        last = np.maximum(off[1:] - 1, off[:-1]) // bs
        bad = np.concatenate([[0], np.cumsum(~self.block_done)])  # undone blocks before
        return np.asarray((bad[last + 1] - bad[first]) == 0)

    def traced_mask(self, start: int, stop: int) -> np.ndarray | None:
        if self.block_done.all():
            return None
        pos = np.arange(start, stop) // self.block_steps
        return self.block_done[pos]

    def array(self, layer: str | None = None, quantity: str = "hidden") -> Any:
        """The lazy Zarr array ``(units, N)`` of one layer's quantity."""
        layer = self.layer(layer)
        self.check_quantity(quantity)
        key = f"states/{self._keys[layer]}/{quantity}"
        arr = self._arrays.get(key)
        if arr is None:  # opening reads the array's metadata: once per store
            arr = self._arrays[key] = self.group[key]
        return arr

    def read(
        self, layer: str | None, quantity: str, u0: int, u1: int, start: int, stop: int
    ) -> np.ndarray:
        a = self.array(layer, quantity)
        budget.check_array(
            (max(u1 - u0, 0), max(stop - start, 0)),
            4,
            f"{self.location}: {layer} {quantity} units {u0}:{u1}, positions {start}:{stop}",
        )
        return np.asarray(a[u0:u1, start:stop], np.float32)

    def inputs(self) -> Any:
        arr = self._arrays.get("inputs")
        if arr is None:
            arr = self._arrays["inputs"] = self.group["inputs"]
        return arr

    def stored_bytes(self) -> int:
        if is_url(self.location):
            return 0
        total = 0
        for root, _dirs, files in os.walk(self.location):
            for f in files:
                with contextlib.suppress(OSError):
                    total += os.path.getsize(os.path.join(root, f))
        return total


def _restore(
    location: str, storage_options: dict[str, Any] | None, block_done: np.ndarray
) -> CorpusStore:
    return CorpusStore(
        open_group(location, "r", storage_options), location, storage_options, block_done
    )


def read_manifest(group: Any, location: str) -> dict[str, Any]:
    """The manifest of a Zarr corpus group, checked."""
    attrs = dict(group.attrs)
    m = attrs.get(MANIFEST_ATTR)
    if not isinstance(m, dict):
        raise LstmvizError(
            f"{location}: a Zarr group, but not a corpus traced by lstmviz (no "
            f"{MANIFEST_ATTR!r} attribute)"
        )
    if m.get("format_version") != FORMAT_VERSION:
        raise LstmvizError(
            f"{location}: unknown corpus format_version {m.get('format_version')!r} (this "
            f"lstmviz reads {FORMAT_VERSION} and the older memory-mapped folders)"
        )
    for key in ("layers", "quantities", "n_steps", "n_sequences", "dtype", "block_steps"):
        if key not in m:
            raise LstmvizError(f"{location}: the corpus manifest lacks {key!r}")
    return m


def open_group(
    location: str, mode: Literal["r", "r+", "w"], storage_options: dict[str, Any] | None
) -> Any:
    """``zarr.open_group`` on a local path or an fsspec URL, errors named."""
    import zarr

    try:
        if is_url(location):
            return zarr.open_group(location, mode=mode, storage_options=storage_options or None)
        from zarr.storage import LocalStore

        return zarr.open_group(LocalStore(location, read_only=(mode == "r")), mode=mode)
    except LstmvizError:
        raise
    except FileNotFoundError:
        raise LstmvizError(f"{location}: no such corpus (nothing found there)") from None
    except ImportError as e:
        raise LstmvizError(
            f"{location}: opening this URL needs a filesystem package that is not installed "
            f"({e}); e.g. `pip install s3fs` for s3://, `pip install gcsfs` for gs://, "
            "`pip install aiohttp` for http(s)://"
        ) from None
    except Exception as e:  # noqa: BLE001 - zarr/fsspec raise many types for "not a group"
        raise LstmvizError(
            f"{location}: cannot open as a Zarr corpus ({type(e).__name__}: {e})"
        ) from None


def open_corpus(
    path_or_url: str | os.PathLike[str], storage_options: dict[str, Any] | None = None
) -> CorpusBase:
    """Open a traced corpus: a Zarr store written by :func:`trace_corpus` (local folder or any
    fsspec URL: ``s3://bucket/c.zarr``, ``gs://...``, ``https://...``, ``memory://...``), or
    a memory-mapped folder traced by an older lstmviz.

    Parameters
    ----------
    path_or_url : str or path
        Where the corpus is.
    storage_options : dict, optional
        Passed to fsspec for URLs (credentials, endpoint...).

    Returns
    -------
    CorpusStore or LegacyCorpusStore
        Nothing is read but the manifest and the sequence offsets; states are paged in when
        asked for.
    """
    location = normalize_location(path_or_url)
    if not is_url(location):
        p = Path(location)
        if (p / "corpus.json").is_file():
            from .legacy import open_legacy

            return open_legacy(p)
        if not p.exists():
            raise LstmvizError(f"{location}: no such corpus (the path does not exist)")
        if not (p / "zarr.json").is_file():
            raise LstmvizError(
                f"{location}: not a traced corpus (no zarr.json, and no corpus.json of the "
                "older folder format)"
            )
    group = open_group(location, "r", storage_options)
    return CorpusStore(group, location, storage_options)


def manifest_json(store: CorpusBase) -> str:
    """The manifest as indented JSON (for ``lstmviz corpus info``)."""
    m = getattr(store, "manifest", None)
    if m is None:
        m = {
            "format_version": 1,
            "layers": [{"name": n, "units": u} for n, u in store.units.items()],
            "quantities": store.quantities,
            "n_steps": store.n_steps,
            "n_sequences": store.n_sequences,
            "dtype": store.dtype,
            "complete": store.complete,
            "model": store.meta,
        }
    return json.dumps(m, indent=1)
