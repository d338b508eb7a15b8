"""PyTorch's word_language_model exported to ONNX returns (log_probs, h_n, c_n): gradients
and attribution ask for one output and say how to get it. An exported initial state folded
into constants leaves the input gradients equal to torch.autograd."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lstmviz
from lstmviz.analysis import gradient
from lstmviz.errors import InputError

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")


class WordLM(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = torch.nn.Embedding(15, 4)
        self.rnn = torch.nn.LSTM(4, 6, 2)
        self.decoder = torch.nn.Linear(6, 15)

    def forward(self, ids, hidden):
        out, hidden = self.rnn(self.encoder(ids), hidden)
        return torch.log_softmax(self.decoder(out), -1), hidden


class FirstOutput(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids, hidden):
        return self.model(ids, hidden)[0]


def _export(module, args, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), dynamo=False)
    return lstmviz.load_model(path)


def test_several_outputs_are_refused_with_the_export_that_works(tmp_path) -> None:
    torch.manual_seed(0)
    m = WordLM().eval()
    ids = torch.randint(0, 15, (5, 1))
    hidden = (torch.zeros(2, 1, 6), torch.zeros(2, 1, 6))
    whole = _export(m, (ids, hidden), tmp_path / "lm.onnx")
    with pytest.raises(InputError, match=r"has 3 outputs .*return model\(x, hidden\)\[0\]"):
        gradient(whole, ids.numpy().T, (-1, 2))


class Regressor(torch.nn.Module):
    """Float steps (T, batch, F) through a 2-layer nn.LSTM from a given state, a Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.LSTM(3, 6, 2)
        self.head = torch.nn.Linear(6, 2)

    def forward(self, x, hidden):
        out, hidden = self.rnn(x, hidden)
        return self.head(out), hidden


def test_gradients_pass_an_initial_state_folded_into_a_constant(tmp_path) -> None:
    """The exported zeros of (h0, c0) become constants: the backward pass stops there (it
    raised IndexError) and the input gradient equals torch.autograd."""
    torch.manual_seed(0)
    m = Regressor().eval()
    x = torch.randn(5, 1, 3)
    hidden = (torch.zeros(2, 1, 6), torch.zeros(2, 1, 6))
    one = _export(FirstOutput(m), (x, hidden), tmp_path / "reg.onnx")
    ours = gradient(one, x.numpy().swapaxes(0, 1), (-1, 1))  # lstmviz's (batch, T, F)
    xg = x.clone().requires_grad_(True)
    m(xg, hidden)[0][-1, 0, 1].backward()
    np.testing.assert_allclose(ours[0], xg.grad.numpy()[:, 0], atol=1e-5)


def test_token_ids_transposed_before_the_lookup_name_what_works(tmp_path) -> None:
    torch.manual_seed(0)
    m = WordLM().eval()
    ids = torch.randint(0, 15, (5, 1))
    hidden = (torch.zeros(2, 1, 6), torch.zeros(2, 1, 6))
    one = _export(FirstOutput(m), (ids, hidden), tmp_path / "lm1.onnx")
    with pytest.raises(lstmviz.LstmvizError, match=r"lm1.onnx: .*wrt='lstm_l0/hidden'.*as_model"):
        gradient(one, ids.numpy().T, (-1, 2))
    g = gradient(one, ids.numpy().T, (-1, 2), "lstm_l0/hidden")  # what the message offers
    # torch: layer 0 stepped as an nn.LSTMCell, every h_t kept (its total derivative: into
    # layer 1 and on through the recurrence), layer 1 as an nn.LSTM
    cell, top = torch.nn.LSTMCell(4, 6), torch.nn.LSTM(6, 6)
    with torch.no_grad():
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, k).copy_(getattr(m.rnn, k + "_l0"))
            getattr(top, k + "_l0").copy_(getattr(m.rnn, k + "_l1"))
    e = m.encoder(ids).detach()
    h, c = hidden[0][0], hidden[1][0]
    hs = []
    for t in range(5):
        h, c = cell(e[t], (h, c))
        h.retain_grad()
        hs.append(h)
    out, _ = top(torch.stack(hs), (hidden[0][1:], hidden[1][1:]))
    torch.log_softmax(m.decoder(out), -1)[-1, 0, 2].backward()
    np.testing.assert_allclose(g[0], np.stack([v.grad.numpy()[0] for v in hs]), atol=1e-5)
