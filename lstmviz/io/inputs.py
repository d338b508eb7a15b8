"""Inputs: ``.npy`` / ``.csv`` files and typed text, turned into what a model takes.

:func:`load_input` returns ``(batch, T, F)`` float32 or ``(batch, T)`` int64 token ids, with a
batch axis added to a single sequence. :func:`encode_text` / :func:`token_labels` go between
text and tokens using the model's vocabulary (:mod:`lstmviz.io.meta`).
"""

from __future__ import annotations

import array
import os
import re
import tokenize
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .. import budget
from ..engine.layers import Embedding
from ..errors import InputError, MemoryBudgetError
from .checks import regular_file
from .meta import ModelInfo, load_info


class InputModel(Protocol):
    """What inputs need of a model: an engine :class:`~lstmviz.engine.Model`, a whole-graph
    model (ONNX) or a live framework model (:mod:`lstmviz.bridge`) -- each has these members."""

    @property
    def source(self) -> str: ...

    @property
    def takes_tokens(self) -> bool: ...

    @property
    def input_features(self) -> int | None: ...

    @property
    def input_timesteps(self) -> int | None: ...

    @property
    def embedding(self) -> Any: ...  # .input_dim, .mask_zero; None without one

    @property
    def inputs(self) -> Sequence[tuple[str, int, int]]: ...

    @property
    def layers(self) -> Mapping[str, Any]: ...


MAX_INPUT_ELEMENTS = 200_000_000  # ~800 MB of float32: refuse before reading anything larger
MAX_TIMESTEPS = 10_000_000
_MAX_CSV_LINE = 10_000_000  # characters in one CSV line (one timestep)


def _check_shape(shape: tuple[int, ...], source: str) -> None:
    n = int(np.prod(shape, dtype=np.float64)) if shape else 1
    if n > MAX_INPUT_ELEMENTS:
        raise InputError(
            f"{source}: array of shape {shape} ({n} elements) is too large; the "
            f"limit is {MAX_INPUT_ELEMENTS} elements"
        )
    # (T,), (T, F) or (batch, T), (batch, T, F): the time axis is 0, either of 0/1, or 1
    t = (
        shape[0]
        if len(shape) == 1
        else max(shape)
        if len(shape) == 2
        else shape[-2]
        if len(shape) >= 3
        else 0
    )
    if t > MAX_TIMESTEPS:
        raise InputError(f"{source}: {shape} has more than {MAX_TIMESTEPS} timesteps")


