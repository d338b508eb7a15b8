"""Heatmap helpers: block averaging, colour levels, time-axis ticks."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.analysis.overview import reduce_image
from lstmviz.app.heatmaps import time_ticks


def test_overview_block_means():
    a = np.arange(35, dtype=np.float32).reshape(5, 7)
    out = reduce_image(np.ascontiguousarray(a.T), None, 3, 3)
    assert out.shape == (3, 3)
    assert out[0, 0] == a[:2, :3].mean()
    assert out[2, 2] == a[4:, 6:].mean()  # the short last block: its own mean
    small = reduce_image(np.ascontiguousarray(a.T), None, 10, 10)
    np.testing.assert_array_equal(small, a)
    assert small.flags.c_contiguous
    big = np.random.default_rng(0).random((1024, 10000), dtype=np.float32).T.T  # strided
    assert reduce_image(np.ascontiguousarray(big.T), None, 384, 1200).shape == (342, 1112)


def test_heatmaps_use_the_states_levels_which_are_the_exports(digit_window):
    """One implementation of colour levels: the app's heatmaps, the state and the export
    agree (analysis.levels), and a lock keeps them across inputs."""
    from lstmviz.analysis.levels import levels
    from lstmviz.export import levels_for as export_levels

    w = digit_window
    lt = w.state.layer_trace
    for q in ("forget_gate", "candidate", "cell", "hidden"):
        want = levels(q, lt)
        assert w.state.color_levels(q) == want == export_levels(q, lt)
        assert tuple(w.heatmaps.maps[q].bar.levels) == want
    w.state.options.lock_levels = True
    locked = w.state.color_levels("cell")
    w.state.set_text("9 9 9 9 9 9 9 9 9 9 9 9")
    assert w.state.color_levels("cell") == locked
    assert tuple(w.heatmaps.maps["cell"].bar.levels) == locked
    w.state.options.lock_levels = False
    assert w.state.color_levels("cell") == levels("cell", w.state.layer_trace)


def test_time_ticks(qapp):  # the labels are measured in the axes' font
    labels = list("hello")
    assert time_ticks(labels, 5, 400, 12) == [(t + 0.5, s) for t, s in enumerate(labels)]
    # tokens side by side only with room between them: "m m", not "mm"
    wide = list("mmmmmmmmmm")
    assert time_ticks(wide, 10, 10 * 12, 12)[1][1] != "m"
    assert time_ticks(wide, 10, 10 * 20, 12) == [(t + 0.5, "m") for t in range(10)]
    many = [str(i % 10) for i in range(1000)]
    ticks = time_ticks(many, 1000, 300, 12)
    assert 2 <= len(ticks) <= 300 // (12 * 3.2) + 1
    assert ticks[1][0] - ticks[0][0] in (10, 20, 50, 100, 200, 500)
    assert time_ticks([], 0) == []


@pytest.mark.parametrize("n", [1, 7, 10000])
def test_time_ticks_cover_the_axis(n):
    ticks = time_ticks([], n, 500, 12)
    assert ticks[0] == (0.5, "0")
    assert all(0 <= x < n for x, _ in ticks)
