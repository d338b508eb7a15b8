"""An encoder-decoder (the Keras lstm_seq2seq example, two model inputs) in the window:
opened with an .npz of both inputs, each layer shows its own sequence and time axis, the
outputs appear under the decoder's steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .acceptance import click, wait_settled

GOLDEN = Path(__file__).resolve().parents[1] / "zoo" / "golden" / "keras_lstm_seq2seq"


def test_encoder_decoder_with_an_npz_of_both_inputs(window, qtbot, monkeypatch):
    from lstmviz.app import dialogs

    w = window
    w.open_model(GOLDEN / "model.keras")
    wait_settled(qtbot, w)
    monkeypatch.setattr(dialogs, "ask_open_file", lambda *a: str(GOLDEN / "input.npz"))
    click(qtbot, w.editor.load_button)
    qtbot.waitUntil(lambda: isinstance(w.state.x, list) or w.last_error is not None, timeout=20000)
    assert w.last_error is None, w.last_error
    wait_settled(qtbot, w)
    encoder, decoder = w.state.layer_names
    enc_x, dec_x = w.state.x
    w.state.set_layer(encoder)
    assert w.state.timesteps == enc_x.shape[1] == len(w.state.token_labels())
    assert w.heatmaps.maps["cell"].n_t == enc_x.shape[1]
    assert not w.state.output_follows_layer
    assert w.output_view.shown == [] and "select that layer" in w.output_view.headline.text()
    assert w.token_strip._preds is None  # no outputs under the encoder's steps
    w.state.set_layer(decoder)
    assert w.state.timesteps == dec_x.shape[1] == len(w.state.token_labels())
    assert w.state.output_follows_layer
    assert w.output_view.shown and w.token_strip._preds is not None
    assert len(w.token_strip._preds) == dec_x.shape[1]
    expected = np.load(GOLDEN / "expected.npz")
    assert any(
        np.allclose(np.asarray(w.state.trace.output), expected[k], atol=1e-5) for k in expected
    )


def test_an_onnx_graph_whose_layout_is_ambiguous_is_asked_about(window, qtbot, tmp_path):
    """Batch-first or time-major is never guessed: the window asks, and Cancel opens nothing."""
    import pytest

    pytest.importorskip("onnx")
    from tests.io.test_onnx_format import _lstm_graph, _w

    path = _lstm_graph(tmp_path / "sq.onnx", [_w(3, 4, 0)], "forward", [5, 5, 3])
    w = window
    asked = []
    w.state.ask_layout = lambda model, names: asked.append(names) or None  # Cancel
    w.open_model(path)
    qtbot.waitUntil(lambda: w.last_error is not None, timeout=20000)
    assert asked == [["X"]] and w.state.model is None
    assert "time-major" in w.last_error and "time_major=" in w.last_error
    w.error_dialog.close()
    w.state.ask_layout = lambda model, names: True  # "Time-major (T, batch, …)"
    w.open_model(path)
    wait_settled(qtbot, w)
    assert w.state.model.time_major is True and w.state.timesteps == 5
