"""Open PyTorch ``nn.LSTM`` state_dicts: ``torch.save`` files and safetensors (issue 8).

Safety: ``.pt``/``.pth``/``.bin`` are read with ``torch.load(..., weights_only=True)`` (torch's
restricted unpickler: tensors, dicts, lists, numbers; nothing else) and never with plain
pickle; a file that needs more (a whole pickled ``nn.Module``) is refused. ``.safetensors`` are
read with the safetensors package's NumPy API, or, without it, by a small bounds-checked reader
of the format (8-byte header length + JSON header + raw little-endian buffers). No torch is
needed for safetensors.

A state_dict has weights, not a graph. lstmviz finds the ``nn.LSTM`` by its keys
(``<prefix>weight_ih_l0`` ...) and builds ``input -> [embedding] -> lstm_l0 -> ... -> [head]``
(:mod:`lstmviz.io.stacked`). What the keys cannot say comes from the model's sidecar
``<stem>.lstmviz.json``, key ``extra.torch`` (see :data:`OPTIONS` and ``docs/formats.md``)::

    {"format_version": 1,
     "extra": {"torch": {"lstm_prefix": "rnn.", "batch_first": true, "head": "fc."}}}
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
from ..engine.cell import LSTMWeights
from ..engine.model import Model
from ..errors import MissingDependencyError, ModelFileError, UnsafeModelError
from .meta import info_path, load_info
from .more_formats import check_file
from .stacked import HEAD_ON, build_stack

TORCH_SUFFIXES = (".pt", ".pth", ".bin")
SAFETENSORS_SUFFIXES = (".safetensors",)

#: Keys of ``extra.torch`` in the sidecar, and what each says.
OPTIONS: dict[str, str] = {
    "lstm_prefix": 'which keys form the nn.LSTM: the prefix of "weight_ih_l0", e.g. "rnn."',
    "batch_first": "whether the nn.LSTM was built with batch_first=True (recorded, see docs)",
    "input_size": "the LSTM's input size (checked against weight_ih_l0)",
    "head": 'the Linear after the LSTM, e.g. "fc." (null: no head, ignore other weights)',
    "head_on": '"all" (the head at every timestep, default) or "last" (output[:, -1] only)',
    "head_activation": 'activation after the head: "linear" (default), "softmax", "sigmoid"',
    "embedding": 'the nn.Embedding in front, e.g. "emb." (null: none)',
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
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if m:
            raise UnsafeModelError(
                f"{p}: refused: the file holds Python objects other than tensors ({m.group(1)}; "
                "e.g. a whole pickled nn.Module), which only an unsafe unpickler could read. "
                "Save the weights instead: torch.save(model.state_dict(), path)"
            ) from None
        raise ModelFileError(
            f"{p}: not a readable torch.save file (the weights-only unpickler rejects its contents)"
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
    try:
        raw = load_file(str(p))
    except (SafetensorError, TypeError, ValueError, OSError):
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
            dt = _ST_DTYPES.get(spec["dtype"])
            if dt is None:
                raise ModelFileError(f"{where}: unsupported dtype {spec['dtype']!r}")
            shape, offs = spec["shape"], spec["data_offsets"]
            if (
                not isinstance(shape, list)
                or not all(isinstance(d, int) and d >= 0 for d in shape)
                or not isinstance(offs, list)
                or len(offs) != 2
                or not all(isinstance(o, int) for o in offs)
            ):
                raise ModelFileError(f"{where}: malformed shape or data_offsets")
            start, end = offs
            count = int(np.prod(shape, dtype=np.int64))
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
    kinds = {
        "lstm_prefix": (str,),
        "batch_first": (bool,),
        "input_size": (int,),
        "head": (str, type(None)),
        "head_on": (str,),
        "head_activation": (str,),
        "embedding": (str, type(None)),
        "state_dict_key": (str,),
    }
    for k, v in opts.items():
        if not isinstance(v, kinds[k]) or (k == "input_size" and isinstance(v, bool)):
            want = " or ".join("null" if t is type(None) else t.__name__ for t in kinds[k])
            raise ModelFileError(f"{where}: torch option {k!r} must be {want}; got {v!r}")
    if opts.get("head_on", "all") not in HEAD_ON:
        raise ModelFileError(f"{where}: head_on must be one of {HEAD_ON}; got {opts['head_on']!r}")
    return dict(opts)


# ------------------------------------------------------------------------------- loading
def load_torch(
    path: str | os.PathLike[str],
    *,
    lstm_prefix: str | None = None,
    batch_first: bool | None = None,
    input_size: int | None = None,
    head: str | None = _UNSET,
    head_on: str | None = None,
    head_activation: str | None = None,
    embedding: str | None = _UNSET,
    state_dict_key: str | None = None,
) -> Model:
    """Open a PyTorch state_dict (``.pt``/``.pth``/``.bin`` or ``.safetensors``).

    Keyword arguments override the sidecar's ``extra.torch`` entries of the same name
    (:data:`OPTIONS`). Returns a Model with ``format == "pytorch"``, LSTM layers ``lstm_l0``,
    ``lstm_l1``, ... and ``meta["torch"]`` describing what was found.
    """
    p = Path(path)
    check_file(p)
    opts = read_options(p)
    given = {
        "lstm_prefix": lstm_prefix,
        "batch_first": batch_first,
        "input_size": input_size,
        "head_on": head_on,
        "head_activation": head_activation,
        "state_dict_key": state_dict_key,
    }
    opts.update({k: v for k, v in given.items() if v is not None})
    if head is not _UNSET:
        opts["head"] = head
    if embedding is not _UNSET:
        opts["embedding"] = embedding
    opts = check_options(opts, "load_torch options")
    sd = read_state_dict(p, opts.get("state_dict_key"))
    return model_from_state_dict(sd, p, opts)


def model_from_state_dict(sd: dict[str, np.ndarray], p: Path, opts: dict[str, Any]) -> Model:
    """Build the engine Model from a state_dict already read (see :func:`load_torch`)."""
    if not sd:
        raise ModelFileError(
            f"{p}: the state_dict is empty: it holds no tensors, so no "
            "nn.LSTM weights (weight_ih_l0, weight_hh_l0, ...)"
        )
    prefix, cell = _lstm_prefix(sd, p, opts)
    stack, info, used = _lstm_stack(sd, p, prefix, cell)
    if "input_size" in opts and opts["input_size"] != info["input_size"]:
        k0 = prefix + ("weight_ih" if cell else "weight_ih_l0")
        raise ModelFileError(
            f"{p}: the options say input_size {opts['input_size']}, but {k0} has shape "
            f"{tuple(sd[k0].shape)} (input size {info['input_size']})"
        )
    out_dim = info["num_directions"] * (info["proj_size"] or info["hidden_size"])
    modules = _modules(sd, used)
    emb, emb_name = _pick_embedding(sd, p, modules, opts, info["input_size"])
    head, head_name = _pick_head(sd, p, modules, opts, out_dim, prefix)
    rest = sorted(set(modules) - {emb_name, head_name})
    if "lstm_prefix" in opts:  # the user chose this LSTM: the file's other LSTMs are ignored
        rest = [m for m in rest if not all(_LSTM_PARAM.match(k[len(m) :]) for k in modules[m])]
    if rest and "head" not in opts:
        listing = ", ".join(f"{k} {tuple(sd[k].shape)}" for m in rest for k in modules[m])
        raise ModelFileError(
            f"{p}: besides the nn.LSTM at {prefix or '(top level)'!r} the state_dict holds "
            f"weights lstmviz cannot place: {listing}. Say which nn.Linear follows the LSTM "
            "(its in_features must be "
            f"{out_dim}), or that there is none and the rest is to be ignored: "
            + _sidecar_hint(p, {"lstm_prefix": prefix, "head": head_name})
        )
    batch_first = opts.get("batch_first")
    meta = {
        "torch": {
            **info,
            "lstm_prefix": prefix,
            "batch_first": batch_first,
            "head": head_name,
            "embedding": emb_name,
            "head_on": opts.get("head_on", "all"),
            "ignored": rest,
        }
    }
    return build_stack(
        p.stem,
        str(p),
        "pytorch",
        stack,
        embedding=None if emb is None else (_layer_name(emb_name, "embedding"), emb),
        head=None
        if head is None
        else (
            _layer_name(head_name, "head"),
            head[0],
            head[1],
            opts.get("head_activation", "linear"),
        ),
        head_on=opts.get("head_on", "all"),
        meta=meta,
    )


def _layer_name(prefix: str | None, default: str) -> str:
    name = (prefix or "").rstrip(".")
    return name if name and name != "input" and not name.startswith("lstm_l") else default


def _lstm_prefix(sd: dict[str, np.ndarray], p: Path, opts: dict[str, Any]) -> tuple[str, bool]:
    """The prefix of the nn.LSTM keys, and whether they are an nn.LSTMCell's."""
    found = sorted({m["prefix"] for k in sd if (m := _LSTM_KEY.match(k))})
    cells = sorted(
        {m["prefix"] for k in sd if (m := _CELL_KEY.match(k)) and m["prefix"] + "weight_hh" in sd}
    )
    want = opts.get("lstm_prefix")
    if want is not None:
        if want in found:
            return want, False
        if want in cells:
            return want, True
        raise ModelFileError(
            f"{p}: lstm_prefix {want!r} (from the options) names no nn.LSTM: there is no key "
            f"{want + 'weight_ih_l0'!r}; LSTM prefixes in the file: "
            f"{', '.join(map(repr, found + cells)) or '(none)'}"
        )
    if len(found) == 1:
        return found[0], False
    if len(found) > 1:
        raise ModelFileError(
            f"{p}: the state_dict holds {len(found)} nn.LSTMs ({', '.join(map(repr, found))}); "
            f"say which one to show: {_sidecar_hint(p, {'lstm_prefix': found[0]})}"
        )
    if len(cells) == 1:
        return cells[0], True
    if len(cells) > 1:
        raise ModelFileError(
            f"{p}: the state_dict holds {len(cells)} nn.LSTMCells ({', '.join(map(repr, cells))})"
            f"; say which one to show: {_sidecar_hint(p, {'lstm_prefix': cells[0]})}"
        )
    keys = ", ".join(repr(k) for k in list(sd)[:12]) + (" ..." if len(sd) > 12 else "")
    raise ModelFileError(
        f"{p}: no nn.LSTM weights in the state_dict: expected keys like 'weight_ih_l0', "
        f"'weight_hh_l0' (possibly under a prefix such as 'lstm.'); found {keys}"
    )


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
            key = lambda w, pat=pattern: prefix + pat.format(w)  # noqa: E731
            w_ih = get(key("weight_ih"), True)
            w_hh = get(key("weight_hh"), True)
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


