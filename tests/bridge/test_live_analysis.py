"""Causal analysis asked of a live model: gradients, interventions, patching and attribution
run lstmviz's own forward and backward pass through every layer, which a live torch / Keras
model (run by its framework, LSTMs recorded) does not give. They are refused with the route to
a model file -- and that route, followed as the message writes it, gives gradients equal to
the framework's own."""

from __future__ import annotations

import re

import numpy as np
import pytest

import lstmviz
from lstmviz.analysis import (
    ablate,
    ablation_scan,
    activation_patching,
    attribute,
    gradient,
    integrated_gradients,
    logit_attribution,
    lrp,
    occlusion,
    what_if,
)
from lstmviz.errors import InputError

torch = pytest.importorskip("torch")


class WordLM(torch.nn.Module):
    """PyTorch's word_language_model RNNModel, small: Embedding -> 2-layer LSTM -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = torch.nn.Dropout(0.2)
        self.encoder = torch.nn.Embedding(20, 6)
        self.rnn = torch.nn.LSTM(6, 8, 2, dropout=0.2)
        self.decoder = torch.nn.Linear(8, 20)

    def forward(self, ids, hidden):
        out, hidden = self.rnn(self.drop(self.encoder(ids)), hidden)
        return self.decoder(self.drop(out)), hidden


def _word_lm():
    torch.manual_seed(0)
    m = WordLM().eval()
    ids = torch.randint(0, 20, (7, 1))  # (T, batch), as the model takes it
    hidden = (torch.zeros(2, 1, 8), torch.zeros(2, 1, 8))
    return m, ids, hidden


CALLS = {
    "gradient": lambda m, x: gradient(m, x, (-1, 3)),
    "integrated_gradients": lambda m, x: integrated_gradients(m, x, (-1, 3)),
    "attribute": lambda m, x: attribute(m, x, (-1, 3), "ig"),
    "occlusion": lambda m, x: occlusion(m, x, (-1, 3)),
    "lrp": lambda m, x: lrp(m, x, (-1, 3)),
    "ablate": lambda m, x: ablate(m, x, "rnn_l1", [5]),
    "ablation_scan": lambda m, x: ablation_scan(m, x, (-1, 3), "rnn_l1"),
    "activation_patching": lambda m, x: activation_patching(m, x, x[:, ::-1], (-1, 3), "rnn_l1"),
    "logit_attribution": lambda m, x: logit_attribution(m, x, 3),
}


@pytest.mark.parametrize("what", list(CALLS))
def test_live_torch_model_is_refused_with_the_route(what: str) -> None:
    m, ids, hidden = _word_lm()
    live = lstmviz.bridge.live_model(m, ids, hidden, time_major=True)
    x = ids.numpy().T  # lstmviz's layout, (batch, T)
    for model in (live, m):  # the wrapped model and the nn.Module itself
        with pytest.raises(InputError) as e:
            CALLS[what](model, x)
        msg = str(e.value)
        assert msg.startswith(f"{what}: the live PyTorch model WordLM runs in PyTorch")
        # the modules of this model, named as as_model (load_torch) takes them
        assert (
            "lstmviz.bridge.as_model(model, x, ..., lstm_prefix='rnn.', embedding='encoder.', "
            "head=['decoder.'], head_on=" in msg
        )


def test_the_route_in_the_message_gives_torch_autograd_gradients() -> None:
    m, ids, hidden = _word_lm()
    with pytest.raises(InputError) as e:
        gradient(m, ids.numpy().T, (-1, 3))
    kwargs = re.search(r"as_model\(model, x, \.\.\., (.*?), head_on=", str(e.value))
    assert kwargs is not None
    opts = eval(f"dict({kwargs.group(1)})")  # the keyword arguments as the message writes them
    f = lstmviz.bridge.as_model(
        m, ids, hidden, time_major=True, **opts, head_on="all", batch_first=False
    )
    assert f.meta["checked_against"]["largest_difference"] <= lstmviz.bridge.TOL
    x = ids.numpy().T
    # d logit 3 at the last step / d embedded input, against torch.autograd
    emb = m.encoder(ids).detach().requires_grad_(True)
    out, _ = m.rnn(emb, hidden)
    m.decoder(out)[-1, 0, 3].backward()
    ours = gradient(f, x, (-1, 3))  # (batch, T, embedding)
    np.testing.assert_allclose(ours[0], emb.grad.numpy()[:, 0], atol=1e-5)


def test_what_if_takes_the_live_model_and_names_the_wrapper_for_the_module() -> None:
    m, ids, hidden = _word_lm()
    live = lstmviz.bridge.live_model(m, ids, hidden, time_major=True)
    x = ids.numpy().T
    w = what_if(live, x, 2, (int(x[0, 2]) + 1) % 20)  # runs the framework again
    ref, _ = m(torch.from_numpy(np.ascontiguousarray(w.x_after.T)), hidden)
    np.testing.assert_allclose(w.output_after[0], ref.detach().numpy(), atol=1e-5)
    with pytest.raises(InputError, match=r"lstmviz\.bridge\.live_model\(model, x\)"):
        what_if(m, x, 2, 1)


def test_live_keras_model_is_refused_with_the_keras_route() -> None:
    keras = pytest.importorskip("keras")
    inp = keras.Input((5, 3))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.LSTM(4, name="lstm")(inp)))
    x = np.random.default_rng(0).normal(size=(1, 5, 3)).astype("float32")
    with pytest.raises(InputError, match=r"m = lstmviz\.bridge\.as_model\(model, x\)") as e:
        ablate(model, x, "lstm", [1])
    assert str(e.value).startswith("ablate: the live Keras model Functional runs in Keras")
    f = lstmviz.bridge.as_model(model, x)
    np.testing.assert_allclose(ablate(f, x, "lstm", [1]).layer("lstm").cell[..., 1], 0.0, atol=0)


def test_new_input_in_the_models_own_time_major_layout_says_so() -> None:
    m, ids, hidden = _word_lm()
    live = lstmviz.bridge.live_model(m, ids, hidden, time_major=True)
    with pytest.raises(InputError, match=r"pass x\.swapaxes\(0, 1\)") as e:
        live.trace(ids.numpy())  # (T, batch) as the model takes it; live.trace takes (batch, T)
    assert "given to this time-major model as (T, batch, ...)" in str(e.value)
    tr = live.trace(ids.numpy().swapaxes(0, 1))  # as the message says
    ref, _ = m(ids, hidden)
    np.testing.assert_allclose(tr.output[0], ref.detach().numpy(), atol=1e-5)


def _torch_lstm_layer(rnn, k, x, h, c, edit):
    """Layer ``k`` of ``rnn`` stepped by hand in torch (gate order i, f, g, o); ``edit(t, gates,
    c, h)`` may change the gates (before c), then c (before h), then h, in place."""
    w_ih, w_hh = getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"weight_hh_l{k}")
    b = getattr(rnn, f"bias_ih_l{k}") + getattr(rnn, f"bias_hh_l{k}")
    out = []
    for t in range(x.shape[0]):
        z = x[t] @ w_ih.T + h @ w_hh.T + b
        i, f, g, o = z.chunk(4, -1)
        gates = {"i": i.sigmoid(), "f": f.sigmoid(), "g": g.tanh(), "o": o.sigmoid()}
        edit(t, gates, None, None)
        c = gates["f"] * c + gates["i"] * gates["g"]
        edit(t, None, c, None)
        h = gates["o"] * c.tanh()
        edit(t, None, None, h)
        out.append(h)
    return torch.stack(out)


@pytest.mark.parametrize(
    ("quantity", "mode", "value", "key"),
    [
        ("cell", "zero", 0.0, "c"),
        ("forget_gate", "clamp", 0.9, "f"),
        ("hidden", "clamp", -0.5, "h"),
    ],
)
def test_ablation_on_the_file_route_equals_torch_stepped_by_hand(
    tmp_path, quantity: str, mode: str, value: float, key: str
) -> None:
    """What a unit causes, on the model file the refusal points to: the intervened output
    equals torch's own LSTM stepped by hand with the same unit changed inside the recurrence."""
    from lstmviz.io.torch_format import load_torch

    m, ids, hidden = _word_lm()
    torch.save(m.state_dict(), tmp_path / "m.pt")
    f = load_torch(
        tmp_path / "m.pt",
        lstm_prefix="rnn.",
        embedding="encoder.",
        head=["decoder."],
        head_on="all",
        batch_first=False,
    )
    x = ids.numpy().T
    unit, start, stop = 5, 2, 5
    ours = ablate(
        f, x, "lstm_l1", [unit], quantity, mode if mode == "zero" else value, t=(start, stop)
    )

    def edit(t, gates, c, h):
        if not start <= t < stop:
            return
        if key in "ifgo" and gates is not None:
            gates[key] = gates[key].clone()
            gates[key][:, unit] = value
        elif key == "c" and c is not None:
            c[:, unit] = value
        elif key == "h" and h is not None:
            h[:, unit] = value

    with torch.no_grad():
        e = m.encoder(ids)
        fused, _ = m.rnn(e, hidden)
        h0 = _torch_lstm_layer(m.rnn, 0, e, hidden[0][0], hidden[1][0], lambda *a: None)
        plain = _torch_lstm_layer(m.rnn, 1, h0, hidden[0][1], hidden[1][1], lambda *a: None)
        np.testing.assert_allclose(plain.numpy(), fused.numpy(), atol=1e-5)  # the reference
        np.testing.assert_allclose(
            h0.numpy(), f.trace(x).layer("lstm_l0").hidden.swapaxes(0, 1), atol=1e-5
        )
        h1 = _torch_lstm_layer(m.rnn, 1, h0, hidden[0][1], hidden[1][1], edit)
        ref = m.decoder(h1)  # (T, batch, vocab)
    np.testing.assert_allclose(ours.output[0], ref[:, 0].numpy(), atol=1e-5)
    assert np.abs(ours.output[0] - f.trace(x).output[0]).max() > 1e-3  # the unit mattered


