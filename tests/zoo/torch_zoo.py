"""Architectures from the PyTorch tutorials and pytorch/examples, rebuilt here (code written
for lstmviz's tests; small synthetic data; a few training steps).

* ``LSTMTagger`` -- the PyTorch tutorial "Sequence Models and Long Short-Term Memory Networks"
  (pytorch.org/tutorials/beginner/nlp/sequence_models_tutorial): Embedding -> LSTM -> Linear
  -> log_softmax, over one sentence ``(T,)`` viewed as ``(T, 1, -1)``.
* ``RNNModel`` -- pytorch/examples word_language_model/model.py (the LSTM variant):
  Embedding (``encoder``) -> Dropout -> LSTM(nlayers, batch_first=False) -> Dropout ->
  Linear (``decoder``) -> ``view(-1, ntoken)`` -> log_softmax; ``init_hidden`` zeros.
  ``export_onnx`` is the example's ONNX export (``batch_size=1``, ``seq_len=bptt``).
* ``Sequence`` -- pytorch/examples time_sequence_prediction/train.py: two ``nn.LSTMCell`` s
  called in a Python loop over the steps, then ``nn.Linear(51, 1)``.
* ``BiLSTMFeatures`` -- the Bi-LSTM CRF tutorial's ``_get_lstm_features``
  (pytorch.org/tutorials/beginner/nlp/advanced_tutorial): Embedding -> bidirectional LSTM ->
  Linear, with the CRF's ``transitions`` beside it in the state_dict.
* ``MnistRNN`` -- pytorch/examples mnist_rnn/main.py: LSTM(28, 64, batch_first) -> last step
  -> BatchNorm1d -> Dropout -> fc1 -> relu -> Dropout -> fc2 -> log_softmax.

Importing this module imports torch: only do it behind ``pytest.importorskip("torch")``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class LSTMTagger(nn.Module):
    def __init__(self, embedding_dim: int, hidden_dim: int, vocab_size: int, tagset_size: int):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.word_embeddings = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim)
        self.hidden2tag = nn.Linear(hidden_dim, tagset_size)

    def forward(self, sentence: torch.Tensor) -> torch.Tensor:
        embeds = self.word_embeddings(sentence)
        lstm_out, _ = self.lstm(embeds.view(len(sentence), 1, -1))
        tag_space = self.hidden2tag(lstm_out.view(len(sentence), -1))
        tag_scores = F.log_softmax(tag_space, dim=1)
        return tag_scores


class RNNModel(nn.Module):
    def __init__(
        self, ntoken: int, ninp: int, nhid: int, nlayers: int, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        self.nhid, self.nlayers = nhid, nlayers
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input: torch.Tensor, hidden: Any) -> Any:
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz: int) -> tuple[torch.Tensor, torch.Tensor]:
        weight = next(self.parameters())
        return (
            weight.new_zeros(self.nlayers, bsz, self.nhid),
            weight.new_zeros(self.nlayers, bsz, self.nhid),
        )


class Sequence(nn.Module):
    def __init__(self, hidden: int = 51) -> None:
        super().__init__()
        self.hidden = hidden
        self.lstm1 = nn.LSTMCell(1, hidden)
        self.lstm2 = nn.LSTMCell(hidden, hidden)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, input: torch.Tensor, future: int = 0) -> torch.Tensor:
        outputs = []
        n = self.hidden
        h_t = torch.zeros(input.size(0), n, dtype=input.dtype)
        c_t = torch.zeros(input.size(0), n, dtype=input.dtype)
        h_t2 = torch.zeros(input.size(0), n, dtype=input.dtype)
        c_t2 = torch.zeros(input.size(0), n, dtype=input.dtype)
        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for _ in range(future):
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        return torch.cat(outputs, dim=1)


class MnistRNN(nn.Module):
    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_size=28, hidden_size=hidden, batch_first=True)
        self.batchnorm = nn.BatchNorm1d(hidden)
        self.dropout1 = nn.Dropout2d(0.25)
        self.dropout2 = nn.Dropout2d(0.5)
        self.fc1 = nn.Linear(hidden, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        input = input.reshape(-1, 28, 28)
        output, _hidden = self.rnn(input)
        output = output[:, -1, :]
        output = self.batchnorm(output)
        output = self.dropout1(output)
        output = self.fc1(output)
        output = F.relu(output)
        output = self.dropout2(output)
        output = self.fc2(output)
        output = F.log_softmax(output, dim=1)
        return output


class BiLSTMFeatures(nn.Module):
    """The LSTM part of the PyTorch tutorial "Advanced: Making Dynamic Decisions and the
    Bi-LSTM CRF" (``BiLSTM_CRF._get_lstm_features``): Embedding -> bidirectional LSTM
    (hidden_dim // 2 per direction) over one sentence viewed as (T, 1, -1) -> hidden2tag.
    The CRF's ``transitions`` live beside it in the state_dict; Viterbi decoding runs in
    Python and is not part of the features."""

    def __init__(self, vocab_size: int, tagset_size: int, embedding_dim: int, hidden_dim: int):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.word_embeds = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim // 2, num_layers=1, bidirectional=True)
        self.hidden2tag = nn.Linear(hidden_dim, tagset_size)
        self.transitions = nn.Parameter(torch.randn(tagset_size, tagset_size))

    def forward(self, sentence: torch.Tensor) -> torch.Tensor:
        hidden = (
            torch.zeros(2, 1, self.hidden_dim // 2),
            torch.zeros(2, 1, self.hidden_dim // 2),
        )
        embeds = self.word_embeds(sentence).view(len(sentence), 1, -1)
        lstm_out, _ = self.lstm(embeds, hidden)
        lstm_out = lstm_out.view(len(sentence), self.hidden_dim)
        return self.hidden2tag(lstm_out)


def bilstm_crf(seed: int = 0) -> tuple[BiLSTMFeatures, np.ndarray]:
    """The tutorial's sizes (EMBEDDING_DIM 5, HIDDEN_DIM 4, tags B I O START STOP)."""
    torch.manual_seed(seed)
    model = BiLSTMFeatures(14, 5, 5, 4)
    sent = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    tags = torch.tensor([0, 1, 1, 1, 2, 2, 2, 0, 1, 2, 2])
    _train(model, lambda: F.cross_entropy(model(sent), tags), lr=0.1)
    return model, sent.numpy()


def _train(model: nn.Module, step: Any, steps: int = 5, lr: float = 0.05) -> nn.Module:
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    with warnings.catch_warnings():
        # mnist_rnn's Dropout2d on (batch, 64) warns in training mode (as in the example)
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(steps):
            opt.zero_grad()
            loss = step()
            loss.backward()
            opt.step()
    return model.eval()


def lstm_tagger(seed: int = 0) -> tuple[LSTMTagger, np.ndarray]:
    """The tutorial's tagger (EMBEDDING_DIM 6, HIDDEN_DIM 6) on its two sentences."""
    torch.manual_seed(seed)
    vocab = ["The", "dog", "ate", "the", "apple", "Everybody", "read", "that", "book"]
    model = LSTMTagger(6, 6, len(vocab), 3)
    sent = torch.tensor([0, 1, 2, 3, 4])
    tags = torch.tensor([0, 1, 2, 0, 1])
    _train(model, lambda: F.nll_loss(model(sent), tags), lr=0.1)
    return model, sent.numpy()


def word_language_model(seed: int = 0) -> tuple[RNNModel, np.ndarray]:
    """word_language_model with small sizes (ntoken 50, emsize = nhid = 20, 2 layers):
    emsize == nhid, as in the example's defaults (200/200)."""
    torch.manual_seed(seed)
    model = RNNModel(50, 20, 20, 2, dropout=0.2)
    rng = np.random.default_rng(seed)
    data = torch.from_numpy(rng.integers(0, 50, (36, 4)))

    def step() -> torch.Tensor:
        out, _ = model(data[:-1], model.init_hidden(4))
        return F.nll_loss(out, data[1:].reshape(-1))

    _train(model, step, lr=1.0)
    return model, rng.integers(0, 50, (35, 1))


def export_onnx(model: RNNModel, path: str, batch_size: int = 1, seq_len: int = 35) -> None:
    """word_language_model/main.py's export_onnx (torch's legacy exporter: dynamo=False)."""
    model.eval()
    dummy_input = torch.LongTensor(seq_len * batch_size).zero_().view(-1, batch_size)
    hidden = model.init_hidden(batch_size)
    torch.onnx.export(model, (dummy_input, hidden), path, dynamo=False)


def time_sequence(seed: int = 0, hidden: int = 51, steps: int = 39) -> tuple[Sequence, np.ndarray]:
    """time_sequence_prediction on sine waves (float32 here; the example uses double)."""
    torch.manual_seed(seed)
    model = Sequence(hidden)
    t = np.arange(40)[None] + np.random.default_rng(seed).integers(-20, 20, (6, 1))
    data = torch.from_numpy(np.sin(t / 5.0).astype(np.float32))
    _train(model, lambda: F.mse_loss(model(data[:, :-1]), data[:, 1:]), steps=3, lr=0.5)
    return model, data[:2, :steps].numpy()


def mnist_rnn(seed: int = 0, hidden: int = 64, batch: int = 3) -> tuple[MnistRNN, np.ndarray]:
    torch.manual_seed(seed)
    model = MnistRNN(hidden)
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(16, 1, 28, 28)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 10, 16))
    _train(model, lambda: F.nll_loss(model(x), y), steps=3)
    return model, x[:batch].numpy()
