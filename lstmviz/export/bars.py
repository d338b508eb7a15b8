"""The "all six now" bars, headless: :func:`lstmviz.analysis.all_six.all_six_now` drawn with
matplotlib (the app's bar view draws the same numbers)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import LstmvizError

if TYPE_CHECKING:
    from ..engine.trace import Trace


class AllSixFigure:
    """Grouped bars of the six quantities of a few units at step ``t``: one panel per group
    of :func:`~lstmviz.analysis.all_six.all_six_now` (bounded values share one axis, the
    unbounded ones get their own), titled with its scale in words."""

    def __init__(
        self,
        trace: Trace,
        t: int,
        layer: str | None = None,
        batch: int = 0,
        units: Sequence[int] | None = None,
        style: Any = "slide",
        model_name: str = "",
        size: tuple[float, float] | None = None,
        dpi: float | None = None,
        max_units: int = 8,
    ) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from ..analysis.all_six import SYMBOLS, all_six_now
        from .figure import _mpl, safe_label
        from .selection import pick_layer
        from .style import QUANTITY_COLOURS, get_style

        mpl = _mpl()
        self.lt = pick_layer(trace, layer)
        self.data = all_six_now(self.lt, t, batch, units, max_units)
        self.style = get_style(style) if isinstance(style, str) else style
        size = size or self.style.fixed_size or (7.0, 3.2)
        self.dpi = float(dpi or self.style.dpi)
        if not 10 <= self.dpi <= 2400:
            raise LstmvizError(f"dpi must be between 10 and 2400; got {self.dpi:g}")
        self._rc = self.style.rc_params()
        d = self.data
        with mpl.rc_context(self._rc):
            fig = Figure(figsize=size, dpi=self.dpi, layout="constrained")
            FigureCanvasAgg(fig)
            widths = [len(g.quantities) + 1 for g in d.groups]
            axes = fig.subplots(1, len(d.groups), squeeze=False, width_ratios=widths)[0]
            n = len(d.units)
            for ax, g in zip(axes, d.groups, strict=True):
                k = len(g.quantities)
                w = 0.84 / k
                for j, q in enumerate(g.quantities):
                    xs = np.arange(n) - 0.42 + (j + 0.5) * w
                    ax.bar(
                        xs,
                        g.values[j],
                        width=w * 0.92,
                        color=QUANTITY_COLOURS[q],
                        label=SYMBOLS[q],
                        edgecolor="#333333",
                        linewidth=0.3,
                    )
                ax.axhline(0, color="#555555", lw=0.6 * self.style.line_width)
                lo, hi = g.range
                ax.set_ylim(lo * 1.05 if lo < 0 else 0, hi * 1.05)
                ax.set_xticks(range(n), [str(u) for u in d.units])
                ax.set_xlabel("unit")
                ax.set_title(
                    safe_label(g.title, limit=200),
                    loc="left",
                    fontsize=self.style.font_size * 0.8,
                    wrap=True,
                )
                ax.legend(
                    ncols=k,
                    loc="lower center",
                    bbox_to_anchor=(0.5, 1.12),
                    frameon=False,
                    fontsize=self.style.font_size * 0.8,
                    handlelength=1.0,
                    columnspacing=0.8,
                )
            title = f"{model_name or 'model'}  ·  layer {self.lt.name}  ·  all six: {d.caption}"
            fig.suptitle(
                safe_label(title, limit=300),
                fontweight="bold",
                fontsize=self.style.title_size * 0.85,
            )
            self.figure = fig

    def save(self, path: str | os.PathLike[str], fmt: str | None = None) -> Path:
        """Write PNG, SVG or PDF atomically."""
        from ..io.atomic import atomic_open
        from .figure import _mpl

        p = Path(path)
        fmt = (fmt or p.suffix.lstrip(".")).lower()
        if fmt not in ("png", "svg", "pdf"):
            raise LstmvizError(f"{p}: the bars are written as .png, .svg or .pdf, not .{fmt}")
        with _mpl().rc_context(self._rc), atomic_open(p, "wb") as fh:
            self.figure.savefig(fh, format=fmt, dpi=self.dpi)
        return p
