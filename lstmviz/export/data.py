"""Trace data to NPZ, CSV and JSON (NumPy only; no figures, no Qt).

- NPZ: one ``(batch, T, units)`` array per ``"<layer>/<quantity>"`` plus ``"output"``
  (``"output/1"``... for further outputs of a multi-output model), ``"input"`` and
  ``"meta"`` (the JSON metadata as a 0-d string; loads with ``allow_pickle=False``).
- CSV: long format, header ``layer,batch,t,unit,quantity,value``, one row per
  (layer, batch, t, unit, quantity).
- JSON: metadata (model file and SHA-256, input, engine, versions, layers) and, when asked,
  the values as nested lists ``values[layer][quantity][batch][t][unit]``.

Every file is written atomically (:func:`lstmviz.io.atomic.atomic_open`).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import hashlib
import io
import json
import os
import platform
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.trace import QUANTITIES
from ..io.atomic import atomic_open
from .formats import ExportCancelled
from .selection import check_units

if TYPE_CHECKING:
    from ..engine.model import Model
    from ..engine.trace import LayerTrace, Trace
    from ..io.meta import ModelInfo

FORMAT_VERSION = 1
Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


@dataclass
class Source:
    """Where a trace came from, for the metadata of every export.

    Parameters
    ----------
    model : Model, optional
        The engine model (name, format, parameter count).
    model_path : str or Path, optional
        The model file (hashed with SHA-256).
    input_kind : str
        ``"file"``, ``"text"``, ``"example"`` or ``"array"``.
    input_path, input_text : str, optional
        The input file or the typed text.
    info : ModelInfo, optional
        The model's sidecar (vocabulary, task) for token labels.
    """

    model: Model | None = None
    model_path: str | os.PathLike[str] | None = None
    input_kind: str = "array"
    input_path: str | None = None
    input_text: str | None = None
    info: ModelInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        if self.model is not None and self.model.name:
            return str(self.model.name)
        if self.model_path:
            return Path(self.model_path).stem
        return "model"


@contextlib.contextmanager
def _text_file(path: str | os.PathLike[str]) -> Iterator[io.TextIOWrapper]:
    """An atomically written UTF-8 text file (independent of the locale)."""
    with atomic_open(path, "wb") as raw:
        fh = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        yield fh
        fh.flush()
        fh.detach()


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _versions() -> dict[str, str]:
    from .._version import __version__

    v = {
        "lstmviz": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
    return v


def _token_rows(trace: Trace, source: Source | None) -> list[list[str]] | None:
    if source is None or source.model is None:
        return None
    from ..io.inputs import token_labels

    try:
        return [
            token_labels(source.model, trace.inputs, source.info, b)
            for b in range(trace.batch_size)
        ]
    except (IndexError, ValueError, TypeError):  # an input the labeller does not know
        return None


def _shape(a: Any) -> list[Any]:
    if isinstance(a, list):
        return [list(np.shape(v)) for v in a]
    return list(np.shape(a))


def metadata(
    trace: Trace,
    source: Source | None = None,
    layers: Sequence[LayerTrace] | None = None,
    quantities: Sequence[str] = QUANTITIES,
    units: Sequence[int] | None = None,
    batch: Sequence[int] | None = None,
) -> dict[str, Any]:
    """The JSON-able description of an export: model, input, engine, versions, layers."""
    source = source or Source()
    layers = list(trace.layers if layers is None else layers)
    model: dict[str, Any] = {"name": source.model_name}
    if source.model_path:
        p = Path(source.model_path)
        model["file"] = str(p)
        if p.is_file():
            model["sha256"] = sha256_file(p)
            model["size_bytes"] = p.stat().st_size
    if source.model is not None:
        model["format"] = source.model.format
        model["n_params"] = int(source.model.n_params)
        model["lstm_layers"] = list(source.model.lstm_trace_names)
    inp: dict[str, Any] = {
        "source": source.input_kind,
        "shape": _shape(trace.inputs),
        "dtype": str(
            np.asarray(trace.inputs[0] if isinstance(trace.inputs, list) else trace.inputs).dtype
        ),
    }
    if source.input_path:
        inp["path"] = str(source.input_path)
    if source.input_text is not None:
        inp["text"] = source.input_text
    toks = _token_rows(trace, source)
    if toks is not None and toks and toks[0] != [f"x{t}" for t in range(len(toks[0]))]:
        inp["tokens"] = toks
    if source.info is not None and source.info.task:
        model["task"] = source.info.task
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "kind": "lstmviz-trace",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "model": model,
        "input": inp,
        "engine": trace.engine,
        "versions": _versions(),
        "array_layout": "(batch, T, units); t is the position in the input sequence",
        "quantities": list(quantities),
        "layers": [
            {
                "name": lt.name,
                "layer": lt.layer_name or lt.name,
                "direction": lt.direction,
                "go_backwards": bool(lt.go_backwards),
                "units": lt.units,
                "timesteps": lt.timesteps,
                "batch": lt.batch_size,
                "activation": getattr(lt.weights, "activation", None),
                "recurrent_activation": getattr(lt.weights, "recurrent_activation", None),
                "units_exported": list(check_units(units, lt)),
            }
            for lt in layers
        ],
        "batch_exported": list(range(trace.batch_size)) if batch is None else list(batch),
        "output_shape": _shape(trace.output),
    }
    if source.extra:
        meta["extra"] = dict(source.extra)
    return meta


def _select(
    lt: LayerTrace, q: str, units: Sequence[int] | None, batch: Sequence[int] | None
) -> np.ndarray:
    a = lt.get(q)  # (B, T, U)
    if batch is not None:
        a = a[list(batch)]
    if units is not None:
        a = a[:, :, list(check_units(units, lt))]
    return np.ascontiguousarray(a, dtype=np.float32)


def _outputs(trace: Trace) -> list[np.ndarray]:
    out = trace.output
    return [np.asarray(o) for o in out] if isinstance(out, list) else [np.asarray(out)]


def trace_arrays(
    trace: Trace,
    layers: Sequence[LayerTrace] | None = None,
    quantities: Sequence[str] = QUANTITIES,
    units: Sequence[int] | None = None,
    batch: Sequence[int] | None = None,
) -> dict[str, np.ndarray]:
    """``{"<layer>/<quantity>": (batch, T, units) array, ..., "output": ...}``."""
    arrays: dict[str, np.ndarray] = {}
    for lt in trace.layers if layers is None else layers:
        for q in quantities:
            arrays[f"{lt.name}/{q}"] = _select(lt, q, units, batch)
    for k, o in enumerate(_outputs(trace)):
        if batch is not None and o.ndim >= 1 and o.shape[0] == trace.batch_size:
            o = o[list(batch)]
        arrays["output" if k == 0 else f"output/{k}"] = o
    return arrays


def write_npz(
    path: str | os.PathLike[str],
    trace: Trace,
    source: Source | None = None,
    layers: Sequence[LayerTrace] | None = None,
    quantities: Sequence[str] = QUANTITIES,
    units: Sequence[int] | None = None,
    batch: Sequence[int] | None = None,
) -> Path:
    """Write the trace as ``.npz`` (compressed); see the module docstring for the keys."""
    arrays = trace_arrays(trace, layers, quantities, units, batch)
    xs = trace.inputs if isinstance(trace.inputs, list) else [trace.inputs]
    for k, x in enumerate(xs):
        x = np.asarray(x)
        if batch is not None:
            x = x[list(batch)]
        arrays["input" if k == 0 else f"input/{k}"] = x
    meta = metadata(trace, source, layers, quantities, units, batch)
    arrays["meta"] = np.array(json.dumps(meta, ensure_ascii=False))
    with atomic_open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub: allow_pickle
    return Path(path)


def csv_row_count(
    trace: Trace,
    layers: Sequence[LayerTrace] | None = None,
    quantities: Sequence[str] = QUANTITIES,
    units: Sequence[int] | None = None,
    batch: Sequence[int] | None = None,
) -> int:
    n = 0
    for lt in trace.layers if layers is None else layers:
        nb = lt.batch_size if batch is None else len(batch)
        n += nb * lt.timesteps * len(check_units(units, lt)) * len(quantities)
    return n


def write_csv(
    path: str | os.PathLike[str],
    trace: Trace,
    layers: Sequence[LayerTrace] | None = None,
    quantities: Sequence[str] = QUANTITIES,
    units: Sequence[int] | None = None,
    batch: Sequence[int] | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> Path:
    """Write the long-format CSV: one row per (layer, batch, t, unit, quantity).

    Values are written with 9 significant digits, enough to read float32 back exactly.
    ``progress(i, n)`` is called once per (layer, batch item, timestep block); a true
    ``should_stop()`` abandons the file (nothing is written) with :class:`ExportCancelled`.
    """
    layers = list(trace.layers if layers is None else layers)
    plan = []
    for lt in layers:
        us = check_units(units, lt)
        bs = list(range(lt.batch_size)) if batch is None else list(batch)
        plan.append((lt, us, bs))
    total = sum(len(bs) * lt.timesteps for lt, _, bs in plan)
    done = 0
    with _text_file(path) as fh:
        fh.write("layer,batch,t,unit,quantity,value\n")
        for lt, us, bs in plan:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="").writerow([lt.name])
            lname = buf.getvalue()
            stack = np.stack([lt.get(q)[:, :, list(us)] for q in quantities], axis=-1)
            for b in bs:
                vals = stack[b]  # (T, U, Q)
                for t in range(lt.timesteps):
                    rows = vals[t].tolist()
                    lines = [
                        f"{lname},{b},{t},{u},{q},{v:.9g}\n"
                        for u, row in zip(us, rows, strict=True)
                        for q, v in zip(quantities, row, strict=True)
                    ]
                    fh.write("".join(lines))
                    done += 1
                    if should_stop is not None and should_stop():
                        raise ExportCancelled("CSV export cancelled; nothing was written")
                    if progress is not None and (done % 16 == 0 or done == total):
                        progress(done, total)
    return Path(path)


def _finite(a: np.ndarray) -> Any:
    a = np.asarray(a, dtype=np.float64)
    if np.all(np.isfinite(a)):
        return a.tolist()
    return np.where(np.isfinite(a), a, np.nan).astype(object).tolist()  # NaN -> replaced below


def _clean(x: Any) -> Any:
    if isinstance(x, list):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def write_json(
    path: str | os.PathLike[str],
    trace: Trace,
    source: Source | None = None,
    values: bool = False,
    layers: Sequence[LayerTrace] | None = None,
    quantities: Sequence[str] = QUANTITIES,
    units: Sequence[int] | None = None,
    batch: Sequence[int] | None = None,
) -> Path:
    """Write the JSON metadata; with ``values=True`` also every value and the output.

    Values are float32 converted to JSON numbers (non-finite values become ``null``).
    """
    doc = metadata(trace, source, layers, quantities, units, batch)
    if values:
        vals: dict[str, dict[str, Any]] = {}
        for lt in trace.layers if layers is None else layers:
            vals[lt.name] = {q: _clean(_finite(_select(lt, q, units, batch))) for q in quantities}
        doc["values"] = vals
        outs = [_clean(_finite(o)) for o in trace_arrays(trace, layers, (), units, batch).values()]
        doc["output"] = outs[0] if len(outs) == 1 else outs
    with _text_file(path) as fh:
        json.dump(doc, fh, ensure_ascii=False, allow_nan=False, indent=None if values else 1)
        fh.write("\n")
    return Path(path)
