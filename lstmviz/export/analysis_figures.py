"""Figures of the causal analyses, headless (matplotlib, Agg): attribution on the input strip,
connectivity, ablation scans, activation patching, intervention diffs, state space with fixed
points, memory paths and direct logit attribution.

Each ``*_figure`` function takes the plain result object an analysis returns
(:mod:`lstmviz.analysis`) and returns a :class:`matplotlib.figure.Figure` drawn in one of the
export styles (``"paper"`` or ``"slide"``); :func:`save_figure` writes it atomically as PNG, SVG
or PDF. Nothing here computes an analysis: the numbers come from the result.

>>> from lstmviz.analysis import attribute
>>> fig = attribution_figure(attribute(model, x, 4, "ig"), tokens)
>>> save_figure(fig, "ig.pdf")
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError, LstmvizError
from ..io.atomic import atomic_open
from .figure import _mpl, safe_label
from .style import Style, get_style, mpl_colormap

if TYPE_CHECKING:
    from ..analysis.attribution import Attribution
    from ..analysis.dynamics import FixedPoint, StatePCA
    from ..analysis.gradients import Connectivity, MemoryPaths
    from ..analysis.interventions import AblationScan, InterventionEffect
    from ..analysis.logit_attribution import LogitAttribution
    from ..analysis.patching import PatchingResult

KIND_STYLE = {  # fixed-point kinds: marker, filled
    "stable": ("o", True),
    "saddle": ("X", True),
    "unstable": ("s", False),
    "slow": ("d", False),
}


# the style each figure was drawn in: save_figure draws with its rc parameters and dpi
_STYLES: weakref.WeakKeyDictionary[Any, Style] = weakref.WeakKeyDictionary()


def _new(style: str | Style, size: tuple[float, float] | None = None) -> tuple[Any, Style]:
    mpl = _mpl()
    st = get_style(style) if isinstance(style, str) else style
    from matplotlib.figure import Figure

    with mpl.rc_context(st.rc_params()):
        fig = Figure(figsize=size or st.single_size, layout="constrained")
    _STYLES[fig] = st
    return fig, st


def _rc(fig: Any) -> dict[str, Any]:
    st = _STYLES.get(fig)
    return st.rc_params() if st is not None else {}


def _ticks(
    ax: Any, labels: Sequence[str], st: Style, axis: str = "x", height_in: float | None = None
) -> None:
    """Tick labels along x (tokens) or y (units), thinned so that they do not overlap
    (``height_in``: the rows' axes height for y)."""
    n = len(labels)
    most = st.max_tick_labels
    if axis == "y":
        h_in = height_in if height_in is not None else 0.6 * st.single_size[1]
        most = max(2, int(h_in * 72 / (st.font_size * 1.7)))
    step = max(1, int(np.ceil(n / most)))
    pos = list(range(0, n, step))
    text = [safe_label(str(labels[i])) for i in pos]
    if axis == "x":
        ax.set_xticks(pos, text, rotation=90 if any(len(t) > 2 for t in text) else 0)
    else:
        ax.set_yticks(pos, text)


def _labels(tokens: Sequence[str] | None, n: int) -> list[str]:
    if tokens is None:
        return [str(t) for t in range(n)]
    if len(tokens) != n:
        raise InputError(f"tokens: {len(tokens)} labels for {n} steps")
    return [str(t) for t in tokens]


def _title(ax: Any, text: str, st: Style, width_in: float) -> None:
    """A title wrapped to the axes' width (long targets and layer names stay inside)."""
    import textwrap

    chars = max(20, int(0.65 * width_in * 72 / (st.font_size * 0.6)))
    ax.set_title("\n".join(textwrap.wrap(text, chars)))


def _unit_ticks(ax: Any, n: int) -> None:
    step = max(1, int(np.ceil(n / 16)))
    ax.set_yticks(range(0, n, step), [str(u) for u in range(0, n, step)])


def _sym(a: np.ndarray) -> float:
    m = float(np.nanmax(np.abs(a))) if np.size(a) else 0.0
    return m if np.isfinite(m) and m > 0 else 1.0


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as PNG, SVG or PDF (by the extension), atomically, with real text."""
    mpl = _mpl()
    p = Path(path)
    fmt = p.suffix.lstrip(".").lower()
    if fmt not in ("png", "svg", "pdf"):
        raise LstmvizError(f"{p}: a figure is written as .png, .svg or .pdf, not .{fmt or '?'}")
    st = _STYLES.get(fig)
    dpi = st.dpi if st is not None else 150
    from .._version import __version__

    metas: dict[str, dict[str, str | None]] = {
        "png": {"Software": f"lstmviz {__version__}"},
        "svg": {"Creator": f"lstmviz {__version__}", "Date": None},
        "pdf": {"Creator": f"lstmviz {__version__}", "CreationDate": None},
    }
    meta = metas[fmt]
    with mpl.rc_context(_rc(fig)), atomic_open(p, "wb") as fh:
        fig.savefig(fh, format=fmt, dpi=dpi, metadata=meta)
    return p


# ------------------------------------------------------------------------------------------
# attribution
# ------------------------------------------------------------------------------------------
def attribution_figure(
    attr: Attribution,
    tokens: Sequence[str] | None = None,
    *,
    b: int = 0,
    layer: str | None = None,
    top_units: int = 12,
    style: str | Style = "paper",
) -> Any:
    """The input strip coloured by each token's score, and the per (t, unit) scores of the
    ``top_units`` units with the largest total magnitude (when the method has them)."""
    scores = np.asarray(attr.scores[b], np.float64)
    steps = scores.shape[0]
    labels = _labels(tokens, steps)
    units = None
    if attr.units:
        name = layer or next(iter(attr.units))
        if name not in attr.units:
            raise InputError(f"layer {name!r}: scores exist for {', '.join(attr.units)}")
        units = np.asarray(attr.units[name][b], np.float64)  # (T, U)
    fig, st = _new(style)
    w, h = st.single_size
    fig.set_size_inches(max(w, 0.22 * steps + 1.0), h * (1.35 if units is not None else 0.55))
    cmap = mpl_colormap("hidden")
    lim = _sym(scores)
    rows = 2 if units is not None else 1
    axes = fig.subplots(rows, 1, height_ratios=[1, 4][:rows] if rows == 2 else None, squeeze=False)
    ax = axes[0, 0]
    ax.imshow(scores[None, :], cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
    for t in range(steps):
        ax.text(
            t, 0, safe_label(labels[t], 4), ha="center", va="center", fontsize=st.font_size * 0.9
        )
    ax.set_yticks([])
    ax.set_xticks([])
    _title(ax, attr.title, st, fig.get_size_inches()[0])
    if units is not None:
        ax2 = axes[1, 0]
        order = np.argsort(-np.abs(units).sum(axis=0), kind="stable")[:top_units]
        sub = units[:, order].T  # (n, T)
        lim2 = _sym(sub)
        im = ax2.imshow(sub, cmap=cmap, vmin=-lim2, vmax=lim2, aspect="auto")
        _ticks(ax2, [str(int(u)) for u in order], st, "y", 0.6 * fig.get_size_inches()[1])
        ax2.set_ylabel("unit")
        _ticks(ax2, labels, st)
        ax2.set_xlabel("input step")
        ax2.set_title(
            "per unit: h_t × ∂target/∂h_t" if attr.method != "lrp" else "relevance of h_t"
        )
        fig.colorbar(im, ax=ax2, shrink=0.8)
    return fig


def connectivity_figure(
    conn: Connectivity, tokens: Sequence[str] | None = None, *, style: str | Style = "paper"
) -> Any:
    """``‖∂y_t/∂x_s‖`` as an output-step × input-step heatmap."""
    m = np.asarray(conn.matrix, np.float64)
    labels = _labels(tokens, m.shape[1])
    fig, st = _new(style)
    ax = fig.subplots()
    im = ax.imshow(m, cmap=mpl_colormap("forget_gate"), vmin=0, vmax=_sym(m), aspect="auto")
    _ticks(ax, labels, st)
    rows = [labels[int(t)] if int(t) < len(labels) else str(int(t)) for t in conn.output_steps]
    _ticks(ax, rows, st, axis="y")
    ax.set_xlabel("input step s")
    ax.set_ylabel("output step t")
    unit = "all outputs" if conn.unit is None else f"output {conn.unit}"
    _title(ax, f"connectivity ‖∂y_t/∂x_s‖ ({unit}, {conn.space})", st, st.single_size[0])
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


# ------------------------------------------------------------------------------------------
# interventions
# ------------------------------------------------------------------------------------------
def ablation_figure(scan: AblationScan, *, top: int = 40, style: str | Style = "paper") -> Any:
    """Each unit's effect on the target when ablated, largest first (signed bars)."""
    order = scan.order[:top]
    fig, st = _new(style)
    ax = fig.subplots()
    signed = np.asarray(scan.signed_effect)[order]
    mag = np.asarray(scan.effect)[order]
    pos = np.arange(len(order))
    ax.bar(pos, mag, color="0.75", label="mean |change|")
    ax.bar(
        pos,
        signed,
        color=np.where(signed >= 0, "#c0392b", "#2c6fbb"),
        width=0.5,
        label="mean change",
    )
    ax.set_xticks(pos, ["+".join(str(u) for u in scan.groups[i]) for i in order], rotation=90)
    ax.axhline(0, color="black", linewidth=st.line_width * 0.6)
    ax.set_xlabel("unit ablated")
    ax.set_ylabel(f"change of {scan.target}")
    _title(ax, f"ablation scan: {scan.layer} {scan.quantity} := {scan.mode}", st, st.single_size[0])
    ax.legend(frameon=False)
    return fig


def intervention_figure(
    effect: InterventionEffect,
    layer: str,
    quantity: str = "cell",
    tokens: Sequence[str] | None = None,
    *,
    b: int = 0,
    style: str | Style = "paper",
) -> Any:
    """The difference heatmap (units × time) of one quantity, and the output's change."""
    d = np.asarray(effect.diffs[layer][quantity][b], np.float64).T  # (U, T)
    labels = _labels(tokens, d.shape[1])
    fig, st = _new(style)
    has_out = effect.output_diff is not None
    axes = fig.subplots(
        2 if has_out else 1,
        1,
        squeeze=False,
        height_ratios=[3, 1] if has_out else None,
        sharex=True,
    )
    ax = axes[0, 0]
    lim = _sym(d)
    im = ax.imshow(d, cmap=mpl_colormap("cell"), vmin=-lim, vmax=lim, aspect="auto")
    ax.set_ylabel("unit")
    _unit_ticks(ax, d.shape[0])
    _title(ax, f"{layer}: {quantity} after − before", st, st.single_size[0])
    fig.colorbar(im, ax=ax, shrink=0.8)
    if has_out:
        assert effect.output_diff is not None
        out = np.asarray(effect.output_diff[b], np.float64)  # (T, K)
        ax2 = axes[1, 0]
        ax2.plot(np.abs(out).max(axis=-1), color="black")
        ax2.set_ylabel("|Δ output|")
        _ticks(ax2, labels, st)
    else:
        _ticks(ax, labels, st)
    return fig


def patching_figure(
    res: PatchingResult, tokens: Sequence[str] | None = None, *, style: str | Style = "paper"
) -> Any:
    """The fraction of the clean target restored by patching: quantity × t, and unit × t."""
    steps = res.by_quantity.shape[1]
    labels = _labels(tokens, steps)
    fig, st = _new(style)
    w, h = st.single_size
    rows = 2 if res.by_unit is not None else 1
    fig.set_size_inches(max(w, 0.22 * steps + 1.5), h * (1.6 if rows == 2 else 0.9))
    axes = fig.subplots(rows, 1, squeeze=False, sharex=True)
    cmap = mpl_colormap("hidden")
    ax = axes[0, 0]
    im = ax.imshow(res.by_quantity, cmap=cmap, vmin=-1, vmax=1, aspect="auto")
    ax.set_yticks(range(len(res.quantities)), [q.replace("_", " ") for q in res.quantities])
    _title(
        ax, f"patching {res.layer}: share of {res.target} restored", st, fig.get_size_inches()[0]
    )
    fig.colorbar(im, ax=ax, shrink=0.8)
    if res.by_unit is not None:
        ax2 = axes[1, 0]
        im2 = ax2.imshow(res.by_unit, cmap=cmap, vmin=-1, vmax=1, aspect="auto")
        ax2.set_ylabel(f"unit ({res.unit_quantity})")
        _unit_ticks(ax2, res.by_unit.shape[0])
        fig.colorbar(im2, ax=ax2, shrink=0.8)
    _ticks(axes[-1, 0], labels, st)
    axes[-1, 0].set_xlabel("step patched")
    return fig


# ------------------------------------------------------------------------------------------
# dynamics
# ------------------------------------------------------------------------------------------
def state_space_figure(
    pca: StatePCA,
    points: Sequence[FixedPoint] = (),
    *,
    b: int | None = 0,
    t: int | None = None,
    style: str | Style = "paper",
    title: str | None = None,
) -> Any:
    """The state trajectory (batch item ``b``; None: every item) in the first principal
    components, with fixed points (filled circles: stable, crosses: saddles) and the step
    ``t`` marked."""
    k = pca.components.shape[0]
    fig, st = _new(style)
    three = k >= 3
    if three:
        w = st.single_size[0]
        fig.set_size_inches(w * 1.25, w * 0.95)
    ax = fig.add_subplot(projection="3d") if three else fig.subplots()
    dims = 3 if three else min(k, 2)
    if pca.projected is not None:
        traj = pca.projected if b is None else pca.projected[b : b + 1]
        for item in traj:
            coords = [item[:, i] for i in range(dims)]
            if dims == 1:
                coords.append(np.zeros_like(coords[0]))
            ax.plot(*coords, color="0.55", linewidth=st.line_width * 0.8, alpha=0.8)
        if t is not None and b is not None:
            p = pca.projected[b, t]
            ax.scatter(
                *[[p[i]] for i in range(dims)], color="black", s=30, zorder=5, label=f"t = {t}"
            )
    for kind in ("stable", "saddle", "unstable", "slow"):
        sel = [p for p in points if p.kind == kind]
        if not sel:
            continue
        q = "cell" if pca.quantity == "cell" else "hidden"
        pts = np.array([p.c if q == "cell" else p.h for p in sel])
        xy = pca.project(pts)
        marker, filled = KIND_STYLE[kind]
        colour = {
            "stable": "#c0392b",
            "saddle": "#2c6fbb",
            "unstable": "#8e44ad",
            "slow": "#7f8c8d",
        }[kind]
        ax.scatter(
            *[xy[:, i] for i in range(dims)],
            marker=marker,
            s=40,
            facecolors=colour if filled else "none",
            edgecolors=colour,
            label=f"{kind} ({len(sel)})",
            zorder=6,
        )
    ax.set_xlabel(f"PC1 ({100 * pca.explained_ratio[0]:.0f} %)")
    if dims >= 2:
        ax.set_ylabel(f"PC2 ({100 * pca.explained_ratio[1]:.0f} %)")
    if three:
        ax.set_zlabel(f"PC3 ({100 * pca.explained_ratio[2]:.0f} %)")
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.set_major_locator(_mpl().ticker.MaxNLocator(4))
    ax.set_title(title or f"{pca.layer}: {pca.quantity} state space")
    if points or t is not None:
        fig.legend(frameon=False, loc="outside right upper")
    return fig


def memory_paths_figure(mp: MemoryPaths, *, top: int = 20, style: str | Style = "paper") -> Any:
    """Each unit's gradient split into the cell path and the hidden path (shares)."""
    a = np.abs(np.asarray(mp.cell_path, np.float64)).sum(axis=(0, 1))
    h = np.abs(np.asarray(mp.hidden_path, np.float64)).sum(axis=(0, 1))
    order = np.argsort(-(a + h), kind="stable")[:top]
    total = np.maximum(a + h, 1e-300)[order]
    fig, st = _new(style)
    ax = fig.subplots()
    pos = np.arange(len(order))
    ax.bar(pos, a[order] / total, color="#2c6fbb", label="cell path (c → c)")
    ax.bar(
        pos, h[order] / total, bottom=a[order] / total, color="#e67e22", label="hidden path (c → h)"
    )
    ax.set_xticks(pos, [str(int(u)) for u in order], rotation=90)
    ax.set_ylim(0, 1)
    ax.set_xlabel("unit (largest gradient first)")
    ax.set_ylabel("share of |∂target/∂c|")
    _title(ax, f"{mp.layer}: memory paths", st, st.single_size[0])
    fig.legend(frameon=False, loc="outside lower center", ncols=2)
    return fig


def logit_attribution_figure(
    la: LogitAttribution,
    tokens: Sequence[str] | None = None,
    *,
    b: int = 0,
    top_units: int = 16,
    style: str | Style = "paper",
) -> Any:
    """The units' direct contributions to output k at every step (the largest units), and the
    logit they add up to."""
    c = np.asarray(la.contributions[b], np.float64)  # (T, U)
    labels = _labels(tokens, c.shape[0])
    order = np.argsort(-np.abs(c).sum(axis=0), kind="stable")[:top_units]
    fig, st = _new(style)
    axes = fig.subplots(2, 1, squeeze=False, height_ratios=[3, 1], sharex=True)
    ax = axes[0, 0]
    lim = _sym(c[:, order])
    im = ax.imshow(c[:, order].T, cmap=mpl_colormap("hidden"), vmin=-lim, vmax=lim, aspect="auto")
    _ticks(ax, [str(int(u)) for u in order], st, "y", 0.55 * st.single_size[1])
    ax.set_ylabel("unit")
    _title(
        ax,
        f"direct logit attribution W[u, {la.k}]·h_t[u] ({la.layer} → {la.head})",
        st,
        st.single_size[0],
    )
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax2 = axes[1, 0]
    ax2.plot(la.logit[b], color="black")
    ax2.axhline(0, color="0.6", linewidth=st.line_width * 0.5)
    ax2.set_ylabel(f"logit {la.k}")
    _ticks(ax2, labels, st)
    return fig
