"""Which loader opens a PyTorch, ONNX or TF1-checkpoint path.

:func:`lstmviz.io.load_model` asks :func:`find_loader` first, before it looks for a file (a TF1
checkpoint is a *prefix*: ``model.ckpt`` names ``model.ckpt.index`` + ``model.ckpt.data-*``)
and before it sniffs bytes (a ``torch.save`` file is a zip, like a ``.keras``). Each loader's
module, and its optional dependency (torch, onnx, tensorflow), is imported only when used.
"""

from __future__ import annotations

import os
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
    ".pt2": "torch.export program (torch.export.save; run by torch, LSTMs recorded)",
    ".index": "TensorFlow 1 checkpoint (model.ckpt.index + .data-*; read without TensorFlow)",
}
_TF1_DATA = re.compile(r"\.data-\d+-of-\d+$")


def _latest_checkpoint(folder: Path) -> Path | None:
    """The prefix a TensorFlow ``checkpoint`` state file in ``folder`` names (what
    ``tf.train.latest_checkpoint`` returns), if it names one inside the folder."""
    state = folder / "checkpoint"
    try:
        if not state.is_file() or state.stat().st_size > 2**20:
            return None
        text = state.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    m = re.search(r'^model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', text, re.M)
    if not m:
        return None
    prefix = (folder / m.group(1)).resolve()
    base = folder.resolve()
    if base not in prefix.parents or not prefix.with_name(prefix.name + ".index").is_file():
        return None
    return prefix


def tf1_prefix(p: Path) -> Path | None:
    """The checkpoint prefix if ``p`` names a TF1 checkpoint (prefix, ``.index`` or ``.data-*``
    file, or a folder whose ``checkpoint`` file names the latest one), else None."""
    if p.is_dir():
        return _latest_checkpoint(p)
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
    """Raise :class:`~lstmviz.errors.ModelFileError` unless ``p`` is a non-empty regular file
    (a FIFO or a device is refused without being opened: :func:`lstmviz.io.checks.regular_file`).
    """
    from .checks import regular_file

    if regular_file(p, "model file") == 0:
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
    if suffix == ".pt2":
        from .torch_export import load_pt2

        return load_pt2
    if suffix in FORMATS:
        from .torch_format import load_torch

        return load_torch
    return None


def resolve_model_path(path: str | os.PathLike[str]) -> Path:
    """The path :func:`lstmviz.io.load_model` opens for ``path``, checked to exist.

    Accepts what the Python API accepts: a model file, a TF1 checkpoint by its prefix
    (``model.ckpt`` for ``model.ckpt.index`` + ``model.ckpt.data-*``), its ``.index`` or a
    ``.data-*`` file, or a folder with a TensorFlow ``checkpoint`` file (its latest
    checkpoint). The app's File → Open and the command line call this before anything else.

    Raises
    ------
    ModelFileError
        Nothing there, naming the nearest files that are (``model.ckpt.index`` for a
        mistyped prefix, ``m.keras`` for ``m``).
    """
    if path is None or not isinstance(path, (str, os.PathLike)):
        raise ModelFileError(f"a model path must be a file path; got {path!r}")
    p = Path(path).expanduser()
    if p.is_dir():
        prefix = tf1_prefix(p)
        if prefix is not None:
            return p
        raise ModelFileError(
            f"{p}: is a folder, not a model file (a folder opens only when it holds a "
            "TensorFlow 'checkpoint' file naming its latest checkpoint)"
        )
    if p.is_file():
        return p
    prefix = tf1_prefix(p)
    if prefix is not None and prefix.with_name(prefix.name + ".index").is_file():
        return p
    near: list[str] = []
    try:
        if p.parent.is_dir():
            near = sorted(
                q.name
                for q in p.parent.iterdir()
                if q.name.startswith(p.name) or (p.suffix and q.stem == p.stem)
            )[:5]
    except OSError:
        pass
    raise ModelFileError(
        f"{p}: no such file" + (f" (in that folder: {', '.join(near)})" if near else "")
    )
