"""The headless figure renderer: a grid of units x time heatmaps drawn with matplotlib.

No window and no Qt: matplotlib's Agg canvas draws PNG and animation frames; SVG keeps
text as ``<text>`` elements and PDF embeds TrueType fonts, so labels stay real text.
The same renderer serves ``lstmviz export`` and the app's File -> Export.

>>> grid = GridFigure(trace, layer="lstm", step=3, style="paper", model_name="digit_sum")
>>> grid.save("gates.pdf")
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.trace import QUANTITIES, TITLES
from ..errors import LstmvizError, MissingDependencyError
from ..io.atomic import atomic_open
from .selection import check_batch, check_step, check_units, pick_layer
from .style import Style, get_style, levels_for, mpl_colormap

if TYPE_CHECKING:
    from ..engine.trace import Trace

#: Colour of the dimmed future (drawn over it with FUTURE_ALPHA) and of the cursor box.
FUTURE_COLOUR = "white"
FUTURE_ALPHA = 0.62
CURSOR_COLOUR = "black"


def _mpl() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("matplotlib", what="Exporting figures") from None
    return matplotlib


@lru_cache(maxsize=1)
def _charmap() -> frozenset[int]:
    from matplotlib import font_manager, ft2font

    font = ft2font.FT2Font(font_manager.findfont("DejaVu Sans"))
    return frozenset(font.get_charmap())


def safe_label(text: str, limit: int = 12) -> str:
    """A tick label the figure font can draw: unknown glyphs become ``U+XXXX``-free '?'."""
    cm = _charmap()
    out = "".join(ch if ord(ch) in cm else "?" for ch in text)
    out = out.replace("$", r"\$")  # no mathtext from user tokens
    return out if len(out) <= limit else out[: limit - 1] + "…"


class GridFigure:
    """Heatmaps (units x time) of one LSTM layer for one batch item, with colour bars.

    Parameters
    ----------
    trace : Trace
        The frozen trace to draw.
    layer : str, optional
        Trace name of the LSTM layer (the first one by default).
    batch : int
        Batch item.
    quantities : sequence of str
        Which of the six quantities, in this order (all six by default, in a 2 x 3 grid).
    units : sequence of int, optional
        Rows to show (all units by default).
    step : int, optional
        The current timestep: a cursor box marks it and later steps are dimmed.
        None shows the whole sequence undimmed.
    style : str or Style
        ``"paper"`` (a journal column, 7 pt) or ``"slide"`` (16:9, 16 pt).
    labels : sequence of str, optional
        One label per timestep (the input tokens) for the time axis.
    model_name : str
        Shown in the title.
    title : str, optional
        Replaces the automatic title (model, layer, timestep).
    size : (float, float), optional
        Figure size in inches (the style's default otherwise).
    dpi : float, optional
        Pixels per inch for PNG and animation frames.
    """

    def __init__(
        self,
        trace: Trace,
        layer: str | None = None,
        batch: int = 0,
        quantities: Sequence[str] = QUANTITIES,
        units: Sequence[int] | None = None,
        step: int | None = None,
        style: str | Style = "paper",
        labels: Sequence[str] | None = None,
        model_name: str = "",
        title: str | None = None,
        size: tuple[float, float] | None = None,
        dpi: float | None = None,
    ) -> None:
        mpl = _mpl()
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle

        self.trace = trace
        self.lt = pick_layer(trace, layer)
        self.batch = check_batch(batch, trace)
        self.quantities = tuple(quantities)
        if not self.quantities:
            raise LstmvizError(
                f"no quantity to draw; expected one or more of {', '.join(QUANTITIES)}"
            )
        self.units = check_units(units, self.lt)
        self.style = get_style(style) if isinstance(style, str) else style
        self.T = self.lt.timesteps
        if labels is not None and len(labels) != self.T:
            raise LstmvizError(f"{len(labels)} token labels for {self.T} timesteps")
        self.labels = None if labels is None else [safe_label(str(s)) for s in labels]
        self.model_name = model_name
        self.custom_title = title
        size = size or self.style.size_for(len(self.quantities))
        if size[0] <= 0 or size[1] <= 0:
            raise LstmvizError(f"figure size must be positive; got {size[0]} x {size[1]} in")
        self.dpi = float(dpi or self.style.dpi)
        if not 10 <= self.dpi <= 2400:
            raise LstmvizError(f"dpi must be between 10 and 2400; got {self.dpi:g}")
        self._rc = self.style.rc_params()
        self._background: Any = None

        n = len(self.quantities)
        ncols = min(3, n)
        nrows = (n + ncols - 1) // ncols
        with mpl.rc_context(self._rc):
            fig = Figure(figsize=size, dpi=self.dpi, layout="constrained")
            self.canvas = FigureCanvasAgg(fig)
            fig.get_layout_engine().set(w_pad=0.02, h_pad=0.02, wspace=0.04, hspace=0.06)
            axes = fig.subplots(nrows, ncols, squeeze=False)
            self.axes: dict[str, Any] = {}
            self.images: dict[str, Any] = {}
            self._cursors: list[Any] = []
            self._futures: list[Any] = []
            lw = self.style.line_width
            nu = len(self.units)
            for k, q in enumerate(self.quantities):
                ax = axes[k // ncols][k % ncols]
                data = self.lt.get(q)[self.batch][:, list(self.units)].T  # (units, T)
                lo, hi = levels_for(q, self.lt)
                im = ax.imshow(
                    data,
                    cmap=mpl_colormap(q),
                    vmin=lo,
                    vmax=hi,
                    aspect="auto",
                    interpolation="nearest",
                    origin="upper",
                )
                self.axes[q] = ax
                self.images[q] = im
                ax.set_title(TITLES[q], loc="left", pad=3 * lw)
                cb = fig.colorbar(im, ax=ax, fraction=0.08, pad=0.015, aspect=18)
                cb.outline.set_linewidth(0.6 * lw)
                if q in ("input_gate", "forget_gate", "output_gate"):
                    cb.set_ticks([0.0, 0.5, 1.0])
                elif (lo, hi) == (-1.0, 1.0):
                    cb.set_ticks([-1.0, 0.0, 1.0])
                else:
                    cb.set_ticks([lo, 0.0, hi], labels=[f"{lo:.2g}", "0", f"{hi:.2g}"])
                self._time_axis(ax, bottom=k // ncols == nrows - 1 or k + ncols >= n)
                self._unit_axis(ax, left=k % ncols == 0)
                self._mark_padding(ax, nu)
                cur = Rectangle(
                    (-0.5, -0.5),
                    1.0,
                    nu,
                    fill=False,
                    ec=CURSOR_COLOUR,
                    lw=1.4 * lw,
                    visible=False,
                    zorder=5,
                )
                fut = Rectangle(
                    (0.5, -0.5),
                    0.0,
                    nu,
                    fc=FUTURE_COLOUR,
                    ec="none",
                    alpha=FUTURE_ALPHA,
                    visible=False,
                    zorder=4,
                )
                ax.add_patch(fut)
                ax.add_patch(cur)
                self._cursors.append(cur)
                self._futures.append(fut)
            for k in range(n, nrows * ncols):
                axes[k // ncols][k % ncols].set_visible(False)
            self.suptitle = fig.suptitle(
                "",
                fontweight="bold",
                fontsize=self.style.title_size if n > 1 else self.style.font_size * 1.1,
            )
            self.figure = fig
        self.step: int | None = None
        self.set_step(step)

    def _mark_padding(self, ax: Any, nu: int) -> None:
        """Hatch the timesteps a mask skips (padding): the layer kept its state there."""
        from matplotlib.patches import Rectangle

        mask = self.lt.mask
        if mask is None:
            return
        skip = ~np.asarray(mask[self.batch], dtype=bool)  # (T,)
        t = 0
        while t < len(skip):
            if skip[t]:
                end = t
                while end + 1 < len(skip) and skip[end + 1]:
                    end += 1
                ax.add_patch(
                    Rectangle(
                        (t - 0.5, -0.5),
                        end - t + 1,
                        nu,
                        fill=False,
                        hatch="///",
                        ec=(0.45, 0.45, 0.45),
                        lw=0,
                        zorder=3,
                        label="masked (padding)",
                    )
                )
                t = end + 1
            else:
                t += 1

    # --- axes ----------------------------------------------------------------------------
    def _time_axis(self, ax: Any, bottom: bool) -> None:
        from matplotlib.ticker import FixedLocator, MaxNLocator

        T = self.T
        if self.labels is not None and self.style.max_tick_labels >= T:
            ax.xaxis.set_major_locator(FixedLocator(list(range(T))))
            long = max((len(s) for s in self.labels), default=1) > 2 or T > 24
            ax.set_xticklabels(self.labels if bottom else [], rotation=90 if long else 0)
            label = "input token at step t"
        else:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
            if not bottom:
                ax.tick_params(labelbottom=False)
            label = "timestep t"
        ax.tick_params(axis="x", length=2 * self.style.line_width)
        if bottom:
            ax.set_xlabel(label)

    def _unit_axis(self, ax: Any, left: bool) -> None:
        from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

        nu = len(self.units)
        if nu <= 16:
            ax.yaxis.set_major_locator(FixedLocator(list(range(nu))))
        else:
            ax.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        units = self.units
        ax.yaxis.set_major_formatter(
            FuncFormatter(lambda v, _pos: str(units[round(v)]) if 0 <= round(v) < nu else "")
        )
        if left:
            ax.set_ylabel("unit")
        else:
            ax.tick_params(labelleft=False)

    # --- the timestep ----------------------------------------------------------------------
    def title_text(self) -> str:
        if self.custom_title is not None:
            return self.custom_title
        parts = [
            self.model_name or "model",
            f"layer {self.lt.name}" + (" (runs backwards)" if self.lt.go_backwards else ""),
        ]
        if self.trace.batch_size > 1:
            parts.append(f"batch item {self.batch}")
        if self.step is None:
            parts.append(f"all {self.T} timesteps")
        else:
            tok = f" (input {self.labels[self.step]})" if self.labels else ""
            parts.append(f"t = {self.step}{tok}")
        return "  ·  ".join(parts)

    def set_step(self, t: int | None) -> None:
        """Move the cursor to timestep ``t`` and dim the steps not processed yet (after
        ``t``; before it for a layer that runs backwards). None: no cursor, nothing dimmed."""
        t = check_step(t, self.T)
        self.step = t
        back = self.lt.go_backwards
        for cur, fut in zip(self._cursors, self._futures, strict=True):
            cur.set_visible(t is not None)
            if t is None:
                fut.set_visible(False)
                continue
            cur.set_x(t - 0.5)
            x0, width = (-0.5, t) if back else (t + 0.5, self.T - 1 - t)
            fut.set_x(x0)
            fut.set_width(width)
            fut.set_visible(width > 0)
        self.suptitle.set_text(safe_label(self.title_text(), limit=400))

    # --- output ------------------------------------------------------------------------------
    def draw(self) -> None:
        mpl = _mpl()
        with mpl.rc_context(self._rc):
            self.canvas.draw()

    def freeze_layout(self) -> None:
        """Lay out once and keep it (animation frames must not jump between steps)."""
        self.draw()
        self.figure.set_layout_engine("none")

    def start_frames(self) -> None:
        """Lay out and draw everything but the cursor, the dimming and the title once;
        :meth:`frame` then draws only those (blitting: a frame costs a few milliseconds)."""
        mpl = _mpl()
        self.freeze_layout()
        keep = self.step
        for a in (*self._cursors, *self._futures):
            a.set_visible(False)
        self.suptitle.set_visible(False)
        with mpl.rc_context(self._rc):
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        self.suptitle.set_visible(True)
        self.set_step(keep)

    def frame(self, t: int, even: bool = False) -> np.ndarray:
        """The figure at timestep ``t`` as ``(H, W, 3)`` uint8 (after :meth:`start_frames`)."""
        if self._background is None:
            self.start_frames()
        mpl = _mpl()
        self.set_step(t)
        with mpl.rc_context(self._rc):
            self.canvas.restore_region(self._background)
            for ax, fut, cur in zip(self.axes.values(), self._futures, self._cursors, strict=True):
                ax.draw_artist(fut)
                ax.draw_artist(cur)
            self.figure.draw_artist(self.suptitle)
        return self._buffer(even)

    def rgb(self, even: bool = False) -> np.ndarray:
        """The current figure as an ``(H, W, 3)`` uint8 image (``even``: padded to even
        sizes with white, as H.264 with yuv420p needs)."""
        self.draw()
        return self._buffer(even)

    def _buffer(self, even: bool) -> np.ndarray:
        img = np.asarray(self.canvas.buffer_rgba())[:, :, :3]  # (H, W, 3)
        if even and (img.shape[0] % 2 or img.shape[1] % 2):
            h, w = img.shape[0] + img.shape[0] % 2, img.shape[1] + img.shape[1] % 2
            out = np.full((h, w, 3), 255, np.uint8)
            out[: img.shape[0], : img.shape[1]] = img
            return out
        return np.array(img, copy=True)

    def pixel_size(self) -> tuple[int, int]:
        w, h = self.figure.get_size_inches()
        return round(w * self.dpi), round(h * self.dpi)

    def save(self, path: str | os.PathLike[str], fmt: str | None = None) -> Path:
        """Write PNG, SVG or PDF atomically (the format from the extension by default)."""
        mpl = _mpl()
        p = Path(path)
        fmt = (fmt or p.suffix.lstrip(".")).lower()
        if fmt not in ("png", "svg", "pdf"):
            raise LstmvizError(f"{p}: a figure is written as .png, .svg or .pdf, not .{fmt}")
        from .. import __version__

        title = self.title_text()
        meta: dict[str, Any] = {
            "png": {"Title": title, "Software": f"lstmviz {__version__}"},
            "svg": {"Title": title, "Creator": f"lstmviz {__version__}", "Date": None},
            "pdf": {"Title": title, "Creator": f"lstmviz {__version__}", "CreationDate": None},
        }[fmt]
        with mpl.rc_context(self._rc), atomic_open(p, "wb") as fh:
            self.figure.savefig(fh, format=fmt, dpi=self.dpi, metadata=meta)
        return p


def render_figure(trace: Trace, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Draw a :class:`GridFigure` with ``kwargs`` and write it to ``path``."""
    return GridFigure(trace, **kwargs).save(path)
