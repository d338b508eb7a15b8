"""Figures and animations for notebooks: what ``trace.plot()`` and ``trace.animate()`` return.

:func:`plot` is the export's :class:`~lstmviz.export.figure.GridFigure` (paper style by
default) handed back as a ``matplotlib.figure.Figure``, which Jupyter shows inline.
:func:`animate` steps the same figure through the timesteps with
``matplotlib.animation.FuncAnimation`` and returns an :class:`InlineAnimation`, shown as an
HTML5 animation with play / step controls (``to_jshtml``) or as an HTML5 video.

>>> trace.plot(t=5, layer="lstm", units=range(8))      # a Figure
>>> trace.animate(layer="lstm")                          # an inline animation
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine.trace import QUANTITIES
from ..errors import LstmvizError
from .selection import check_step, pick_layer

if TYPE_CHECKING:
    from ..engine.trace import Trace

#: Pixels per inch of inline figures (the paper style's 300 dpi is for print).
INLINE_DPI = 110.0
#: An animation embeds one image per frame: longer traces name the steps to show.
MAX_FRAMES = 240


def _grid(
    trace: Trace,
    *,
    t: int | None,
    layer: str | int | None,
    units: Sequence[int] | range | None,
    batch: int,
    quantities: Sequence[str] | str,
    style: str,
    labels: Sequence[str] | None,
    title: str | None,
    size: tuple[float, float] | None,
    dpi: float | None,
    model_name: str = "",
) -> Any:
    from .figure import GridFigure

    lt = trace.layer(layer) if isinstance(layer, int) else pick_layer(trace, layer)
    qs = (quantities,) if isinstance(quantities, str) else tuple(quantities)
    qs = tuple(quantity_name(q) for q in qs)
    return GridFigure(
        trace,
        layer=lt.name,
        batch=batch,
        quantities=qs,
        units=None if units is None else [int(u) for u in units],
        step=check_step(t, lt.timesteps),
        style=style,
        labels=labels,
        model_name=model_name,
        title=title,
        size=size,
        dpi=INLINE_DPI if dpi is None else dpi,
    )


def quantity_name(q: str) -> str:
    """A quantity by its symbol or name (``"f"``, ``"forget"``, ``"forget_gate"``)."""
    aliases = {
        "f": "forget_gate",
        "i": "input_gate",
        "o": "output_gate",
        "g": "candidate",
        "c": "cell",
        "h": "hidden",
        "forget": "forget_gate",
        "input": "input_gate",
        "output": "output_gate",
    }
    q = aliases.get(q, q)
    if q not in QUANTITIES:
        raise LstmvizError(f"unknown quantity {q!r}; expected one of {', '.join(QUANTITIES)}")
    return q


def plot(
    trace: Trace,
    t: int | None = None,
    layer: str | int | None = None,
    units: Sequence[int] | range | None = None,
    *,
    batch: int = 0,
    quantities: Sequence[str] | str = QUANTITIES,
    style: str = "paper",
    labels: Sequence[str] | None = None,
    title: str | None = None,
    size: tuple[float, float] | None = None,
    dpi: float | None = None,
) -> Any:
    """The gates of one layer as a ``matplotlib.figure.Figure`` (shown inline by Jupyter).

    Parameters
    ----------
    trace : Trace
        A trace from a model file or a live model.
    t : int, optional
        The current timestep: a box marks it and later steps are dimmed (none: the whole
        sequence).
    layer : str or int, optional
        Trace name or index of the LSTM layer (the first by default).
    units : sequence of int, optional
        Rows to draw (all units by default).
    batch : int
        Batch item.
    quantities : str or sequence of str
        Which of the six quantities (all by default), by name or symbol (``"f"``, ``"c"``).
    style : {"paper", "slide"}
        The export's styles.
    labels : sequence of str, optional
        One label per timestep for the time axis (the input tokens).
    title, size, dpi : optional
        Title, size in inches, pixels per inch (:data:`INLINE_DPI` by default).
    """
    grid = _grid(
        trace,
        t=t,
        layer=layer,
        units=units,
        batch=batch,
        quantities=quantities,
        style=style,
        labels=labels,
        title=title,
        size=size,
        dpi=dpi,
    )
    grid.draw()
    _register_inline_png()
    return grid.figure


class InlineAnimation:
    """A stepping animation that Jupyter shows inline (``_repr_html_``).

    ``html`` is the self-contained HTML (built on first use); :meth:`save` writes it to a
    file, or a GIF / MP4 through :func:`lstmviz.export.export_trace`'s writers.
    """

    def __init__(self, grid: Any, steps: list[int], fps: float, mode: str) -> None:
        self.grid = grid
        self.steps = steps
        self.fps = float(fps)
        self.mode = mode
        self._html: str | None = None

    @property
    def figure(self) -> Any:
        return self.grid.figure

    def _animation(self) -> Any:
        """A ``FuncAnimation`` over the frames the export renders (blitted: each costs a few
        milliseconds), shown one image per frame on a bare figure of the same pixel size,
        so that saving a frame is only encoding its image."""
        from matplotlib.animation import FuncAnimation
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        grid = self.grid
        grid.set_step(self.steps[0])
        grid.start_frames()
        images = [grid.frame(t) for t in self.steps]  # (H, W, 3) uint8 each
        h, w = images[0].shape[:2]
        dpi = grid.dpi
        fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.set_axis_off()
        im = ax.imshow(images[0], interpolation="nearest", aspect="auto")
        self._player = fig

        def update(k: int) -> list[Any]:
            im.set_data(images[k])
            return [im]

        return FuncAnimation(
            fig,
            update,
            frames=len(images),
            interval=1000.0 / self.fps,
            repeat=True,
            cache_frame_data=False,
        )

    @property
    def html(self) -> str:
        if self._html is None:
            from .figure import _mpl

            mpl = _mpl()
            anim = self._animation()
            with mpl.rc_context({"savefig.facecolor": "white", "savefig.pad_inches": 0}):
                if self.mode == "video":
                    _ffmpeg_for_matplotlib(mpl)
                    self._html = anim.to_html5_video()
                else:
                    self._html = anim.to_jshtml(fps=self.fps, default_mode="loop")
        return self._html

    def _repr_html_(self) -> str:
        return self.html

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the animation: ``.html`` (this HTML), ``.gif`` or ``.mp4``."""
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix in (".html", ".htm"):
            from ..io.atomic import atomic_open

            with atomic_open(p, "wb") as fh:
                fh.write(self.html.encode("utf-8"))
            return p
        if suffix in (".gif", ".mp4"):
            from .animation import write_gif, write_mp4

            return (write_gif if suffix == ".gif" else write_mp4)(p, self.grid, self.fps)
        raise LstmvizError(f"{p}: an animation is saved as .html, .gif or .mp4, not {suffix!r}")

    def __repr__(self) -> str:
        return (
            f"InlineAnimation(layer {self.grid.lt.name!r}, {len(self.steps)} frames at "
            f"{self.fps:g} fps)"
        )


