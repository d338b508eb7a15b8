"""The two routes of a live trace: ``verify="full"`` (the framework runs its LSTM, every step
is checked) and ``verify="spot"`` (the engine runs the LSTM in the framework's place and the
framework's own LSTM spot-checks windows of steps). On the spot route every recorded
quantity still equals the framework's own step math to 1e-5, the model's output is computed
from the engine's h (and equals the framework's to 1e-5), and a wrong weight layout is
caught by the spot check."""

from __future__ import annotations

import itertools
import weakref

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import lstmviz  # noqa: E402
import lstmviz.bridge.torch as bt  # noqa: E402
from lstmviz.bridge import SPOT_MIN_BATCH, VerificationError  # noqa: E402
from lstmviz.bridge.common import SPOT_STEPS, SPOT_WINDOWS, spot_windows  # noqa: E402
from lstmviz.engine.cell import LSTMWeights  # noqa: E402
from lstmviz.errors import InputError  # noqa: E402

from .test_torch import _check_lstm  # noqa: E402

ATOL = 1e-5

# torch's own notice when a projected LSTM skips oneDNN
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")


def _routes(tr):
    return {lt.name: lt.meta["verified"] for lt in tr.layers}


def test_spot_windows_cover_the_first_and_last_steps():
    assert spot_windows(5) == [(0, 5)]
    wins = spot_windows(1000)
    assert len(wins) == SPOT_WINDOWS and wins[0] == (0, SPOT_STEPS) and wins[-1][1] == 1000
    assert all(e - s == SPOT_STEPS for s, e in wins)
    assert spot_windows(SPOT_STEPS + 1) == [(0, SPOT_STEPS), (1, SPOT_STEPS + 1)]


