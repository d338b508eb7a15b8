"""A PyTorch classifier that packs its padded batch (``pack_padded_sequence``, token id 0 as
padding, ``batch_first=True``), loaded from its state_dict with ``mask_zero``: the output, the
hidden state at every real step and the gradients equal torch's packed model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.analysis import gradient
from lstmviz.errors import ModelFileError
from lstmviz.io.torch_format import load_torch

torch = pytest.importorskip("torch")

ATOL = 1e-5


class Packed(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(15, 4, padding_idx=0)
        self.lstm = torch.nn.LSTM(4, 6, batch_first=True)
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x, lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            self.emb(x), lengths, batch_first=True, enforce_sorted=False
        )
        _, (h, _) = self.lstm(packed)
        return self.fc(h[-1])


def _model_and_batch():
    torch.manual_seed(0)
    m = Packed().eval()
    lengths = torch.tensor([6, 2, 4, 5])
    x = torch.zeros(4, 8, dtype=torch.long)  # padded beyond the longest sequence too
    for i, n in enumerate(lengths):
        x[i, :n] = torch.randint(1, 15, (int(n),))
    return m, x, lengths


def _file(tmp_path: Path, m, **extra) -> Path:
    path = tmp_path / "packed.pt"
    torch.save(m.state_dict(), path)
    opts = {"lstm_prefix": "lstm.", "embedding": "emb.", "head": ["fc."], "head_on": "last"}
    opts |= {"batch_first": True, **extra}
    path.with_name("packed.lstmviz.json").write_text(
        json.dumps({"format_version": 1, "extra": {"torch": opts}})
    )
    return path


def test_mask_zero_gives_the_packed_models_output_states_and_gradients(tmp_path) -> None:
    m, x, lengths = _model_and_batch()
    f = lstmviz.load_model(_file(tmp_path, m, mask_zero=True))  # the sidecar's option
    assert f.meta["torch"]["mask_zero"] is True
    tr = f.trace(x.numpy())
    np.testing.assert_allclose(tr.output, m(x, lengths).detach().numpy(), atol=ATOL)
    # h at every real step equals torch's packed output
    with torch.no_grad():
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            m.emb(x), lengths, batch_first=True, enforce_sorted=False
        )
        out, _ = m.lstm(packed)
        ref, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=8)
    lt = tr.layer("lstm_l0")
    real = (x != 0).numpy()
    np.testing.assert_array_equal(lt.mask, real)
    np.testing.assert_allclose(lt.hidden[real], ref.numpy()[real], atol=ATOL)
    # d output 2 / d embedded input, against torch.autograd through the packed LSTM
    e = m.emb(x).detach().requires_grad_(True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        e, lengths, batch_first=True, enforce_sorted=False
    )
    _, (h, _) = m.lstm(packed)
    m.fc(h[-1])[:, 2].sum().backward()
    np.testing.assert_allclose(gradient(f, x.numpy(), 2), e.grad.numpy(), atol=ATOL)
    # the same keyword on load_torch
    g = load_torch(_file(tmp_path, m), mask_zero=True)
    np.testing.assert_allclose(g.trace(x.numpy()).output, tr.output, atol=0)


def test_without_mask_zero_the_padding_is_read_as_input(tmp_path) -> None:
    """The default describes a forward() that runs over every step: not this model."""
    m, x, lengths = _model_and_batch()
    f = lstmviz.load_model(_file(tmp_path, m))
    assert f.meta["torch"]["mask_zero"] is False
    diff = np.abs(f.trace(x.numpy()).output - m(x, lengths).detach().numpy()).max()
    assert diff > 1e-3


def test_mask_zero_needs_the_embedding(tmp_path) -> None:
    m, _, _ = _model_and_batch()
    path = tmp_path / "lstm_only.pt"
    torch.save(m.lstm.state_dict(), path)
    with pytest.raises(ModelFileError, match=r"mask_zero=True .* also give \"embedding\""):
        load_torch(path, mask_zero=True)
    with pytest.raises(ModelFileError, match=r"'mask_zero' must be bool"):
        load_torch(path, mask_zero="yes")  # type: ignore[arg-type]
