"""Hostile ONNX files: memory bombs, missing inputs, odd constants -- always an LstmvizError,
never a raw exception and never an allocation over the budget."""

from __future__ import annotations

import numpy as np
import pytest

import lstmviz
from lstmviz import budget
from lstmviz.engine import convert
from lstmviz.errors import LstmvizError, MemoryBudgetError, ModelFileError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from .test_onnx_format import _lstm_graph, _w, _x  # noqa: E402


def _graph_with(tmp_path, name, extra_nodes, extra_inits=(), out="Y_h", x_dims=(6, 2, 3)):
    """An LSTM graph (X -> LSTM) with ``extra_nodes`` and the output ``out``."""
    o = convert.to_onnx(_w(3, 4, 0))
    inits = [numpy_helper.from_array(o[n], n) for n in ("W", "R", "B")] + list(extra_inits)
    nodes = [
        helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y", "Y_h", "Y_c"], hidden_size=4),
        *extra_nodes,
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x_dims))],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path / f"{name}.onnx"
    onnx.save(m, str(path))
    return path


def _const(name, value):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value))


def test_concat_doubling_is_refused_before_it_allocates(tmp_path):
    nodes = [_const("c0", np.zeros(1024, np.float32))]
    for k in range(40):  # 4 KB * 2^40
        nodes.append(helper.make_node("Concat", [f"c{k}", f"c{k}"], [f"c{k + 1}"], axis=0))
    path = _graph_with(tmp_path, "concat", nodes)
    with budget.budget_set_to("64MiB"), pytest.raises(MemoryBudgetError, match="Concat"):
        lstmviz.load_model(path)


@pytest.mark.parametrize(
    ("op", "inputs", "inits"),
    [
        ("ConstantOfShape", ["shape"], [np.array([2**20, 2**20], np.int64)]),
        ("Expand", ["one", "shape"], [np.ones(1, np.float32), np.array([2**16, 2**16, 16])]),
        ("Tile", ["one", "shape"], [np.ones((1, 1), np.float32), np.array([2**20, 2**20])]),
        (
            "Range",
            ["a", "b", "c"],
            [np.array(0.0, np.float32), np.array(1e12, np.float32), np.array(1.0, np.float32)],
        ),
    ],
)
def test_ops_that_allocate_from_file_shapes_are_budgeted(tmp_path, op, inputs, inits):
    names = {
        "ConstantOfShape": ["shape"],
        "Expand": ["one", "shape"],
        "Tile": ["one", "shape"],
        "Range": ["a", "b", "c"],
    }[op]
    consts = [_const(n, v) for n, v in zip(names, inits, strict=True)]
    path = _graph_with(tmp_path, op, [*consts, helper.make_node(op, inputs, ["big"])])
    with budget.budget_set_to("64MiB"), pytest.raises(MemoryBudgetError, match=op):
        lstmviz.load_model(path)


def test_graph_input_declaring_2_40_features(tmp_path):
    path = _graph_with(tmp_path, "wide", [], x_dims=(6, 2, 2**40))
    with pytest.raises(
        MemoryBudgetError, match=r"graph input 'X' declared \(6, 2, 1099511627776\)"
    ):
        lstmviz.load_model(path)


def test_external_data_is_sized_against_the_tensor(tmp_path):
    ws = [_w(3, 4, 0)]
    path = _lstm_graph(tmp_path / "ext.onnx", ws, "forward", [6, 2, 3])
    m = onnx.load(str(path))
    big = tmp_path / "weights.bin"
    w = next(t for t in m.graph.initializer if t.name == "W")
    raw = numpy_helper.to_array(w).tobytes()
    with open(big, "wb") as fh:  # a 3 GB (sparse) file whose first bytes are the tensor
        fh.write(raw)
        fh.truncate(3 * 2**30)
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="weights.bin")
    onnx.save(m, str(tmp_path / "ext_ok.onnx"))
    model = lstmviz.load_model(tmp_path / "ext_ok.onnx")  # reads 192 bytes, not 3 GB
    ref = lstmviz.load_model(path)
    x = _x(2, 6, 3)
    np.testing.assert_array_equal(model.trace(x).output[0], ref.trace(x).output[0])
    w.external_data.add(key="length", value=str(3 * 2**30))
    onnx.save(m, str(tmp_path / "ext_long.onnx"))
    with pytest.raises(ModelFileError, match=r"tensor 'W': shape \[1, 16, 3\] needs 192 bytes"):
        lstmviz.load_model(tmp_path / "ext_long.onnx")
    del w.external_data[-1]
    w.external_data.add(key="location", value="../../etc/passwd")
    del w.external_data[0]
    onnx.save(m, str(tmp_path / "ext_out.onnx"))
    with pytest.raises(ModelFileError, match=r"not a file inside"):
        lstmviz.load_model(tmp_path / "ext_out.onnx")


@pytest.mark.parametrize(
    "node",
    [
        helper.make_node("Squeeze", ["s"], ["bad"], axes=[0]),
        helper.make_node("Split", ["s"], ["bad", "bad2"], axis=0),
        helper.make_node("Slice", ["s", "i", "i"], ["bad"]),
        helper.make_node("Softmax", ["s"], ["bad"], axis=0),
    ],
    ids=["Squeeze", "Split", "Slice", "Softmax"],
)
def test_ops_on_0d_constants_fail_as_lstmviz_errors(tmp_path, node):
    consts = [_const("s", np.array(1.5, np.float32)), _const("i", np.array([0], np.int64))]
    node.name = "odd"
    # ONNX's reference ops accept some of these; whatever fails is an LstmvizError naming it
    for dims in ((6, 2, 3), (6, "b", 3)):  # static shapes: refused at load; dynamic: at trace
        path = _graph_with(tmp_path, f"{node.op_type}_{dims[1]}", [*consts, node], x_dims=dims)
        message = ""
        try:
            lstmviz.load_model(path).trace(_x(2, 6, 3))
        except LstmvizError as e:
            message = str(e)
        assert not message or f"node 'odd' ({node.op_type}) failed" in message


def test_a_node_reading_an_absent_tensor(tmp_path):
    path = _graph_with(tmp_path, "absent", [helper.make_node("Relu", ["nowhere"], ["r"], name="n")])
    with pytest.raises(ModelFileError, match=r"node 'n' \(Relu\) reads tensor 'nowhere', which no"):
        lstmviz.load_model(path)


def test_truncated_initializer(tmp_path):
    path = _lstm_graph(tmp_path / "t.onnx", [_w(3, 4, 0)], "forward", [6, 2, 3])
    m = onnx.load(str(path))
    w = next(t for t in m.graph.initializer if t.name == "R")
    w.raw_data = w.raw_data[:-10]
    onnx.save(m, str(tmp_path / "trunc.onnx"))
    with pytest.raises(ModelFileError, match=r"initializer 'R': shape \[1, 16, 4\] needs 256"):
        lstmviz.load_model(tmp_path / "trunc.onnx")


def test_a_loop_that_does_not_end_is_stopped(tmp_path, monkeypatch):
    from lstmviz.io import onnx_format

    monkeypatch.setattr(onnx_format, "MAX_OP_RUNS", 2000)
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])],
    )
    nodes = [
        _const("m", np.array(10**12, np.int64)),
        _const("t", np.array(True)),
        helper.make_node("Loop", ["m", "t"], [], body=body, name="forever"),
    ]
    path = _graph_with(tmp_path, "loop", nodes)
    with pytest.raises(LstmvizError, match=r"more than 2,000 ops"):
        lstmviz.load_model(path)
