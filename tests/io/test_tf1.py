"""TF1 checkpoints (BasicLSTMCell / LSTMCell / MultiRNNCell): the seed's stacked 4 -> 5 model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.errors import LstmvizError, ModelFileError, UnsupportedLayerError

tf = pytest.importorskip("tensorflow")

ATOL = 1e-5
#: the TF1 stacked-cells example's sample input: batch 2, 3 steps, 6 features
SEED_X = np.array(
    [
        [[1, 2, 3, 4, 3, 2], [1, 2, 1, 1, 1, 2], [1, 2, 2, 2, 2, 2]],
        [[1, 2, 3, 4, 3, 2], [3, 2, 2, 1, 1, 2], [0, 0, 0, 0, 3, 2]],
    ],
    np.float32,
)


def write_checkpoint(prefix: Path, variables: dict[str, np.ndarray]) -> Path:
    """A real TF1 name-based checkpoint (tf.compat.v1.train.Saver) holding ``variables``."""
    tf1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        vs = [tf1.Variable(v, name=k) for k, v in variables.items()]
        with tf1.Session(graph=g) as sess:
            sess.run(tf1.variables_initializer(vs))
            tf1.train.Saver(vs).save(sess, str(prefix), write_meta_graph=False)
    return prefix


def tf1_reference(x, cells, forget_bias=1.0, proj=None):
    """TF1's BasicLSTMCell / LSTMCell math written out: gates i, j, f, o over [x, h]."""
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    out = x.astype(np.float64)
    for k, (kernel, bias) in enumerate(cells):
        u = kernel.shape[1] // 4
        p = None if proj is None or proj[k] is None else proj[k]
        h = np.zeros((x.shape[0], u if p is None else p.shape[1]))
        c = np.zeros((x.shape[0], u))
        hs = []
        for t in range(x.shape[1]):
            z = np.concatenate([out[:, t], h], axis=1) @ kernel + bias
            i, j, f, o = np.split(z, 4, axis=1)
            c = c * sig(f + forget_bias) + sig(i) * np.tanh(j)
            h = np.tanh(c) * sig(o)
            if p is not None:
                h = h @ p
            hs.append(h)
        out = np.stack(hs, axis=1)
    return out


def _seed_variables(rng, cell="basic_lstm_cell"):
    return {
        f"rnn/multi_rnn_cell/cell_0/{cell}/kernel": rng.normal(0, 0.5, (6 + 4, 16)),
        f"rnn/multi_rnn_cell/cell_0/{cell}/bias": rng.normal(0, 0.5, 16),
        f"rnn/multi_rnn_cell/cell_1/{cell}/kernel": rng.normal(0, 0.5, (4 + 5, 20)),
        f"rnn/multi_rnn_cell/cell_1/{cell}/bias": rng.normal(0, 0.5, 20),
    }


