"""The PyTorch zoo as state_dicts: nothing attached that the user did not name, and every
sidecar an error message suggests, when followed, loads a model equal to torch."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import lstmviz
from lstmviz.errors import ModelFileError

torch = pytest.importorskip("torch")

from tests.zoo import torch_zoo as tz  # noqa: E402

ATOL = 1e-5


def _suggestions(message: str) -> list[dict]:
    """Every sidecar document the message suggests, in order."""
    out = []
    dec = json.JSONDecoder()
    for m in re.finditer(r"containing ", message):
        doc, _ = dec.raw_decode(message, m.end())
        out.append(doc["extra"]["torch"])
    return out


def _follow(path, opts):
    path.with_name(path.stem + ".lstmviz.json").write_text(
        json.dumps({"format_version": 1, "extra": {"torch": opts}})
    )
    return lstmviz.load_model(path)


def _fill(opts, truth):
    """A template with its <...> placeholders replaced by what forward() really does."""
    out = dict(opts)
    out["head"] = truth["head"]
    out["head_on"] = truth["head_on"]
    assert [h for h in opts["head"] if not h.startswith("<")] == [
        h for h in truth["head"] if h.endswith(".")
    ], "the template lists the modules forward() uses, in order"
    return out


def _error(path):
    with pytest.raises(ModelFileError) as e:
        lstmviz.load_model(path)
    msg = str(e.value)
    assert "Only the LSTM can be known" in msg or "does not record how forward()" in msg
    assert ".pt2" in msg and "lstmviz.show(model, x)" in msg and "onnx" in msg.lower()
    return _suggestions(msg)


def test_lstm_tagger(tmp_path):
    """The tutorial's LSTMTagger: once loaded with no sidecar, silently dropping its
    log_softmax; now refused, and both suggested sidecars are exact."""
    net, sent = tz.lstm_tagger()
    path = tmp_path / "tagger.pt"
    torch.save(net.state_dict(), path)
    alone, whole = _error(path)
    assert alone == {"lstm_prefix": "lstm.", "head": None}
    assert whole["embedding"] == "word_embeddings."
    with torch.no_grad():
        s = torch.from_numpy(sent)
        emb = net.word_embeddings(s)
        lstm_out, _ = net.lstm(emb.view(len(s), 1, -1))
        ref = net(s).numpy()
    m = _follow(path, alone)
    np.testing.assert_allclose(m.trace(emb.numpy()[None]).output[0], lstm_out[:, 0], atol=ATOL)
    m = _follow(path, _fill(whole, {"head": ["hidden2tag.", "log_softmax"], "head_on": "all"}))
    trace = m.trace(sent[None])
    np.testing.assert_allclose(trace.output[0], ref, atol=ATOL)
    from lstmviz.analysis.outputs import output_spec

    assert output_spec(m).kind == "log_probabilities"


def test_word_language_model(tmp_path):
    """word_language_model: the error once suggested "head": "encoder." (the Embedding)."""
    net, ids = tz.word_language_model()
    path = tmp_path / "wlm.pt"
    torch.save(net.state_dict(), path)
    alone, whole = _error(path)
    assert whole["embedding"] == "encoder." and whole["head"][0] == "decoder."
    assert "encoder." not in whole["head"]
    x = torch.from_numpy(ids)
    with torch.no_grad():
        emb = net.encoder(x)
        seq, _ = net.rnn(emb)
        ref, _ = net(x, net.init_hidden(1))
    m = _follow(path, alone)
    np.testing.assert_allclose(
        m.trace(emb.numpy().transpose(1, 0, 2)).output[0], seq[:, 0], atol=ATOL
    )
    m = _follow(path, _fill(whole, {"head": ["decoder.", "log_softmax"], "head_on": "all"}))
    np.testing.assert_allclose(m.trace(ids.T).output[0], ref.numpy(), atol=ATOL)


def test_time_sequence_prediction(tmp_path):
    """Two nn.LSTMCells called in a loop: stacked layers when the sidecar gives their order."""
    net, x = tz.time_sequence()
    path = tmp_path / "seq.pt"
    torch.save(net.state_dict(), path)
    stacked, whole = _error(path)
    assert stacked == {"cells": ["lstm1.", "lstm2."], "head": None}
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()  # (batch, T)
        h1 = torch.zeros(x.shape[0], 51)
        c1, h2, c2 = torch.zeros_like(h1), torch.zeros_like(h1), torch.zeros_like(h1)
        hs1, hs2 = [], []
        for t in range(x.shape[1]):
            h1, c1 = net.lstm1(torch.from_numpy(x[:, t : t + 1]), (h1, c1))
            h2, c2 = net.lstm2(h1, (h2, c2))
            hs1.append(h1)
            hs2.append(h2)
    m = _follow(path, stacked)
    trace = m.trace(x[..., None])
    np.testing.assert_allclose(trace.layer("lstm_l0").hidden, torch.stack(hs1, 1), atol=ATOL)
    np.testing.assert_allclose(trace.output, torch.stack(hs2, 1), atol=ATOL)
    m = _follow(path, {"lstm_prefix": "lstm1.", "head": None})  # one of them alone
    np.testing.assert_allclose(m.trace(x[..., None]).output, torch.stack(hs1, 1), atol=ATOL)
    m = _follow(path, _fill(whole, {"head": ["linear."], "head_on": "all"}))
    np.testing.assert_allclose(m.trace(x[..., None]).output[..., 0], ref, atol=ATOL)


@pytest.mark.filterwarnings("ignore:dropout2d:UserWarning")  # the example's Dropout2d on 2-D
def test_mnist_rnn(tmp_path):
    """LSTM -> last step -> BatchNorm1d -> fc1 -> relu -> fc2 -> log_softmax."""
    net, x = tz.mnist_rnn()
    path = tmp_path / "mnist.pt"
    torch.save(net.state_dict(), path)
    alone, whole = _error(path)
    rows = x.reshape(-1, 28, 28)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
        seq, _ = net.rnn(torch.from_numpy(rows))
    m = _follow(path, alone)
    np.testing.assert_allclose(m.trace(rows).output, seq.numpy(), atol=ATOL)
    truth = {"head": ["batchnorm.", "fc1.", "relu", "fc2.", "log_softmax"], "head_on": "last"}
    m = _follow(path, _fill(whole, truth))
    trace = m.trace(rows)
    np.testing.assert_allclose(trace.output, ref, atol=ATOL)
    assert trace.step_output.shape == (3, 28, 10)  # what it would say after each row
    np.testing.assert_allclose(trace.step_output[:, -1], ref, atol=ATOL)