def animate(
    trace: Trace,
    layer: str | int | None = None,
    units: Sequence[int] | range | None = None,
    *,
    steps: Sequence[int] | range | None = None,
    batch: int = 0,
    quantities: Sequence[str] | str = QUANTITIES,
    style: str = "paper",
    labels: Sequence[str] | None = None,
    fps: float = 4.0,
    mode: str = "jshtml",
    size: tuple[float, float] | None = None,
    dpi: float | None = None,
) -> InlineAnimation:
    """An animation stepping through the timesteps of one layer, shown inline.

    Parameters
    ----------
    steps : sequence of int, optional
        Timesteps to show, in order (every step in processing order by default; at most
        :data:`MAX_FRAMES` -- name a range for longer sequences, ``steps=range(0, T, 10)``).
    fps : float
        Frames per second.
    mode : {"jshtml", "video"}
        HTML with play / step buttons and a slider (no codec needed), or an HTML5 video
        (H.264 through ffmpeg).

    The other parameters are :func:`plot`'s.
    """
    if mode not in ("jshtml", "video"):
        raise LstmvizError(f"mode must be 'jshtml' or 'video'; got {mode!r}")
    if not 0 < float(fps) <= 60:
        raise LstmvizError(f"fps must be in (0, 60]; got {fps!r}")
    grid = _grid(
        trace,
        t=None,
        layer=layer,
        units=units,
        batch=batch,
        quantities=quantities,
        style=style,
        labels=labels,
        title=None,
        size=size,
        dpi=dpi,
    )
    n = grid.T
    if steps is None:
        if n > MAX_FRAMES:
            raise LstmvizError(
                f"layer {grid.lt.name!r} has {n} timesteps; an inline animation embeds one "
                f"image per frame (at most {MAX_FRAMES}): pass steps=range(0, {n}, "
                f"{-(-n // MAX_FRAMES)}) or a shorter input"
            )
        order = [int(t) for t in grid.lt.processing_order]
    else:
        order = [int(t) for t in steps]
        bad = [t for t in order if not 0 <= t < n]
        if bad:
            raise LstmvizError(
                f"step {bad[0]} out of range: layer {grid.lt.name!r} has {n} timesteps"
            )
        if not order or len(order) > MAX_FRAMES:
            raise LstmvizError(f"steps must name 1 to {MAX_FRAMES} timesteps; got {len(order)}")
    grid.set_step(order[0])
    return InlineAnimation(grid, order, fps, mode)


def _ffmpeg_for_matplotlib(mpl: Any) -> None:
    """Point matplotlib's ffmpeg writer at imageio-ffmpeg's binary when none is on PATH."""
    import shutil

    if shutil.which(str(mpl.rcParams["animation.ffmpeg_path"])):
        return
    try:
        import imageio_ffmpeg
    except ImportError:
        from ..errors import MissingDependencyError

        raise MissingDependencyError(
            "imageio_ffmpeg", "imageio-ffmpeg", what="An HTML5 video"
        ) from None
    mpl.rcParams["animation.ffmpeg_path"] = imageio_ffmpeg.get_ffmpeg_exe()


def _register_inline_png() -> None:
    """In IPython, show ``matplotlib.figure.Figure`` objects as PNG (what ``%matplotlib
    inline`` does), also when pyplot was never imported."""
    import sys

    getter = getattr(sys.modules.get("IPython"), "get_ipython", None)
    ip = getter() if callable(getter) else None
    if ip is None:
        return
    from matplotlib.figure import Figure

    png = ip.display_formatter.formatters.get("image/png")
    if png is None or _has(png, Figure):
        return
    import importlib

    print_figure: Any = importlib.import_module("IPython.core.pylabtools").print_figure
    png.for_type(Figure, lambda fig: print_figure(fig, "png", bbox_inches="tight"))


def _has(formatter: Any, cls: type) -> bool:
    try:
        formatter.lookup_by_type(cls)
    except KeyError:
        return False
    return True
