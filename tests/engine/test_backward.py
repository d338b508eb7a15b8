"""The backward pass: finite differences in float64 (no framework needed), then equality with
``tf.GradientTape`` on real saved .keras / .h5 files to 1e-4 relative.

Models built here from engine layers cover what the bundled examples do not (masks,
Bidirectional with every merge mode, go_backwards, initial states, projections, every layer
around the LSTMs); the Keras zoo of tests/keras_models.py is checked against TensorFlow.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.engine import layers as L
from lstmviz.engine.backward import (
    activation_derivative,
    activation_vjp,
    backward,
    gradients,
    record,
    supports_backward,
)
from lstmviz.engine.cell import LSTMWeights
from lstmviz.engine.intervene import Intervention, run_lstm_intervened
from lstmviz.engine.model import Model, Node
from lstmviz.errors import InputError, LstmvizError, UnsupportedLayerError

EXAMPLES = Path(__file__).resolve().parents[2] / "lstmviz" / "assets" / "examples"
RTOL = 1e-4  # gradients against TensorFlow / torch: relative to the largest entry
FD_RTOL = 1e-6  # central differences in float64


def assert_grad_close(ours, theirs, rtol=RTOL, what=""):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    scale = max(float(np.abs(theirs).max()), 1e-12)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale, err_msg=what)


def _weights(rng, f, u, *, proj=None, scale=1.0, **kw):
    p = u if proj is None else proj
    return LSTMWeights(
        rng.normal(0, scale, (f, 4 * u)),
        rng.normal(0, scale, (p, 4 * u)),
        rng.normal(0, scale, 4 * u),
        projection=None if proj is None else rng.normal(0, scale, (u, proj)),
        **kw,
    )


def _fd_check(model, x, n_points=6, seed=0, initial_state=None):
    """Central differences of <seed, output> in float64 against the backward pass."""
    tape = record(model, x, dtype=np.float64, initial_state=initial_state)
    rng = np.random.default_rng(seed)
    out = tape.output
    s = rng.normal(size=np.shape(out))
    g = backward(tape, s).inputs[0]
    x64 = np.asarray(x, np.float64)
    eps = 1e-6
    flat = rng.choice(x64.size, size=min(n_points, x64.size), replace=False)
    for k in flat:
        idx = np.unravel_index(k, x64.shape)
        xp, xm = x64.copy(), x64.copy()
        xp[idx] += eps
        xm[idx] -= eps
        fp = np.sum(s * record(model, xp, dtype=np.float64, initial_state=initial_state).output)
        fm = np.sum(s * record(model, xm, dtype=np.float64, initial_state=initial_state).output)
        num = (fp - fm) / (2 * eps)
        assert abs(num - g[idx]) <= FD_RTOL * max(1.0, np.abs(g).max()) + 1e-7, (idx, num, g[idx])
    return g


def _seq_model(*layers_after, f=3, name="m"):
    nodes = [Node(L.InputLayer("in", (None, None, f)), 0, [])]
    prev = ("in", 0, 0)
    for lay in layers_after:
        nodes.append(Node(lay, 0, [prev]))
        prev = (lay.name, 0, 0)
    return Model(name, nodes, [("in", 0, 0)], [prev])


# ------------------------------------------------------------------------------ the LSTM
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("proj", [None, 2])
@pytest.mark.parametrize(
    "act", [("sigmoid", "tanh"), ("hard_sigmoid", None), ("sigmoid", "relu"), ("softmax", "tanh")]
)
def test_lstm_finite_differences(go_backwards, proj, act):
    rng = np.random.default_rng(1)
    w = _weights(rng, 3, 4, proj=proj, recurrent_activation=act[0], activation=act[1] or "linear")
    m = _seq_model(L.LSTM("lstm", w, return_sequences=True, go_backwards=go_backwards))
    _fd_check(m, rng.normal(size=(2, 6, 3)))


def test_initial_state_and_state_gradients():
    rng = np.random.default_rng(2)
    w = _weights(rng, 3, 4)
    m = _seq_model(L.LSTM("lstm", w, return_sequences=True))
    h0, c0 = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    x = rng.normal(size=(2, 5, 3))
    _fd_check(m, x, initial_state={"lstm": (h0, c0)})
    tape = record(m, x, dtype=np.float64, initial_state={"lstm": (h0, c0)})
    s = rng.normal(size=tape.output.shape)
    g = backward(tape, s).layer("lstm")
    eps = 1e-6
    for which, arr, grad in (("h0", h0, g.dh0), ("c0", c0, g.dc0)):
        for idx in [(0, 1), (1, 3)]:
            p, q = arr.copy(), arr.copy()
            p[idx] += eps
            q[idx] -= eps
            st_p = {"lstm": (p, c0) if which == "h0" else (h0, p)}
            st_q = {"lstm": (q, c0) if which == "h0" else (h0, q)}
            num = (
                np.sum(s * record(m, x, dtype=np.float64, initial_state=st_p).output)
                - np.sum(s * record(m, x, dtype=np.float64, initial_state=st_q).output)
            ) / (2 * eps)
            assert abs(num - grad[idx]) < 1e-6 * max(1, abs(num)), (which, idx, num, grad[idx])


@pytest.mark.parametrize(
    "quantity", ["input_gate", "forget_gate", "output_gate", "candidate", "cell", "hidden"]
)
@pytest.mark.parametrize("go_backwards", [False, True])
def test_gradient_of_every_recorded_quantity(quantity, go_backwards):
    """d target / d (gate, c, h) at (t, unit), against nudging that value inside the
    recurrence (an intervention clamped to value + eps)."""
    rng = np.random.default_rng(3)
    w = _weights(rng, 3, 4)
    x = rng.normal(size=(1, 6, 3))
    s = rng.normal(size=(6, 1, 4))
    base = run_lstm_intervened(x, w, go_backwards=go_backwards, dtype=np.float64)
    from lstmviz.engine.backward import lstm_backward

    g = lstm_backward(base, s).get(quantity)
    eps = 1e-6
    for t, u in [(0, 1), (2, 3), (5, 0)]:
        v = base.get(quantity)[0, t, u]
        vals = []
        for d in (eps, -eps):
            iv = Intervention("lstm", (u,), quantity, "clamp", value=v + d, start=t, stop=t + 1)
            lt = run_lstm_intervened(
                x, w, go_backwards=go_backwards, dtype=np.float64, interventions=[iv]
            )
            vals.append(np.sum(s * lt.h))
        num = (vals[0] - vals[1]) / (2 * eps)
        assert abs(num - g[0, t, u]) < 1e-6 * max(1, abs(num)), (t, u, num, g[0, t, u])


def test_masked_and_bidirectional_every_merge_mode():
    rng = np.random.default_rng(4)
    for mm in ("concat", "sum", "mul", "ave", None):
        fw = L.LSTM("f", _weights(rng, 3, 4), return_sequences=True)
        bw = L.LSTM("b", _weights(rng, 3, 4), return_sequences=True, go_backwards=True)
        bidi = L.Bidirectional("bidi", fw, bw, mm)
        x = rng.normal(size=(3, 6, 3))
        x[0, -2:] = 0.0  # masked tail
        x[1, 2] = 0.0  # a masked step inside
        if mm is None:
            nodes = [
                Node(L.InputLayer("in", (None, None, 3)), 0, []),
                Node(L.Masking("mask"), 0, [("in", 0, 0)]),
                Node(bidi, 0, [("mask", 0, 0)]),
                Node(L.Merge("join", "Concatenate"), 0, [("bidi", 0, 0), ("bidi", 0, 1)]),
            ]
            m = Model("bidi_none", nodes, [("in", 0, 0)], [("join", 0, 0)])
        else:
            m = _seq_model(
                L.Masking("mask"),
                bidi,
                L.Dense(
                    "d",
                    rng.normal(size=(8 if mm == "concat" else 4, 2)),
                    rng.normal(size=2),
                    "tanh",
                ),
            )
        _fd_check(m, x, n_points=8)


def test_return_state_and_encoder_decoder_gradients():
    rng = np.random.default_rng(5)
    enc = L.LSTM("enc", _weights(rng, 3, 4), return_state=True)
    dec = L.LSTM("dec", _weights(rng, 2, 4), return_sequences=True)
    nodes = [
        Node(L.InputLayer("a", (None, None, 3)), 0, []),
        Node(L.InputLayer("b", (None, None, 2)), 0, []),
        Node(enc, 0, [("a", 0, 0)]),
        Node(dec, 0, [("b", 0, 0)], {"initial_state": [("enc", 0, 1), ("enc", 0, 2)]}),
    ]
    m = Model("s2s", nodes, [("a", 0, 0), ("b", 0, 0)], [("dec", 0, 0)])
    xa, xb = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 4, 2))
    tape = record(m, [xa, xb], dtype=np.float64)
    s = rng.normal(size=tape.output.shape)
    ga, gb = backward(tape, s).inputs
    eps = 1e-6
    for arr_i, idx in ((0, (0, 1, 2)), (0, (1, 4, 0)), (1, (1, 2, 1))):
        xs = [xa.copy(), xb.copy()]
        xs[arr_i][idx] += eps
        fp = np.sum(s * record(m, xs, dtype=np.float64).output)
        xs[arr_i][idx] -= 2 * eps
        fm = np.sum(s * record(m, xs, dtype=np.float64).output)
        g = (ga, gb)[arr_i][idx]
        assert abs((fp - fm) / (2 * eps) - g) < 1e-6 * max(1, abs(g))


def test_layers_around_the_lstm():
    rng = np.random.default_rng(6)
    lstm = L.LSTM("lstm", _weights(rng, 4, 5), return_sequences=True)
    m = _seq_model(
        L.Conv1D(
            "conv",
            rng.normal(size=(3, 3, 6)),
            rng.normal(size=6),
            padding="causal",
            dilation_rate=2,
            activation="tanh",
        ),
        L.Conv1D(
            "conv2",
            rng.normal(size=(2, 3, 4)),
            rng.normal(size=4),
            padding="same",
            strides=2,
            groups=2,
            activation="gelu",
        ),
        L.LayerNormalization("ln", rng.normal(size=4), rng.normal(size=4)),
        L.BatchNormalization(
            "bn",
            rng.normal(size=4),
            rng.normal(size=4),
            rng.normal(size=4),
            np.abs(rng.normal(size=4)) + 0.5,
        ),
        L.Activation("act", "softsign"),
        lstm,
        L.Permute("perm", (2, 1)),
        L.Permute("perm2", (2, 1)),
        L.TimeDistributed("td", L.Dense("inner", rng.normal(size=(5, 3)), None, "elu")),
        L.LayerNormalization("rms", rng.normal(size=3), None, rms_scaling=True),
        L.GlobalPooling1D("pool", "GlobalMaxPooling1D"),
        L.RepeatVector("rep", 3),
        L.LSTM("lstm2", _weights(rng, 3, 2), return_sequences=True),
        L.Flatten("flat"),
        L.Dense("head", rng.normal(size=(6, 4)), rng.normal(size=4), "softmax"),
    )
    _fd_check(m, rng.normal(size=(2, 9, 3)), n_points=10)


@pytest.mark.parametrize(
    "name",
    [
        "linear",
        "sigmoid",
        "tanh",
        "relu",
        "relu6",
        "hard_sigmoid",
        "hard_sigmoid_keras2",
        "softplus",
        "softsign",
        "elu",
        "selu",
        "exponential",
        "silu",
        "hard_silu",
        "leaky_relu",
        "gelu",
        "mish",
        "celu",
        "softmax",
        "log_softmax",
    ],
)
def test_activation_derivatives(name):
    from lstmviz.engine import activations

    rng = np.random.default_rng(7)
    z = rng.normal(0, 2, (3, 5))
    z[np.abs(z) < 0.05] = 0.3  # away from kinks
    z[np.abs(np.abs(z) - 3) < 0.05] = 1.0
    g = rng.normal(size=z.shape)
    f = activations.get(name)
    a = f(z, np.empty_like(z))
    got = activation_vjp(name, z, a, g)
    eps = 1e-6
    num = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += eps
        zm[idx] -= eps
        num[idx] = np.sum(g * (f(zp, np.empty_like(z)) - f(zm, np.empty_like(z)))) / (2 * eps)
    np.testing.assert_allclose(got, num, rtol=1e-5, atol=1e-7)
    if name not in ("softmax", "log_softmax"):
        assert activation_derivative(name, z, a).shape == z.shape


# ------------------------------------------------------------------------------ bundled files
@pytest.mark.parametrize(
    "name", ["digit_sum", "binary_addition", "toy_classification", "stacked_lstm"]
)
def test_bundled_examples_finite_differences(name):
    m = lstmviz.load_model(EXAMPLES / f"{name}.keras")
    x = np.random.default_rng(8).normal(size=(2, 7, m.input_features))
    _fd_check(m, x)


def test_token_model_embedding_gradient():
    m = lstmviz.load_model(EXAMPLES / "word_lm.keras")
    ids = np.random.default_rng(9).integers(1, m.embedding.input_dim, (2, 6))
    tape = record(m, ids, dtype=np.float64)
    s = np.zeros(tape.output.shape)
    s[:, -1, 5] = 1.0
    g = backward(tape, s)
    assert g.inputs == [None]
    emb = g.embedded[0]
    assert emb.shape == (2, 6, m.embedding.embeddings.shape[1])
    # the embedding table's gradient is the embedded gradient scattered to the ids
    de = np.zeros(m.embedding.embeddings.shape)
    np.add.at(de, ids.ravel(), emb.reshape(-1, emb.shape[-1]))
    np.testing.assert_allclose(g.params["embedding"]["embeddings"], de, atol=1e-12)
    # the last step's output cannot depend on nothing, and the past matters
    assert np.abs(emb[:, 0]).max() > 0


def test_float32_tape_is_the_engine_trace():
    m = lstmviz.load_model(EXAMPLES / "binary_addition.keras")
    x = np.random.default_rng(10).integers(0, 2, (3, 12, 2)).astype(np.float32)
    tape = record(m, x)
    tr = m.trace(x)
    np.testing.assert_array_equal(tape.output, tr.output)
    np.testing.assert_array_equal(tape.trace("lstm").c, tr.layer("lstm").c)
    as_trace = tape.to_trace()
    np.testing.assert_array_equal(as_trace.step_output, tr.step_output)
    np.testing.assert_allclose(record(m, x, dtype=np.float64).output, tr.output, atol=1e-5)


def test_bad_seed_and_dtype_are_refused():
    m = lstmviz.load_model(EXAMPLES / "digit_sum.keras")
    x = np.eye(10, dtype=np.float32)[[[1, 2, 3]]]
    tape = record(m, x)
    with pytest.raises(InputError, match="seed for 'digit_sum' has shape"):
        backward(tape, np.ones((2, 10)))
    with pytest.raises(InputError, match="dtype must be float32 or float64"):
        record(m, x, dtype=np.int32)
    assert supports_backward(m) == []


def test_layer_without_backward_is_named():
    class Odd(L.Layer):
        kind = "OddLayer"

        def call(self, x):
            return x * 2

    rng = np.random.default_rng(11)
    m = _seq_model(L.LSTM("lstm", _weights(rng, 3, 2), return_sequences=True), Odd("odd"))
    assert supports_backward(m) == ["odd (OddLayer)"]
    x = rng.normal(size=(1, 3, 3)).astype(np.float32)
    tape = record(m, x)
    with pytest.raises(UnsupportedLayerError, match=r"layer 'odd' \(OddLayer\) has no backward"):
        backward(tape, np.ones((1, 3, 2)))
    with pytest.raises(LstmvizError, match="no float64 path"):
        record(m, x, dtype=np.float64)


def test_gradients_convenience_accepts_a_callable_seed():
    m = lstmviz.load_model(EXAMPLES / "toy_classification.keras")
    x = np.array([[[0], [0], [3], [3], [0], [0]]], np.float32)
    g = gradients(m, x, lambda y: np.eye(y.shape[1])[[3]])
    assert g.inputs[0].shape == x.shape
    assert np.isclose(g.value, m.trace(x).output[0, 3], atol=1e-6)


# ------------------------------------------------------------------------------ TensorFlow
def _keras_path_to_ours(path: str, params: dict) -> tuple[str, str]:
    parts = path.split("/")
    wname = parts[-1]
    for i, p in enumerate(parts[:-1]):
        if p.startswith(("forward_", "backward_")) and i > 0:
            return f"{parts[i - 1]}/{p.split('_')[0]}", wname
        if p in params and not (
            i + 1 < len(parts) - 1 and parts[i + 1].startswith(("forward_", "backward_"))
        ):
            return p, wname
    raise AssertionError(f"no lstmviz layer for Keras variable {path} in {sorted(params)}")


@pytest.fixture(scope="module")
def keras_zoo(tmp_path_factory):
    keras = pytest.importorskip("keras")
    from tests import keras_models as km

    cache = {}

    def get(name):
        if name not in cache:
            model = km.BUILDERS[name]()
            km.randomize(
                model,
                seed=zlib.crc32(name.encode()) % 1000,
                scale=0.3 if name in ("carry_model", "relu_lstm", "dense_activations") else 1.0,
            )
            d = tmp_path_factory.mktemp(name)
            model.save(d / f"{name}.keras")
            model.save(d / f"{name}.h5")
            cache[name] = (model, d)
        return cache[name]

    get.keras = keras
    get.km = km
    return get


TF_MODELS = [
    "digit_sum",
    "toy_lm",
    "classifier",
    "stacked_4_5",
    "carry_model",
    "text_generator",
    "hard_sigmoid_nobias",
    "bidi_concat",
    "bidi_sum",
    "bidi_mul",
    "bidi_ave",
    "bidi_none",
    "go_backwards",
    "kitchen_sink",
    "seq2seq",
    "conv_strided",
    "relu_lstm",
    "dense_activations",
    "masking_lstm",
    "nested",
]


# every model from .keras; the legacy .h5 reader on the models whose layers differ most
H5_MODELS = ["digit_sum", "bidi_concat", "kitchen_sink", "seq2seq", "nested", "masking_lstm"]
TF_CASES = [(n, ".keras") for n in TF_MODELS] + [(n, ".h5") for n in H5_MODELS]


@pytest.mark.parametrize(("name", "suffix"), TF_CASES)
def test_gradients_equal_tf_gradient_tape(keras_zoo, name, suffix):
    tf = pytest.importorskip("tensorflow")
    kmodel, d = keras_zoo(name)
    x = keras_zoo.km.x_for(name, kmodel)
    ours_model = lstmviz.load_model(d / f"{name}{suffix}")
    tape = record(ours_model, x)
    outs = tape.outputs
    rng = np.random.default_rng(12)
    seeds = [rng.normal(size=np.shape(o)).astype(np.float32) for o in outs]
    g = backward(tape, seeds if len(seeds) > 1 else seeds[0])

    xs = x if isinstance(x, list) else [x]
    tx = [tf.constant(a) for a in xs]
    with tf.GradientTape(persistent=True) as gt:
        for a in tx:
            if a.dtype.is_floating:
                gt.watch(a)
        y = kmodel(tx if len(tx) > 1 else tx[0], training=False)
        ys = y if isinstance(y, (list, tuple)) else [y]
        target = tf.add_n([tf.reduce_sum(yy * s) for yy, s in zip(ys, seeds, strict=True)])
    for i, a in enumerate(tx):
        if a.dtype.is_floating:
            assert_grad_close(g.inputs[i], gt.gradient(target, a).numpy(), what=f"input {i}")
    n = 0
    for v in kmodel.trainable_weights:
        theirs = gt.gradient(target, v)
        if theirs is None:
            continue
        theirs = tf.convert_to_tensor(theirs).numpy()
        layer, wname = _keras_path_to_ours(v.path, g.params)
        assert_grad_close(g.params[layer][wname], theirs, what=v.path)
        n += 1
    assert n >= 2
    assert np.isclose(g.value, float(target), rtol=1e-4, atol=1e-4)


def test_a_model_used_as_a_layer_backpropagates_and_is_looked_into():
    from lstmviz.io.keras import SubModel  # what the Keras reader builds for a nested model

    class Odd(L.Layer):
        kind = "OddLayer"

        def call(self, x):
            return x * 2

    rng = np.random.default_rng(12)

    def inner(*layers):
        nodes, prev = [Node(L.InputLayer("inner_in", (None, None, 3)), 0, [])], ("inner_in", 0, 0)
        for lay in layers:
            nodes.append(Node(lay, 0, [prev]))
            prev = (lay.name, 0, 0)
        return Model("inner", nodes, [("inner_in", 0, 0)], [prev])

    lstm = L.LSTM("inner_lstm", _weights(rng, 3, 4), return_sequences=True)
    outer = L.LSTM("outer_lstm", _weights(rng, 4, 3))
    m = _seq_model(SubModel("inner", inner(lstm)), outer)
    assert supports_backward(m) == []
    _fd_check(m, rng.normal(size=(2, 5, 3)))
    odd_inside = _seq_model(SubModel("inner", inner(Odd("odd"), lstm)), outer)
    assert supports_backward(odd_inside) == ["odd (OddLayer)"]


def test_a_nested_model_whose_tensors_share_the_outer_names():
    """Keras names a nested model's input as it likes: "in" inside and outside must not add
    the inner gradient to the outer one twice."""
    from lstmviz.io.keras import SubModel

    rng = np.random.default_rng(13)
    lstm = L.LSTM("inner_lstm", _weights(rng, 3, 4), return_sequences=True)
    inner = Model(
        "inner",
        [Node(L.InputLayer("in", (None, None, 3)), 0, []), Node(lstm, 0, [("in", 0, 0)])],
        [("in", 0, 0)],
        [("inner_lstm", 0, 0)],
    )
    m = _seq_model(SubModel("inner", inner), L.LSTM("outer_lstm", _weights(rng, 4, 3)))
    _fd_check(m, rng.normal(size=(2, 5, 3)))