def test_seed_stacked_4_5_with_tf1_math(tmp_path):
    rng = np.random.default_rng(0)
    v = {k: a.astype(np.float32) for k, a in _seed_variables(rng).items()}
    extra = {  # what a TF1 training run also saves: optimizer slots, step counters, a head
        "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel/Adam": np.zeros((10, 16), np.float32),
        "beta1_power": np.float32(0.9),
        "global_step": np.int64(100),
        "dense/kernel": rng.normal(0, 0.5, (5, 3)).astype(np.float32),
        "dense/bias": rng.normal(0, 0.5, 3).astype(np.float32),
    }
    prefix = write_checkpoint(tmp_path / "model.ckpt", {**v, **extra})
    cells = [
        (
            v["rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel"],
            v["rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias"],
        ),
        (
            v["rnn/multi_rnn_cell/cell_1/basic_lstm_cell/kernel"],
            v["rnn/multi_rnn_cell/cell_1/basic_lstm_cell/bias"],
        ),
    ]
    h = tf1_reference(SEED_X, cells)
    ref = h @ extra["dense/kernel"] + extra["dense/bias"]
    for path in (prefix, Path(str(prefix) + ".index"), Path(str(prefix) + ".data-00000-of-00001")):
        model = lstmviz.load_model(path)
        assert model.format == "tf1"
        assert model.lstm_trace_names == ["lstm_l0", "lstm_l1"]
        assert [model.lstm(n).units for n in model.lstm_trace_names] == [4, 5]
        assert model.input_features == 6
        trace = model.trace(SEED_X)
        np.testing.assert_allclose(trace.layer("lstm_l1").hidden, h, atol=ATOL)
        np.testing.assert_allclose(trace.output, ref, atol=ATOL)
    assert model.meta["tf1"]["head"] == ["dense/kernel", "dense/bias"]
    assert model.meta["tf1"]["cell_types"] == ["basic_lstm_cell", "basic_lstm_cell"]
    assert model.meta["tf1"]["ignored"] == []
    # the recorded forget gate includes forget_bias = 1.0
    k0, b0 = cells[0]
    z_f = SEED_X[:, 0] @ k0[:6, 8:12] + b0[8:12] + 1.0
    np.testing.assert_allclose(trace.layer("lstm_l0").z_f[:, 0], z_f, atol=ATOL)

    # forget_bias from the sidecar; no head
    (tmp_path / "model.ckpt.lstmviz.json").write_text(
        json.dumps({"format_version": 1, "extra": {"tf1": {"forget_bias": 0.0, "head": None}}})
    )
    model = lstmviz.load_model(prefix)
    np.testing.assert_allclose(
        model.trace(SEED_X).output, tf1_reference(SEED_X, cells, forget_bias=0.0), atol=ATOL
    )


def test_stack_bidirectional_with_tf1_math(tmp_path):
    """stack_bidirectional_dynamic_rnn names: layer k = fw and bw cells over layer k-1's
    concatenated outputs."""
    rng = np.random.default_rng(4)
    v, ref_in = {}, SEED_X.astype(np.float64)
    f = 6
    for k in range(2):
        outs = []
        for d in ("fw", "bw"):
            scope = f"stack_bidirectional_rnn/cell_{k}/bidirectional_rnn/{d}/lstm_cell"
            kern = rng.normal(0, 0.5, (f + 3, 12)).astype(np.float32)
            bias = rng.normal(0, 0.5, 12).astype(np.float32)
            v[scope + "/kernel"], v[scope + "/bias"] = kern, bias
            x = ref_in if d == "fw" else ref_in[:, ::-1]
            y = tf1_reference(x, [(kern, bias)])
            outs.append(y if d == "fw" else y[:, ::-1])
        ref_in = np.concatenate(outs, axis=-1)
        f = 6
    model = lstmviz.load_model(write_checkpoint(tmp_path / "bi.ckpt", v))
    assert model.lstm_trace_names == [
        "lstm_l0/forward",
        "lstm_l0/backward",
        "lstm_l1/forward",
        "lstm_l1/backward",
    ]
    np.testing.assert_allclose(model.trace(SEED_X).output, ref_in, atol=ATOL)


_REAL_TF1 = textwrap.dedent("""
    import sys, numpy as np, tensorflow as tf
    tf1 = tf.compat.v1
    out_dir = sys.argv[1]
    x = np.load(out_dir + "/x.npy")
    def run(name, build):
        g = tf.Graph()
        with g.as_default():
            data = tf1.placeholder(tf.float32, [None, None, 6])
            y = build(data)
            with tf1.Session(graph=g) as s:
                s.run(tf1.global_variables_initializer())
                np.save(f"{out_dir}/{name}.npy", s.run(y, {data: x}))
                tf1.train.Saver().save(s, f"{out_dir}/{name}.ckpt")
    rnn = tf1.nn.rnn_cell
    # the seed, verbatim: MultiRNNCell([LSTMCell(4), LSTMCell(5)]) through dynamic_rnn
    run("seed", lambda d: tf1.nn.dynamic_rnn(
        rnn.MultiRNNCell([rnn.LSTMCell(4), rnn.LSTMCell(5)]), d, dtype=tf.float32)[0])
    run("basic", lambda d: tf1.nn.dynamic_rnn(rnn.BasicLSTMCell(4), d, dtype=tf.float32)[0])
    run("bidi", lambda d: tf.concat(tf1.nn.bidirectional_dynamic_rnn(
        rnn.LSTMCell(3), rnn.LSTMCell(3), d, dtype=tf.float32)[0], axis=-1))
    run("proj", lambda d: tf1.nn.dynamic_rnn(
        rnn.MultiRNNCell([rnn.LSTMCell(5, num_proj=2), rnn.LSTMCell(3)]), d,
        dtype=tf.float32)[0])
""")


