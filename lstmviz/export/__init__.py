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

from .api import export_trace
from .data import Source, metadata, trace_arrays, write_csv, write_json, write_npz
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


def __getattr__(name: str) -> object:
    # the renderer imports matplotlib: only when it is asked for
    if name in ("GridFigure", "render_figure"):
        from . import figure

        return getattr(figure, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