def test_new_batch_size_with_the_examples_hidden_state_says_to_wrap_again() -> None:
    m, ids, hidden = _word_lm()
    live = lstmviz.bridge.live_model(m, ids, hidden, time_major=True)
    two = np.random.default_rng(0).integers(0, 20, (2, 7))  # lstmviz's layout, 2 sequences
    with pytest.raises(InputError, match=r"passed again unchanged.*live_model\(model, x2"):
        live.trace(two)
    hidden2 = (torch.zeros(2, 2, 8), torch.zeros(2, 2, 8))
    ids2 = torch.from_numpy(two.T.copy())
    tr = lstmviz.bridge.live_model(m, ids2, hidden2, time_major=True).trace(two)
    np.testing.assert_allclose(tr.output[0], m(ids2, hidden2)[0].detach().numpy(), atol=1e-5)


class LogSoftmaxLM(WordLM):
    """As PyTorch's word_language_model ends: log-probabilities."""

    def forward(self, ids, hidden):
        out, hidden = super().forward(ids, hidden)
        return torch.log_softmax(out, -1), hidden


def test_loss_target_on_a_log_softmax_head_equals_torch_nll_loss() -> None:
    """The loss of a log_softmax head is -Σ log_p[y] (the log-probabilities were read as
    probabilities: gradients of 1e9); logits are refused."""
    from lstmviz.analysis import loss_target

    m, ids, hidden = _word_lm()
    lm = LogSoftmaxLM().eval()
    lm.load_state_dict(m.state_dict())
    opts = {"lstm_prefix": "rnn.", "embedding": "encoder.", "head_on": "all"}
    opts |= {"batch_first": False}
    f = lstmviz.bridge.as_model(
        lm, ids, hidden, time_major=True, **opts, head=["decoder.", "log_softmax"]
    )
    x = ids.numpy().T  # (1, 7)
    y = np.roll(x, -1, axis=1)  # next tokens
    ours = gradient(f, x, loss_target(y))
    emb = lm.encoder(ids).detach().requires_grad_(True)
    out, _ = lm.rnn(emb, hidden)
    logp = torch.log_softmax(lm.decoder(out), -1)  # (T, 1, V)
    torch.nn.functional.nll_loss(
        logp.reshape(-1, 20), torch.from_numpy(y.T.copy()).reshape(-1), reduction="sum"
    ).backward()
    np.testing.assert_allclose(ours[0], emb.grad.numpy()[:, 0], atol=1e-5)
    with pytest.raises(InputError, match=r"already log-probabilities .* space='output'"):
        gradient(f, x, (-1, 3), space="log")
    logits = lstmviz.bridge.as_model(m, ids, hidden, time_major=True, **opts, head=["decoder."])
    with pytest.raises(InputError, match=r"neither \(values from .* logits, say\)"):
        gradient(logits, x, loss_target(y))


