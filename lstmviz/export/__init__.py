"""Export gate plots, animations and trace data, headless (no window, no TensorFlow).

- :func:`export_trace` writes any format, chosen by the extension:
  ``.png .svg .pdf`` (figure), ``.gif .mp4`` (one frame per timestep),
  ``.npz .csv .json`` (data).
- :class:`~lstmviz.export.figure.GridFigure` is the renderer (matplotlib, Agg canvas).
- ``lstmviz export MODEL ... --out OUT.ext`` is :mod:`lstmviz.export.cli`.

Figures need matplotlib; GIF needs imageio; MP4 needs imageio-ffmpeg. Each is imported
only when that format is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .formats import (
    ANIMATION_FORMATS,
    DATA_FORMATS,
    FIGURE_FORMATS,
    FORMATS,
    ExportCancelled,
    check_output,
    format_for,
)
from .style import COLORMAPS, STYLES, levels_for

if TYPE_CHECKING:  # imported on first use, by __getattr__ below
    from .api import export_trace
    from .data import Source, metadata, trace_arrays, write_csv, write_json, write_npz
    from .figure import GridFigure, render_figure

#: public names and the module that holds each, imported on first use: the window builds its
#: Export menu from the formats alone, and the writers (hashing, CSV, the renderer and
#: matplotlib) load when something is exported
_LAZY: dict[str, str] = {
    "export_trace": "api",
    "Source": "data",
    "metadata": "data",
    "trace_arrays": "data",
    "write_csv": "data",
    "write_json": "data",
    "write_npz": "data",
    "GridFigure": "figure",
    "render_figure": "figure",
}


def __getattr__(name: str) -> object:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # found directly from now on
    return value


__all__ = [
    "ANIMATION_FORMATS",
    "COLORMAPS",
    "DATA_FORMATS",
    "FIGURE_FORMATS",
    "FORMATS",
    "STYLES",
    "ExportCancelled",
    "GridFigure",
    "Source",
    "check_output",
    "export_trace",
    "format_for",
    "levels_for",
    "metadata",
    "render_figure",
    "trace_arrays",
    "write_csv",
    "write_json",
    "write_npz",
]
