"""Several model inputs from one file: ``inputs.npz`` (one array per model input).

An encoder-decoder (Keras ``lstm_seq2seq``: ``encoder_inputs`` and ``decoder_inputs``) or an
ONNX graph with extra inputs takes several arrays. On a command line, and in File → Open
input, they come as one ``.npz``::

    np.savez("inputs.npz", encoder_inputs=enc, decoder_inputs=dec)   # matched by name
    np.savez("inputs.npz", enc, dec)                                 # or by order

:func:`match_inputs` pairs the arrays with the model's inputs: by input name when the file's
names are the model's, else by order when there are as many arrays as inputs; anything else
is an :class:`~lstmviz.errors.InputError` naming the file, the model's inputs and the arrays
found. Each array gets a batch axis when it is one sequence (the input's rank minus one).

The file is read without pickle (``allow_pickle=False``); every member's header is read and
its shape checked against the input bounds of :mod:`lstmviz.io.inputs` and the memory budget
before its data is.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import budget
from ..errors import InputError

if TYPE_CHECKING:
    from .meta import ModelInfo

MAX_ARRAYS = 256  # an inputs file with more members than this is not a model's inputs


def read_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file, in file order (names as ``np.savez`` gave them).

    Raises
    ------
    InputError
        Not a readable ``.npz``, an object array (needs pickle), too many members, or an
        array larger than the input bounds.
    MemoryBudgetError
        An array over the memory budget.
    """
    from .inputs import _check_shape

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such input file")
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise InputError(f"{p}: not a readable .npz file ({e})") from None
    out: dict[str, np.ndarray] = {}
    with zf:
        members = zf.infolist()
        if len(members) > MAX_ARRAYS:
            raise InputError(
                f"{p}: holds {len(members)} members; an inputs file has at most {MAX_ARRAYS} arrays"
            )
        if not members:
            raise InputError(f"{p}: the .npz file holds no arrays")
        for info in members:
            name = info.filename
            if not name.endswith(".npy"):
                raise InputError(
                    f"{p}: member {name!r} is not a .npy array; write the file with "
                    "np.savez(path, name=array, ...)"
                )
            key = name[: -len(".npy")]
            where = f"{p}: array {key!r}"
            try:
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                    else:
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                    if dtype.hasobject:
                        raise InputError(f"{where}: object arrays are refused (they need pickle)")
                    _check_shape(tuple(shape), where)
                    budget.check_array(tuple(shape), dtype.itemsize, where)
                    count = int(np.prod(shape, dtype=np.int64))
                    data = fh.read(count * dtype.itemsize)
                    if len(data) != count * dtype.itemsize:
                        raise InputError(
                            f"{where}: truncated: {len(data)} of {count * dtype.itemsize} bytes"
                        )
            except InputError:
                raise
            except (ValueError, OSError, EOFError, SyntaxError, zipfile.BadZipFile) as e:
                raise InputError(f"{where}: not a readable .npy member ({e})") from None
            a = np.frombuffer(data, dtype=dtype)
            a = a.reshape(shape, order="F" if fortran else "C")
            out[key] = np.array(a, copy=True)  # writable, owns its memory
    return out


def model_input_names(model: Any) -> list[str]:
    """The names of ``model``'s inputs, in order (``model.input_names`` when the model has
    them, else the engine graph's input layer names)."""
    names = getattr(model, "input_names", None)
    if names is not None:
        return [str(n) for n in names]
    return [str(r[0]) for r in getattr(model, "inputs", [])]


def _optional_inputs(model: Any) -> set[str]:
    return set(getattr(model, "optional_inputs", ()) or ())


def _expected_rank(model: Any, index: int) -> int | None:
    """The rank (with batch) input ``index`` takes, when the model says."""
    ranks = getattr(model, "input_ranks", None)
    if ranks is not None:
        r = ranks[index]
        return None if r is None else int(r)
    refs = getattr(model, "inputs", [])
    layers = getattr(model, "layers", {})
    if index >= len(refs):
        return None
    name = refs[index][0]
    from ..engine.layers import Embedding, InputLayer

    for n in getattr(model, "nodes", []):
        if isinstance(n.layer, Embedding) and any(r[0] == name for r in n.inputs):
            return 2
    lay = layers.get(name)
    if isinstance(lay, InputLayer) and lay.batch_shape:
        return len(lay.batch_shape)
    return 3


def match_inputs(model: Any, arrays: dict[str, np.ndarray], source: str = "inputs") -> Any:
    """Pair ``arrays`` with ``model``'s inputs: by input name, else by order.

    Returns the one array for a single-input model, else a list in the model's input order
    (None for an optional input the file leaves out, e.g. an ONNX graph's h0/c0). A single
    sequence gets a batch axis.
    """
    names = model_input_names(model)
    optional = _optional_inputs(model)
    required = [n for n in names if n not in optional]
    keys = list(arrays)
    listing = ", ".join(f"{k} {tuple(a.shape)}" for k, a in arrays.items()) or "(none)"
    wanted = ", ".join(names) + (
        f" (optional: {', '.join(n for n in names if n in optional)})" if optional else ""
    )
    by_name = set(keys) & set(names)
    if by_name:
        extra = [k for k in keys if k not in names]
        missing = [n for n in required if n not in arrays]
        if extra or missing:
            raise InputError(
                f"{source}: the arrays are matched to the model's inputs by name; "
                + (f"missing {', '.join(map(repr, missing))}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"{', '.join(map(repr, extra))} is not a model input" if extra else "")
                + f". The model's inputs: {wanted}; the file holds: {listing}"
            )
        chosen: list[np.ndarray | None] = [arrays.get(n) for n in names]
    elif len(keys) == len(names) or (
        len(keys) == len(required) and required == names[: len(required)]
    ):
        chosen = [arrays[k] for k in keys] + [None] * (len(names) - len(keys))
    else:
        raise InputError(
            f"{source}: {len(keys)} array(s) for a model with {len(names)} input(s); name "
            f"them after the inputs (np.savez(path, {names[0] if names else 'x'}=...)) or give "
            f"one per input in order. The model's inputs: {wanted}; the file holds: {listing}"
        )
    out: list[np.ndarray | None] = []
    for i, a in enumerate(chosen):
        if a is None:
            out.append(None)
            continue
        rank = _expected_rank(model, i)
        if rank is not None and a.ndim == rank - 1:
            a = a[None]
        out.append(a)
    if len(names) == 1:
        return out[0]
    return out


def load_input_file(model: Any, path: str | os.PathLike[str], info: ModelInfo | None = None) -> Any:
    """The model's input from a file: ``.npz`` (one array per input, :func:`match_inputs`),
    or ``.npy`` / ``.csv`` (one input, :func:`lstmviz.io.inputs.load_input`).

    This is what File → Open input and the ``--input`` option of ``lstmviz``,
    ``lstmviz trace`` and ``lstmviz export`` call.
    """
    p = Path(path)
    if p.suffix.lower() == ".npz":
        return match_inputs(model, read_npz(p), str(p))
    from .inputs import load_input

    names = model_input_names(model)
    if len(names) - len(_optional_inputs(model)) > 1:
        raise InputError(
            f"{p}: the model has {len(names)} inputs ({', '.join(names)}); a {p.suffix or 'file'}"
            f" holds one array. Put one array per input in an .npz: "
            f"np.savez('inputs.npz', {', '.join(f'{n}=...' for n in names[:3])})"
        )
    return load_input(model, path=p, info=info)
