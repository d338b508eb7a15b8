"""Open TensorFlow 1 checkpoints of ``BasicLSTMCell`` / ``LSTMCell`` / ``MultiRNNCell``.

A TF1 checkpoint is a prefix (``model.ckpt``) naming ``model.ckpt.index`` and
``model.ckpt.data-00000-of-00001``; :func:`load_tf1` takes the prefix, the ``.index`` or a
``.data-*`` file. It is read without TensorFlow by :mod:`lstmviz.io.tf1_checkpoint` (the
index's table and the few protobuf fields parsed by hand, checksums verified).

The cells are found by their variable names, as TF1 writes them::

    <scope>/basic_lstm_cell/kernel  (F + U, 4U)  gates i, j, f, o over [x, h]
    <scope>/basic_lstm_cell/bias    (4U,)
    <scope>/multi_rnn_cell/cell_<k>/lstm_cell/kernel ...          stacked layers
    <scope>/bidirectional_rnn/fw|bw/lstm_cell/kernel ...           bidirectional_dynamic_rnn
    .../lstm_cell/projection/kernel (U, P)                         LSTMCell(num_proj=P)

``forget_bias`` (1.0 by default for both cells) is not stored in a checkpoint: it is folded
into the forget-gate bias using the sidecar's ``extra.tf1.forget_bias`` (default 1.0).
What the names cannot say comes from the sidecar ``model.ckpt.lstmviz.json`` (or
``model.lstmviz.json``), key ``extra.tf1`` (:data:`OPTIONS`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import convert
from ..engine.cell import LSTMWeights
from ..engine.model import Model
from ..errors import ModelFileError, UnsupportedLayerError
from .meta import info_path, load_info
from .more_formats import tf1_prefix
from .stacked import HEAD_ON, build_stack

#: Keys of ``extra.tf1`` in the sidecar.
OPTIONS: dict[str, str] = {
    "cells": "the LSTM layers in order: cell scopes, or [fw, bw] pairs, e.g. "
    '["rnn/multi_rnn_cell/cell_0/lstm_cell", "rnn/multi_rnn_cell/cell_1/lstm_cell"]',
    "forget_bias": "the cells' forget_bias (default 1.0, as BasicLSTMCell and LSTMCell)",
    "head": 'the dense layer after the LSTM: {"kernel": name, "bias": name} or a scope whose '
    '"kernel"/"bias" (or "weights"/"biases") it holds; null: none',
    "head_on": '"all" (the head at every timestep, default) or "last" (the last output only)',
    "head_activation": 'activation after the head: "linear" (default), "softmax", "sigmoid"',
    "embedding": "the name of an embedding variable (vocab, input) in front; null: none",
}
_CELL = re.compile(
    r"^(?P<path>(?:.*/)?(?P<kind>basic_lstm_cell|lstm_cell)(?:_\d+)?)"
    r"/(?P<var>kernel|weights)$"
)
_PEEPHOLES = ("w_f_diag", "w_i_diag", "w_o_diag")


def sidecar_path(prefix: Path) -> Path:
    """The checkpoint's sidecar: ``model.ckpt.lstmviz.json`` (what the app finds beside the
    ``.index`` it opened), else an existing ``model.lstmviz.json`` (beside the prefix)."""
    canonical = info_path(Path(str(prefix) + ".index"))
    if canonical.is_file():
        return canonical
    alt = info_path(prefix)
    return alt if alt.is_file() else canonical


def _sidecar_hint(prefix: Path, opts: dict[str, Any]) -> str:
    doc = json.dumps({"format_version": 1, "extra": {"tf1": opts}})
    where = sidecar_path(prefix)
    extra = ' (or add the "tf1" entry to its "extra" object)' if where.exists() else ""
    return f"write {where} containing {doc}{extra}"


def read_options(prefix: Path) -> dict[str, Any]:
    side = sidecar_path(prefix)
    # load_info takes a model path and looks beside it for "<stem>.lstmviz.json"
    info = load_info(side.with_name(side.name[: -len(".lstmviz.json")] + ".model"))
    opts = {} if info is None else info.extra.get("tf1", {})
    where = str(side)
    if not isinstance(opts, dict):
        raise ModelFileError(f"{where}: extra.tf1 must be a JSON object")
    unknown = sorted(set(opts) - set(OPTIONS))
    if unknown:
        raise ModelFileError(
            f"{where}: unknown tf1 option(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(OPTIONS)}"
        )
    fb = opts.get("forget_bias", 1.0)
    if isinstance(fb, bool) or not isinstance(fb, (int, float)):
        raise ModelFileError(f"{where}: tf1 option 'forget_bias' must be a number; got {fb!r}")
    if opts.get("head_on", "all") not in HEAD_ON:
        raise ModelFileError(
            f"{where}: tf1 option 'head_on' must be one of {HEAD_ON}; got {opts['head_on']!r}"
        )
    cells = opts.get("cells")
    if cells is not None and (
        not isinstance(cells, list)
        or not cells
        or not all(
            isinstance(c, str)
            or (isinstance(c, list) and len(c) == 2 and all(isinstance(s, str) for s in c))
            for c in cells
        )
    ):
        raise ModelFileError(
            f"{where}: tf1 option 'cells' must be a non-empty list of cell "
            "scopes (strings) or [forward, backward] pairs of them"
        )
    return dict(opts)


def read_checkpoint(prefix: Path) -> dict[str, np.ndarray]:
    """Every numeric variable of a TF1 checkpoint as a NumPy array, read without TensorFlow
    (:mod:`lstmviz.io.tf1_checkpoint`)."""
    if not Path(str(prefix) + ".index").is_file():
        raise ModelFileError(
            f"{prefix}: no such TF1 checkpoint: expected {prefix.name}.index and "
            f"{prefix.name}.data-00000-of-00001 in {prefix.parent}"
        )
    if not any(prefix.parent.glob(prefix.name + ".data-*")):
        raise ModelFileError(
            f"{prefix}: the checkpoint's data file {prefix.name}.data-* is "
            f"missing (only {prefix.name}.index is there)"
        )
    from .tf1_checkpoint import read_checkpoint_raw

    return read_checkpoint_raw(prefix)


def load_tf1(path: str | os.PathLike[str]) -> Model:
    """Open a TF1 checkpoint (prefix, ``.index`` or ``.data-*`` path) as a Model
    (``format == "tf1"``, layers ``lstm_l0``, ``lstm_l1``, ...)."""
    p = Path(path)
    prefix = tf1_prefix(p) or p
    opts = read_options(prefix)
    var = read_checkpoint(prefix)
    return model_from_variables(var, prefix, opts)


def _cell_paths(var: dict[str, np.ndarray]) -> list[str]:
    return [m["path"] for k in var if (m := _CELL.match(k))]


def _arrange(paths: list[str], prefix: Path) -> list[list[str]]:
    """Cell scopes -> layers of [cell] or [fw, bw], from MultiRNNCell / bidirectional names."""
    stacks: dict[str, dict[tuple[int, str], str]] = {}
    for path in paths:
        parts = path.split("/")
        layer, direction, key = 0, "", []
        for i, part in enumerate(parts):
            m = re.fullmatch(r"cell_(\d+)", part)
            if m and i > 0 and parts[i - 1] in ("multi_rnn_cell", "stack_bidirectional_rnn"):
                if direction:
                    raise UnsupportedLayerError(
                        f"{prefix}: {path!r} is a MultiRNNCell inside one direction of a "
                        "bidirectional_dynamic_rnn (each direction a whole stack); lstmviz shows "
                        "per-layer bidirectional stacks only (stack_bidirectional_dynamic_rnn)"
                    )
                layer = int(m.group(1))
                key.append("cell_*")
            elif part in ("fw", "bw") and i > 0 and parts[i - 1].startswith("bidirectional_rnn"):
                direction = part
                key.append("*")
            else:
                key.append(part)
        slot = stacks.setdefault("/".join(key), {})
        slot[(layer, direction)] = path
    if len(stacks) > 1:
        example = [sorted(s.values())[0] for s in stacks.values()]
        raise ModelFileError(
            f"{prefix}: the checkpoint holds {len(stacks)} separate LSTM stacks ("
            + ", ".join(repr(sorted(s.values())[0]) for s in stacks.values())
            + "); say which cells form the model, in order: "
            + _sidecar_hint(prefix, {"cells": example[:1]})
        )
    (slots,) = stacks.values()
    n = max(k for k, _ in slots) + 1
    layers = []
    for k in range(n):
        dirs = sorted(d for kk, d in slots if kk == k)
        if dirs == [""]:
            layers.append([slots[(k, "")]])
        elif dirs == ["bw", "fw"]:
            layers.append([slots[(k, "fw")], slots[(k, "bw")]])
        else:
            have = ", ".join(sorted(slots.values()))
            raise ModelFileError(
                f"{prefix}: LSTM layer {k} is missing"
                + (
                    f" (no cell_{k} variables)"
                    if not dirs
                    else f" its {'forward (fw)' if 'fw' not in dirs else 'backward (bw)'} cell"
                )
                + f"; cells found: {have}"
            )
    return layers


def _cell_weights(
    var: dict[str, np.ndarray], path: str, prefix: Path, forget_bias: float, in_dim: int | None
) -> LSTMWeights:
    kernel = var.get(path + "/kernel", var.get(path + "/weights"))
    bias = var.get(path + "/bias", var.get(path + "/biases"))
    if kernel is None:
        raise ModelFileError(f"{prefix}: cell {path!r} has no kernel ({path}/kernel)")
    if bias is None:
        raise ModelFileError(f"{prefix}: cell {path!r} is missing {path + '/bias'!r}")
    peep = [v for v in _PEEPHOLES if f"{path}/{v}" in var]
    if peep:
        raise UnsupportedLayerError(
            f"{prefix}: cell {path!r} uses peepholes ({', '.join(peep)}: "
            "LSTMCell(use_peepholes=True)); lstmviz's engine has no peephole connections"
        )
    proj = var.get(path + "/projection/kernel", var.get(path + "/projection/weights"))
    kernel = np.asarray(kernel, np.float32)
    if kernel.ndim != 2 or kernel.shape[1] % 4:
        raise ModelFileError(
            f"{prefix}: {path}/kernel has shape {kernel.shape}; expected (input + units, 4*units)"
        )
    u = kernel.shape[1] // 4
    try:
        if proj is None:
            return convert.from_tf1(kernel, bias, forget_bias=forget_bias, input_dim=in_dim)
        proj = np.asarray(proj, np.float32)
        if proj.ndim != 2 or proj.shape[0] != u:
            raise ModelFileError(f"projection/kernel has shape {proj.shape}; expected ({u}, P)")
        pdim = proj.shape[1]
        f = kernel.shape[0] - pdim
        if f <= 0 or (in_dim is not None and f != in_dim):
            raise ModelFileError(
                f"kernel has {kernel.shape[0]} rows; expected input + num_proj"
                f" = {'?' if in_dim is None else in_dim} + {pdim}"
            )
        b = np.asarray(bias, np.float32)
        if b.shape != (4 * u,):
            raise ModelFileError(f"bias has shape {b.shape}; expected ({4 * u},)")
        b = _reorder_tf1(b[None], u)[0].copy()  # i, f, c, o
        b[u : 2 * u] += np.float32(forget_bias)
        return LSTMWeights(
            _reorder_tf1(kernel[:f], u), _reorder_tf1(kernel[f:], u), b, projection=proj
        )
    except ModelFileError as e:
        raise ModelFileError(f"{prefix}: cell {path!r}: {e}") from None


def _reorder_tf1(k: np.ndarray, u: int) -> np.ndarray:
    """Columns i, j, f, o -> i, f, c, o."""
    i, j, f, o = (k[:, n * u : (n + 1) * u] for n in range(4))
    return np.concatenate([i, f, j, o], axis=1)


def _dense_pairs(var: dict[str, np.ndarray], used: set[str]) -> dict[str, tuple[str, str | None]]:
    """``scope -> (kernel name, bias name)`` for tf.layers.dense / slim style variables."""
    out = {}
    for name, a in var.items():
        if name in used or a.ndim != 2:
            continue
        scope, _, leaf = name.rpartition("/")
        if leaf not in ("kernel", "weights"):
            continue
        b = scope + ("/bias" if leaf == "kernel" else "/biases")
        out[scope] = (name, b if b in var and var[b].ndim == 1 else None)
    return out


def _pick_head(
    var: dict[str, np.ndarray],
    prefix: Path,
    opts: dict[str, Any],
    out_dim: int,
    used: set[str],
    cells: list[Any],
) -> tuple[tuple[str, np.ndarray, np.ndarray | None] | None, list[str]]:
    """The head (name, kernel (D, K), bias) and the variable names it uses."""
    pairs = _dense_pairs(var, used)
    if "head" in opts:
        h = opts["head"]
        if h is None:
            return None, []
        if isinstance(h, str):
            if h not in pairs:
                raise ModelFileError(
                    f"{prefix}: head {h!r} (from the sidecar) names no dense layer: expected "
                    f"{h + '/kernel'!r} (and {h + '/bias'!r}); dense scopes found: "
                    f"{', '.join(map(repr, pairs)) or '(none)'}"
                )
            kname, bname = pairs[h]
        elif isinstance(h, dict) and isinstance(h.get("kernel"), str):
            kname, bname = h["kernel"], h.get("bias")
            for n in (kname, bname):
                if n is not None and n not in var:
                    raise ModelFileError(
                        f"{prefix}: head variable {n!r} (from the sidecar) is not in the checkpoint"
                    )
        else:
            raise ModelFileError(
                f"{prefix}: tf1 option 'head' must be a scope name, "
                '{"kernel": name, "bias": name} or null'
            )
        k = np.asarray(var[kname], np.float32)
        b = None if bname is None else np.asarray(var[bname], np.float32)
        if k.ndim != 2 or k.shape[0] != out_dim or (b is not None and b.shape != (k.shape[1],)):
            raise ModelFileError(
                f"{prefix}: head {kname!r} {k.shape}"
                + ("" if b is None else f" / {bname!r} {b.shape}")
                + f" does not fit after the LSTM: expected kernel ({out_dim}, K) and bias (K,)"
            )
        scope = kname.rpartition("/")[0] or "head"
        return (scope.replace("/", "_"), k, b), [n for n in (kname, bname) if n]
    cands = [s for s, (k, _) in pairs.items() if var[k].shape[0] == out_dim]
    if len(cands) > 1:
        raise ModelFileError(
            f"{prefix}: several dense layers could follow the LSTM "
            f"({', '.join(map(repr, cands))}); say which one: "
            + _sidecar_hint(prefix, {"cells": cells, "head": cands[0]})
        )
    if not cands:
        return None, []
    kname, bname = pairs[cands[0]]
    b = None if bname is None else np.asarray(var[bname], np.float32)
    name = cands[0].replace("/", "_") or "head"
    return (name, np.asarray(var[kname], np.float32), b), [n for n in (kname, bname) if n]


def model_from_variables(var: dict[str, np.ndarray], prefix: Path, opts: dict[str, Any]) -> Model:
    """Build the Model from a checkpoint's variables (see :func:`load_tf1`)."""
    if "cells" in opts:
        layers = [[c] if isinstance(c, str) else list(c) for c in opts["cells"]]
        for layer in layers:
            for c in layer:
                if c + "/kernel" not in var and c + "/weights" not in var:
                    raise ModelFileError(
                        f"{prefix}: cell {c!r} (from the sidecar) has no variable {c + '/kernel'!r}"
                        f"; LSTM cells found: {', '.join(map(repr, _cell_paths(var))) or '(none)'}"
                    )
    else:
        paths = _cell_paths(var)
        if not paths:
            names = sorted(var)
            from .weights_only import tf_checkpoint_weights_only

            if (weights_only := tf_checkpoint_weights_only(names, str(prefix))) is not None:
                raise weights_only
            hint = ""
            if any(".ATTRIBUTES" in n for n in names):
                hint = (
                    " This is a TF2 object-based checkpoint (tf.train.Checkpoint / "
                    "model.save_weights): save the Keras model with model.save('m.keras') "
                    "and open that instead."
                )
            raise ModelFileError(
                f"{prefix}: no TF1 LSTM cell variables in the checkpoint: expected names like "
                "'rnn/basic_lstm_cell/kernel' and '.../bias' (BasicLSTMCell), "
                "'rnn/multi_rnn_cell/cell_0/lstm_cell/kernel' (MultiRNNCell of LSTMCell); found "
                + (
                    ", ".join(repr(n) for n in names[:12]) + (" ..." if len(names) > 12 else "")
                    if names
                    else "no variables"
                )
                + "."
                + hint
            )
        layers = _arrange(paths, prefix)
    fb = float(opts.get("forget_bias", 1.0))
    stack: list[list[LSTMWeights]] = []
    used: set[str] = set()
    in_dim = None
    for k, layer in enumerate(layers):
        dirs = [_cell_weights(var, c, prefix, fb, in_dim) for c in layer]
        for c in layer:
            used |= {n for n in var if n.startswith(c + "/")}
        if len({(w.units, w.output_units, w.input_dim) for w in dirs}) > 1:
            raise ModelFileError(
                f"{prefix}: the forward and backward cells of layer {k} "
                f"({', '.join(layer)}) differ in shape"
            )
        if k > 0 and dirs[0].input_dim != in_dim:
            raise ModelFileError(
                f"{prefix}: cell {layer[0]!r} takes {dirs[0].input_dim} inputs; expected {in_dim}"
                f" (the outputs of layer {k - 1})"
            )
        in_dim = len(dirs) * dirs[0].output_units
        stack.append(dirs)
    assert in_dim is not None
    emb = None
    if opts.get("embedding") is not None:
        name = opts["embedding"]
        table = var.get(name)
        f = stack[0][0].input_dim
        if table is None or table.ndim != 2 or table.shape[1] != f:
            raise ModelFileError(
                f"{prefix}: embedding {name!r} (from the sidecar) must be a variable of shape "
                f"(vocab, {f}); "
                + ("there is none" if table is None else f"found {tuple(table.shape)}")
            )
        emb = (name.replace("/", "_"), np.asarray(table, np.float32))
        used.add(name)
    cells_json = [c if len(c) == 2 else c[0] for c in layers]
    head, head_vars = _pick_head(var, prefix, opts, in_dim, used, cells_json)
    used |= set(head_vars)
    slots = re.compile(
        r"/(Adam|Adam_\d+|Momentum|RMSProp|RMSProp_\d+|Adagrad|Ftrl|Ftrl_\d+|"
        r"ExponentialMovingAverage)$|^(beta[12]_power|global_step)$"
    )
    ignored = sorted(n for n in var if n not in used and not slots.search(n))
    meta = {
        "tf1": {
            "cells": cells_json,
            "forget_bias": fb,
            "head": head_vars,
            "num_layers": len(stack),
            "bidirectional": len(stack[0]) == 2,
            "units": [d[0].units for d in stack],
            "num_proj": [None if d[0].projection is None else d[0].output_units for d in stack],
            "cell_types": [re.sub(r"_\d+$", "", c[0].rsplit("/", 1)[-1]) for c in layers],
            "ignored": ignored,
        }
    }
    return build_stack(
        prefix.name,
        str(prefix),
        "tf1",
        stack,
        embedding=emb,
        head=None if head is None else (*head, opts.get("head_activation", "linear")),
        head_on=opts.get("head_on", "all"),
        meta=meta,
    )
