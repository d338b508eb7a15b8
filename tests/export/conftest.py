"""Small real Keras models saved to .keras once per test session, and their traces."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory):
    """``{"digit_sum": (path, x), "stacked": (path, x)}``: real saved Keras models and a
    batch-2 input of 9 timesteps for each."""
    pytest.importorskip("keras")
    from tests import keras_models as km

    d = tmp_path_factory.mktemp("export_models")
    out = {}
    for name, builder in (("digit_sum", km.digit_sum), ("stacked", km.stacked_4_5)):
        m = builder()
        km.randomize(m, seed=3)
        p = d / f"{name}.keras"
        m.save(p)
        x = km.x_for(
            "digit_sum" if name == "digit_sum" else "stacked_4_5", m, batch=2, steps=9, seed=5
        )
        xp = d / f"{name}_x.npy"
        np.save(xp, x)
        out[name] = (p, xp)
    return out


@pytest.fixture(scope="session")
def stacked(saved_models):
    """(model path, input path, trace) of the stacked 4 -> 5 model (two LSTM layers)."""
    import lstmviz
    from lstmviz.io.inputs import load_input

    p, xp = saved_models["stacked"]
    m = lstmviz.load_model(p)
    return p, xp, m.trace(load_input(m, path=xp))


@pytest.fixture(scope="session")
def digits(saved_models):
    """(model path, input path, trace) of the digit-sum model (one LSTM layer of 10)."""
    import lstmviz
    from lstmviz.io.inputs import load_input

    p, xp = saved_models["digit_sum"]
    m = lstmviz.load_model(p)
    return p, xp, m.trace(load_input(m, path=xp))
