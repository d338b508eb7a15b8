"""Overview images: the cached reduction of a long trace gives, for any choice of units, the
same image as reducing the full array directly."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.analysis.overview import overview, reduce_image
from lstmviz.engine import LSTMWeights, run_lstm


@pytest.fixture(scope="module")
def lt():
    rng = np.random.default_rng(0)
    u = 50
    w = LSTMWeights(
        rng.normal(0, 0.5, (3, 4 * u)), rng.normal(0, 0.3, (u, 4 * u)), rng.normal(0, 0.1, 4 * u)
    )
    return run_lstm(rng.normal(size=(2, 2500, 3)).astype(np.float32), w)


@pytest.mark.parametrize("quantity", ["hidden", "cell", "forget_gate"])
@pytest.mark.parametrize("rows", [None, [3, 7, 9], list(range(0, 50, 2)), [49, 0]])
@pytest.mark.parametrize("max_rows", [384, 7])
def test_overview_equals_the_reduction_of_the_full_array(lt, quantity, rows, max_rows):
    got = overview(lt, quantity, 1, rows, max_rows=max_rows)
    ref = reduce_image(
        lt.per_unit(quantity)[1], None if rows is None else np.asarray(rows), max_rows, 1200
    )
    assert got.shape == ref.shape and got.shape[1] <= 1200
    np.testing.assert_array_equal(got, ref)
    assert not got.flags.writeable
    assert overview(lt, quantity, 1, rows, max_rows=max_rows) is got  # cached