@pytest.mark.parametrize(
    ("layers", "bidi", "batch_first", "given_state", "steps"),
    [
        (layers, bidi, bf, st, steps)
        for (layers, bidi, bf, st), steps in zip(
            itertools.product([1, 2], [False, True], [True, False], [False, True]),
            itertools.cycle([70, 5, 23]),
        )
    ],
)
def test_spot_route_equals_torch_every_option(layers, bidi, batch_first, given_state, steps):
    torch.manual_seed(layers * 100 + bidi * 10 + batch_first * 7 + given_state)
    m = nn.LSTM(4, 6, num_layers=layers, bidirectional=bidi, batch_first=batch_first).eval()
    b = 3
    x = torch.randn(b, steps, 4)
    dirs = 2 if bidi else 1
    h0 = torch.randn(layers * dirs, b, 6) * 0.5 if given_state else None
    c0 = torch.randn(layers * dirs, b, 6) * 0.5 if given_state else None
    feed = x if batch_first else x.transpose(0, 1)
    args = ((h0, c0),) if given_state else ()
    tr = lstmviz.trace(m, feed, *args, time_major=not batch_first, verify="spot")
    assert set(_routes(tr).values()) == {"spot"}
    with torch.no_grad():
        y, (h_n, c_n) = m(feed, *args)
    # the engine's h stands in for torch's: equal to float rounding, not bit for bit
    np.testing.assert_allclose(tr.output[0], y.numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(tr.output[1][0], h_n.numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(tr.output[1][1], c_n.numpy(), atol=ATOL, rtol=0)
    _check_lstm(m, tr, x, h0, c0)  # every gate of every step against torch's own step math
    assert "forward" not in vars(m)  # torch's forward is back


class Tagger(nn.Module):
    def __init__(self, layers=1, bidi=False):
        super().__init__()
        self.rnn = nn.LSTM(5, 8, num_layers=layers, bidirectional=bidi, batch_first=True)
        self.head = nn.Sequential(nn.Linear(8 * (1 + bidi), 8), nn.Tanh(), nn.Linear(8, 3))

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y)


def test_the_output_is_the_model_run_on_the_engines_h():
    torch.manual_seed(1)
    model = Tagger(layers=2).eval()
    x = torch.randn(SPOT_MIN_BATCH, 60, 5)
    tr = lstmviz.trace(model, x)  # auto: a batch of SPOT_MIN_BATCH takes the spot route
    assert _routes(tr) == {"rnn_l0": "spot", "rnn_l1": "spot"}
    h = torch.from_numpy(np.ascontiguousarray(tr.layer("rnn_l1").hidden))
    with torch.no_grad():
        np.testing.assert_array_equal(tr.output, model.head(h).numpy())  # torch's head, our h
        np.testing.assert_allclose(tr.output, model(x).numpy(), atol=ATOL, rtol=0)
    _check_lstm(model.rnn, tr, x, base="rnn")
    full = lstmviz.trace(model, x, verify="full")
    assert set(_routes(full).values()) == {"full"}
    for a, b in zip(tr.layers, full.layers, strict=True):
        np.testing.assert_allclose(a.forget_gate, b.forget_gate, atol=ATOL, rtol=0)
        np.testing.assert_allclose(a.cell, b.cell, atol=ATOL, rtol=0)


def test_auto_picks_the_route_by_batch_and_what_the_engine_can_replace():
    torch.manual_seed(2)
    model = Tagger().eval()
    assert _routes(lstmviz.trace(model, torch.randn(1, 30, 5))) == {"rnn": "full"}
    assert _routes(lstmviz.trace(model, torch.randn(SPOT_MIN_BATCH, 30, 5))) == {"rnn": "spot"}
    # what the engine cannot replace takes the full route even when asked for "spot"
    proj = nn.LSTM(3, 5, proj_size=2, batch_first=True).eval()
    assert _routes(lstmviz.trace(proj, torch.randn(9, 6, 3), verify="spot")) == {"lstm": "full"}
    wide = nn.LSTM(3, 5, batch_first=True).double().eval()
    x64 = torch.randn(9, 6, 3, dtype=torch.float64)
    assert _routes(lstmviz.trace(wide, x64, verify="spot")) == {"lstm": "full"}
    cell = nn.LSTMCell(3, 4)

    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = cell

        def forward(self, x):
            h = c = torch.zeros(x.shape[0], 4)
            for s in range(x.shape[1]):
                h, c = self.cell(x[:, s], (h, c))
            return h

    assert _routes(lstmviz.trace(Loop(), torch.randn(9, 4, 3), verify="spot")) == {"cell": "full"}
    with pytest.raises(InputError, match="verify='quick'"):
        lstmviz.trace(model, torch.randn(1, 5, 5), verify="quick")


def test_packed_sequences_take_the_full_route():
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(3)
    rnn = nn.LSTM(3, 4, batch_first=True).eval()

    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn

        def forward(self, x, lengths):
            p = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            y, _ = self.rnn(p)
            return pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])[0]

    lengths = torch.tensor([5, 3, 7, 2, 7, 1, 4, 6, 7])
    x = torch.randn(9, 7, 3)
    tr = lstmviz.trace(Packed().eval(), x, lengths, verify="spot")
    assert _routes(tr) == {"rnn": "full"}
    _check_lstm(rnn, tr, x, lengths=lengths.numpy(), base="rnn")


def _swap_input_and_forget(w: LSTMWeights) -> LSTMWeights:
    u = w.units
    perm = np.r_[u : 2 * u, 0:u, 2 * u : 4 * u]
    bias = None if w.bias is None else w.bias[perm]
    return LSTMWeights(
        w.kernel[:, perm],
        w.recurrent_kernel[:, perm],
        bias,
        w.activation,
        w.recurrent_activation,
    )


@pytest.mark.parametrize("which", ["every", "backward of layer 0", "one bias"])
def test_the_spot_check_catches_a_wrong_weight_layout(monkeypatch, which):
    """A conversion bug (gates swapped, one direction read wrong, one bias off) makes the
    engine compute another LSTM: the spot check refuses it."""
    orig = bt.from_torch
    calls = []

    def wrong(w_ih, w_hh, b_ih, b_hh):
        calls.append(1)
        w = orig(w_ih, w_hh, b_ih, b_hh)
        if which == "every" or (which == "backward of layer 0" and len(calls) == 2):
            return _swap_input_and_forget(w)
        if which == "one bias" and len(calls) == 3:
            bias = np.array(w.bias)
            bias[5] += 1e-2
            return LSTMWeights(w.kernel, w.recurrent_kernel, bias, "tanh", "sigmoid")
        return w

    monkeypatch.setattr(bt, "from_torch", wrong)
    monkeypatch.setattr(bt, "_WEIGHTS", weakref.WeakKeyDictionary())  # no cached conversion
    torch.manual_seed(4)
    model = Tagger(layers=2, bidi=True).eval()
    x = torch.randn(SPOT_MIN_BATCH, 80, 5)
    with pytest.raises(VerificationError, match="spot check of steps"):
        lstmviz.trace(model, x)
    assert "forward" not in vars(model.rnn)  # restored after the refusal too