def _pick_embedding(
    sd: dict[str, np.ndarray],
    p: Path,
    modules: dict[str, list[str]],
    opts: dict[str, Any],
    in_dim: int,
) -> tuple[np.ndarray | None, str | None]:
    if "embedding" in opts:
        mod = opts["embedding"]
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
    cands = [
        m
        for m, ks in modules.items()
        if "emb" in m.lower()
        and len(ks) == 1
        and (k := _param(ks, "weight")) is not None
        and sd[k].ndim == 2
        and sd[k].shape[1] == in_dim
    ]
    if len(cands) == 1:
        return sd[cands[0] + "weight"].astype(np.float32), cands[0]
    return None, None


def _pick_head(
    sd: dict[str, np.ndarray],
    p: Path,
    modules: dict[str, list[str]],
    opts: dict[str, Any],
    out_dim: int,
    prefix: str,
) -> tuple[tuple[np.ndarray, np.ndarray | None] | None, str | None]:
    def linear(mod: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        ks = modules.get(mod, [])
        w, b = _param(ks, "weight"), _param(ks, "bias")
        if w is None or sd[w].ndim != 2 or sd[w].shape[1] != out_dim or set(ks) - {w, b}:
            return None
        bias = None if b is None else sd[b]
        if bias is not None and bias.shape != (sd[w].shape[0],):
            return None
        return (
            np.ascontiguousarray(sd[w].T, dtype=np.float32),  # (out, in) -> (in, out)
            None if bias is None else bias.astype(np.float32),
        )

    if "head" in opts:
        mod = opts["head"]
        if mod is None:
            return None, None
        got = linear(mod)
        if got is None:
            ks = modules.get(mod, [])
            found = ", ".join(f"{k} {tuple(sd[k].shape)}" for k in ks) or "no such keys"
            raise ModelFileError(
                f"{p}: head {mod!r} (from the options) is not an nn.Linear after the LSTM: "
                f"expected {mod + 'weight'!r} of shape (out_features, {out_dim}) and optionally "
                f"{mod + 'bias'!r}; found {found}"
            )
        return got, mod
    cands = [m for m in modules if linear(m) is not None and "emb" not in m.lower()]
    if len(cands) == 1:
        return linear(cands[0]), cands[0]
    if len(cands) > 1:
        raise ModelFileError(
            f"{p}: several nn.Linear layers could follow the LSTM ({', '.join(map(repr, cands))})"
            f"; say which one: {_sidecar_hint(p, {'lstm_prefix': prefix, 'head': cands[0]})}"
        )
    return None, None


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
