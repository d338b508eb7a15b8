"""A projected LSTM (PyTorch proj_size: hidden has P < units columns) in the real window:
every per-unit view shows the unit's own o·tanh(c), and nothing raises."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.engine import Model, Node
from lstmviz.engine.cell import LSTMWeights
from lstmviz.engine.layers import LSTM, InputLayer


def _proj_model(units=8, proj=3, feats=2):
    rng = np.random.default_rng(0)
    w = LSTMWeights(
        rng.normal(0, 0.8, (feats, 4 * units)),
        rng.normal(0, 0.8, (proj, 4 * units)),
        rng.normal(0, 0.5, 4 * units),
        projection=rng.normal(0, 0.8, (units, proj)),
    )
    nodes = [
        Node(InputLayer("x", (None, None, feats)), 0, []),
        Node(LSTM("lstm", w, return_sequences=True), 0, [("x", 0, 0)]),
    ]
    return Model("proj", nodes, [("x", 0, 0)], [("lstm", 0, 0)])


def test_unit_hidden_is_o_tanh_c_and_projects_to_hidden():
    m = _proj_model()
    lt = m.trace(np.random.default_rng(1).normal(size=(2, 5, 2)).astype(np.float32)).layer(0)
    assert lt.projected and lt.hidden.shape == (2, 5, 3) and lt.unit_hidden.shape == (2, 5, 8)
    np.testing.assert_allclose(lt.unit_hidden, lt.output_gate * np.tanh(lt.cell), atol=1e-6)
    np.testing.assert_allclose(lt.unit_hidden @ lt.weights.projection, lt.hidden, atol=1e-5)
    assert lt.per_unit("hidden").shape[-1] == lt.units
    np.testing.assert_array_equal(lt.at_unit("hidden", 2, 1), lt.unit_hidden[1, 2])


def test_window_steps_through_a_projected_lstm(window, qtbot):
    pytest.importorskip("pyqtgraph")
    m = _proj_model()
    x = np.random.default_rng(2).normal(size=(1, 6, 2)).astype(np.float32)
    window.state.set_model(m, None, None, x)
    qtbot.waitUntil(lambda: window.state.trace is not None, timeout=10000)
    window.state.set_units([7, 5, 0])  # units beyond the 3 projected columns
    from PySide6.QtWidgets import QApplication

    for t in range(6):
        window.state.set_t(t)
        QApplication.processEvents()
    assert window.state.t == 5
    assert window.last_error is None, window.last_error


def test_model_panel_shows_the_projected_shapes_and_parameter_count():
    from lstmviz.app.model_panel import lstm_html
    from lstmviz.app.style import NORMAL

    m = _proj_model(units=8, proj=3, feats=2)
    lay = m.lstm_layers[0]
    html = lstm_html("lstm", lay, True, NORMAL)
    n = 4 * 8 * (2 + 3 + 1) + 8 * 3  # kernel, recurrent (P x 4U), bias, projection (U x P)
    assert n == lay.weights.n_params == 216
    assert "U (recurrent)</span> 3×32" in html and "projection</span> 8×3" in html
    assert "4·U·(F+P+1) + U·P" in html and f"<b>{n:,}</b>" in html


def test_model_panel_says_how_pytorch_counts_the_biases(tmp_path):
    torch = pytest.importorskip("torch")
    import lstmviz
    from lstmviz.app.model_panel import _torch_bias_note
    from lstmviz.app.style import NORMAL

    net = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    path = tmp_path / "net.pt"
    torch.save(net.state_dict(), path)
    m = lstmviz.load_model(path)
    torch_count = sum(p.numel() for p in net.parameters())
    assert m.n_params == torch_count - 4 * 5 * 2 * 2  # one bias per layer and direction
    assert f"PyTorch counts {torch_count:,}" in _torch_bias_note(m, NORMAL)
    net = torch.nn.LSTM(3, 5, bias=False)
    torch.save(net.state_dict(), path)
    assert _torch_bias_note(lstmviz.load_model(path), NORMAL) == ""
