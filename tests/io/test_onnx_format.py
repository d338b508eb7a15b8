"""ONNX graphs with LSTM ops: exported from torch in the test, checked against onnxruntime."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import numpy as np
import pytest

import lstmviz
from lstmviz.engine import convert
from lstmviz.engine.cell import LSTMWeights
from lstmviz.errors import InputError, ModelFileError, UnsupportedLayerError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ATOL = 1e-5


def _x(batch=3, steps=7, feats=4, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, steps, feats)).astype(np.float32)


def _ort(path, feeds):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


# ---------------------------------------------------------------------------- from torch
# torch.onnx's legacy exporter traces the module and warns about what it cannot record
_EXPORT_WARNINGS = [
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning:torch.*"),
]


@_EXPORT_WARNINGS[0]
@_EXPORT_WARNINGS[1]
@pytest.mark.parametrize("batch_first", [True, False])
def test_torch_export_bidirectional_two_layers(tmp_path, batch_first):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(
                4, 5, num_layers=2, bidirectional=True, batch_first=batch_first
            )
            self.fc = torch.nn.Linear(10, 3)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.fc(y), y

    net = Net().eval()
    x = _x()
    xt = x if batch_first else x.transpose(1, 0, 2).copy()
    axes = {0: "batch", 1: "time"} if batch_first else {0: "time", 1: "batch"}
    path = tmp_path / "net.onnx"
    torch.onnx.export(
        net,
        (torch.from_numpy(xt),),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["logits", "seq"],
        dynamic_axes={"x": axes, "logits": axes, "seq": axes},
    )
    model = lstmviz.load_model(path)
    assert model.format == "onnx"
    assert model.lstm_trace_names == [
        "lstm_l0/forward",
        "lstm_l0/backward",
        "lstm_l1/forward",
        "lstm_l1/backward",
    ]
    assert model.meta["onnx"]["time_major"] is (not batch_first)
    assert model.input_features == 4

    ref = _ort(path, {"x": xt})
    with torch.no_grad():
        t_logits, t_seq = (v.numpy() for v in net(torch.from_numpy(xt)))
    trace = model.trace(x)  # always batch-first
    logits, seq = trace.output
    if not batch_first:  # outputs declared (time, batch, ...) come back batch-first
        ref = [r.transpose(1, 0, 2) for r in ref]
        t_logits, t_seq = t_logits.transpose(1, 0, 2), t_seq.transpose(1, 0, 2)
    np.testing.assert_allclose(logits, ref[0], atol=ATOL)
    np.testing.assert_allclose(seq, ref[1], atol=ATOL)
    np.testing.assert_allclose(logits, t_logits, atol=ATOL)
    # the gates are the engine's; the halves' hidden states are torch's
    np.testing.assert_allclose(trace.layer("lstm_l1/forward").hidden, t_seq[..., :5], atol=ATOL)
    np.testing.assert_allclose(trace.layer("lstm_l1/backward").hidden, t_seq[..., 5:], atol=ATOL)
    lt = trace.layer("lstm_l0/forward")
    assert lt.forget_gate.shape == (3, 7, 5)
    assert float(lt.forget_gate.min()) > 0
    assert float(lt.forget_gate.max()) < 1


@_EXPORT_WARNINGS[0]
@_EXPORT_WARNINGS[1]
def test_torch_export_single_layer_with_initial_state_inputs(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(4, 6, batch_first=True).eval()

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = lstm

        def forward(self, x, h0, c0):
            y, (h, c) = self.lstm(x, (h0, c0))
            return y, h, c

    x = _x(2, 5)
    h0 = np.random.default_rng(2).normal(size=(1, 2, 6)).astype(np.float32)
    c0 = np.random.default_rng(3).normal(size=(1, 2, 6)).astype(np.float32)
    path = tmp_path / "state.onnx"
    torch.onnx.export(
        Net().eval(),
        tuple(torch.from_numpy(a) for a in (x, h0, c0)),
        str(path),
        dynamo=False,
        input_names=["x", "h0", "c0"],
        output_names=["y", "h", "c"],
    )
    model = lstmviz.load_model(path)
    ref = _ort(path, {"x": x, "h0": h0, "c0": c0})
    out = model.trace([x, h0, c0]).output
    for a, b in zip(out, ref, strict=True):
        np.testing.assert_allclose(a, b, atol=ATOL)
    lt = model.trace([x, h0, c0]).layer("lstm_l0")
    np.testing.assert_allclose(lt.h0, h0[0], atol=0)


# ---------------------------------------------------------------------------- hand-built
def _lstm_graph(
    path,
    ws,
    direction,
    x_shape,
    initial=None,
    layout=0,
    extra_nodes=(),
    outputs=("Y", "Y_h", "Y_c"),
):
    o = convert.to_onnx(*ws)
    h = ws[0].units
    dirs = len(ws)
    inits = [
        numpy_helper.from_array(o["W"], "W"),
        numpy_helper.from_array(o["R"], "R"),
        numpy_helper.from_array(o["B"], "B"),
    ]
    ins = ["X", "W", "R", "B", ""]
    if initial is not None:
        inits += [
            numpy_helper.from_array(initial[0], "h0"),
            numpy_helper.from_array(initial[1], "c0"),
        ]
        ins += ["h0", "c0"]
    node = helper.make_node(
        "LSTM",
        ins,
        ["Y", "Y_h", "Y_c"],
        name="the_lstm",
        hidden_size=h,
        direction=direction,
        layout=layout,
    )
    b, t = (x_shape[0], x_shape[1]) if layout else (x_shape[1], x_shape[0])
    y_shape = [b, t, dirs, h] if layout else [t, dirs, b, h]
    s_shape = [b, dirs, h] if layout else [dirs, b, h]
    shapes = {"Y": y_shape, "Y_h": s_shape, "Y_c": s_shape}
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shapes.get(n)) for n in outputs]
    graph = helper.make_graph(
        [node, *extra_nodes],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x_shape))],
        outs,
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def _w(f, u, seed):
    rng = np.random.default_rng(seed)
    return LSTMWeights(
        rng.normal(0, 0.6, (f, 4 * u)), rng.normal(0, 0.6, (u, 4 * u)), rng.normal(0, 0.6, 4 * u)
    )


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_hand_built_lstm_with_initial_state(tmp_path, direction):
    dirs = 2 if direction == "bidirectional" else 1
    ws = [_w(3, 4, s) for s in range(dirs)]
    rng = np.random.default_rng(9)
    h0 = rng.normal(size=(dirs, 2, 4)).astype(np.float32)
    c0 = rng.normal(size=(dirs, 2, 4)).astype(np.float32)
    path = _lstm_graph(tmp_path / "h.onnx", ws, direction, [6, 2, 3], (h0, c0))
    model = lstmviz.load_model(path)
    x = _x(2, 6, 3)
    y, yh, yc = _ort(path, {"X": x.transpose(1, 0, 2).copy()})
    trace = model.trace(x)
    # Y (T, dirs, B, H) is not (T, batch)-first, so it stays as ONNX returns it
    np.testing.assert_allclose(trace.output[0], y, atol=ATOL)
    np.testing.assert_allclose(trace.output[1], yh, atol=ATOL)
    np.testing.assert_allclose(trace.output[2], yc, atol=ATOL)
    names = ["lstm_l0/forward", "lstm_l0/backward"] if dirs == 2 else ["lstm_l0"]
    assert model.lstm_trace_names == names
    for d, name in enumerate(names):
        lt = trace.layer(name)
        np.testing.assert_allclose(lt.hidden, y[:, d].transpose(1, 0, 2), atol=ATOL)
        np.testing.assert_allclose(lt.h0, h0[d])
    if direction == "reverse":
        assert trace.layer("lstm_l0").go_backwards


def test_layout_1_matches_layout_0(tmp_path):
    ws = [_w(3, 4, 0), _w(3, 4, 1)]
    p0 = _lstm_graph(tmp_path / "l0.onnx", ws, "bidirectional", [6, 2, 3])
    p1 = _lstm_graph(tmp_path / "l1.onnx", ws, "bidirectional", [2, 6, 3], layout=1)
    x = _x(2, 6, 3)
    m0, m1 = lstmviz.load_model(p0), lstmviz.load_model(p1)
    assert m0.meta["onnx"]["time_major"]
    assert not m1.meta["onnx"]["time_major"]
    y0, h0, _ = m0.trace(x).output
    y1, h1, _ = m1.trace(x).output
    np.testing.assert_allclose(y1, y0.transpose(2, 0, 1, 3), atol=ATOL)  # (B, T, dirs, H)
    np.testing.assert_allclose(h1, h0.transpose(1, 0, 2), atol=ATOL)


# ---------------------------------------------------------------------------- errors
def test_bad_onnx_files(tmp_path):
    # no LSTM op
    w = numpy_helper.from_array(np.ones((3, 2), np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [w],
    )
    path = tmp_path / "mm.onnx"
    onnx.save(helper.make_model(g), str(path))
    with pytest.raises(ModelFileError, match=r"no LSTM op in the ONNX graph.*MatMul"):
        lstmviz.load_model(path)

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff\x00not a protobuf" * 20)
    with pytest.raises(ModelFileError, match=r"not an ONNX model"):
        lstmviz.load_model(junk)

    # every standard op runs (onnx.reference), e.g. Erf, matching onnxruntime
    erf = helper.make_node("Erf", ["Y_h"], ["E"], name="odd")
    path = _lstm_graph(
        tmp_path / "erf.onnx",
        [_w(3, 4, 0)],
        "forward",
        [6, 2, 3],
        extra_nodes=[erf],
        outputs=("E",),
    )
    x = _x(2, 6, 3)
    np.testing.assert_allclose(
        lstmviz.load_model(path).trace(x).output,
        _ort(path, {"X": x.transpose(1, 0, 2).copy()})[0],
        atol=ATOL,
    )
    # an op of another domain is refused, named
    m = onnx.load(str(path))
    m.graph.node[1].domain = "com.example"
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    onnx.save(m, str(tmp_path / "custom.onnx"))
    with pytest.raises(UnsupportedLayerError, match=r"'odd' is op 'Erf' of domain 'com.example'"):
        lstmviz.load_model(tmp_path / "custom.onnx")

    # peepholes / sequence_lens
    ws = [_w(3, 4, 0)]
    path = _lstm_graph(tmp_path / "ok.onnx", ws, "forward", [6, 2, 3])
    m = onnx.load(str(path))
    m.graph.node[0].input[4] = "X"  # any name: sequence_lens given
    onnx.save(m, str(tmp_path / "lens.onnx"))
    with pytest.raises(UnsupportedLayerError, match=r"sequence_lens"):
        lstmviz.load_model(tmp_path / "lens.onnx")

    with pytest.raises(ModelFileError, match=r"no such file"):
        lstmviz.load_model(tmp_path / "absent.onnx")


def test_loading_onnx_never_imports_tensorflow(tmp_path):
    path = _lstm_graph(tmp_path / "a.onnx", [_w(3, 4, 0)], "forward", [6, 2, 3])
    code = (
        "import sys, numpy as np, lstmviz\n"
        f"m = lstmviz.load_model({str(path)!r}); m.trace(np.ones((2, 6, 3), np.float32))\n"
        "bad = [k for k in ('tensorflow', 'keras', 'torch') if k in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    code = (
        "import sys\nsys.modules['onnx'] = None\nimport lstmviz\n"
        "try:\n"
        f"    lstmviz.load_model({str(path)!r})\n"
        "except lstmviz.LstmvizError as e:\n"
        "    assert 'pip install onnx' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no error without onnx')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_corrupted_onnx_files_raise_lstmviz_errors(tmp_path):
    """Truncated and bit-flipped files fail with LstmvizError, never another exception."""
    ws = [_w(3, 4, 0), _w(3, 4, 1)]
    data = _lstm_graph(tmp_path / "ok.onnx", ws, "bidirectional", [6, 2, 3]).read_bytes()
    rng = np.random.default_rng(0)
    path = tmp_path / "fuzz.onnx"
    for i in range(120):
        b = bytearray(data)
        if i % 2:
            b = b[: rng.integers(1, len(b))]
        else:
            for _ in range(rng.integers(1, 12)):
                b[rng.integers(0, len(b))] = rng.integers(0, 256)
        path.write_bytes(bytes(b))
        with contextlib.suppress(lstmviz.LstmvizError):
            lstmviz.load_model(path).trace(_x(2, 6, 3))


def test_tf2onnx_style_keras_lstm_graph(tmp_path):
    """What tf2onnx writes for keras LSTM(return_sequences=False) + Dense(softmax), opset 11:
    Transpose -> LSTM -> Squeeze(Y_h, axes attribute) -> MatMul -> Add -> Softmax."""
    w = _w(3, 4, 0)
    o = convert.to_onnx(w)
    rng = np.random.default_rng(1)
    k, b = rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=5).astype(np.float32)
    inits = [numpy_helper.from_array(o[n], n) for n in ("W", "R", "B")]
    inits += [numpy_helper.from_array(k, "dense/kernel"), numpy_helper.from_array(b, "dense/bias")]
    nodes = [
        helper.make_node("Transpose", ["input_1"], ["xt"], perm=[1, 0, 2], name="lstm/transpose"),
        helper.make_node(
            "LSTM", ["xt", "W", "R", "B"], ["", "Y_h"], hidden_size=4, name="lstm/LSTM"
        ),
        helper.make_node("Squeeze", ["Y_h"], ["h"], axes=[0], name="lstm/squeeze"),
        helper.make_node("MatMul", ["h", "dense/kernel"], ["mm"], name="dense/MatMul"),
        helper.make_node("Add", ["mm", "dense/bias"], ["logits"], name="dense/BiasAdd"),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1, name="dense/Softmax"),
    ]
    g = helper.make_graph(
        nodes,
        "tf2onnx",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["unk__1", 6, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["unk__1", 5])],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)])
    m.ir_version = 7
    path = tmp_path / "keras.onnx"
    onnx.save(m, str(path))
    model = lstmviz.load_model(path)
    assert not model.meta["onnx"]["time_major"]
    assert model.input_timesteps == 6
    x = _x(2, 6, 3)
    trace = model.trace(x)
    np.testing.assert_allclose(trace.output, _ort(path, {"input_1": x})[0], atol=ATOL)
    np.testing.assert_allclose(trace.output.sum(axis=1), 1, atol=1e-6)


# ---------------------------------------------------------------------------- real exports
@_EXPORT_WARNINGS[0]
@_EXPORT_WARNINGS[1]
def test_word_language_model_export_traces_exactly(tmp_path):
    """pytorch/examples word_language_model: batch_first=False, the embedding's Gather between
    the graph input and the LSTM, h0/c0 as graph inputs (through Slice)."""
    pytest.importorskip("torch")
    import torch

    from tests.zoo.torch_zoo import export_onnx, word_language_model

    net, ids = word_language_model()  # ids (35, 1): (T, batch), as the example feeds them
    path = tmp_path / "wlm.onnx"
    export_onnx(net, str(path))
    model = lstmviz.load_model(path)
    info = model.meta["onnx"]
    assert info["time_major"] is True and info["layout_ambiguous"] == []
    assert model.takes_tokens and model.embedding.input_dim == 50
    assert len(model.optional_inputs) == 2  # h0, c0: zeros when left out
    trace = model.trace(ids.T)  # batch-first (1, 35)
    with torch.no_grad():
        ref, (h, c) = net(torch.from_numpy(ids), net.init_hidden(1))
        seq, _ = net.rnn(net.encoder(torch.from_numpy(ids)))
    np.testing.assert_allclose(trace.output[0], ref.numpy(), atol=ATOL)
    np.testing.assert_allclose(trace.output[1], h.numpy(), atol=ATOL)
    np.testing.assert_allclose(trace.output[2], c.numpy(), atol=ATOL)
    assert [lt.hidden.shape for lt in trace.layers] == [(1, 35, 20), (1, 35, 20)]
    np.testing.assert_allclose(trace.layer("lstm_l1").hidden[0], seq.numpy()[:, 0], atol=ATOL)
    assert trace.step_output.shape == (1, 35, 50)  # the log-probabilities at every step
    sess_in = [i.name for i in ort.InferenceSession(str(path)).get_inputs()]
    zeros = np.zeros((2, 1, 20), np.float32)
    for a, b in zip(
        trace.output, _ort(path, dict(zip(sess_in, [ids, zeros, zeros], strict=False))), strict=True
    ):
        np.testing.assert_allclose(a, b, atol=ATOL)
    # given h0/c0 are used, as a list or a dict
    rng = np.random.default_rng(5)
    h0 = rng.normal(size=(2, 1, 20)).astype(np.float32)
    c0 = rng.normal(size=(2, 1, 20)).astype(np.float32)
    with torch.no_grad():
        ref2, _ = net(torch.from_numpy(ids), (torch.from_numpy(h0), torch.from_numpy(c0)))
    for x in ([ids.T, h0, c0], dict(zip(model.input_names, [ids.T, h0, c0], strict=False))):
        np.testing.assert_allclose(model.trace(x).output[0], ref2.numpy(), atol=ATOL)
    np.testing.assert_allclose(model.trace([ids.T, h0, c0]).layer("lstm_l1").h0, h0[1, 0:1])
    # the graph is static: another length is refused with both shapes named
    with pytest.raises(
        InputError,
        match=r"must have shape \(1, 35\).*declares \(35, 1\)"
        r".*found shape \(1, 20\)",
    ):
        model.trace(ids.T[:, :20])
    with pytest.raises(InputError, match="out of the vocabulary"):
        model.trace(np.full((1, 35), 50))


@_EXPORT_WARNINGS[0]
@_EXPORT_WARNINGS[1]
def test_dynamic_axes_bind_across_inputs(tmp_path):
    pytest.importorskip("torch")
    import torch

    from tests.zoo.torch_zoo import word_language_model

    net, _ = word_language_model()
    path = tmp_path / "wlm_dyn.onnx"
    torch.onnx.export(
        net,
        (torch.zeros((6, 2), dtype=torch.long), net.init_hidden(2)),
        str(path),
        dynamo=False,
        input_names=["tokens", "h0", "c0"],
        output_names=["logp", "h", "c"],
        dynamic_axes={
            "tokens": {0: "seq", 1: "batch"},
            "h0": {1: "batch"},
            "c0": {1: "batch"},
            "logp": {0: "rows"},
            "h": {1: "batch"},
            "c": {1: "batch"},
        },
    )
    model = lstmviz.load_model(path)
    assert model.meta["onnx"]["time_major"] is True
    ids = np.random.default_rng(0).integers(0, 50, (3, 9))  # batch 3, T 9, batch-first
    trace = model.trace(ids)
    with torch.no_grad():
        ref, (h, _) = net(torch.from_numpy(ids.T.copy()), net.init_hidden(3))
    np.testing.assert_allclose(trace.output[0], ref.numpy(), atol=ATOL)
    np.testing.assert_allclose(trace.output[1], h.numpy(), atol=ATOL)
    assert trace.layer("lstm_l0").hidden.shape == (3, 9, 20)
    assert trace.step_output is None  # (T * batch, V) rows: not per step once batch > 1
    with pytest.raises(InputError, match=r"dimension 'batch' is 3 in input 'tokens' but 2"):
        model.trace({"tokens": ids, "h0": np.zeros((2, 2, 20), np.float32)})


@_EXPORT_WARNINGS[0]
@_EXPORT_WARNINGS[1]
def test_mnist_rnn_and_tagger_exports_with_the_ops_around_the_lstm(tmp_path):
    """BatchNormalization, Gemm, Relu, LogSoftmax, Gather, Slice run as the ONNX spec says
    (onnx.reference), checked against torch and onnxruntime."""
    pytest.importorskip("torch")
    import torch

    from tests.zoo.torch_zoo import lstm_tagger, mnist_rnn

    net, x = mnist_rnn()
    path = tmp_path / "mnist.onnx"
    torch.onnx.export(
        net,
        (torch.from_numpy(x),),
        str(path),
        dynamo=False,
        input_names=["img"],
        dynamic_axes={"img": {0: "batch"}},
    )
    model = lstmviz.load_model(path)
    ops = set(model.layers["onnx_graph"].ops)
    assert {"BatchNormalization", "Gemm", "Relu", "LogSoftmax"} <= ops
    trace = model.trace(x)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(trace.output, ref, atol=ATOL)
    np.testing.assert_allclose(trace.output, _ort(path, {"img": x})[0], atol=ATOL)
    assert trace.layer("lstm_l0").hidden.shape == (3, 28, 64)
    from lstmviz.analysis.outputs import output_spec

    assert output_spec(model).kind == "log_probabilities"

    tagger, sent = lstm_tagger()
    path = tmp_path / "tagger.onnx"
    torch.onnx.export(tagger, (torch.from_numpy(sent),), str(path), dynamo=False)
    model = lstmviz.load_model(path)
    assert model.meta["onnx"]["input_layouts"][model.input_names[0]] == "unbatched"
    trace = model.trace(sent[None])  # the (T,) sentence, with lstmviz's batch axis
    with torch.no_grad():
        ref = tagger(torch.from_numpy(sent)).numpy()
    np.testing.assert_allclose(trace.output, ref, atol=ATOL)
    assert trace.step_output.shape == (1, 5, 3)
    assert output_spec(model).kind == "log_probabilities"


# ---------------------------------------------------------------------------- layouts
def test_ambiguous_static_layout_needs_time_major(tmp_path):
    ws = [_w(3, 4, 0)]
    path = _lstm_graph(tmp_path / "sq.onnx", ws, "forward", [5, 5, 3])
    model = lstmviz.load_model(path)
    assert model.layout_ambiguous == ["X"]
    x = _x(5, 5, 3)
    with pytest.raises(InputError, match=r"do not tell which axis of input 'X'.*time_major"):
        model.trace(x)
    model.set_time_major(True)
    ref = _ort(path, {"X": x.transpose(1, 0, 2).copy()})
    np.testing.assert_allclose(model.trace(x).output[0], ref[0], atol=ATOL)
    from lstmviz.io.onnx_format import load_onnx

    m2 = load_onnx(path, time_major=True)
    np.testing.assert_allclose(m2.trace(x).output[1], ref[1], atol=ATOL)
    # where the sizes tell, a contradicting time_major is refused
    p2 = _lstm_graph(tmp_path / "tm.onnx", ws, "forward", [6, 2, 3])
    with pytest.raises(lstmviz.LstmvizError, match="contradicts the graph"):
        load_onnx(p2, time_major=False)


def test_inputs_are_checked_against_declared_shapes(tmp_path):
    path = _lstm_graph(tmp_path / "a.onnx", [_w(3, 4, 0)], "forward", [6, 2, 3])
    model = lstmviz.load_model(path)
    assert model.time_major and model.input_features == 3 and model.input_timesteps == 6
    with pytest.raises(InputError, match=r"must have shape \(2, 6, 3\).*found shape \(2, 6, 4\)"):
        model.trace(_x(2, 6, 4))
    with pytest.raises(InputError, match=r"NaN or inf"):
        model.trace(np.full((2, 6, 3), np.nan, np.float32))
    with pytest.raises(InputError, match=r"must be numeric"):
        model.trace(np.array([["a"]]))
