"""Reading and writing model files, inputs and sessions: safe by construction.

No pickle, no code execution from a file; writes are atomic.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..engine.model import Model
from ..errors import ModelFileError
from . import keras as _keras
from . import more_formats as _more  # issue 8: PyTorch, ONNX, TF1 checkpoints

#: Extensions lstmviz opens, and what each one is.
MODEL_FORMATS: dict[str, str] = {
    ".keras": "Keras 3 model (zip)",
    ".h5": "Keras legacy HDF5 model (Keras 2 / tf.keras / Keras 3 legacy save)",
    ".hdf5": "Keras legacy HDF5 model",
    **_more.FORMATS,  # issue 8: .pt .pth .bin .safetensors .onnx .index (TF1)
}


def load_model(path: str | os.PathLike[str]) -> Model:
    """Open a model file and return an engine :class:`~lstmviz.engine.Model`.

    Raises :class:`~lstmviz.LstmvizError` (naming the file) for anything that is not a model
    lstmviz can run.
    """
    p = Path(path)
    loader = _more.find_loader(p)  # issue 8: by name first (TF1 prefixes; .pt files are zips)
    if loader is not None:
        model = loader(p)
        model.source = str(p)
        return model
    _more.check_file(p)
    kind = _keras.sniff(p)
    if kind is None:
        raise ModelFileError(
            f"{p}: not a model file lstmviz can read; "
            f"supported formats: {', '.join(f'{k} ({v})' for k, v in MODEL_FORMATS.items())}"
        )
    model = _keras.LOADERS[kind](p)
    model.source = str(p)
    return model