def test_a_decoder_run_one_step_at_a_time_and_initial_state_on_the_spot_route():
    torch.manual_seed(5)
    rnn = nn.LSTM(3, 4, batch_first=True).eval()

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn

        def forward(self, x):
            state, ys = None, []
            for s in range(x.shape[1]):
                y, state = self.rnn(x[:, s : s + 1], state)
                ys.append(y)
            return torch.cat(ys, dim=1)

    x = torch.randn(9, 6, 3)
    model = Decoder().eval()
    tr = lstmviz.trace(model, x, verify="spot")
    assert _routes(tr) == {"rnn": "spot"} and tr.layer("rnn").timesteps == 6
    _check_lstm(rnn, tr, x, base="rnn")
    live = lstmviz.bridge.live_model(model, x, verify="spot")
    h0 = np.full((9, 4), 0.4, np.float32)
    c0 = np.full((9, 4), -0.3, np.float32)
    tr2 = live.trace(x.numpy(), initial_state={"rnn": (h0, c0)})
    assert _routes(tr2) == {"rnn": "spot"}
    _check_lstm(rnn, tr2, x, torch.from_numpy(h0)[None], torch.from_numpy(c0)[None], base="rnn")


def test_calls_from_another_thread_run_torchs_own_lstm():
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
        target=lambda: result.update(tr=lstmviz.trace(model, torch.randn(9, 5, 2), verify="spot"))
    )
    worker.start()
    assert started.wait(30)
    x_other = torch.randn(4, 7, 2)
    with torch.no_grad():
        y_other, _ = model.rnn(x_other)  # the user's own call meanwhile, on another thread
        y_ref, _ = nn.LSTM.forward(model.rnn, x_other)
    proceed.set()
    worker.join(30)
    np.testing.assert_array_equal(y_other.numpy(), y_ref.numpy())  # torch's own, bit for bit
    tr = result["tr"]
    assert tr.layer_names == ["rnn"] and tr.batch_size == 9 and _routes(tr) == {"rnn": "spot"}


# ------------------------------------------------------------------------- Keras
@pytest.fixture
def keras():
    return pytest.importorskip("keras")


def test_keras_spot_route_equals_keras(keras):
    from .reference import assert_layer_equal, keras_lstm_steps

    layers = keras.layers
    keras.utils.set_random_seed(6)
    inp = keras.Input((None, 4))
    a = layers.LSTM(6, return_sequences=True, name="first")(inp)
    b = layers.Bidirectional(layers.LSTM(5, return_sequences=True), name="bidi")(a)
    seq, h, c = layers.LSTM(3, return_state=True, go_backwards=True, name="back")(b)
    model = keras.Model(inp, [layers.Dense(2)(seq), h, c])
    x = np.random.default_rng(6).normal(size=(3, 40, 4)).astype(np.float32)
    tr = lstmviz.trace(model, x, verify="spot")
    assert _routes(tr) == {n: "spot" for n in ("first", "bidi/forward", "bidi/backward", "back")}
    for ours, want in zip(tr.output, model(x, training=False), strict=True):
        np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(want), atol=ATOL, rtol=0)
    r1 = keras_lstm_steps(x, model.get_layer("first").cell)
    assert_layer_equal(tr.layer("first"), r1, ATOL)
    bidi = model.get_layer("bidi")
    rf = keras_lstm_steps(r1["h"], bidi.forward_layer.cell)
    rb = keras_lstm_steps(r1["h"], bidi.backward_layer.cell, reverse=True)
    assert_layer_equal(tr.layer("bidi/forward"), rf, ATOL)
    assert_layer_equal(tr.layer("bidi/backward"), rb, ATOL)
    both = np.concatenate([rf["h"], rb["h"]], axis=-1)
    rback = keras_lstm_steps(both, model.get_layer("back").cell, reverse=True)
    assert_layer_equal(tr.layer("back"), rback, ATOL)
    auto = lstmviz.trace(model, np.repeat(x, 3, axis=0))  # 9 sequences: auto takes "spot"
    assert set(_routes(auto).values()) == {"spot"}
    assert set(_routes(lstmviz.trace(model, x[:1])).values()) == {"full"}  # one: the full check


