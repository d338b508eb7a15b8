"""Shared pieces of the corpus package: locations, names, sizes, the model's fingerprint."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...engine.model import Model
from ...engine.trace import QUANTITIES
from ...errors import LstmvizError

#: Version of the Zarr corpus layout (the memory-mapped folder format was version 1).
FORMAT_VERSION = 2
#: Group attribute holding the manifest.
MANIFEST_ATTR = "lstmviz_corpus"
#: Units per chunk of a ``(units, N)`` state array and of the on/off index.
CHUNK_UNITS = 64
#: Positions per chunk of a state array (a trace task writes whole chunks).
CHUNK_STEPS = 4096
#: Positions per chunk of the on/off index and per index-building task.
INDEX_BLOCK = 1 << 20
#: Working memory of one tracing task, at least and at most (sets the default positions per
#: task: a quarter of the memory budget shared by the tasks running at once, within these).
TASK_BYTES = (256 * 2**20, 2 * 2**30)
#: float16's largest finite value: cell states beyond it are clipped.
F16_MAX = 65504.0

Progress = Callable[[int, int], Any]
ShouldStop = Callable[[], bool]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(location: str) -> bool:
    """True for ``scheme://...`` locations other than ``file://``."""
    return bool(_URL.match(location)) and not location.startswith("file://")


def normalize_location(location: str | os.PathLike[str]) -> str:
    """A local path (``file://`` stripped, made absolute) or an fsspec URL, unchanged."""
    s = os.fspath(location)
    if s.startswith("file://"):
        s = s[len("file://") :]
    if is_url(s):
        return s.rstrip("/")
    return str(Path(s).expanduser().absolute())


def layer_key(name: str) -> str:
    """The array-name form of an LSTM trace name (``"bidi/forward"`` -> ``"bidi__forward"``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace("/", "__"))


def check_quantities(quantities: Any) -> list[str]:
    qs = [str(q) for q in quantities]
    if not qs:
        raise LstmvizError(
            f"quantities: expected at least one of {', '.join(QUANTITIES)}; found none"
        )
    for q in qs:
        if q not in QUANTITIES:
            raise LstmvizError(
                f"quantities: unknown quantity {q!r}; expected any of {', '.join(QUANTITIES)}"
            )
    if len(set(qs)) != len(qs):
        raise LstmvizError(f"quantities: {qs} names a quantity twice")
    return qs


def bytes_per_step(model: Model) -> int:
    """Working memory one traced token-step takes: the engine keeps about 12 float32 values
    per unit (pre-activations, the six quantities, states) for every LSTM of the model, and
    a task stages one stored quantity at a time beside it."""
    units = sum(model.lstm(n).units for n in model.lstm_trace_names)
    return 52 * units + 64


def default_block_steps(model: Model, task_bytes: int) -> int:
    """Positions per tracing task: the largest power of two (4096 to 65536) whose trace, with
    a re-traced prefix as long again, fits in ``task_bytes``. Longer blocks trace longer
    batches: at 650 units a step of a batch of 16 costs little more than one of 4, since the
    recurrent weights are read once per step either way."""
    per = bytes_per_step(model)
    p = 1 << 16
    while p > CHUNK_STEPS and 2 * p * per > task_bytes:
        p //= 2
    return p


def _arrays_of(obj: Any, prefix: str, out: list[tuple[str, np.ndarray]], depth: int = 0) -> None:
    if depth > 3:
        return
    if isinstance(obj, np.ndarray):
        out.append((prefix, obj))
        return
    if is_dataclass(obj) and not isinstance(obj, type):
        for f in fields(obj):
            _arrays_of(getattr(obj, f.name), f"{prefix}.{f.name}", out, depth + 1)
        return
    if isinstance(obj, (list, tuple)):
        for k, v in enumerate(obj):
            _arrays_of(v, f"{prefix}[{k}]", out, depth + 1)
        return
    if hasattr(obj, "__dict__") and depth < 2:
        for k in sorted(vars(obj)):
            _arrays_of(vars(obj)[k], f"{prefix}.{k}", out, depth + 1)


def weights_sha256(model: Model) -> str:
    """SHA-256 over every layer's weight arrays (names, shapes, dtypes and bytes, in graph
    order): the same weights give the same hash whatever file they came from."""
    h = hashlib.sha256()
    for name, lay in model.layers.items():
        arrays: list[tuple[str, np.ndarray]] = []
        _arrays_of(lay, name, arrays)
        h.update(f"{name}:{lay.kind}\n".encode())
        for key, a in arrays:
            a = np.ascontiguousarray(a)
            h.update(f"{key}:{a.dtype.str}:{a.shape}\n".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def file_sha256(path: str) -> str | None:
    """SHA-256 of the model file, or None when ``path`` is not a file."""
    p = Path(path)
    if not path or not p.is_file():
        return None
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def parse_unit_list(text: str | None, what: str = "--units") -> list[int] | None:
    """``"3, 17, 40-42"`` (commas or spaces) -> ``[3, 17, 40, 41, 42]``; empty -> None."""
    if text is None or not text.strip():
        return None
    out: list[int] = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise LstmvizError(
                f"{what}: expected unit numbers and ranges like 3, 17, 40-42; found {part!r}"
            )
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        if b < a or b - a > 1_000_000:
            raise LstmvizError(f"{what}: bad unit range {part!r}")
        out.extend(range(a, b + 1))
    return list(dict.fromkeys(out))