class Sentiment(torch.nn.Module):
    """An LSTM over float steps and a one-unit head, with or without its sigmoid."""

    def __init__(self, sigmoid: bool) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 5, batch_first=True)
        self.fc = torch.nn.Linear(5, 1)
        self.sigmoid = sigmoid

    def forward(self, x):
        y, _ = self.lstm(x)
        z = self.fc(y[:, -1])
        return torch.sigmoid(z) if self.sigmoid else z


def test_binary_loss_target_needs_probabilities() -> None:
    from lstmviz.analysis import loss_target

    torch.manual_seed(0)
    x = torch.randn(3, 6, 3) * 3
    y = np.array([[1.0], [0.0], [1.0]])
    opts = {"lstm_prefix": "lstm.", "head_on": "last", "batch_first": True}
    probs = Sentiment(True).eval()
    f = lstmviz.bridge.as_model(probs, x, **opts, head=["fc.", "sigmoid"])
    ours = gradient(f, x.numpy(), loss_target(y, "binary_crossentropy"))
    xg = x.clone().requires_grad_(True)
    torch.nn.functional.binary_cross_entropy(
        probs(xg), torch.from_numpy(y).float(), reduction="sum"
    ).backward()
    np.testing.assert_allclose(ours, xg.grad.numpy(), atol=1e-5)
    logits = Sentiment(False).eval()
    logits.load_state_dict(probs.state_dict())
    g = lstmviz.bridge.as_model(logits, x, **opts, head=["fc."])
    with pytest.raises(InputError, match=r"binary_crossentropy reads the output as probabil"):
        gradient(g, x.numpy(), loss_target(y, "binary_crossentropy"))