def test_keras_spot_check_catches_a_wrong_weight_layout(keras, monkeypatch):
    import lstmviz.bridge.keras as bk

    orig = bk.cell_weights
    monkeypatch.setattr(bk, "cell_weights", lambda cell: _swap_input_and_forget(orig(cell)))
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((None, 3)), keras.layers.LSTM(4), keras.layers.Dense(1)])
    x = np.random.default_rng(7).normal(size=(2, 30, 3)).astype(np.float32)
    with pytest.raises(VerificationError, match="spot check of steps"):
        lstmviz.trace(model, x, verify="spot")
    with pytest.raises(VerificationError):
        lstmviz.trace(model, x, verify="full")


def test_keras_mask_takes_the_full_route(keras):
    keras.utils.set_random_seed(8)
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(10, 3, mask_zero=True),
            keras.layers.LSTM(4, name="lstm"),
        ]
    )
    ids = np.array([[3, 4, 5, 0, 0]] * 9, np.int32)
    tr = lstmviz.trace(model, ids, verify="spot")
    assert _routes(tr) == {"lstm": "full"}


def test_keras_spot_check_compiled_for_long_inputs(keras, monkeypatch):
    """From COMPILED_MIN_STEPS steps on, Keras's call runs the spot check's windows
    compiled (here from 1 step on, to keep the test small)."""
    import lstmviz.bridge.keras as bk

    from .reference import assert_layer_equal, keras_lstm_steps

    monkeypatch.setattr(bk, "COMPILED_MIN_STEPS", 1)
    keras.utils.set_random_seed(9)
    inp = keras.Input((None, 3))
    seq, h, c = keras.layers.LSTM(4, return_state=True, go_backwards=True, name="back")(inp)
    model = keras.Model(inp, [keras.layers.Dense(2)(seq), h, c])
    x = np.random.default_rng(9).normal(size=(2, 50, 3)).astype(np.float32)
    tr = lstmviz.trace(model, x, verify="spot")
    assert _routes(tr) == {"back": "spot"}
    assert bk._COMPILED.get(model.get_layer("back")) is not None  # ran compiled
    for ours, want in zip(tr.output, model(x, training=False), strict=True):
        np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(want), atol=ATOL, rtol=0)
    ref = keras_lstm_steps(x, model.get_layer("back").cell, reverse=True)
    assert_layer_equal(tr.layer("back"), ref, ATOL)
    orig = bk.cell_weights
    monkeypatch.setattr(bk, "cell_weights", lambda cell: _swap_input_and_forget(orig(cell)))
    with pytest.raises(VerificationError, match="spot check of steps"):
        lstmviz.trace(model, x, verify="spot")


def test_encoder_decoder_and_a_shared_lstm_on_the_spot_route():
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
    src, tgt = torch.randn(3, 20, 3), torch.randn(3, 4, 2)
    tr = lstmviz.trace(m, [src, tgt], verify="spot")
    assert _routes(tr) == {"encoder": "spot", "decoder": "spot"}
    with torch.no_grad():
        np.testing.assert_allclose(tr.output, m(src, tgt).numpy(), atol=ATOL, rtol=0)
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
    a, b = torch.randn(2, 5, 3), torch.randn(2, 7, 3)
    tr = lstmviz.trace(s, [a, b], verify="spot")
    assert tr.layer_names == ["rnn", "rnn#2"] and set(_routes(tr).values()) == {"spot"}
    _check_lstm(s.rnn, tr, a, base="rnn")
    _check_lstm(s.rnn, tr, b, base="rnn#2")


def test_a_live_model_opened_without_an_input_shows_the_one_it_was_wrapped_with():
    """The viewer state falls back to the model's example input: for a live model, the input
    it was wrapped with (it is kept as a value, where whole-graph models have a method)."""
    from lstmviz.bridge import live_model
    from lstmviz.state import ViewerState

    class Tagger(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(3, 8, batch_first=True)
            self.head = torch.nn.Linear(8, 2)

        def forward(self, x):
            return self.head(self.lstm(x)[0])

    x = np.random.default_rng(0).random((1, 5, 3)).astype(np.float32)
    live = live_model(Tagger(), x)
    state = ViewerState()
    state.set_model(live)  # no x: the example input
    assert state.layer_trace is not None and state.timesteps == 5
    np.testing.assert_allclose(state.layer_trace.h, live.trace(x).layers[0].h, atol=1e-6)