def test_real_tf1_cells(tmp_path):
    """Checkpoints written by TF1's own cells (tf.compat.v1 with the legacy tf_keras)."""
    pytest.importorskip("tf_keras")
    np.save(tmp_path / "x.npy", SEED_X)
    env = {
        **os.environ,
        "TF_USE_LEGACY_KERAS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONWARNINGS": "ignore",
    }
    r = subprocess.run(
        [sys.executable, "-c", _REAL_TF1, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if r.returncode != 0 and "is not available with Keras 3" in r.stderr:
        pytest.skip("tf.compat.v1 RNN cells unavailable")
    assert r.returncode == 0, r.stderr[-2000:]
    for name, names in (
        ("seed", ["lstm_l0", "lstm_l1"]),
        ("basic", ["lstm_l0"]),
        ("bidi", ["lstm_l0/forward", "lstm_l0/backward"]),
        ("proj", ["lstm_l0", "lstm_l1"]),
    ):
        model = lstmviz.load_model(tmp_path / f"{name}.ckpt")
        assert model.lstm_trace_names == names
        trace = model.trace(SEED_X)
        np.testing.assert_allclose(
            trace.output, np.load(tmp_path / f"{name}.npy"), atol=ATOL, err_msg=name
        )
    assert model.meta["tf1"]["num_proj"] == [2, None]
    assert trace.layer("lstm_l0").hidden.shape == (2, 3, 2)
    assert trace.layer("lstm_l0").cell.shape == (2, 3, 5)


def test_bad_checkpoints(tmp_path):
    rng = np.random.default_rng(1)
    v = {k: a.astype(np.float32) for k, a in _seed_variables(rng, "lstm_cell").items()}

    no_lstm = write_checkpoint(
        tmp_path / "dense.ckpt", {"dense/kernel": np.zeros((3, 2), np.float32)}
    )
    with pytest.raises(ModelFileError, match=r"no TF1 LSTM cell variables.*'dense/kernel'"):
        lstmviz.load_model(no_lstm)

    nobias = write_checkpoint(
        tmp_path / "nobias.ckpt",
        {k: a for k, a in v.items() if k != "rnn/multi_rnn_cell/cell_1/lstm_cell/bias"},
    )
    with pytest.raises(ModelFileError, match=r"missing 'rnn/multi_rnn_cell/cell_1/lstm_cell/bias'"):
        lstmviz.load_model(nobias)

    gap = write_checkpoint(
        tmp_path / "gap.ckpt", {k.replace("cell_0", "cell_2"): a for k, a in v.items()}
    )
    with pytest.raises(ModelFileError, match=r"layer 0 is missing"):
        lstmviz.load_model(gap)

    peep = write_checkpoint(
        tmp_path / "peep.ckpt",
        {**v, "rnn/multi_rnn_cell/cell_0/lstm_cell/w_f_diag": np.zeros(4, np.float32)},
    )
    with pytest.raises(UnsupportedLayerError, match=r"peepholes"):
        lstmviz.load_model(peep)

    two = write_checkpoint(
        tmp_path / "two.ckpt",
        {
            **v,
            "decoder/lstm_cell/kernel": np.zeros((9, 20), np.float32),
            "decoder/lstm_cell/bias": np.zeros(20, np.float32),
        },
    )
    with pytest.raises(ModelFileError) as e:
        lstmviz.load_model(two)
    assert str(tmp_path / "two.ckpt.lstmviz.json") in str(e.value)
    assert '"cells"' in str(e.value)
    (tmp_path / "two.lstmviz.json").write_text(
        json.dumps(  # beside the prefix works too
            {
                "format_version": 1,
                "extra": {
                    "tf1": {
                        "cells": [
                            "rnn/multi_rnn_cell/cell_0/lstm_cell",
                            "rnn/multi_rnn_cell/cell_1/lstm_cell",
                        ]
                    }
                },
            }
        )
    )
    model = lstmviz.load_model(two)
    assert model.meta["tf1"]["ignored"] == ["decoder/lstm_cell/bias", "decoder/lstm_cell/kernel"]

    shape = write_checkpoint(
        tmp_path / "shape.ckpt",
        {**v, "rnn/multi_rnn_cell/cell_1/lstm_cell/kernel": np.zeros((7, 20), np.float32)},
    )
    with pytest.raises(ModelFileError, match=r"cell_1"):
        lstmviz.load_model(shape)

    with pytest.raises(ModelFileError, match=r"no such TF1 checkpoint"):
        lstmviz.load_model(tmp_path / "absent.ckpt.index")
    (tmp_path / "lonely.ckpt.index").write_bytes(b"x")
    with pytest.raises(ModelFileError, match=r"data file"):
        lstmviz.load_model(tmp_path / "lonely.ckpt")
    bad = tmp_path / "bad.ckpt"
    Path(str(bad) + ".index").write_bytes(b"garbage" * 10)
    Path(str(bad) + ".data-00000-of-00001").write_bytes(b"garbage")
    with pytest.raises(LstmvizError, match=r"not a TensorFlow checkpoint index"):
        lstmviz.load_model(bad)


def test_reader_matches_tensorflow_and_imports_no_tensorflow(tmp_path):
    """lstmviz.io.tf1_checkpoint reads what tf.compat.v1.train.Saver wrote, byte for byte,
    with TensorFlow unimportable; checksums are verified (in Python without google-crc32c)."""
    from lstmviz.io.tf1_checkpoint import read_checkpoint_raw

    rng = np.random.default_rng(3)
    v = {
        "a/kernel": rng.normal(size=(7, 12)).astype(np.float32),
        "a/bias": rng.normal(size=12).astype(np.float32),
        "step": np.int64(12345),
        "d": np.float64(2.5),
        "h": rng.normal(size=(3, 2)).astype(np.float16),
        "i": rng.integers(-5, 5, (4,)).astype(np.int32),
        "flag": np.array([True, False]),
    }
    prefix = write_checkpoint(tmp_path / "m.ckpt", v)
    got = read_checkpoint_raw(prefix)
    reader = tf.train.load_checkpoint(str(prefix))
    for k, a in v.items():
        np.testing.assert_array_equal(got[k], reader.get_tensor(k))
        assert got[k].dtype == np.asarray(a).dtype
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["tensorflow"] = None
        sys.modules["google_crc32c"] = None  # the pure-Python CRC path
        from lstmviz.io.tf1_checkpoint import read_checkpoint_raw
        got = read_checkpoint_raw({str(prefix)!r})
        assert got["step"] == 12345 and got["a/kernel"].shape == (7, 12), got
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=Path.cwd())
    # a flipped byte in the data file is a checksum error, not a wrong number
    data = Path(str(prefix) + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[5] ^= 0x40
    data.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        read_checkpoint_raw(prefix)
    # a truncated data file, a truncated index
    data.write_bytes(bytes(raw[:20]))
    with pytest.raises(ModelFileError, match="past the end of"):
        read_checkpoint_raw(prefix)
    index = Path(str(prefix) + ".index")
    good = index.read_bytes()
    for cut in (10, len(good) // 2, len(good) - 1):
        index.write_bytes(good[:cut])
        with pytest.raises(ModelFileError):
            read_checkpoint_raw(prefix)
    # every single-byte flip of the index: an LstmvizError or the same values
    data.write_bytes(bytes(raw[:5] + bytes([raw[5] ^ 0x40]) + raw[6:]))
    for pos in range(0, len(good), 3):
        b = bytearray(good)
        b[pos] ^= 0x5A
        index.write_bytes(bytes(b))
        try:
            again = read_checkpoint_raw(prefix)
        except LstmvizError:
            continue
        assert again.keys() == got.keys(), pos
        for k in got:
            np.testing.assert_array_equal(again[k], got[k])