def read_array(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a ``.npy`` (never pickled) or ``.csv`` (numbers, comma/space separated) file.

    Both go through the same bounds (:data:`MAX_INPUT_ELEMENTS`, :data:`MAX_TIMESTEPS`, the
    memory budget) before their values are held: a ``.npy`` by its header, a CSV as it is
    read, line by line, into a compact buffer.
    """
    p = Path(path)
    size = regular_file(p, "input file", InputError, allow_empty=True)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        try:
            with open(p, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                else:
                    shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            if dtype.hasobject:
                raise InputError(f"{p}: object arrays are refused (they need pickle)")
            if dtype.kind not in "biuf":
                raise InputError(
                    f"{p}: the array holds {dtype} values; an input must be numbers "
                    "(integers or floats)"
                )
            _check_shape(tuple(shape), str(p))
            budget.check_array(tuple(shape), dtype.itemsize, what=f"{p}: input array")
            try:
                return np.asarray(np.load(p, allow_pickle=False))
            except MemoryError:
                raise MemoryBudgetError(f"{p}: ran out of memory reading the array") from None
        except InputError:
            raise
        except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError) as e:
            # numpy parses the header's dict literal with tokenize/ast: damage shows up as these
            raise InputError(f"{p}: not a readable .npy file ({e})") from None
    if suffix in (".csv", ".txt", ".tsv"):
        if size > 4 * MAX_INPUT_ELEMENTS:
            raise InputError(f"{p}: CSV file is too large")
        try:
            return _read_csv(p)
        except MemoryError:  # the last line of defence: the buffer is checked as it grows
            raise MemoryBudgetError(
                f"{p}: ran out of memory reading the CSV (set LSTMVIZ_MEMORY_BUDGET lower so "
                "such inputs are refused before reading)"
            ) from None
    raise InputError(
        f"{p}: unsupported input file type {suffix!r}; use .npy or .csv (or .npz: one array "
        "per model input)"
    )


def _read_csv(p: Path) -> np.ndarray:
    """Numbers from a CSV, one row per line (a header line and ``#`` comments skipped),
    bounded as it is read: values go into a float64 buffer (8 bytes each, no Python object
    per value), checked against the element, timestep and memory bounds every line."""
    values = array.array("d")
    width = None
    rows = 0
    try:
        fh = open(p, encoding="utf-8", newline=None)  # noqa: SIM115 - closed below
    except OSError as e:
        raise InputError(f"{p}: cannot read as text ({e.strerror})") from None
    with fh:
        try:
            for ln, line in enumerate(fh, 1):
                if len(line) > _MAX_CSV_LINE:
                    raise InputError(
                        f"{p}: line {ln} is longer than {_MAX_CSV_LINE} characters; one line "
                        "is one timestep"
                    )
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.replace(",", " ").replace(";", " ").split()
                if not parts:  # only separators
                    continue
                try:
                    row = list(map(float, parts))
                except ValueError:
                    if not rows and ln == 1:  # a header line
                        continue
                    raise InputError(f"{p}: line {ln} is not numbers: {line[:60]!r}") from None
                if width is None:
                    width = len(row)
                elif len(row) != width:
                    raise InputError(
                        f"{p}: rows have different lengths: line {ln} has {len(row)} values, "
                        f"the rows before it {width}"
                    )
                rows += 1
                if rows > MAX_TIMESTEPS:
                    raise InputError(f"{p}: more than {MAX_TIMESTEPS} rows (timesteps)")
                if len(values) + width > MAX_INPUT_ELEMENTS:
                    raise InputError(
                        f"{p}: more than {MAX_INPUT_ELEMENTS} numbers; the limit is "
                        f"{MAX_INPUT_ELEMENTS} elements"
                    )
                if rows % 4096 == 1:  # the buffer, and its float copy later, within budget
                    budget.check(
                        (len(values) + 4096 * width) * 8 * 2, what=f"{p}: CSV input (line {ln})"
                    )
                values.extend(row)
        except UnicodeDecodeError as e:
            raise InputError(f"{p}: cannot read as text ({e})") from None
        except OSError as e:
            raise InputError(f"{p}: cannot read ({e.strerror})") from None
    if not rows or width is None:
        raise InputError(f"{p}: no numbers in the CSV file")
    return np.frombuffer(values, dtype=np.float64).reshape(rows, width)


def load_input(
    model: InputModel,
    path: str | os.PathLike[str] | None = None,
    text: str | None = None,
    info: ModelInfo | None = None,
    array: Any = None,
) -> Any:
    """The model's input from a file, typed text, or an array; a batch axis is added to a
    single sequence. Falls back to the model's example input."""
    if info is None:
        info = load_info(model.source) if model.source else None
    if path is not None and Path(path).suffix.lower() == ".npz":  # one array per model input
        from .input_files import load_input_file

        return load_input_file(model, path, info)
    if path is not None:
        a = read_array(path)
    elif text is not None:
        return encode_text(model, text, info)
    elif array is not None:
        a = np.asarray(array)
    else:
        return example_input(model, info)
    return add_batch_axis(model, a)


def add_batch_axis(model: InputModel, a: np.ndarray) -> np.ndarray:
    """``(T,)`` ids -> ``(1, T)``; ``(T, F)`` floats -> ``(1, T, F)``; otherwise unchanged."""
    if model.takes_tokens:
        if a.ndim == 1:
            a = a[None, :]
        elif a.ndim == 2 and a.shape[1] == 1 and a.shape[0] > 1:
            a = a.T  # one id per CSV row
    else:
        f = model.input_features
        if a.ndim == 1 and f == 1:
            a = a[None, :, None]
        elif a.ndim == 2:
            a = a[None, :, :]
    return a


def example_input(model: InputModel, info: ModelInfo | None = None) -> Any:
    """The bundled example (from the model info), else a small deterministic input."""
    if info is None and model.source:
        info = load_info(model.source)
    if info is not None and info.example:
        return encode_text(model, info.example, info)
    declared = getattr(model, "example_input", None)
    if callable(declared):  # whole-graph models know their declared shapes
        return declared()
    if declared is not None:  # a live model keeps the input it was wrapped with
        return declared
    rng = np.random.default_rng(0)
    if len(getattr(model, "inputs", []) or []) > 1:  # one array per model input
        return [_example_for_input(model, ref[0], rng) for ref in model.inputs]
    t = model.input_timesteps or 12
    if model.takes_tokens:
        emb = model.embedding
        assert emb is not None
        lo = 1 if emb.mask_zero else 0
        return rng.integers(lo, emb.input_dim, (1, t))
    f = model.input_features or 1
    if f == 10:
        return np.eye(10, dtype=np.float32)[rng.integers(0, 10, (1, t))]
    return rng.normal(0, 1, (1, t, f)).astype(np.float32)


def _example_for_input(model: InputModel, name: str, rng: np.random.Generator) -> np.ndarray:
    """A small deterministic input for one of several model inputs: token ids for an input
    that feeds an Embedding, else floats shaped as the input layer declares."""

    lay = model.layers.get(name)
    shape = tuple(getattr(lay, "batch_shape", None) or (None, None, 1))
    steps = int(shape[1]) if len(shape) > 1 and shape[1] is not None else 12
    for n in getattr(model, "nodes", []):
        if isinstance(n.layer, Embedding) and any(r[0] == name for r in n.inputs):
            return rng.integers(0, int(n.layer.input_dim), (1, steps))
    feats = int(shape[-1]) if len(shape) > 2 and shape[-1] is not None else 1
    return rng.normal(0, 1, (1, steps, feats)).astype(np.float32)


def _bits_lsb_first(number: str) -> list[int]:
    if not re.fullmatch(r"[01]+", number):
        raise InputError(f"binary number {number!r} must contain only 0 and 1")
    return [int(c) for c in reversed(number)]


def encode_text(model: InputModel, text: str, info: ModelInfo | None = None) -> np.ndarray:
    """Turn typed text into the model's input, using its vocabulary.

    - digits (one-hot, 10 features): ``"4 7 3"`` or ``"473"``
    - bits (two binary numbers, 2 features): ``"1011 + 0110"`` (written most significant bit
      first, as people write numbers; fed least significant bit first)
    - chars / words: through the vocabulary
    - ids: integers separated by spaces or commas
    - floats: numbers; one row per timestep separated by ``;`` or newlines
    """
    if not isinstance(text, str):
        raise InputError(f"the input text must be a string; found {type(text).__name__}")
    a = _encode_text(model, text, info)
    if a.ndim < 2 or a.shape[1] == 0:
        raise InputError(f"the input text {text.strip()[:60]!r} holds no timesteps")
    return a


def _encode_text(model: InputModel, text: str, info: ModelInfo | None) -> np.ndarray:
    kind = info.token_kind if info else None
    text = text.strip()
    if not text:
        raise InputError("the input text is empty")
    if kind is None:
        if model.takes_tokens:
            kind = "ids"
        elif model.input_features == 10 and re.fullmatch(r"[0-9\s]+", text):
            kind = "digits"
        elif model.input_features == 2 and "+" in text:
            kind = "bits"
        else:
            kind = "floats"
    if kind == "digits":
        digits = [c for c in text if not c.isspace()]
        bad = [c for c in digits if not c.isdigit()]
        if bad:
            raise InputError(f"digit input may contain only 0-9; found {bad[0]!r}")
        return np.eye(10, dtype=np.float32)[[int(c) for c in digits]][None]
    if kind == "bits":
        parts = [s.strip() for s in text.split("+")]
        if len(parts) != 2:
            raise InputError(f"binary addition input must look like '1011 + 0110'; got {text!r}")
        a, b = (_bits_lsb_first(s) for s in parts)
        n = max(len(a), len(b)) + 1  # one more step for the final carry
        a += [0] * (n - len(a))
        b += [0] * (n - len(b))
        return np.stack([a, b], axis=-1).astype(np.float32)[None]
    if kind in ("chars", "words"):
        vocab = info.vocab if info else []
        index = {tok: i for i, tok in enumerate(vocab)}
        toks = list(text) if kind == "chars" else text.split()
        ids = []
        for tok in toks:
            key = tok if tok in index else tok.lower()
            if key in index:
                ids.append(index[key])
            elif "<unk>" in index or "<_unk>" in index:
                ids.append(index["<unk>"] if "<unk>" in index else index["<_unk>"])
            else:
                raise InputError(f"{tok!r} is not in the model's vocabulary ({len(vocab)} {kind})")
        return np.asarray(ids, dtype=np.int64)[None]
    if kind == "ids":
        try:
            ids = [int(v) for v in re.split(r"[\s,]+", text) if v]
        except ValueError:
            raise InputError(
                f"token ids must be integers separated by spaces; got {text!r}"
            ) from None
        return np.asarray(ids, dtype=np.int64)[None]
    rows = [r for r in re.split(r"[;\n]+", text) if r.strip()]
    try:
        vals = [[float(v) for v in re.split(r"[\s,]+", r.strip()) if v] for r in rows]
    except ValueError:
        raise InputError(f"could not read numbers from {text!r}") from None
    f = model.input_features
    if len(vals) == 1 and f is not None and f != len(vals[0]) and len(vals[0]) % f == 0:
        flat = vals[0]
        vals = [flat[i : i + f] for i in range(0, len(flat), f)]
    if len({len(r) for r in vals}) != 1:
        raise InputError("every timestep needs the same number of features")
    x64 = np.asarray(vals, dtype=np.float64)
    big = np.isfinite(x64) & (np.abs(x64) > np.finfo(np.float32).max)
    if np.any(big):
        v = float(x64[big][0])
        raise InputError(
            f"the value {v:g} is out of float32 range (magnitudes up to "
            f"{float(np.finfo(np.float32).max):.4g}); the model computes in float32"
        )
    return x64.astype(np.float32)[None]


def token_labels(model: InputModel, x: Any, info: ModelInfo | None = None, b: int = 0) -> list[str]:
    """A short label per timestep of batch item ``b`` (for the input strip and time axes)."""
    a = np.asarray(x[0] if isinstance(x, list) else x)
    kind = info.token_kind if info else None
    if a.ndim == 2:  # token ids
        ids = a[b]
        vocab = info.vocab if info else []
        if vocab and kind in ("chars", "words"):
            out = []
            for i in ids:
                tok = vocab[int(i)] if 0 <= int(i) < len(vocab) else f"#{int(i)}"
                out.append({" ": "␣", "\n": "⏎", "\t": "⇥"}.get(tok, tok))
            return out
        return [str(int(i)) for i in ids]
    seq = a[b]
    if seq.shape[-1] == 10 and np.all((seq == 0) | (seq == 1)) and np.all(seq.sum(-1) == 1):
        return [str(int(np.argmax(r))) for r in seq]  # one-hot digits
    if seq.shape[-1] == 2 and np.all((seq == 0) | (seq == 1)):
        return [f"{int(r[0])}{int(r[1])}" for r in seq]  # bit pairs
    if seq.shape[-1] == 1:
        return [f"{float(v):.2g}" for v in seq[:, 0]]
    return [f"x{t}" for t in range(seq.shape[0])]
