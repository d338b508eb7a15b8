"""Which loader opens a PyTorch, ONNX or TF1-checkpoint path (issue 8).

:func:`lstmviz.io.load_model` asks :func:`find_loader` first, before it looks for a file (a TF1
checkpoint is a *prefix*: ``model.ckpt`` names ``model.ckpt.index`` + ``model.ckpt.data-*``)
and before it sniffs bytes (a ``torch.save`` file is a zip, like a ``.keras``). Each loader's
module, and its optional dependency (torch, onnx, tensorflow), is imported only when used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from ..engine.model import Model
from ..errors import ModelFileError

#: Extensions (and what each is) added to :data:`lstmviz.io.MODEL_FORMATS`.
FORMATS: dict[str, str] = {
    ".pt": "PyTorch state_dict (torch.save; read with weights_only=True)",
    ".pth": "PyTorch state_dict (torch.save; read with weights_only=True)",
    ".bin": "PyTorch state_dict (torch.save; read with weights_only=True)",
    ".safetensors": "PyTorch state_dict in safetensors (no torch needed)",
    ".onnx": "ONNX graph with LSTM ops (needs the onnx package)",
    ".index": "TensorFlow 1 checkpoint (model.ckpt.index + .data-*; needs TensorFlow)",
}
_TF1_DATA = re.compile(r"\.data-\d+-of-\d+$")


def tf1_prefix(p: Path) -> Path | None:
    """The checkpoint prefix if ``p`` names a TF1 checkpoint (prefix, ``.index`` or ``.data-*``
    file), else None."""
    name = p.name
    if name.endswith(".index"):
        return p.with_name(name[: -len(".index")])
    m = _TF1_DATA.search(name)
    if m:
        return p.with_name(name[: m.start()])
    if not p.exists() and p.with_name(name + ".index").is_file():
        return p
    return None


def check_file(p: Path) -> None:
    """Raise :class:`~lstmviz.errors.ModelFileError` unless ``p`` is a non-empty file."""
    if not p.exists():
        raise ModelFileError(f"{p}: no such file")
    if p.is_dir():
        raise ModelFileError(f"{p}: is a directory, not a model file")
    try:
        size = p.stat().st_size
    except OSError as e:
        raise ModelFileError(f"{p}: cannot read ({e.strerror})") from None
    if size == 0:
        raise ModelFileError(f"{p}: the file is empty")


def find_loader(p: Path) -> Callable[[Path], Model] | None:
    """The loader for ``p`` by its name, or None (a Keras file, or unknown)."""
    if tf1_prefix(p) is not None:
        from .tf1 import load_tf1

        return load_tf1
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        from .onnx_format import load_onnx

        return load_onnx
    if suffix in FORMATS:
        from .torch_format import load_torch

        return load_torch
    return None
