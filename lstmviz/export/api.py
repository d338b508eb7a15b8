"""One entry point for every export format: :func:`export_trace`.

The CLI (``lstmviz export``) and the app (File -> Export) both call it, so a figure, an
animation or a data file looks the same whichever way it was made.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine.trace import QUANTITIES
from ..errors import LstmvizError
from .data import Source, write_csv, write_json, write_npz
from .formats import check_output
from .rows import StepRow
from .selection import check_batch, check_step, check_units, pick_layer

if TYPE_CHECKING:
    from ..engine.trace import Trace

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


def token_labels_for(
    trace: Trace, source: Source | None, batch: int, timesteps: int | None = None
) -> list[str] | None:
    """The input tokens of batch item ``batch`` as time-axis labels, when they can be made
    and there is one per timestep of the layer drawn (``timesteps``; a layer after a
    RepeatVector or on a second input has its own time axis)."""
    if source is None or source.model is None:
        return None
    from ..io.inputs import token_labels

    try:
        labels = token_labels(source.model, trace.inputs, source.info, batch)
    except (IndexError, ValueError, TypeError):
        return None
    n = trace.timesteps if timesteps is None else timesteps
    if len(labels) != n or labels == [f"x{t}" for t in range(len(labels))]:
        return None  # no tokens to show: the time axis is labelled with t
    return labels


def _export_diagram(
    path: Path,
    fmt: str,
    trace: Trace,
    source: Source | None,
    lt: Any,
    b: int,
    units: Sequence[int] | None,
    step: int | None,
    style: str,
    labels: Sequence[str] | None,
    title: str | None,
    size: tuple[float, float] | None,
    dpi: float | None,
    fps: float,
    levels: Any,
    progress: Progress | None,
    should_stop: ShouldStop | None,
) -> Path:
    from .diagram import DiagramFigure, stacked_layers, write_diagram_animation

    names = [x.name for x in stacked_layers(trace)]
    layers = names[names.index(lt.name) :] if lt.name in names else [lt.name]
    chosen: int | list[int] | None = None
    if units is not None:
        us = [int(u) for u in units]
        if len(us) == 1:
            chosen = us[0]
            layers = layers[:1] if len(layers) > 1 else layers
        elif len(us) == len(layers):
            chosen = us
        else:
            raise LstmvizError(
                f"the diagram shows one unit (--units 3) or one per stacked layer "
                f"({len(layers)} here: {', '.join(layers)}); got {len(us)} units"
            )
    t = check_step(step, lt.timesteps) or 0
    fig = DiagramFigure(
        trace,
        t=t,
        batch=b,
        units=chosen,
        layers=layers,
        style=style,
        labels=labels,
        model_name=source.model_name if source else "",
        title=title,
        levels=levels,
        size=size,
        dpi=dpi if dpi is not None or fmt in ("png", "svg", "pdf") else None,
    )
    if fmt in ("png", "svg", "pdf"):
        if progress is not None:
            progress(0, 1)
        fig.save(path, fmt)
        if progress is not None:
            progress(1, 1)
        return path
    return write_diagram_animation(path, fig, fps, progress, should_stop)


def step_rows(
    trace: Trace,
    source: Source | None,
    batch: int,
    labels: Sequence[str] | None,
    timesteps: int,
) -> tuple[list[StepRow], list[StepRow]]:
    """The rows over and under the heatmaps: the input tokens; what the model says at every
    step and the correct answer (when the model has a per-step output over ``timesteps``)."""
    from .rows import output_rows, token_row

    above = [token_row(labels)] if labels is not None else []
    below = []
    if trace.timesteps == timesteps:
        below = output_rows(trace, source.info if source else None, batch)
    return above, below


def export_trace(
    out: str | os.PathLike[str],
    trace: Trace,
    source: Source | None = None,
    *,
    layer: str | None = None,
    batch: int | None = None,
    quantities: Sequence[str] = QUANTITIES,
    units: Sequence[int] | None = None,
    step: int | None = None,
    style: str = "paper",
    force: bool = False,
    size: tuple[float, float] | None = None,
    dpi: float | None = None,
    fps: float = 4.0,
    values: bool = False,
    title: str | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    levels: Any = None,
    rows: bool | None = None,
    view: str = "heatmaps",
) -> Path:
    """Export ``trace`` to ``out``; the format follows the extension.

    Parameters
    ----------
    out : path
        ``.png``, ``.svg``, ``.pdf`` (figure), ``.gif``, ``.mp4`` (one frame per timestep),
        ``.npz``, ``.csv``, ``.json`` (data).
    trace : Trace
        The trace to export.
    source : Source, optional
        Model, model file, input and sidecar info: token labels, title and metadata.
    layer : str, optional
        Figures: the layer drawn (first LSTM layer by default). Data: only this layer
        (all layers by default).
    batch : int, optional
        Figures: the batch item drawn (0 by default). Data: only this item (all by default).
    quantities, units : optional
        Which quantities (all six by default) and which units (all by default).
    step : int, optional
        Figures: the current timestep (cursor, future dimmed); ignored by animations, which
        step through every timestep.
    style : {"paper", "slide"}
        Fonts and sizes for a paper column or a slide.
    force : bool
        Overwrite an existing file.
    size, dpi, fps : optional
        Figure size in inches, pixels per inch, animation frames per second.
    values : bool
        JSON: include every value (metadata only otherwise).
    progress, should_stop : callables, optional
        ``progress(i, n)`` while working; a true ``should_stop()`` cancels
        (:class:`~lstmviz.export.formats.ExportCancelled`, nothing written).
    levels : mapping or LevelLock, optional
        Figures: colour levels to draw with (e.g. the app's locked levels); the shared
        :func:`lstmviz.analysis.levels.levels` of the trace by default.
    rows : bool, optional
        Figures: draw the token row over the heatmaps and the model's output (and the correct
        answer, for a bundled task) under them. Default: on for animations and slides.
    view : {"heatmaps", "diagram", "bars"}
        Figures and animations: the six heatmaps; "bars": all six quantities of the selected
        units (or the most active ones) at ``step`` (:mod:`lstmviz.analysis.all_six`); or the
        LSTM cell diagram
        (:mod:`lstmviz.export.diagram`) with a number on every wire for one unit (``units``
        with one index, or one per stacked layer) or a colour strip per wire for the whole
        layer (``units`` None).

    Returns
    -------
    Path
        The written file.
    """
    path, fmt = check_output(out, force=force)
    if fmt in ("npz", "csv", "json"):
        layers = None if layer is None else [pick_layer(trace, layer)]
        for lt in layers or trace.layers:
            check_units(units, lt)
        bsel = None if batch is None else [check_batch(batch, trace)]
        if fmt == "npz":
            return write_npz(path, trace, source, layers, quantities, units, bsel)
        if fmt == "csv":
            return write_csv(path, trace, layers, quantities, units, bsel, progress, should_stop)
        return write_json(path, trace, source, values, layers, quantities, units, bsel)

    from .figure import GridFigure

    if view not in ("heatmaps", "diagram", "bars"):
        raise LstmvizError(f"view must be 'heatmaps', 'diagram' or 'bars'; got {view!r}")
    b = check_batch(batch, trace)
    lt = pick_layer(trace, layer)
    labels = token_labels_for(trace, source, b, lt.timesteps)
    if view == "bars":
        from .bars import AllSixFigure

        if fmt not in ("png", "svg", "pdf"):
            raise LstmvizError(f"{path}: the bars are a figure: .png, .svg or .pdf, not .{fmt}")
        AllSixFigure(
            trace,
            check_step(step, lt.timesteps) or 0,
            layer=lt.name,
            batch=b,
            units=units,
            style=style,
            model_name=source.model_name if source else "",
            size=size,
            dpi=dpi,
        ).save(path, fmt)
        return path
    if view == "diagram":
        return _export_diagram(
            path,
            fmt,
            trace,
            source,
            lt,
            b,
            units,
            step,
            style,
            labels,
            title,
            size,
            dpi,
            fps,
            levels,
            progress,
            should_stop,
        )
    if rows is None:
        rows = fmt in ("gif", "mp4") or style == "slide"
    above, below = step_rows(trace, source, b, labels, lt.timesteps) if rows else ([], [])
    kwargs: dict[str, Any] = dict(
        layer=lt.name,
        batch=b,
        quantities=quantities,
        units=units,
        style=style,
        labels=labels,
        model_name=source.model_name if source else "",
        title=title,
        size=size,
        dpi=dpi,
        levels=levels,
        rows_above=above,
        rows_below=below,
    )
    if fmt in ("png", "svg", "pdf"):
        grid = GridFigure(trace, step=check_step(step, lt.timesteps), **kwargs)
        if progress is not None:
            progress(0, 1)
        grid.save(path, fmt)
        if progress is not None:
            progress(1, 1)
        return path

    from .animation import write_gif, write_mp4
    from .style import get_style

    if dpi is None:
        kwargs["dpi"] = get_style(style).animation_dpi
    grid = GridFigure(trace, step=0, **kwargs)
    if fmt == "gif":
        return write_gif(path, grid, fps, progress, should_stop)
    return write_mp4(path, grid, fps, progress, should_stop)
