"""Output formats, chosen by the file extension, and the checks every export makes first.

An export never starts work it cannot finish: the extension, the folder and an existing file
are checked before the model is traced or a frame is drawn.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import LstmvizError

#: extension (without the dot) -> (kind, description)
FORMATS: dict[str, tuple[str, str]] = {
    "png": ("figure", "PNG image (raster, chosen size and DPI)"),
    "svg": ("figure", "SVG vector figure with real text"),
    "pdf": ("figure", "PDF vector figure with real text"),
    "gif": ("animation", "GIF animation, one frame per timestep"),
    "mp4": ("animation", "MP4 video (H.264), one frame per timestep"),
    "npz": ("data", "NumPy arrays, one per '<layer>/<quantity>' plus 'output'"),
    "csv": ("data", "CSV long format: layer,batch,t,unit,quantity,value"),
    "json": ("data", "JSON metadata (model, input, engine, versions), values on request"),
}
FIGURE_FORMATS = tuple(k for k, (kind, _) in FORMATS.items() if kind == "figure")
ANIMATION_FORMATS = tuple(k for k, (kind, _) in FORMATS.items() if kind == "animation")
DATA_FORMATS = tuple(k for k, (kind, _) in FORMATS.items() if kind == "data")


class ExportCancelled(LstmvizError):
    """The user cancelled a long export; nothing was written."""


def supported_formats_text() -> str:
    return ", ".join(f".{k}" for k in FORMATS)


def format_for(path: str | os.PathLike[str]) -> str:
    """The format of ``path`` from its extension (``"png"``, ``"mp4"``, ...).

    Raises
    ------
    LstmvizError
        If the extension is missing or not supported; the message lists the supported ones.
    """
    p = Path(path)
    ext = p.suffix.lower().lstrip(".")
    if not ext:
        raise LstmvizError(
            f"{p}: no file extension; the format follows the extension, one of "
            f"{supported_formats_text()}"
        )
    if ext not in FORMATS:
        raise LstmvizError(
            f"{p}: unsupported export format '.{ext}'; supported formats: "
            f"{supported_formats_text()}"
        )
    return ext


def check_output(path: str | os.PathLike[str], force: bool = False) -> tuple[Path, str]:
    """Validate an output path before any work: returns ``(path, format)``.

    Raises :class:`LstmvizError` for an unsupported extension, a missing folder, a path that
    is a folder, or an existing file when ``force`` is false.
    """
    p = Path(path).expanduser()
    fmt = format_for(p)
    if p.is_dir():
        raise LstmvizError(f"{p}: is a directory; give a file name ending in .{fmt}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise LstmvizError(f"{p}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LstmvizError(f"{p}: the folder {parent} is not writable")
    if p.exists() and not force:
        raise LstmvizError(f"{p}: the file already exists; use --force to overwrite it")
    return p, fmt
