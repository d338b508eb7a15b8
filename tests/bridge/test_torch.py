"""Live PyTorch models: every recorded quantity equals torch's own step-by-step computation
on the module's parameters to 1e-5, and the trace's output is the model's output."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import lstmviz  # noqa: E402
from lstmviz.bridge import VerificationError  # noqa: E402
from lstmviz.errors import InputError, LstmvizError  # noqa: E402

from .reference import assert_layer_equal, torch_lstm_steps  # noqa: E402

ATOL = 1e-5


@pytest.fixture(autouse=True)
def _full_route(monkeypatch):
    """These tests check the full route (the framework runs its LSTM, every step checked),
    bit for bit where it hands on the framework's own values; verify="auto" would take the
    spot route for their batches of 2 or more (tests/bridge/test_routes.py tests that)."""
    import lstmviz.bridge.common as bc

    monkeypatch.setattr(bc, "SPOT_MIN_BATCH", 1 << 30)


# torch's own notice when a projected LSTM skips oneDNN
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")


def _params(m, k, d, cell=False):
    sfx = "" if cell else f"_l{k}" + ("_reverse" if d else "")
    get = lambda n: getattr(m, n + sfx, None)  # noqa: E731
    return dict(
        w_ih=get("weight_ih"),
        w_hh=get("weight_hh"),
        b_ih=get("bias_ih"),
        b_hh=get("bias_hh"),
        w_hr=get("weight_hr"),
    )


def _check_lstm(m, tr, x_bm, h0=None, c0=None, lengths=None, base="lstm"):
    """Compare every layer/direction of nn.LSTM ``m`` traced on batch-major x."""
    dirs = 2 if m.bidirectional else 1
    layer_in = x_bm
    mask = None
    if lengths is not None:
        mask = np.arange(x_bm.shape[1])[None] < np.asarray(lengths)[:, None]
    for k in range(m.num_layers):
        outs = []
        for d in range(dirs):
            j = k * dirs + d
            name = base if m.num_layers == 1 else f"{base}_l{k}"
            if dirs == 2:
                name += "/backward" if d else "/forward"
            ref = torch_lstm_steps(
                layer_in,
                **_params(m, k, d),
                h0=None if h0 is None else h0[j],
                c0=None if c0 is None else c0[j],
                reverse=d == 1,
                lengths=lengths,
            )
            lt = tr.layer(name)
            assert lt.go_backwards == (d == 1)
            assert_layer_equal(lt, ref, ATOL, mask=mask)
            outs.append(torch.from_numpy(ref["h"]))
        layer_in = torch.cat(outs, dim=2)


OPTIONS = list(itertools.product([1, 2], [False, True], [0, 3], [True, False], [True, False]))


@pytest.mark.parametrize(("layers", "bidi", "proj", "batch_first", "given_state"), OPTIONS)
def test_nn_lstm_every_option(layers, bidi, proj, batch_first, given_state):
    torch.manual_seed(layers * 100 + bidi * 10 + proj + batch_first * 7 + given_state)
    m = nn.LSTM(
        4, 6, num_layers=layers, bidirectional=bidi, proj_size=proj, batch_first=batch_first
    ).eval()
    b, t = 3, 9
    x = torch.randn(b, t, 4)
    dirs = 2 if bidi else 1
    p = proj or 6
    h0 = torch.randn(layers * dirs, b, p) * 0.5 if given_state else None
    c0 = torch.randn(layers * dirs, b, 6) * 0.5 if given_state else None
    feed = x if batch_first else x.transpose(0, 1)
    args = ((h0, c0),) if given_state else ()
    tr = lstmviz.trace(m, feed, *args, time_major=not batch_first)
    with torch.no_grad():
        y, (_, c_n) = m(feed, *args)
    np.testing.assert_array_equal(tr.output[0], y.numpy())  # the framework's own output
    np.testing.assert_array_equal(tr.output[1][1], c_n.numpy())
    assert len(tr.layers) == layers * dirs
    _check_lstm(m, tr, x, h0, c0)
    assert tr.inputs.shape == (b, t, 4)  # lstmviz's layout, whatever the model takes


def test_nn_lstm_without_bias_and_unbatched_input():
    torch.manual_seed(1)
    m = nn.LSTM(2, 5, bias=False).eval()
    x = torch.randn(1, 8, 2)
    tr = lstmviz.trace(m, x[0].T.T[None].transpose(0, 1), time_major=True)
    _check_lstm(m, tr, x)
    assert tr.layer("lstm").weights.bias is None


def test_packed_sequences_bidirectional_two_layers():
    torch.manual_seed(2)
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    class Tagger(nn.Module):  # variable-length batches, as sequence taggers pack them
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True)
            self.out = nn.Linear(10, 4)

        def forward(self, x, lengths):
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            y, _ = self.rnn(packed)
            y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
            return self.out(y)

    model = Tagger().eval()
    lengths = torch.tensor([4, 7, 2])
    x = torch.randn(3, 7, 3)
    for b, n in enumerate(lengths):
        x[b, n:] = 0
    tr = lstmviz.trace(model, x, lengths)
    with torch.no_grad():
        np.testing.assert_array_equal(tr.output, model(x, lengths).numpy())
    _check_lstm(model.rnn, tr, x, lengths=lengths.numpy(), base="rnn")
    lt = tr.layer("rnn_l1/backward")
    assert lt.mask is not None and lt.mask.sum() == int(lengths.sum())


def test_lstm_cell_loop_time_sequence_prediction():
    # the two-cell sine predictor of pytorch/examples time_sequence_prediction (code written
    # here): two nn.LSTMCells called one step at a time, then fed their own prediction
    class Sequence(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm1 = nn.LSTMCell(1, 12)
            self.lstm2 = nn.LSTMCell(12, 12)
            self.linear = nn.Linear(12, 1)

        def forward(self, input, future=0):
            outputs = []
            h_t = torch.zeros(input.size(0), 12, dtype=input.dtype)
            c_t = torch.zeros(input.size(0), 12, dtype=input.dtype)
            h_t2 = torch.zeros(input.size(0), 12, dtype=input.dtype)
            c_t2 = torch.zeros(input.size(0), 12, dtype=input.dtype)
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

    torch.manual_seed(3)
    model = Sequence()
    t = torch.arange(20, dtype=torch.float32)
    x = torch.sin(t[None, :] / 3 + torch.arange(4, dtype=torch.float32)[:, None])  # (4, 20)
    tr = lstmviz.trace(model, x, model_kwargs={"future": 5})
    assert tr.layer_names == ["lstm1", "lstm2"]  # stacked, in call order
    assert tr.inputs.shape == (4, 20, 1)  # one number per step: a feature axis of 1
    with torch.no_grad():
        np.testing.assert_array_equal(tr.output, model(x, future=5).numpy())
    l1, l2 = tr.layer("lstm1"), tr.layer("lstm2")
    assert l1.timesteps == 25 and l2.timesteps == 25  # every call is a step
    ref1 = torch_lstm_steps(torch.from_numpy(np.array(l1.x)), **_params(model.lstm1, 0, 0, True))
    assert_layer_equal(l1, ref1, ATOL)
    np.testing.assert_array_equal(l1.x[:, :20, 0], x.numpy())
    ref2 = torch_lstm_steps(torch.from_numpy(ref1["h"]), **_params(model.lstm2, 0, 0, True))
    assert_layer_equal(l2, ref2, ATOL)
    assert tr.step_output is not None and tr.step_output.shape == (4, 25, 1)


@pytest.mark.filterwarnings("ignore:dropout2d:UserWarning")  # the example's own Dropout2d
def test_mnist_rnn_head_with_batchnorm():
    # pytorch/examples mnist_rnn's architecture (code written here): LSTM -> last step ->
    # BatchNorm1d -> fc1 -> relu -> fc2 -> log_softmax; everything after the LSTM runs in torch
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(input_size=28, hidden_size=16, batch_first=True)
            self.batchnorm = nn.BatchNorm1d(16)
            self.dropout1 = nn.Dropout2d(0.25)
            self.dropout2 = nn.Dropout2d(0.5)
            self.fc1 = nn.Linear(16, 8)
            self.fc2 = nn.Linear(8, 10)

        def forward(self, input):
            input = input.reshape(-1, 28, 28)
            output, _hidden = self.rnn(input)
            output = output[:, -1, :]
            output = self.batchnorm(output)
            output = self.dropout1(output)
            output = self.fc1(output)
            output = torch.nn.functional.relu(output)
            output = self.dropout2(output)
            output = self.fc2(output)
            return torch.nn.functional.log_softmax(output, dim=1)

    torch.manual_seed(4)
    model = Net()
    model.batchnorm.running_mean.uniform_(-0.2, 0.2)
    model.batchnorm.running_var.uniform_(0.5, 1.5)
    model.eval()
    x = torch.rand(2, 28, 28)
    tr = lstmviz.trace(model, x)
    with torch.no_grad():
        np.testing.assert_array_equal(tr.output, model(x).numpy())
    _check_lstm(model.rnn, tr, x, base="rnn")
    live = lstmviz.bridge.live_model(model, x)
    kinds = {row["name"]: row["kind"] for row in live.summary()}
    assert kinds["batchnorm"] == "BatchNorm1d" and kinds["rnn"] == "LSTM"
    assert live.n_params == sum(p.numel() for p in model.parameters())


def test_decoder_called_one_step_at_a_time_is_one_trace():
    torch.manual_seed(5)
    rnn = nn.LSTM(3, 4, batch_first=True).eval()

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn

        def forward(self, x):
            state = None
            ys = []
            for s in range(x.shape[1]):
                y, state = self.rnn(x[:, s : s + 1], state)
                ys.append(y)
            return torch.cat(ys, dim=1)

    x = torch.randn(2, 6, 3)
    tr = lstmviz.trace(Decoder().eval(), x)
    assert tr.layer_names == ["rnn"] and tr.layer("rnn").timesteps == 6
    _check_lstm(rnn, tr, x, base="rnn")


def test_word_language_model_time_major_with_hidden_argument():
    # pytorch/examples word_language_model's RNNModel (LSTM; code written here): token ids
    # (T, batch), Embedding, nn.LSTM(batch_first=False) with 2 layers, decoder; hidden passed in
    class RNNModel(nn.Module):
        def __init__(self, ntoken=30, ninp=8, nhid=10, nlayers=2):
            super().__init__()
            self.drop = nn.Dropout(0.2)
            self.encoder = nn.Embedding(ntoken, ninp)
            self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=0.2)
            self.decoder = nn.Linear(nhid, ntoken)

        def forward(self, input, hidden):
            emb = self.drop(self.encoder(input))
            output, hidden = self.rnn(emb, hidden)
            output = self.drop(output)
            decoded = self.decoder(output).view(-1, 30)
            return torch.nn.functional.log_softmax(decoded, dim=1), hidden

    torch.manual_seed(6)
    model = RNNModel()
    ids = torch.randint(0, 30, (35, 2))  # (T, batch)
    hidden = (torch.randn(2, 2, 10) * 0.1, torch.randn(2, 2, 10) * 0.1)
    with pytest.raises(LstmvizError, match="training mode"):
        lstmviz.trace(model, ids, hidden, time_major=True)
    model.eval()
    with pytest.raises(InputError, match="time_major=True"):
        lstmviz.trace(model, ids, hidden)  # told (batch, T): the nn.LSTM reads axis 0 as time
    tr = lstmviz.trace(model, ids, hidden, time_major=True)
    assert tr.inputs.shape == (2, 35)
    with torch.no_grad():
        want, _ = model(ids, hidden)
    np.testing.assert_array_equal(tr.output[0], want.numpy())
    emb = model.encoder(ids).detach().transpose(0, 1)  # (batch, T, ninp)
    _check_lstm(model.rnn, tr, emb, hidden[0], hidden[1], base="rnn")
    live = lstmviz.bridge.live_model(model, ids, hidden, time_major=True)
    assert live.takes_tokens and live.embedding.input_dim == 30
    tr2 = live.trace(np.asarray(ids.T[:, :10]))  # lstmviz layout (batch, T), as the app gives
    assert tr2.layer("rnn_l0").timesteps == 10


def test_a_patched_lstm_is_refused():
    class Louder(nn.LSTM):  # not what an LSTM computes from its weights
        def forward(self, x, hx=None):
            y, (h, c) = super().forward(x, hx)
            return y * 1.01, (h * 1.01, c)

    m = Louder(3, 4, batch_first=True).eval()
    with pytest.raises(VerificationError, match="refuse"):
        lstmviz.trace(m, torch.randn(1, 5, 3))


def test_no_lstm_and_bad_inputs():
    gru = nn.Sequential(nn.GRU(3, 4))
    with pytest.raises(LstmvizError, match="GRU"):
        lstmviz.trace(gru, torch.randn(1, 5, 3))
    m = nn.LSTM(3, 4, batch_first=True).eval()
    live = lstmviz.bridge.live_model(m, torch.randn(1, 5, 3))
    with pytest.raises(InputError, match="features"):
        live.trace(np.zeros((1, 5, 2), np.float32))
    with pytest.raises(InputError, match="NaN"):
        live.trace(np.full((1, 5, 3), np.nan, np.float32))
    with pytest.raises(InputError, match=r"torch\.nn\.Module or keras\.Model"):
        lstmviz.trace(object(), np.zeros((1, 2, 3)))
    with pytest.raises(InputError, match="raised"):
        lstmviz.trace(m, torch.randn(1, 5, 3), "not a state")


def test_calls_from_other_threads_are_not_recorded():
    import threading

    started, proceed = threading.Event(), threading.Event()

    class Paused(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(2, 3, batch_first=True)

        def forward(self, x):
            y, _ = self.rnn(x)
            started.set()
            proceed.wait(30)
            return y

    model = Paused().eval()
    result = {}
    worker = threading.Thread(
        target=lambda: result.update(tr=lstmviz.trace(model, torch.randn(1, 5, 2)))
    )
    worker.start()
    assert started.wait(30)
    with torch.no_grad():
        model.rnn(torch.randn(4, 7, 2))  # the user's own call meanwhile, on another thread
    proceed.set()
    worker.join(30)
    tr = result["tr"]
    assert tr.layer_names == ["rnn"] and tr.batch_size == 1 and tr.timesteps == 5


def test_float64_is_traced_and_bfloat16_is_refused():
    torch.manual_seed(8)
    m = nn.LSTM(3, 5, batch_first=True).double().eval()
    x = torch.randn(2, 30, 3, dtype=torch.float64)
    tr = lstmviz.trace(m, x)
    _check_lstm(m.float(), tr, x.float())
    low = nn.LSTM(3, 5, batch_first=True).to(torch.bfloat16).eval()
    with pytest.raises(VerificationError, match="low precision"):
        lstmviz.trace(low, torch.randn(2, 30, 3, dtype=torch.bfloat16))


def test_initial_state_overrides_the_models_own():
    torch.manual_seed(9)
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True).eval()
    x = torch.randn(2, 6, 3)
    live = lstmviz.bridge.live_model(m, x)
    h_b, c_b = np.full((2, 4), 0.3, np.float32), np.full(4, -0.2, np.float32)
    h_1, c_1 = np.full((2, 4), -0.5, np.float32), np.full((2, 4), 0.1, np.float32)
    tr = live.trace(
        x.numpy(), initial_state={"lstm_l0/backward": (h_b, c_b), "lstm_l1": (h_1, c_1)}
    )
    h0 = torch.zeros(4, 2, 4)
    c0 = torch.zeros(4, 2, 4)
    h0[1], c0[1] = torch.from_numpy(h_b), torch.from_numpy(np.broadcast_to(c_b, (2, 4)).copy())
    h0[2:], c0[2:] = torch.from_numpy(h_1), torch.from_numpy(c_1)
    with torch.no_grad():
        want, _ = m(x, (h0, c0))
    np.testing.assert_array_equal(tr.output[0], want.numpy())
    _check_lstm(m, tr, x, h0, c0)
    np.testing.assert_array_equal(tr.layer("lstm_l0/backward").h0, h_b)
    assert live.trace(x.numpy()) is not tr  # no override: the model's own zeros again
    np.testing.assert_array_equal(live.trace(x.numpy()).layer("lstm_l1/forward").h0, 0)
    with pytest.raises(InputError, match="names 'nope'"):
        live.trace(x.numpy(), initial_state={"nope": (h_b, c_b)})
    with pytest.raises(InputError, match="needs"):
        live.trace(x.numpy(), initial_state={"lstm_l1": (np.zeros((3, 4)), c_1)})


def test_initial_state_of_an_lstm_cell_loop():
    torch.manual_seed(10)
    cell = nn.LSTMCell(2, 3)

    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = cell

        def forward(self, x):
            state = None
            outs = []
            for s in range(x.shape[1]):
                state = self.cell(x[:, s], state)
                outs.append(state[0])
            return torch.stack(outs, 1)

    x = torch.randn(2, 5, 2)
    live = lstmviz.bridge.live_model(Loop(), x)
    h0, c0 = np.full((2, 3), 0.25, np.float32), np.full((2, 3), -0.5, np.float32)
    tr = live.trace(x.numpy(), initial_state={"cell": (h0, c0)})
    ref = torch_lstm_steps(
        x, **_params(cell, 0, 0, True), h0=torch.from_numpy(h0), c0=torch.from_numpy(c0)
    )
    assert tr.layer_names == ["cell"]
    assert_layer_equal(tr.layer("cell"), ref, ATOL)


def test_a_retrace_after_the_weights_changed_is_not_stale():
    torch.manual_seed(11)
    m = nn.LSTM(3, 4, batch_first=True).eval()
    x = torch.randn(1, 6, 3)
    live = lstmviz.bridge.live_model(m, x)
    first = live.trace(x.numpy())  # the example's trace, handed out once more
    assert first is live.example_trace
    with torch.no_grad():
        m.weight_hh_l0.mul_(0.5)  # the user trains a step in the notebook
        want, _ = m(x)
    again = live.trace(x.numpy())
    assert again is not first
    np.testing.assert_array_equal(again.output[0], want.numpy())
    assert not np.array_equal(again.layer(0).hidden, first.layer(0).hidden)


def test_encoder_decoder_and_a_shared_lstm():
    torch.manual_seed(12)

    class Seq2Seq(nn.Module):  # the decoder starts from the encoder's final state
        def __init__(self):
            super().__init__()
            self.encoder = nn.LSTM(3, 5, batch_first=True)
            self.decoder = nn.LSTM(2, 5, batch_first=True)

        def forward(self, src, tgt):
            _, state = self.encoder(src)
            y, _ = self.decoder(tgt, state)
            return y

    m = Seq2Seq().eval()
    src, tgt = torch.randn(2, 6, 3), torch.randn(2, 4, 2)
    tr = lstmviz.trace(m, [src, tgt])
    assert tr.layer_names == ["encoder", "decoder"]
    _check_lstm(m.encoder, tr, src, base="encoder")
    h0 = torch.from_numpy(np.array(tr.layer("encoder").h[-1]))[None]
    c0 = torch.from_numpy(np.array(tr.layer("encoder").c[-1]))[None]
    _check_lstm(m.decoder, tr, tgt, h0, c0, base="decoder")

    class Siamese(nn.Module):  # one LSTM on two unrelated inputs: two traces
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(3, 4, batch_first=True)

        def forward(self, a, b):
            return self.rnn(a)[0][:, -1] - self.rnn(b)[0][:, -1]

    s = Siamese().eval()
    a, b = torch.randn(1, 5, 3), torch.randn(1, 7, 3)
    tr = lstmviz.trace(s, [a, b])
    assert tr.layer_names == ["rnn", "rnn#2"]
    assert tr.layer("rnn").timesteps == 5 and tr.layer("rnn#2").timesteps == 7
    _check_lstm(s.rnn, tr, b, base="rnn#2")


def test_numpy_input_gets_the_models_float_dtype():
    torch.manual_seed(13)
    m = nn.LSTM(3, 4, batch_first=True).eval()
    x = np.random.default_rng(0).normal(size=(2, 5, 3))  # float64, as NumPy makes it
    tr = lstmviz.trace(m, x)
    with torch.no_grad():
        want, _ = m(torch.from_numpy(x).float())
    np.testing.assert_array_equal(tr.output[0], want.numpy())
