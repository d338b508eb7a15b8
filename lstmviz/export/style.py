"""Figure styles (paper column, slide) and the colour maps shared with the app.

Colour maps are colour-blind safe and the same as the app's (:mod:`lstmviz.app.style`): the
sequential ``viridis`` fixed to [0, 1] for the three gates; the diverging ``CET-D1A``
(Kovesi's perceptually uniform blue - white - red) fixed to [-1, 1] for the tanh-bounded
candidate and hidden state, and symmetric around 0 at a robust extent for the cell state, which
is not bounded (:mod:`lstmviz.analysis.levels`, shared with the app). ``CET-D1A`` is read from
the table pyqtgraph ships (without importing pyqtgraph or Qt); ColorBrewer's ``RdBu_r`` stands
in if that table is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import LstmvizError

if TYPE_CHECKING:
    from ..engine.trace import LayerTrace

SEQUENTIAL = "viridis"
DIVERGING = "CET-D1A"
DIVERGING_FALLBACK = "RdBu_r"

#: quantity -> matplotlib colour map name
COLORMAPS: dict[str, str] = {
    "input_gate": SEQUENTIAL,
    "forget_gate": SEQUENTIAL,
    "output_gate": SEQUENTIAL,
    "candidate": DIVERGING,
    "cell": DIVERGING,
    "hidden": DIVERGING,
}


def cet_table(name: str) -> np.ndarray | None:
    """The ``(256, 3)`` RGB table of a CET colour map shipped with pyqtgraph, or None."""
    import importlib.util

    spec = importlib.util.find_spec("pyqtgraph")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(next(iter(spec.submodule_search_locations))) / "colors" / "maps" / f"{name}.csv"
    try:
        rows = [
            [float(v) for v in ln.split(",")[:3]]
            for ln in p.read_text(encoding="ascii").splitlines()
            if ln.strip() and not ln.lstrip().startswith(";")
        ]
    except (OSError, ValueError):
        return None
    a = np.asarray(rows, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3 or len(a) < 2 or a.min() < 0 or a.max() > 1:
        return None
    return a


def mpl_colormap(quantity: str) -> Any:
    """The matplotlib colour map of ``quantity`` (imports matplotlib)."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    name = COLORMAPS[quantity]
    if name.startswith("CET-"):
        table = cet_table(name)
        if table is None:
            return colormaps[DIVERGING_FALLBACK]
        return ListedColormap(table, name=name)
    return colormaps[name]


def levels_for(quantity: str, lt: LayerTrace) -> tuple[float, float]:
    """Fixed colour levels of ``quantity``: :func:`lstmviz.analysis.levels.levels`, the one
    function the app uses too (gates [0, 1], tanh-bounded values [-1, 1], the cell state and
    unbounded activations symmetric around 0 at a robust extent, rounded to a readable number).
    """
    from ..analysis.levels import levels

    return levels(quantity, lt)


@dataclass(frozen=True)
class Style:
    """Sizes and fonts for one kind of figure."""

    name: str
    font_size: float
    title_size: float
    grid_size: tuple[float, float]  # inches, a 2 x 3 grid
    single_size: tuple[float, float]  # inches, one plot
    dpi: int  # PNG
    animation_dpi: int  # GIF / MP4 frames
    line_width: float
    max_tick_labels: int  # token labels shown along the time axis before thinning
    rc: dict[str, Any] = field(default_factory=dict)
    #: every figure of this style has this size (inches), whatever it holds (a slide)
    fixed_size: tuple[float, float] | None = None

    def size_for(self, n_panels: int) -> tuple[float, float]:
        if self.fixed_size is not None:
            return self.fixed_size
        if n_panels <= 1:
            return self.single_size
        w, h = self.grid_size
        rows = (n_panels + 2) // 3
        cols = min(3, n_panels)
        # keep the panel size of the 2 x 3 grid for other counts
        return (w * (0.25 + 0.75 * cols / 3), h * (0.2 + 0.8 * rows / 2))

    def rc_params(self) -> dict[str, Any]:
        base = {
            "font.family": "DejaVu Sans",
            "font.size": self.font_size,
            "axes.titlesize": self.font_size,
            "axes.labelsize": self.font_size,
            "xtick.labelsize": self.font_size * 0.85,
            "ytick.labelsize": self.font_size * 0.85,
            "figure.titlesize": self.title_size,
            "axes.linewidth": self.line_width * 0.8,
            "xtick.major.width": self.line_width * 0.8,
            "ytick.major.width": self.line_width * 0.8,
            "xtick.major.size": 2.5 * self.line_width,
            "ytick.major.size": 2.5 * self.line_width,
            "lines.linewidth": self.line_width,
            # real text in vector output: <text> elements in SVG, TrueType (Type 42) in PDF
            "svg.fonttype": "none",
            "pdf.fonttype": 42,
            "ps.fonttype": 42,
            "svg.hashsalt": "lstmviz",  # the same figure gives the same file
            "savefig.facecolor": "white",
            "figure.facecolor": "white",
            "image.interpolation": "nearest",
        }
        base.update(self.rc)
        return base


STYLES: dict[str, Style] = {
    # a journal column: 7 pt text at 100 %; the six-panel grid spans the text width (7 in),
    # one plot fits a single column (3.4 in)
    "paper": Style(
        "paper",
        font_size=7.0,
        title_size=8.0,
        grid_size=(7.0, 3.9),
        single_size=(3.4, 2.3),
        dpi=300,
        animation_dpi=150,
        line_width=0.8,
        max_tick_labels=40,
    ),
    # a 16:9 slide, exactly 1920 x 1080 pixels (12.8 x 7.2 in at 150 dpi) for every figure
    # and animation frame: text readable from the back of a room
    "slide": Style(
        "slide",
        font_size=16.0,
        title_size=20.0,
        grid_size=(12.8, 7.2),
        single_size=(12.8, 7.2),
        dpi=150,
        animation_dpi=150,
        line_width=1.6,
        max_tick_labels=30,
        fixed_size=(12.8, 7.2),
    ),
}


def get_style(name: str) -> Style:
    try:
        return STYLES[name]
    except KeyError:
        raise LstmvizError(f"unknown style {name!r}; expected one of {', '.join(STYLES)}") from None


#: One colour per quantity for bars and curves (Okabe-Ito, as the app's ``QUANTITY_COLORS``;
#: the forget gate orange, input gate bluish green, output gate reddish purple, candidate sky
#: blue, cell yellow, hidden vermillion).
QUANTITY_COLOURS: dict[str, str] = {
    "forget_gate": "#E69F00",
    "input_gate": "#009E73",
    "output_gate": "#CC79A7",
    "candidate": "#56B4E9",
    "cell": "#F0E442",
    "hidden": "#D55E00",
}
