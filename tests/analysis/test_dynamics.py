"""State space: the step map's Jacobian, the bundled flip-flop's 8 stable fixed points
(checked by running the engine from them), and PCA of traces and corpora."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.analysis import fixed_points, state_pca, trace_corpus
from lstmviz.analysis.dynamics import StepMap, constant_layer_input, fixed_point_summary
from lstmviz.engine.cell import LSTMWeights, run_lstm
from lstmviz.errors import InputError
from lstmviz.train.flipflop import flip_flop_data

EXAMPLES = Path(__file__).resolve().parents[2] / "lstmviz" / "assets" / "examples"


@pytest.fixture(scope="module")
def flipflop():
    return lstmviz.load_model(EXAMPLES / "flip_flop.keras")


@pytest.mark.parametrize(
    ("proj", "acts"),
    [(None, ("sigmoid", "tanh")), (3, ("sigmoid", "tanh")), (None, ("hard_sigmoid", "relu"))],
)
def test_step_map_and_its_jacobian(proj, acts):
    rng = np.random.default_rng(0)
    u = 5
    w = LSTMWeights(
        rng.normal(size=(2, 4 * u)),
        rng.normal(size=(proj or u, 4 * u)),
        rng.normal(size=4 * u),
        recurrent_activation=acts[0],
        activation=acts[1],
        projection=None if proj is None else rng.normal(size=(u, proj)),
    )
    x = rng.normal(size=2)
    step = StepMap(w, x)
    s = rng.normal(size=(3, step.dim))
    f, jac = step(s, jacobian=True)
    # the map is one engine step from (h, c) with input x
    h, c = step.split(s)
    lt = run_lstm(np.broadcast_to(x, (3, 1, 2)).astype(np.float32), w, h0=h, c0=c, accelerate=False)
    np.testing.assert_allclose(f[:, : step.pdim], lt.hidden[:, 0], atol=1e-5)
    np.testing.assert_allclose(f[:, step.pdim :], lt.cell[:, 0], atol=1e-5)
    eps = 1e-6
    for j in range(step.dim):
        sp, sm = s.copy(), s.copy()
        sp[:, j] += eps
        sm[:, j] -= eps
        num = (step(sp)[0] - step(sm)[0]) / (2 * eps)
        np.testing.assert_allclose(jac[:, :, j], num, atol=1e-6)


def test_the_flip_flops_eight_stable_fixed_points(flipflop):
    x = flip_flop_data(np.random.default_rng(1), 32, 100).x
    pts = fixed_points(flipflop, "lstm", n_init=128, inits=x)
    stable = [p for p in pts if p.stable]
    assert len(stable) == 8
    assert fixed_point_summary(pts)["stable"] == 8
    head = flipflop.layers["bits"]
    codes = set()
    w = flipflop.lstm("lstm").weights
    for p in stable:
        assert p.speed < 1e-10 and p.spectral_radius < 1 and p.kind == "stable"
        # an engine step from the point with zero input stays there
        lt = run_lstm(np.zeros((1, 1, 3), np.float32), w, h0=p.h, c0=p.c, accelerate=False)
        np.testing.assert_allclose(lt.hidden[0, 0], p.h, atol=1e-5)
        np.testing.assert_allclose(lt.cell[0, 0], p.c, atol=1e-5)
        bits = 1 / (1 + np.exp(-(p.h @ head.kernel + head.bias))) > 0.5
        codes.add(tuple(bits))
    assert codes == {(a, b, c) for a in (False, True) for b in (False, True) for c in (False, True)}
    # an attractor: a nudged state runs back to it
    p = stable[0]
    rng = np.random.default_rng(2)
    h0 = p.h + 0.05 * rng.normal(size=p.h.shape)
    lt = run_lstm(np.zeros((1, 300, 3), np.float32), w, h0=h0, c0=p.c, accelerate=False)
    np.testing.assert_allclose(lt.hidden[0, -1], p.h, atol=1e-4)
    # the rest are saddles between the attractors
    assert all(q.kind in ("saddle", "unstable") for q in pts if not q.stable)
    d = p.to_dict()
    assert d["kind"] == "stable" and len(d["h"]) == 16


def test_fixed_points_options_and_errors(flipflop):
    pts = fixed_points(flipflop, 0, x_const=np.zeros(3), n_init=32, seed=3)
    assert pts and all(p.is_fixed for p in pts)
    slow = fixed_points(flipflop, "lstm", n_init=32, slow=True, slow_tol=1e-2, seed=3)
    assert len(slow) >= len(pts)
    u = constant_layer_input(flipflop, "lstm", np.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(u, [1.0, 0.0, 0.0])
    with pytest.raises(InputError, match="no LSTM layer named 'gru'"):
        fixed_points(flipflop, "gru")
    with pytest.raises(InputError, match="n_init must be a positive integer"):
        fixed_points(flipflop, "lstm", n_init=0)
    with pytest.raises(InputError, match="expected a vector of 3 input features"):
        fixed_points(flipflop, "lstm", x_const=np.zeros(5))


def test_state_pca_of_a_trace_and_of_a_corpus(flipflop, tmp_path):
    x = flip_flop_data(np.random.default_rng(4), 16, 80).x
    tr = flipflop.trace(x)
    pca = state_pca(tr, "lstm", "hidden", k=3)
    assert pca.components.shape == (3, 16)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(3), atol=1e-10)
    assert pca.projected.shape == (16, 80, 3)
    assert np.all(np.diff(pca.explained_variance) <= 0) and pca.explained_ratio.sum() <= 1
    # a flip-flop's hidden state lives near a low-dimensional cube: 3 components carry most
    assert pca.explained_ratio.sum() > 0.8
    np.testing.assert_allclose(pca.project(tr.layer("lstm").hidden), pca.projected, atol=1e-10)
    store = trace_corpus(flipflop, x, tmp_path / "c", quantities=("hidden",))
    cp = state_pca(store, "lstm", "hidden", k=3)
    np.testing.assert_allclose(np.abs(cp.components @ pca.components.T), np.eye(3), atol=2e-2)
    with pytest.raises(InputError, match="states have 4 values"):
        pca.project(np.zeros(4))


def test_flip_flop_data_holds_the_last_pulse():
    b = flip_flop_data(np.random.default_rng(5), 4, 50)
    for n in range(4):
        for k in range(3):
            last = None
            for t in range(50):
                if b.x[n, t, k] != 0:
                    last = b.x[n, t, k] > 0
                assert b.y[n, t, k] == last
