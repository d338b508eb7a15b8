"""``LayerTrace.contributions``: the split of each pre-activation into W·x, U·h and b, for
every unit or for a few (what a view of one unit reads: four columns of the weights)."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.engine import LSTMWeights, run_lstm
from lstmviz.errors import ArgumentError


def _trace(units: int = 7, feats: int = 3, steps: int = 5, batch: int = 2, bias: bool = True):
    rng = np.random.default_rng(units)
    w = LSTMWeights(
        rng.normal(0, 0.5, (feats, 4 * units)),
        rng.normal(0, 0.5, (units, 4 * units)),
        rng.normal(0, 0.5, 4 * units) if bias else None,
    )
    x = rng.normal(size=(batch, steps, feats)).astype(np.float32)
    return run_lstm(x, w)


@pytest.mark.parametrize("bias", [True, False])
def test_contributions_add_up_to_the_recorded_preactivations(bias):
    lt = _trace(bias=bias)
    for t in (0, 3, -1):
        c = lt.contributions(t, 1)
        z = np.concatenate([c[g]["z"] for g in c])  # Keras order i, f, c, o
        split = np.concatenate([c[g]["Wx"] + c[g]["Uh"] + c[g]["b"] for g in c])
        np.testing.assert_array_equal(z, split)
        recorded = np.concatenate([lt.z_i[1, t], lt.z_f[1, t], lt.z_c[1, t], lt.z_o[1, t]])
        np.testing.assert_allclose(z, recorded, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("units", [[4], [0, 6, 2], np.array([3, 3]), 5])
def test_a_few_units_equal_their_share_of_every_unit(units):
    lt = _trace()
    full = lt.contributions(2, 1)
    some = lt.contributions(2, 1, units=units)
    idx = np.atleast_1d(units)
    for gate in full:
        for k in ("Wx", "Uh", "b", "z"):
            assert some[gate][k].shape == (idx.size,)
            np.testing.assert_allclose(some[gate][k], full[gate][k][idx], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("units", [[7], [-1], ["a"], [None]])
def test_units_out_of_range_or_not_indices_are_refused(units):
    lt = _trace()
    with pytest.raises(ArgumentError, match="unit"):
        lt.contributions(0, 0, units=units)
