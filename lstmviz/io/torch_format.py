"""Open PyTorch ``nn.LSTM`` state_dicts: ``torch.save`` files and safetensors.

Safety: ``.pt``/``.pth``/``.bin`` are read with ``torch.load(..., weights_only=True)`` (torch's
restricted unpickler: tensors, dicts, lists, numbers; nothing else) and never with plain
pickle; a file that needs more (a whole pickled ``nn.Module``) is refused. ``.safetensors`` are
read with the safetensors package's NumPy API, or, without it, by a small bounds-checked reader
of the format (8-byte header length + JSON header + raw little-endian buffers). No torch is
needed for safetensors.

A state_dict has weights, not ``forward()``. lstmviz finds the ``nn.LSTM`` by its keys
(``<prefix>weight_ih_l0`` ...) and builds ``input -> [embedding] -> lstm_l0 -> ... -> [head]``
(:mod:`lstmviz.io.stacked`), attaching no embedding and no head the user did not name: a file
with more than the LSTM is refused with a message that says only the LSTM can be known, lists
the other modules, and gives the sidecar for the LSTM alone and the template for the whole
model (``torch.export`` ``.pt2``, ONNX and ``lstmviz.show(model, x)`` run any ``forward()``).
What the keys cannot say comes from the model's sidecar ``<stem>.lstmviz.json``, key
``extra.torch`` (see :data:`OPTIONS` and ``docs/formats.md``)::

    {"format_version": 1,
     "extra": {"torch": {"lstm_prefix": "rnn.", "embedding": "encoder.",
                         "head": ["decoder.", "log_softmax"], "head_on": "all"}}}
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import convert
from ..engine import layers as L
from ..engine.cell import LSTMWeights
from ..engine.model import Model, Node
from ..errors import MissingDependencyError, ModelFileError, UnsafeModelError
from .meta import info_path, load_info
from .more_formats import check_file
from .stacked import HEAD_ON, LastStep, build_stack

TORCH_SUFFIXES = (".pt", ".pth", ".bin")
SAFETENSORS_SUFFIXES = (".safetensors",)

#: Keys of ``extra.torch`` in the sidecar, and what each says.
OPTIONS: dict[str, str] = {
    "lstm_prefix": 'which keys form the nn.LSTM: the prefix of "weight_ih_l0", e.g. "rnn."',
    "cells": "nn.LSTMCells forward() calls one after the other at each step, in order, shown "
    'as stacked layers, e.g. ["lstm1.", "lstm2."]',
    "batch_first": "whether the nn.LSTM was built with batch_first=True (recorded, see docs)",
    "input_size": "the LSTM's input size (checked against weight_ih_l0)",
    "head": 'what forward() applies after the LSTM: an nn.Linear ("fc."), or a list of modules '
    '(Linear, BatchNorm1d, LayerNorm) and activations in order, e.g. ["bn.", "fc1.", "relu", '
    '"fc2.", "log_softmax"]; null: none, show the LSTM alone and ignore other weights',
    "head_on": '"all" (the head at every timestep) or "last" (output[:, -1] only); required '
    "with a head",
    "head_activation": 'activation after a one-Linear head: "linear", "softmax", '
    '"log_softmax", "sigmoid", ...; required with "head": "fc."',
    "embedding": 'the nn.Embedding in front, e.g. "emb." (null or absent: none)',
    "mask_zero": "true: token id 0 is padding after each sequence, which forward() packs "
    "away (pack_padded_sequence with the lengths of the non-zero ids): the LSTM skips those "
    "steps and keeps its state, so h at the last step is torch's h_n; needs an embedding",
    "state_dict_key": 'for a checkpoint dict: the entry holding the state_dict, e.g. "model"',
}
_UNSET: Any = object()

MAX_HEADER_BYTES = 100 * 2**20  # a safetensors header larger than this is not a model
_LSTM_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?)weight_ih_l(?P<layer>\d+)(?P<rev>_reverse)?$")
_LSTM_PARAM = re.compile(r"^(weight|bias)_(ih|hh|hr)(_l\d+(_reverse)?)?$")
_CELL_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?)weight_ih$")
_NESTED = ("state_dict", "model_state_dict", "model", "net", "module", "state")


# ------------------------------------------------------------------------------- reading
def is_torch_file(p: Path) -> bool:
    """Whether ``p`` is a PyTorch file by its extension (``.pt``, ``.pth``, ``.bin``,
    ``.safetensors``)."""
    return p.suffix.lower() in TORCH_SUFFIXES + SAFETENSORS_SUFFIXES


def read_state_dict(
    path: str | os.PathLike[str], state_dict_key: str | None = None
) -> dict[str, np.ndarray]:
    """The tensors of a ``torch.save`` or safetensors file as float32/int NumPy arrays.

    Raises
    ------
    UnsafeModelError
        The ``.pt`` file holds more than tensors (e.g. a pickled ``nn.Module``).
    MissingDependencyError
        A ``.pt`` file and torch is not installed.
    ModelFileError
        Anything else wrong with the file.
    """
    p = Path(path)
    if p.suffix.lower() in SAFETENSORS_SUFFIXES:
        return read_safetensors(p)
    return _read_torch(p, state_dict_key)


def _read_torch(p: Path, state_dict_key: str | None) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(
            "torch",
            "torch",
            what=f"Opening {p.name} (a torch.save file; safetensors files need no torch)",
        ) from None
    damaged = _check_torch_zip(p)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if m:
            raise UnsafeModelError(_unsafe_message(p, m.group(1))) from None
        raise ModelFileError(
            f"{p}: not a readable torch.save file ("
            + (damaged or "the weights-only unpickler rejects its contents")
            + ")"
        ) from None
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        KeyError,
        AttributeError,
        IndexError,
        TypeError,
    ) as e:
        raise ModelFileError(
            f"{p}: not a readable torch.save file ({type(e).__name__}: {str(e)[:200]})"
        ) from None
    sd = _find_state_dict(obj, p, state_dict_key, torch.Tensor)
    out: dict[str, np.ndarray] = {}
    for k, t in sd.items():
        t = t.detach().to("cpu")
        if t.is_floating_point() and t.dtype != torch.float32:
            t = t.float()
        try:
            out[k] = np.array(t.numpy(), copy=True)
        except (TypeError, RuntimeError) as e:
            raise ModelFileError(f"{p}: tensor {k!r} cannot be read as an array ({e})") from None
    return out


def _unsafe_message(p: Path, what: str) -> str:
    return (
        f"{p}: refused: the file holds Python objects other than tensors ({what}; e.g. a whole "
        "pickled nn.Module), which only an unsafe unpickler could read. Save the weights "
        "instead: torch.save(model.state_dict(), path)"
    )


def _check_torch_zip(p: Path) -> str:
    """Before torch reads a ``torch.save`` zip: its members' declared sizes against the memory
    budget (a small file deflating to gigabytes is refused), and the globals its ``data.pkl``
    names against torch's weights-only allowlist (refused by name, whatever torch's own
    wording). Returns what is damaged in the pickle ("" if nothing), for the error message."""
    import pickletools
    import zipfile

    from .. import budget

    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, ValueError):
        return ""  # the legacy (pre-1.6) format: torch's weights-only unpickler decides
    with zf:
        infos = zf.infolist()
        budget.check(
            sum(i.file_size for i in infos),
            what=f"{p}: the torch.save archive's members (uncompressed)",
        )
        pkl = [i for i in infos if i.filename.endswith("data.pkl")]
        if len(pkl) != 1:
            return ""
        if pkl[0].file_size > 256 * 2**20:
            raise ModelFileError(f"{p}: data.pkl declares {pkl[0].file_size} bytes")
        try:
            data = zf.read(pkl[0])
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            return f"data.pkl cannot be read: {e}"
    allowed = _allowed_globals()
    names: list[str] = []
    strings: list[str] = []
    try:
        for op, arg, _pos in pickletools.genops(data):
            if isinstance(arg, str):
                strings.append(arg)
            if op.name == "GLOBAL" and isinstance(arg, str):
                names.append(arg.replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
            elif op.name in ("INST", "OBJ", "EXT1", "EXT2", "EXT4"):
                names.append(str(arg).replace(" ", ".") if arg else op.name)
    except (ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError, EOFError) as e:
        raise ModelFileError(
            f"{p}: not a readable torch.save file (its data.pkl is truncated or damaged: {e})"
        ) from None
    bad = [n for n in names if n not in allowed]
    if bad:
        raise UnsafeModelError(_unsafe_message(p, ", ".join(sorted(set(bad))[:5])))
    return ""


def _allowed_globals() -> set[str]:
    """The globals torch's weights-only unpickler accepts (its allowlist and the safe globals
    registered in this process)."""
    import torch

    out: set[str] = set()
    try:
        from torch import _weights_only_unpickler

        out |= set(_weights_only_unpickler._get_allowed_globals())
    except (ImportError, AttributeError):
        pass
    for g in torch.serialization.get_safe_globals():
        obj = g[0] if isinstance(g, tuple) else g
        out.add(f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}")
    out |= {
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "collections.OrderedDict",
    }
    out |= {f"torch.{n}" for n in dir(torch) if n.endswith("Storage")}
    return out


def _find_state_dict(obj: Any, p: Path, key: str | None, tensor: type) -> dict[str, Any]:
    """The mapping of name -> tensor in what ``torch.load`` returned."""
    if not isinstance(obj, Mapping):
        raise ModelFileError(
            f"{p}: holds a {type(obj).__name__}, not a state_dict (a dict of tensors); save "
            "one with torch.save(model.state_dict(), path)"
        )
    if key is not None:
        if key not in obj or not isinstance(obj[key], Mapping):
            raise ModelFileError(
                f"{p}: state_dict_key {key!r} (from the sidecar) names no dict in the file; "
                f"entries: {', '.join(map(repr, obj)) or '(none)'}"
            )
        obj = obj[key]
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, tensor)}
    if tensors or key is not None:
        return tensors
    nested = [
        k
        for k, v in obj.items()
        if isinstance(v, Mapping) and any(isinstance(t, tensor) for t in v.values())
    ]
    if len(nested) == 1:
        return {str(k): v for k, v in obj[nested[0]].items() if isinstance(v, tensor)}
    for k in _NESTED:
        if k in nested:
            return {str(n): v for n, v in obj[k].items() if isinstance(v, tensor)}
    if nested:
        raise ModelFileError(
            f"{p}: the file is a dict of several state_dicts ({', '.join(map(repr, nested))}); "
            f"say which one holds the LSTM: {_sidecar_hint(p, {'state_dict_key': nested[0]})}"
        )
    if not obj:
        raise ModelFileError(f"{p}: the state_dict is empty: it holds no tensors")
    raise ModelFileError(
        f"{p}: the file holds no tensors (entries: {', '.join(map(repr, list(obj)[:10]))})"
    )


_ST_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
    "BF16": "<u2",
}


def read_safetensors(p: Path) -> dict[str, np.ndarray]:
    """A safetensors file as NumPy arrays (float tensors as float32)."""
    try:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
    except ImportError:
        return read_safetensors_raw(p)
    from .. import budget

    # the package maps the file and copies every tensor: at most the file's size
    budget.check(2 * p.stat().st_size, what=f"{p}: reading the safetensors file")
    try:
        raw = load_file(str(p))
    except (SafetensorError, TypeError, ValueError, OSError, RecursionError, MemoryError):
        return read_safetensors_raw(p)  # bf16 (no NumPy dtype) or a file it rejects: we say why
    return {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in raw.items()}


def read_safetensors_raw(p: Path) -> dict[str, np.ndarray]:
    """The safetensors format read by hand, every offset checked against the file size."""
    size = p.stat().st_size
    with open(p, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ModelFileError(f"{p}: not a safetensors file (shorter than 8 bytes)")
        n = int.from_bytes(head, "little")
        if n <= 1 or n > MAX_HEADER_BYTES or 8 + n > size:
            raise ModelFileError(
                f"{p}: not a safetensors file (header length {n} does not fit "
                f"a file of {size} bytes)"
            )
        try:
            header = json.loads(fh.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ModelFileError(f"{p}: not a safetensors file (bad JSON header: {e})") from None
        except RecursionError:
            raise ModelFileError(
                f"{p}: not a safetensors file (its JSON header is nested too deeply)"
            ) from None
        if not isinstance(header, dict):
            raise ModelFileError(f"{p}: not a safetensors file (header is not a JSON object)")
        data_len = size - 8 - n
        out: dict[str, np.ndarray] = {}
        for name, spec in header.items():
            if name == "__metadata__":
                continue
            where = f"{p}: tensor {name!r}"
            if not isinstance(spec, dict) or not {"dtype", "shape", "data_offsets"} <= set(spec):
                raise ModelFileError(f"{where}: malformed header entry")
            dtype_name = spec["dtype"]
            dt = _ST_DTYPES.get(dtype_name) if isinstance(dtype_name, str) else None
            if dt is None:
                raise ModelFileError(
                    f"{where}: unsupported dtype {dtype_name!r:.60}; expected one of "
                    f"{', '.join(_ST_DTYPES)}"
                )
            shape, offs = spec["shape"], spec["data_offsets"]

            def whole(v: Any) -> bool:  # JSON true is not a size
                return isinstance(v, int) and not isinstance(v, bool)

            if (
                not isinstance(shape, list)
                or not all(whole(d) and d >= 0 for d in shape)
                or not isinstance(offs, list)
                or len(offs) != 2
                or not all(whole(o) for o in offs)
            ):
                raise ModelFileError(
                    f"{where}: malformed shape or data_offsets (expected lists of non-negative "
                    f"integers; found shape {shape!r:.60}, data_offsets {offs!r:.60})"
                )
            start, end = offs
            count = 1
            for d in shape:  # Python integers: a product past int64 is not wrapped
                count *= d
            if not 0 <= start <= end <= data_len or end - start != count * np.dtype(dt).itemsize:
                raise ModelFileError(
                    f"{where}: data_offsets {offs} do not fit shape {shape} and "
                    f"the {data_len} data bytes"
                )
            fh.seek(8 + n + start)
            a = np.frombuffer(fh.read(end - start), dtype=dt).reshape(shape)
            if spec["dtype"] == "BF16":
                a = (a.astype(np.uint32) << 16).view(np.float32)
            out[name] = a.astype(np.float32) if a.dtype.kind == "f" else a.copy()
    return out


# ------------------------------------------------------------------------------- options
def _sidecar_hint(p: Path, torch_opts: dict[str, Any]) -> str:
    doc = json.dumps({"format_version": 1, "extra": {"torch": torch_opts}})
    where = info_path(p)
    extra = ' (or add the "torch" entry to its "extra" object)' if where.exists() else ""
    return (
        f"write {where} containing {doc}{extra}, or pass the same keys to "
        "lstmviz.io.torch_format.load_torch(path, ...)"
    )


def read_options(p: Path) -> dict[str, Any]:
    """``extra.torch`` from the sidecar of ``p``, checked."""
    info = load_info(p)
    opts = {} if info is None else info.extra.get("torch", {})
    if not isinstance(opts, dict):
        raise ModelFileError(f"{info_path(p)}: extra.torch must be a JSON object")
    return check_options(opts, str(info_path(p)))


def check_options(opts: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(opts) - set(OPTIONS))
    if unknown:
        raise ModelFileError(
            f"{where}: unknown torch option(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(OPTIONS)}"
        )
    kinds: dict[str, tuple[type, ...]] = {
        "lstm_prefix": (str,),
        "cells": (list,),
        "batch_first": (bool,),
        "input_size": (int,),
        "head": (str, list, type(None)),
        "head_on": (str,),
        "head_activation": (str,),
        "embedding": (str, type(None)),
        "mask_zero": (bool,),
        "state_dict_key": (str,),
    }
    for k, v in opts.items():
        if not isinstance(v, kinds[k]) or (k == "input_size" and isinstance(v, bool)):
            want = " or ".join(
                "null" if t is type(None) else ("a list" if t is list else t.__name__)
                for t in kinds[k]
            )
            raise ModelFileError(f"{where}: torch option {k!r} must be {want}; got {v!r}")
    if "head_on" in opts and opts["head_on"] not in HEAD_ON:
        raise ModelFileError(f"{where}: head_on must be one of {HEAD_ON}; got {opts['head_on']!r}")
    if "cells" in opts and (
        not opts["cells"] or not all(isinstance(c, str) for c in opts["cells"])
    ):
        raise ModelFileError(
            f"{where}: torch option 'cells' must be a non-empty list of nn.LSTMCell prefixes "
            f'in the order forward() calls them, e.g. ["lstm1.", "lstm2."]; got {opts["cells"]!r}'
        )
    if "cells" in opts and "lstm_prefix" in opts:
        raise ModelFileError(f"{where}: give 'lstm_prefix' (one LSTM) or 'cells', not both")
    head = opts.get("head")
    if isinstance(head, list):
        for step in head:
            if not isinstance(step, (str, dict)) or (
                isinstance(step, dict) and not isinstance(step.get("module"), str)
            ):
                raise ModelFileError(
                    f"{where}: each entry of torch option 'head' must be a module prefix "
                    f'("fc."), an activation name ("relu") or {{"module": "bn.", "eps": 1e-5}}; '
                    f"got {step!r}"
                )
    if head is not None and "head" in opts:
        missing = [k for k in ("head_on",) if k not in opts]
        if isinstance(head, str) and "head_activation" not in opts:
            missing.append("head_activation")
        if missing:
            raise ModelFileError(
                f"{where}: a state_dict does not say how forward() uses the head {head!r}: "
                f"also give {' and '.join(map(repr, missing))} ("
                + "; ".join(
                    {
                        "head_on": '"all": applied at every step, "last": to the last step only',
                        "head_activation": "what forward() applies after it: "
                        + ", ".join(map(repr, HEAD_ACTIVATIONS)),
                    }[k]
                    for k in missing
                )
                + ")"
            )
    return dict(opts)


# ------------------------------------------------------------------------------- loading
def load_torch(
    path: str | os.PathLike[str],
    *,
    lstm_prefix: str | None = None,
    cells: list[str] | None = None,
    batch_first: bool | None = None,
    input_size: int | None = None,
    head: str | list[Any] | None = _UNSET,
    head_on: str | None = None,
    head_activation: str | None = None,
    embedding: str | None = _UNSET,
    state_dict_key: str | None = None,
    mask_zero: bool | None = None,
) -> Model:
    """Open a PyTorch state_dict (``.pt``/``.pth``/``.bin`` or ``.safetensors``).

    Keyword arguments override the sidecar's ``extra.torch`` entries of the same name
    (:data:`OPTIONS`). Returns a Model with ``format == "pytorch"``, LSTM layers ``lstm_l0``,
    ``lstm_l1``, ... and ``meta["torch"]`` describing what was found.

    A state_dict holds weights, not ``forward()``: lstmviz attaches no embedding and no head
    that the options do not name. A file holding more than one nn.LSTM (or a stack of
    nn.LSTMCells) is refused with a message listing its modules and the sidecars that load
    either the LSTM alone or the whole model; ``.pt2`` (``torch.export``), ONNX and
    ``lstmviz.show(model, x)`` run any ``forward()``.

    ``mask_zero=True`` describes a ``forward()`` that packs a padded batch
    (``pack_padded_sequence``) whose padding is token id 0 after each sequence: the LSTM
    skips those steps and keeps its state (Keras's ``mask_zero``), so the last step's h is
    torch's ``h_n`` and gradients are those of the packed model.
    """
    p = Path(path)
    check_file(p)
    opts = read_options(p)
    given = {
        "lstm_prefix": lstm_prefix,
        "cells": cells,
        "batch_first": batch_first,
        "input_size": input_size,
        "head_on": head_on,
        "head_activation": head_activation,
        "state_dict_key": state_dict_key,
        "mask_zero": mask_zero,
    }
    if lstm_prefix is not None:
        opts.pop("cells", None)
    if cells is not None:
        opts.pop("lstm_prefix", None)
    opts.update({k: v for k, v in given.items() if v is not None})
    if head is not _UNSET:
        opts["head"] = head
    if embedding is not _UNSET:
        opts["embedding"] = embedding
    opts = check_options(opts, "load_torch options")
    sd = read_state_dict(p, opts.get("state_dict_key"))
    return model_from_state_dict(sd, p, opts)


_OTHER_ROUTES = (
    "A state_dict holds weights, not forward(); to see the whole model run by torch, save it "
    "as a torch.export program (torch.export.save(torch.export.export(model, (x,)), "
    "'m.pt2')), export it to ONNX (torch.onnx.export(model, (x,), 'm.onnx', dynamo=False)), "
    "or call lstmviz.show(model, x) from Python"
)


def model_from_state_dict(sd: dict[str, np.ndarray], p: Path, opts: dict[str, Any]) -> Model:
    """Build the engine Model from a state_dict already read (see :func:`load_torch`)."""
    if not sd:
        raise ModelFileError(
            f"{p}: the state_dict is empty: it holds no tensors, so no "
            "nn.LSTM weights (weight_ih_l0, weight_hh_l0, ...)"
        )
    prefixes, cell = _lstm_prefixes(sd, p, opts)
    implied = cell and len(prefixes) > 1 and "cells" not in opts
    stack: list[list[LSTMWeights]] = []
    used: set[str] = set()
    info: dict[str, Any] = {}
    for prefix in prefixes:
        part, part_info, part_used = _lstm_stack(sd, p, prefix, cell)
        if stack:
            prev = stack[-1]
            out = len(prev) * prev[0].output_units
            if part[0][0].input_dim != out:
                raise ModelFileError(
                    f"{p}: cells {prefixes}: {prefix!r} takes {part[0][0].input_dim} inputs, "
                    f"but the cell before it gives {out}; list the cells in the order forward() "
                    "feeds one into the next"
                )
            info["num_layers"] += part_info["num_layers"]
        else:
            info = dict(part_info)
        stack += part
        used |= part_used
    info["lstm_cells"] = prefixes if cell else None
    if "input_size" in opts and opts["input_size"] != info["input_size"]:
        k0 = prefixes[0] + ("weight_ih" if cell else "weight_ih_l0")
        raise ModelFileError(
            f"{p}: the options say input_size {opts['input_size']}, but {k0} has shape "
            f"{tuple(sd[k0].shape)} (input size {info['input_size']})"
        )
    last = stack[-1]
    out_dim = len(last) * last[0].output_units
    modules = _modules(sd, used)
    emb, emb_name = _named_embedding(sd, p, modules, opts, info["input_size"])
    rest = [m for m in modules if m != emb_name]
    head_spec = opts.get("head")
    if implied or (rest and "head" not in opts):
        raise ModelFileError(_unplaced_message(sd, p, modules, prefixes, cell, info, out_dim))
    head_layers: list[L.Layer] = []
    head_used: list[str] = []
    if head_spec is not None:
        steps = [head_spec] if isinstance(head_spec, str) else list(head_spec)
        if opts.get("head_activation") not in (None, "linear"):
            steps.append(opts["head_activation"])
        head_layers, head_used = _head_layers(sd, p, modules, steps, out_dim)
        left = [m for m in rest if m not in head_used]
        if left:
            listing = ", ".join(f"{k} {tuple(sd[k].shape)}" for m in left for k in modules[m])
            raise ModelFileError(
                f"{p}: the head {head_spec!r} leaves weights unplaced: {listing}. Add each module "
                'forward() applies to the head list, in order, or set "head": null to show the '
                "LSTM alone"
            )
    ignored = rest if head_spec is None else []
    batch_first = opts.get("batch_first")
    head_on = opts.get("head_on", "all")
    meta = {
        "torch": {
            **info,
            "lstm_prefix": prefixes[0] if not cell or len(prefixes) == 1 else None,
            "batch_first": batch_first,
            "head": head_spec,
            "head_modules": head_used,
            "embedding": emb_name,
            "head_on": head_on if head_layers else None,
            "ignored": ignored,
        }
    }
    if opts.get("mask_zero") and emb is None:
        raise ModelFileError(
            f"{p}: mask_zero=True marks token id 0 as padding, which needs the nn.Embedding in "
            'front: also give "embedding" (the prefix of its weight, e.g. "emb.")'
        )
    meta["torch"]["mask_zero"] = bool(opts.get("mask_zero", False))
    model = _build(p, stack, emb, emb_name, head_layers, head_on, meta)
    if opts.get("mask_zero"):
        for n in model.nodes:
            if isinstance(n.layer, L.Embedding):
                n.layer.mask_zero = True
    return model


#: Activation names a head list (or head_activation) may use.
HEAD_ACTIVATIONS = (
    "linear",
    "relu",
    "tanh",
    "sigmoid",
    "softmax",
    "log_softmax",
    "gelu",
    "elu",
    "selu",
    "softplus",
    "softsign",
    "silu",
    "leaky_relu",
)


def _module_kind(sd: dict[str, np.ndarray], keys: list[str]) -> str:
    names = {k.rsplit(".", 1)[-1] for k in keys}
    if all(_LSTM_PARAM.match(n) for n in names):
        return "nn.LSTM" if any(n.endswith("_l0") for n in names) else "nn.LSTMCell"
    if {"running_mean", "running_var"} <= names:
        return "BatchNorm"
    if names <= {"weight", "bias"} and "weight" in names:
        w = sd[next(k for k in keys if k.endswith("weight"))]
        if w.ndim == 2:
            return "Linear" if "bias" in names else "Embedding or Linear(bias=False)"
        if w.ndim == 1:
            return "LayerNorm"
    return "?"


def _head_layers(
    sd: dict[str, np.ndarray],
    p: Path,
    modules: dict[str, list[str]],
    steps: list[Any],
    out_dim: int,
) -> tuple[list[L.Layer], list[str]]:
    """Engine layers for the head list: modules (Linear, BatchNorm1d, LayerNorm) and
    activations in the order forward() applies them, each checked against the width before."""
    layers: list[L.Layer] = []
    used: list[str] = []
    width = out_dim
    names: set[str] = set()

    def name_for(mod: str) -> str:
        base = _layer_name(mod, "head")
        n, k = base, 1
        while n in names:
            k += 1
            n = f"{base}_{k}"
        names.add(n)
        return n

    for step in steps:
        eps = None
        if isinstance(step, dict):
            mod = step["module"]
            eps = step.get("eps")
            if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float))):
                raise ModelFileError(f"{p}: head entry {step!r}: eps must be a number")
        else:
            mod = step
        if mod in HEAD_ACTIVATIONS:
            if mod != "linear":
                layers.append(L.Activation(name_for(mod), mod))
            continue
        if mod not in modules:
            raise ModelFileError(
                f"{p}: head entry {mod!r} is neither a module of the state_dict nor an activation "
                f"({', '.join(HEAD_ACTIVATIONS)}); modules: "
                + (", ".join(repr(m) for m in modules) or "(none)")
            )
        keys = modules[mod]
        kind = _module_kind(sd, keys)
        w = next((sd[k] for k in keys if k.endswith(".weight") or k == "weight"), None)
        b = next((sd[k] for k in keys if k.endswith(".bias") or k == "bias"), None)
        shapes = ", ".join(f"{k} {tuple(sd[k].shape)}" for k in keys)
        if kind == "Linear" and w is not None:
            if w.shape[1] != width or (b is not None and b.shape != (w.shape[0],)):
                raise ModelFileError(
                    f"{p}: head module {mod!r} is an nn.Linear({w.shape[1]}, {w.shape[0]}) but "
                    f"what comes before it has {width} features ({shapes})"
                )
            layers.append(
                L.Dense(
                    name_for(mod),
                    np.ascontiguousarray(w.T, dtype=np.float32),
                    None if b is None else b.astype(np.float32),
                    "linear",
                )
            )
            width = int(w.shape[0])
        elif kind in ("BatchNorm", "LayerNorm"):
            c = next(sd[k] for k in keys if k.rsplit(".", 1)[-1] in ("running_mean", "weight"))
            if c.shape != (width,):
                raise ModelFileError(
                    f"{p}: head module {mod!r} ({kind}) normalises {c.shape[0]} features; what "
                    f"comes before it has {width} ({shapes})"
                )
            e = 1e-5 if eps is None else float(eps)  # torch's default eps (not in a state_dict)
            if kind == "BatchNorm":
                get = {k.rsplit(".", 1)[-1]: sd[k] for k in keys}
                layers.append(
                    L.BatchNormalization(
                        name_for(mod),
                        get.get("weight"),
                        get.get("bias"),
                        get["running_mean"],
                        get["running_var"],
                        epsilon=e,
                    )
                )
            else:
                layers.append(L.LayerNormalization(name_for(mod), w, b, epsilon=e))
        else:
            raise ModelFileError(
                f"{p}: head module {mod!r} ({shapes}) is not an nn.Linear, nn.BatchNorm1d or "
                "nn.LayerNorm, the modules a head list can hold"
            )
        used.append(mod)
    return layers, used


def _build(
    p: Path,
    stack: list[list[LSTMWeights]],
    emb: np.ndarray | None,
    emb_name: str | None,
    head: list[L.Layer],
    head_on: str,
    meta: dict[str, Any],
) -> Model:
    """input -> [embedding] -> LSTM layers -> [head layers], as a Model."""
    base = build_stack(
        p.stem,
        str(p),
        "pytorch",
        stack,
        embedding=None if emb is None else (_layer_name(emb_name, "embedding"), emb),
        meta=meta,
    )
    if not head:
        return base
    nodes = list(base.nodes)
    prev = base.outputs[0]
    last = nodes[-1].layer
    if head_on == "last":
        if isinstance(last, L.LSTM):
            last.return_sequences = False  # h_T; the head still shows at every step
        else:
            nodes.append(Node(LastStep("last_step"), 0, [prev]))
            prev = ("last_step", 0, 0)
    for lay in head:
        nodes.append(Node(lay, 0, [prev]))
        prev = (lay.name, 0, 0)
    return Model(p.stem, nodes, base.inputs, [prev], source=str(p), fmt="pytorch", meta=meta)


def _layer_name(prefix: str | None, default: str) -> str:
    name = (prefix or "").rstrip(".").replace(".", "_")
    return name if name and name != "input" and not name.startswith("lstm_l") else default


def _lstm_prefixes(
    sd: dict[str, np.ndarray], p: Path, opts: dict[str, Any]
) -> tuple[list[str], bool]:
    """The prefixes of the LSTM to show (one nn.LSTM, or nn.LSTMCells stacked in order), and
    whether they are nn.LSTMCells."""
    found = sorted({m["prefix"] for k in sd if (m := _LSTM_KEY.match(k))})
    cells: list[str] = []
    for k in sd:
        m = _CELL_KEY.match(k)
        if m and m["prefix"] + "weight_hh" in sd and m["prefix"] not in cells:
            cells.append(m["prefix"])
    if "cells" in opts:
        bad = [c for c in opts["cells"] if c not in cells]
        if bad:
            raise ModelFileError(
                f"{p}: cells {bad} (from the options) name no nn.LSTMCell: there is no key "
                f"{bad[0] + 'weight_ih'!r}; nn.LSTMCells in the file: "
                f"{', '.join(map(repr, cells)) or '(none)'}"
            )
        return list(opts["cells"]), True
    want = opts.get("lstm_prefix")
    if want is not None:
        if want in found:
            return [want], False
        if want in cells:
            return [want], True
        raise ModelFileError(
            f"{p}: lstm_prefix {want!r} (from the options) names no nn.LSTM: there is no key "
            f"{want + 'weight_ih_l0'!r}; LSTM prefixes in the file: "
            f"{', '.join(map(repr, found + cells)) or '(none)'}"
        )
    if len(found) == 1 and not cells:
        return found, False
    if not found and len(cells) > 1 and (order := _chain(sd, cells)) is not None:
        return order, True  # stacked by their sizes: model_from_state_dict asks to confirm
    if len(found) + len(cells) > 1:
        raise ModelFileError(_several_lstms_message(sd, p, found, cells))
    if len(cells) == 1:
        return cells, True
    keys = ", ".join(repr(k) for k in list(sd)[:12]) + (" ..." if len(sd) > 12 else "")
    raise ModelFileError(
        f"{p}: no nn.LSTM weights in the state_dict: expected keys like 'weight_ih_l0', "
        f"'weight_hh_l0' (possibly under a prefix such as 'lstm.'); found {keys}"
    )


def _chain(sd: dict[str, np.ndarray], cells: list[str]) -> list[str] | None:
    """The one order in which the cells' sizes feed one into the next, if there is one."""
    dims = {
        c: (int(sd[c + "weight_ih"].shape[1]), int(sd[c + "weight_hh"].shape[1])) for c in cells
    }
    orders = []
    for start in cells:
        order, left = [start], set(cells) - {start}
        while left:
            nxt = [c for c in left if dims[c][0] == dims[order[-1]][1]]
            if len(nxt) != 1:
                break
            order.append(nxt[0])
            left.discard(nxt[0])
        if not left:
            orders.append(order)
    return orders[0] if len(orders) == 1 else None


def _several_lstms_message(
    sd: dict[str, np.ndarray], p: Path, found: list[str], cells: list[str]
) -> str:
    parts = []
    if found:
        parts.append(f"{len(found)} nn.LSTM(s) ({', '.join(map(repr, found))})")
    if cells:
        parts.append(f"{len(cells)} nn.LSTMCell(s) ({', '.join(map(repr, cells))})")
    msg = (
        f"{p}: the state_dict holds {' and '.join(parts)}; a state_dict does not say how they "
        "connect. "
    )
    if cells and not found:
        order = _chain(sd, cells)
        if order is not None and len(order) > 1:
            msg += (
                "If forward() calls the cells one after the other at each step (each feeding "
                f"the next, as their sizes allow in the order {order}), show them as stacked "
                f"layers: {_sidecar_hint(p, {'cells': order, 'head': None})}. "
            )
    first = (found or cells)[0]
    msg += (
        f"To show one of them alone: {_sidecar_hint(p, {'lstm_prefix': first, 'head': None})} "
        f"(or another prefix). {_OTHER_ROUTES}."
    )
    return msg


def _unplaced_message(
    sd: dict[str, np.ndarray],
    p: Path,
    modules: dict[str, list[str]],
    prefixes: list[str],
    cell: bool,
    info: dict[str, Any],
    out_dim: int,
) -> str:
    """Only the LSTM can be known: say so, list the rest, and the sidecars that load either
    the LSTM alone (exact) or the whole model (once the user says what forward() does)."""
    listing = (
        "; ".join(
            f"{m or '(top level)'} [{_module_kind(sd, ks)}: "
            + ", ".join(f"{k} {tuple(sd[k].shape)}" for k in ks)
            + "]"
            for m, ks in modules.items()
        )
        or "(none)"
    )
    several = cell and len(prefixes) > 1
    lstm_opt: dict[str, Any] = (
        {"cells": prefixes} if cell and len(prefixes) > 1 else {"lstm_prefix": prefixes[0]}
    )
    emb = [
        m
        for m, ks in modules.items()
        if len(ks) == 1
        and ks[0].endswith("weight")
        and sd[ks[0]].ndim == 2
        and sd[ks[0]].shape[1] == info["input_size"]
    ]
    emb_name = emb[0] if len(emb) == 1 else None
    head = []
    for m in modules:
        if m == emb_name:
            continue
        head += [m, "<activation after it, or remove>"]
    whole: dict[str, Any] = {**lstm_opt}
    if emb_name is not None:
        whole["embedding"] = emb_name
    whole["head"] = head
    whole["head_on"] = "<all | last>"
    if several:
        head_msg = (
            f"{p}: the state_dict holds {len(prefixes)} nn.LSTMCells "
            f"({', '.join(map(repr, prefixes))}) whose sizes chain in that order, and a "
            "state_dict does not record how forward() calls them; other modules: "
            f"{listing}. If forward() calls the cells one after the other at each step, each "
            "feeding the next (as pytorch/examples time_sequence_prediction does), show them as "
            "stacked layers (their outputs exactly the cells'): "
            + _sidecar_hint(p, {**lstm_opt, "head": None})
            + "; one of them alone: "
            + json.dumps({"lstm_prefix": prefixes[0], "head": None})
        )
    else:
        head_msg = (
            f"{p}: besides the LSTM at {', '.join(map(repr, prefixes))} the state_dict holds "
            f"modules whose place in forward() it does not record: {listing}. Only the LSTM "
            "can be known from the weights. To show the LSTM alone (its output exactly torch's "
            f"{'nn.LSTMCell' if cell else 'nn.LSTM'} output): "
            + _sidecar_hint(p, {**lstm_opt, "head": None})
        )
    if not any(m != emb_name for m in modules):
        return head_msg + f". {_OTHER_ROUTES}."
    return (
        head_msg
        + ". To show the whole model, say what forward() does: "
        + (
            f'the embedding in front ("embedding", the nn.Embedding {emb_name!r} fits), '
            if emb_name
            else ""
        )
        + '"head" = the modules after the LSTM and the activations between and after them, '
        f"in the order forward() applies them (the first takes the LSTM's {out_dim} outputs), "
        '"head_on" = "all" (at every step) or "last" (the last step only): '
        + _sidecar_hint(p, whole)
        + f" with the <...> placeholders replaced. {_OTHER_ROUTES}."
    )


def _named_embedding(
    sd: dict[str, np.ndarray],
    p: Path,
    modules: dict[str, list[str]],
    opts: dict[str, Any],
    in_dim: int,
) -> tuple[np.ndarray | None, str | None]:
    mod = opts.get("embedding")
    if mod is None:
        return None, None
    k = _param(modules.get(mod, []), "weight")
    if k is None or sd[k].ndim != 2 or sd[k].shape[1] != in_dim:
        raise ModelFileError(
            f"{p}: embedding {mod!r} (from the options) needs a key {mod + 'weight'!r} of "
            f"shape (num_embeddings, {in_dim}); "
            + ("there is none" if k is None else f"found {tuple(sd[k].shape)}")
        )
    return sd[k].astype(np.float32), mod


def _lstm_stack(
    sd: dict[str, np.ndarray], p: Path, prefix: str, cell: bool
) -> tuple[list[list[LSTMWeights]], dict[str, Any], set[str]]:
    used: set[str] = set()

    def get(key: str, required: bool) -> np.ndarray | None:
        if key in sd:
            used.add(key)
            return sd[key]
        if required:
            raise ModelFileError(
                f"{p}: the nn.LSTM at {prefix or '(top level)'!r} is missing "
                f"{key!r} (found {_lstm_keys(sd, prefix)})"
            )
        return None

    if cell:
        layers = [0]
        sfxs = [""]
        names = [["{}"]]
    else:
        idx = {
            (int(m["layer"]), bool(m["rev"]))
            for k in sd
            if (m := _LSTM_KEY.match(k)) and m["prefix"] == prefix
        }
        n = max(i for i, _ in idx) + 1
        layers = list(range(n))
        bidi = any(r for _, r in idx)
        sfxs = ["", "_reverse"] if bidi else [""]
        names = [[f"{{}}_l{k}{s}" for s in sfxs] for k in layers]
        for k in layers:  # every layer and direction must be there
            for s in sfxs:
                get(f"{prefix}weight_ih_l{k}{s}", True)
    stack: list[list[LSTMWeights]] = []
    hidden = proj = None
    in_dim = None
    for k in layers:
        dirs = []
        for pattern in names[k]:

            def key(w: str, pat: str = pattern) -> str:
                return prefix + pat.format(w)

            w_ih = get(key("weight_ih"), True)
            w_hh = get(key("weight_hh"), True)
            assert w_ih is not None and w_hh is not None  # required keys: get() raised otherwise
            b_ih, b_hh = get(key("bias_ih"), False), get(key("bias_hh"), False)
            if (b_ih is None) != (b_hh is None):
                missing = key("bias_ih") if b_ih is None else key("bias_hh")
                raise ModelFileError(
                    f"{p}: the nn.LSTM at {prefix or '(top level)'!r} is "
                    f"missing {missing!r} (the other bias is there)"
                )
            w_hr = get(key("weight_hr"), False)
            try:
                w = (
                    convert.from_torch(w_ih, w_hh, b_ih, b_hh)
                    if w_hr is None
                    else convert.from_torch_proj(w_ih, w_hh, w_hr, b_ih, b_hh)
                )
            except ModelFileError as e:
                raise ModelFileError(f"{p}: {key('*')}: {e}") from None
            if hidden is None:
                hidden, proj, in_dim = w.units, (0 if w_hr is None else w.output_units), w.input_dim
            elif (
                w.units != hidden
                or (w_hr is not None) != bool(proj)
                or (w_hr is not None and w.output_units != proj)
            ):
                raise ModelFileError(
                    f"{p}: {key('weight_hh')} has shape {tuple(w_hh.shape)}, which does not "
                    f"match the hidden size {hidden}"
                    + (f" / proj_size {proj}" if proj else "")
                    + " of the first layer"
                )
            if k > 0:
                expect = len(sfxs) * (proj or hidden)
                if w.input_dim != expect:
                    raise ModelFileError(
                        f"{p}: {key('weight_ih')} has shape {tuple(w_ih.shape)}; expected "
                        f"({4 * hidden}, {expect}): layer {k} takes the {len(sfxs)} direction(s) "
                        f"x {proj or hidden} outputs of layer {k - 1}"
                    )
            dirs.append(w)
        stack.append(dirs)
    assert hidden is not None
    assert in_dim is not None
    info = {
        "num_layers": len(layers),
        "bidirectional": len(sfxs) == 2,
        "num_directions": len(sfxs),
        "hidden_size": hidden,
        "proj_size": proj,
        "input_size": in_dim,
        "bias": stack[0][0].use_bias,
        "lstm_cell": cell,
    }
    return stack, info, used


def _lstm_keys(sd: dict[str, np.ndarray], prefix: str) -> str:
    ks = [
        k[len(prefix) :]
        for k in sd
        if k.startswith(prefix) and re.match(r"(weight|bias)_(ih|hh|hr)", k[len(prefix) :])
    ]
    return ", ".join(ks[:16]) + (" ..." if len(ks) > 16 else "") if ks else "no LSTM keys"


def _modules(sd: dict[str, np.ndarray], used: set[str]) -> dict[str, list[str]]:
    """Keys not used by the LSTM, grouped by module prefix (``"fc."`` -> [fc.weight, fc.bias])."""
    out: dict[str, list[str]] = {}
    for k in sd:
        if k in used:
            continue
        mod = k.rsplit(".", 1)[0] + "." if "." in k else ""
        out.setdefault(mod, []).append(k)
    return out


def _param(keys: list[str], name: str) -> str | None:
    for k in keys:
        if k.rsplit(".", 1)[-1] == name:
            return k
    return None


# ------------------------------------------------------------------------------- layouts
def to_batch_first(model: Model, x: np.ndarray) -> np.ndarray:
    """The user's array as lstmviz's ``(batch, T, ...)`` input.

    For a model whose ``meta["torch"]["batch_first"]`` is False (``nn.LSTM(batch_first=False)``
    declared in the sidecar) ``x`` is taken as torch's ``(T, batch, ...)`` and its first two
    axes are swapped; otherwise ``x`` is returned as is.
    """
    bf = model.meta.get("torch", {}).get("batch_first")
    return np.swapaxes(np.asarray(x), 0, 1) if bf is False else np.asarray(x)


def from_batch_first(model: Model, y: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_batch_first` for a per-timestep output ``(batch, T, ...)``."""
    return to_batch_first(model, y)
