"""Reading and writing model files, inputs and sessions: safe by construction.

No pickle, no code execution from a file; writes are atomic.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..engine.model import Model
from ..errors import ArgumentError, MemoryBudgetError, ModelFileError
from . import keras as _keras
from . import more_formats as _more  # PyTorch, ONNX, TF1 checkpoints
from .checks import regular_file

#: Extensions lstmviz opens, and what each one is.
MODEL_FORMATS: dict[str, str] = {
    ".keras": "Keras 3 model (zip)",
    ".h5": "Keras legacy HDF5 model (Keras 2 / tf.keras / Keras 3 legacy save)",
    ".hdf5": "Keras legacy HDF5 model",
    **_more.FORMATS,  # .pt .pth .bin .safetensors .onnx .index (TF1)
}


def load_model(path: str | os.PathLike[str]) -> Model:
    """Open a model file and return an engine :class:`~lstmviz.engine.Model`.

    Raises :class:`~lstmviz.LstmvizError` (naming the file) for anything that is not a model
    lstmviz can run, and :class:`~lstmviz.errors.ArgumentError` when ``path`` is not a path.
    Special files (a FIFO, a device) are refused before anything opens them.
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentError(
            f"load_model: path must be a file path (str or os.PathLike); found "
            f"{type(path).__name__} {path!r:.60}"
        )
    s = os.fspath(path)
    if not isinstance(s, str) or not s.strip() or "\x00" in s:
        raise ArgumentError(f"load_model: path must name a model file; found {s!r:.80}")
    p = Path(s)
    if _more.tf1_prefix(p) is None:  # a TF1 checkpoint is a prefix, not one file
        regular_file(p, "model file")
    loader = _more.find_loader(p)  # by name first (TF1 prefixes; .pt files are zips)
    if loader is None:
        _more.check_file(p)
        kind = _keras.sniff(p)
        if kind is None:
            raise ModelFileError(
                f"{p}: not a model file lstmviz can read; "
                f"supported formats: {', '.join(f'{k} ({v})' for k, v in MODEL_FORMATS.items())}"
            )
        loader = _keras.LOADERS[kind]
    try:
        model = loader(p)
    except MemoryError:  # the last line of defence: every reader checks the budget first
        raise MemoryBudgetError(
            f"{p}: ran out of memory while loading the model (set LSTMVIZ_MEMORY_BUDGET "
            "lower so lstmviz refuses such files before allocating)"
        ) from None
    except RecursionError:
        raise ModelFileError(f"{p}: the model file is nested too deeply to be read") from None
    model.source = str(p)
    return model
