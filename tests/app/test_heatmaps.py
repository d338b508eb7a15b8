"""Heatmap helpers: block averaging, colour levels, time-axis ticks."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.app.heatmaps import levels_for, time_ticks
from lstmviz.app.style import downsample_image

from .models import digit_model


def test_downsample_image_block_means():
    a = np.arange(35, dtype=np.float32).reshape(5, 7)
    out = downsample_image(a, 3, 3)
    assert out.shape == (3, 3)
    assert out[0, 0] == a[:2, :3].mean()
    assert out[2, 2] == a[4:, 6:].mean()  # the short last block: its own mean
    small = downsample_image(a, 10, 10)
    np.testing.assert_array_equal(small, a)
    assert small.flags.c_contiguous
    big = np.random.default_rng(0).random((1024, 10000), dtype=np.float32).T.T  # strided
    assert downsample_image(big, 384, 1200).shape == (342, 1112)


def test_levels():
    m = digit_model()
    x = np.eye(10, dtype=np.float32)[[[1, 2, 3, 4]]]
    lt = m.trace(x).layer("lstm")
    assert levels_for(lt, "forget_gate") == (0.0, 1.0)
    assert levels_for(lt, "candidate") == (-1.0, 1.0)
    assert levels_for(lt, "hidden") == (-1.0, 1.0)
    lo, hi = levels_for(lt, "cell")
    assert lo == -hi
    assert hi >= np.percentile(np.abs(lt.cell), 99.5)
    assert levels_for(lt, "cell") == (lo, hi)  # cached, same answer


def test_time_ticks():
    labels = list("hello")
    assert time_ticks(labels, 5, 400, 12) == [(t + 0.5, s) for t, s in enumerate(labels)]
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
