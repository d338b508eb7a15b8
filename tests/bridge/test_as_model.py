"""lstmviz.bridge.as_model: a live model as a model lstmviz runs itself, checked on the
example input against the framework -- and refused when the description is not the model."""

from __future__ import annotations

import numpy as np
import pytest

import lstmviz
from lstmviz.analysis import gradient
from lstmviz.bridge import VerificationError, as_model
from lstmviz.errors import InputError, ModelFileError

torch = pytest.importorskip("torch")


class Packed(torch.nn.Module):
    """A classifier over a padded batch it packs (batch_first=True, id 0 as padding)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(12, 4, padding_idx=0)
        self.lstm = torch.nn.LSTM(4, 5, batch_first=True)
        self.fc = torch.nn.Linear(5, 3)

    def forward(self, x, lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            self.emb(x), lengths, batch_first=True, enforce_sorted=False
        )
        _, (h, _) = self.lstm(packed)
        return torch.log_softmax(self.fc(h[-1]), -1)


def _packed():
    torch.manual_seed(1)
    m = Packed().eval()
    lengths = torch.tensor([5, 3, 4])
    x = torch.zeros(3, 6, dtype=torch.long)
    for i, n in enumerate(lengths):
        x[i, :n] = torch.randint(1, 12, (int(n),))
    return m, x, lengths


OPTS = {"lstm_prefix": "lstm.", "embedding": "emb.", "head_on": "last", "batch_first": True}


def test_packed_classifier_with_mask_zero_is_checked_and_differentiates_as_torch() -> None:
    m, x, lengths = _packed()
    f = as_model(m, x, lengths, **OPTS, head=["fc.", "log_softmax"], mask_zero=True)
    checked = f.meta["checked_against"]
    assert checked["framework"] == "torch" and checked["largest_difference"] <= 1e-5
    assert f.name == "Packed"
    e = m.emb(x).detach().requires_grad_(True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        e, lengths, batch_first=True, enforce_sorted=False
    )
    _, (h, _) = m.lstm(packed)
    torch.log_softmax(m.fc(h[-1]), -1)[:, 1].sum().backward()
    np.testing.assert_allclose(gradient(f, x.numpy(), 1), e.grad.numpy(), atol=1e-5)


def test_a_description_that_is_not_the_model_is_refused() -> None:
    m, x, lengths = _packed()
    with pytest.raises(VerificationError, match="pass mask_zero=True"):
        as_model(m, x, lengths, **OPTS, head=["fc.", "log_softmax"])  # reads the padding
    with pytest.raises(VerificationError, match=r"output \(3, 3\) matches none"):
        as_model(m, x, lengths, **OPTS, head=["fc."], mask_zero=True)  # no log_softmax
    with pytest.raises(ModelFileError, match=r"as_model\(model, x, \.\.\., lstm_prefix='lstm\.', "):
        as_model(m, x, lengths)  # a state_dict does not say what forward() does
    with pytest.raises(InputError, match="load_torch's keywords"):
        as_model(m, x, lengths, **OPTS, head=["fc."], no_such_option=1)
    with pytest.raises(InputError, match=r"live torch\.nn\.Module or keras\.Model"):
        as_model(object(), x)


def test_keras_model_needs_no_options() -> None:
    keras = pytest.importorskip("keras")
    inp = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(10, 4, mask_zero=True)(inp)
    h = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True), name="bi")(h)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.LSTM(3, name="top")(h))
    model = keras.Model(inp, out)
    x = np.array([[0, 0, 3, 4, 5], [1, 2, 3, 4, 9]], dtype="int32")  # front padding
    f = as_model(model, x)
    assert f.meta["checked_against"]["framework"] == "keras"
    assert f.trace(x).layer_names == lstmviz.trace(model, x).layer_names
    with pytest.raises(InputError, match="needs none"):
        as_model(model, x, head_on="all")


def test_keras_model_that_cannot_be_saved_or_opened_says_so() -> None:
    keras = pytest.importorskip("keras")

    class NoConfig(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

        def get_config(self):
            raise NotImplementedError("no config for this layer")

    inp = keras.Input((4, 3))
    model = keras.Model(inp, keras.layers.Dense(1)(keras.layers.LSTM(2)(NoConfig()(inp))))
    x = np.zeros((1, 4, 3), np.float32)
    with pytest.raises(InputError, match=r"Keras could not save .*no config for this layer"):
        as_model(model, x)


def test_torch_model_in_training_mode_is_refused() -> None:
    m, x, lengths = _packed()
    m.drop = torch.nn.Dropout(0.3)  # registered, in training mode after train()
    m.train()
    with pytest.raises(InputError, match=r"in training mode \(drop change .*model\.eval\(\)"):
        as_model(m, x, lengths, **OPTS, head=["fc.", "log_softmax"], mask_zero=True)
    m.eval()
    assert as_model(m, x, lengths, **OPTS, head=["fc.", "log_softmax"], mask_zero=True)
