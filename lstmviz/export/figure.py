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
from .rows import StepRow
from .selection import check_batch, check_step, check_units, pick_layer
from .style import Style, get_style, levels_for, mpl_colormap

if TYPE_CHECKING:
    from ..analysis.levels import LevelLock
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


def canvas_rgb(canvas: Any, even: bool = False) -> np.ndarray:
    """A drawn matplotlib canvas as an ``(H, W, 3)`` uint8 image (``even``: padded to even
    sizes with white, as H.264 with yuv420p needs)."""
    img = np.asarray(canvas.buffer_rgba())[:, :, :3]  # (H, W, 3)
    if even and (img.shape[0] % 2 or img.shape[1] % 2):
        h, w = img.shape[0] + img.shape[0] % 2, img.shape[1] + img.shape[1] % 2
        out = np.full((h, w, 3), 255, np.uint8)
        out[: img.shape[0], : img.shape[1]] = img
        return out
    return np.array(img, copy=True)


def save_mpl_figure(
    figure: Any,
    path: str | os.PathLike[str],
    fmt: str | None,
    dpi: float,
    rc: dict[str, Any],
    title: str,
) -> Path:
    """Write a matplotlib figure as PNG, SVG or PDF atomically (the format from the extension
    by default), titled and signed in the file's metadata, without a date (same input, same
    bytes)."""
    from .._version import __version__

    mpl = _mpl()
    p = Path(path)
    fmt = (fmt or p.suffix.lstrip(".")).lower()
    if fmt not in ("png", "svg", "pdf"):
        raise LstmvizError(f"{p}: a figure is written as .png, .svg or .pdf, not .{fmt}")
    meta: Any = {
        "png": {"Title": title, "Software": f"lstmviz {__version__}"},
        "svg": {"Title": title, "Creator": f"lstmviz {__version__}", "Date": None},
        "pdf": {"Title": title, "Creator": f"lstmviz {__version__}", "CreationDate": None},
    }[fmt]
    with mpl.rc_context(rc), atomic_open(p, "wb") as fh:
        figure.savefig(fh, format=fmt, dpi=dpi, metadata=meta)
    return p


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
    levels : mapping or LevelLock, optional
        Colour levels ``{quantity: (lo, hi)}`` to use instead of the trace's own
        (:func:`lstmviz.analysis.levels.levels`), e.g. locked across training snapshots; a
        :class:`~lstmviz.analysis.levels.LevelLock` is asked for each quantity.
    rows_above, rows_below : sequence of StepRow, optional
        Rows of one label per timestep over and under the heatmaps (the input tokens; what
        the model says and the correct answer), the current step boxed, later steps dimmed.
        A long sequence shows a window around the current step.
    hide_future : bool
        Hide the steps after the current one completely (predict, then reveal) instead of
        dimming them.
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
        levels: Any = None,
        rows_above: Sequence[StepRow] = (),
        rows_below: Sequence[StepRow] = (),
        hide_future: bool = False,
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
        self._tick_labels = self.labels
        if hide_future and self.labels is not None and step is not None:
            # predict, then reveal: the inputs still to come are not shown on the time axis
            st = check_step(step, self.T)
            assert st is not None
            back = self.lt.go_backwards
            self._tick_labels = [
                s if (k >= st if back else k <= st) else "" for k, s in enumerate(self.labels)
            ]
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
        self._levels = levels
        self.hide_future = bool(hide_future)
        self.rows_above = tuple(rows_above)
        self.rows_below = tuple(rows_below)
        for row in (*self.rows_above, *self.rows_below):
            if len(row.labels) != self.T:
                raise LstmvizError(
                    f"row {row.name!r} has {len(row.labels)} labels for {self.T} timesteps"
                )
        self._strips: list[_Strip] = []

        n = len(self.quantities)
        ncols = min(3, n)
        nrows = (n + ncols - 1) // ncols
        with mpl.rc_context(self._rc):
            fig = Figure(figsize=size, dpi=self.dpi, layout="constrained")
            self.canvas = FigureCanvasAgg(fig)
            engine: Any = fig.get_layout_engine()
            engine.set(w_pad=0.02, h_pad=0.02, wspace=0.04, hspace=0.06)
            strip_in = self.style.font_size * 1.9 / 72  # one row of labels, inches
            heat_in = max(
                0.5,
                (size[1] - strip_in * (len(self.rows_above) + len(self.rows_below) + 1.5)) / nrows,
            )
            ratios = (
                ([strip_in * len(self.rows_above)] if self.rows_above else [])
                + [heat_in] * nrows
                + ([strip_in * len(self.rows_below)] if self.rows_below else [])
            )
            gs = fig.add_gridspec(len(ratios), ncols, height_ratios=ratios)
            off = 1 if self.rows_above else 0
            axes = [[fig.add_subplot(gs[off + r, c]) for c in range(ncols)] for r in range(nrows)]
            if self.rows_above:
                self._strips.append(_Strip(self, fig.add_subplot(gs[0, :]), self.rows_above))
            if self.rows_below:
                self._strips.append(_Strip(self, fig.add_subplot(gs[-1, :]), self.rows_below))
            self.axes: dict[str, Any] = {}
            self.images: dict[str, Any] = {}
            self._cursors: list[Any] = []
            self._futures: list[Any] = []
            lw = self.style.line_width
            nu = len(self.units)
            for k, q in enumerate(self.quantities):
                ax = axes[k // ncols][k % ncols]
                data = self.lt.get(q)[self.batch][:, list(self.units)].T  # (units, T)
                lo, hi = self.levels_of(q)
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
                finite = data[np.isfinite(data)]
                below = finite.size > 0 and float(finite.min()) < lo
                above = finite.size > 0 and float(finite.max()) > hi
                # arrows on the colour bar: some values lie beyond the levels (robust levels
                # leave a few outliers saturated)
                extend = {
                    (True, True): "both",
                    (True, False): "min",
                    (False, True): "max",
                    (False, False): "neither",
                }[(below, above)]
                cb = fig.colorbar(im, ax=ax, fraction=0.08, pad=0.015, aspect=18, extend=extend)
                cb.outline.set_linewidth(0.6 * lw)
                if q in ("input_gate", "forget_gate", "output_gate"):
                    cb.set_ticks([0.0, 0.5, 1.0])
                elif (lo, hi) == (-1.0, 1.0):
                    cb.set_ticks([-1.0, 0.0, 1.0])
                else:
                    cb.set_ticks([lo, 0.0, hi], labels=[f"{lo:g}", "0", f"{hi:g}"])
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
                    alpha=1.0 if self.hide_future else FUTURE_ALPHA,
                    visible=False,
                    zorder=4,
                )
                ax.add_patch(fut)
                ax.add_patch(cur)
                self._cursors.append(cur)
                self._futures.append(fut)
            for k in range(n, nrows * ncols):
                axes[k // ncols][k % ncols].set_visible(False)
            for strip in self._strips:
                strip.build()
            self.suptitle = fig.suptitle(
                "",
                fontweight="bold",
                fontsize=self.style.title_size if n > 1 else self.style.font_size * 1.1,
            )
            self.figure = fig
        self.step: int | None = None
        self.set_step(step)

    def levels_of(self, quantity: str) -> tuple[float, float]:
        """The colour levels ``quantity`` is drawn with (given ones, or the shared function)."""
        lv = self._levels
        if lv is None:
            return levels_for(quantity, self.lt)
        if hasattr(lv, "levels") and callable(lv.levels):
            lock: LevelLock = lv
            return lock.levels(quantity, self.lt)
        if quantity in lv:
            lo, hi = lv[quantity]
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise LstmvizError(
                    f"levels of {quantity!r} must be finite with lo < hi; got {lv[quantity]}"
                )
            return float(lo), float(hi)
        return levels_for(quantity, self.lt)

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
            ax.set_xticklabels(self._tick_labels if bottom else [], rotation=90 if long else 0)
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
        parts = [self.model_name] if self.model_name else []  # a notebook trace has none
        parts.append(
            f"layer {self.lt.name}" + (" (runs backwards)" if self.lt.go_backwards else "")
        )
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
        for strip in self._strips:
            strip.set_step(t)
        self.suptitle.set_text(safe_label(self.title_text(), limit=400))

    def _strip_artists(self) -> list[Any]:
        return [a for strip in self._strips for a in strip.artists()]

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
        for a in (*self._cursors, *self._futures, *self._strip_artists()):
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
            for strip in self._strips:
                for a in strip.artists():
                    strip.ax.draw_artist(a)
            self.figure.draw_artist(self.suptitle)
        return self._buffer(even)

    def rgb(self, even: bool = False) -> np.ndarray:
        """The current figure as an ``(H, W, 3)`` uint8 image (``even``: padded to even
        sizes with white, as H.264 with yuv420p needs)."""
        self.draw()
        return self._buffer(even)

    def _buffer(self, even: bool) -> np.ndarray:
        return canvas_rgb(self.canvas, even)

    def pixel_size(self) -> tuple[int, int]:
        w, h = self.figure.get_size_inches()
        return round(w * self.dpi), round(h * self.dpi)

    def save(self, path: str | os.PathLike[str], fmt: str | None = None) -> Path:
        """Write PNG, SVG or PDF atomically (the format from the extension by default)."""
        return save_mpl_figure(self.figure, path, fmt, self.dpi, self._rc, self.title_text())


class _Strip:
    """Rows of labels, one cell per timestep, in one axes spanning the figure's width.

    A sequence longer than fits shows a window of cells around the current step. Cells after
    the current step (before it, for a layer that runs backwards) are dimmed like the
    heatmaps' future.
    """

    def __init__(self, grid: GridFigure, ax: Any, rows: Sequence[StepRow]) -> None:
        self.grid = grid
        self.ax = ax
        self.rows = tuple(rows)
        self.texts: list[list[Any]] = []
        self.box: Any = None
        longest = max((len(s) for r in self.rows for s in r.labels), default=1)
        self.chars = min(max(longest, 1), 8)
        self.n = 1

    def build(self) -> None:
        from matplotlib.patches import Rectangle

        g = self.grid
        fs = g.style.font_size
        width_pt = self.ax.get_position().width * self.ax.figure.get_size_inches()[0] * 72
        cell_pt = (self.chars + 1.2) * 0.62 * fs
        self.n = int(max(3, min(g.T, width_pt // cell_pt)))
        ax = self.ax
        nr = len(self.rows)
        ax.set_xlim(-0.5, self.n - 0.5)
        ax.set_ylim(nr, 0)
        ax.set_yticks([k + 0.5 for k in range(nr)], [r.name for r in self.rows])
        ax.tick_params(axis="y", length=0)
        ax.set_xticks([])
        for side in ("top", "right", "bottom", "left"):
            ax.spines[side].set_visible(False)
        for k in range(1, nr):
            ax.axhline(k, color=(0.85, 0.85, 0.85), lw=0.5 * g.style.line_width)
        self.texts = [
            [
                ax.text(i, k + 0.5, "", ha="center", va="center", fontsize=fs, clip_on=True)
                for i in range(self.n)
            ]
            for k in range(nr)
        ]
        self.box = Rectangle(
            (-0.5, 0.02), 1.0, nr - 0.04, fill=False, ec=CURSOR_COLOUR, lw=1.4 * g.style.line_width
        )
        ax.add_patch(self.box)

    def window(self, t: int | None) -> int:
        """First timestep shown."""
        T = self.grid.T
        if self.n >= T or t is None:
            return 0
        return int(min(max(0, t - self.n // 2), T - self.n))

    def set_step(self, t: int | None) -> None:
        if not self.texts:
            return
        w0 = self.window(t)
        back = self.grid.lt.go_backwards
        for k, row in enumerate(self.rows):
            for i, txt in enumerate(self.texts[k]):
                s = w0 + i
                if s >= self.grid.T:
                    txt.set_text("")
                    continue
                txt.set_visible(True)
                txt.set_text(safe_label(row.labels[s], limit=self.chars))
                future = t is not None and (s < t if back else s > t)
                txt.set_color(row.colour(s))
                txt.set_alpha((0.0 if self.grid.hide_future else 0.3) if future else 1.0)
                txt.set_fontweight("bold" if s == t else "normal")
        self.box.set_visible(t is not None)
        if t is not None:
            self.box.set_x(t - w0 - 0.5)

    def artists(self) -> list[Any]:
        return [*(a for row in self.texts for a in row), *([self.box] if self.box else [])]


def render_figure(trace: Trace, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Draw a :class:`GridFigure` with ``kwargs`` and write it to ``path``."""
    return GridFigure(trace, **kwargs).save(path)
