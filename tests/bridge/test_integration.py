"""A live model where a model file goes: analysis, export and what-if use it unchanged, and
what-if runs the framework again."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lstmviz  # noqa: E402
from lstmviz.analysis import decompose, saturation, what_if  # noqa: E402
from lstmviz.bridge import live_model  # noqa: E402
from lstmviz.export import Source, export_trace  # noqa: E402


class Tagger(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(20, 4)
        self.rnn = torch.nn.LSTM(4, 6, batch_first=True, bidirectional=True)
        self.out = torch.nn.Linear(12, 3)
        self.calls = 0

    def forward(self, ids):
        self.calls += 1
        y, _ = self.rnn(self.emb(ids))
        return torch.log_softmax(self.out(y), dim=-1)


def test_what_if_runs_the_live_model_again():
    model = Tagger().eval()
    ids = torch.randint(0, 20, (1, 9))
    live = live_model(model, ids)
    calls = model.calls
    w = what_if(live, ids.numpy(), t=4, value=7)
    assert model.calls == calls + 1  # "before" is the cached trace of the same input
    fwd = w.divergence["rnn/forward"]["hidden"]
    bwd = w.divergence["rnn/backward"]["hidden"]
    assert np.all(fwd[:4] == 0) and fwd[4] > 0  # the forward half diverges from t = 4 on
    assert np.all(bwd[5:] == 0) and bwd[4] > 0  # the backward half up to t = 4
    with torch.no_grad():
        changed = ids.clone()
        changed[0, 4] = 7
        np.testing.assert_array_equal(w.after.output, model(changed).numpy())
    assert w.output_change is not None and w.output_change.shape == (9,)


def test_analysis_and_export_take_a_live_trace(tmp_path):
    model = Tagger().eval()
    ids = torch.randint(0, 20, (2, 9))
    live = live_model(model, ids)
    tr = live.trace(ids.numpy())
    lt = tr.layer("rnn/backward")
    kept, written = decompose(lt)
    np.testing.assert_allclose(kept + written, lt.cell, atol=1e-5)
    sat = saturation(lt)
    assert sat is not None
    out = export_trace(tmp_path / "t.npz", tr, Source(model=live))
    with np.load(out, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        np.testing.assert_array_equal(z["rnn/backward/cell"], lt.cell)
        np.testing.assert_array_equal(z["output"], tr.output)
    assert meta["model"]["format"] == "torch (live)"
    assert meta["model"]["lstm_layers"] == ["rnn/forward", "rnn/backward"]
    fig = export_trace(tmp_path / "g.png", tr, Source(model=live), layer="rnn/forward", step=3)
    assert fig.stat().st_size > 1000
    assert lstmviz.trace(model, ids).layer_names == ["rnn/forward", "rnn/backward"]
