"""Every route the Python API accepts is accepted by the CLI; weights-only files are named."""

from __future__ import annotations

import numpy as np
import pytest

import lstmviz
from lstmviz.cli import main as cli_main
from lstmviz.errors import ModelFileError
from lstmviz.io.more_formats import resolve_model_path
from lstmviz.io.weights_only import WeightsOnlyError

FIX = "save the model with model.save('m.keras')"


def _tf1_checkpoint(prefix):
    """A stacked BasicLSTMCell 4 -> 5 checkpoint written by TF's Saver."""
    pytest.importorskip("tensorflow")
    from .test_tf1 import _seed_variables, write_checkpoint

    rng = np.random.default_rng(0)
    v = {k: a.astype(np.float32) for k, a in _seed_variables(rng).items()}
    return write_checkpoint(prefix, v)


def test_tf1_prefix_index_data_and_folder_all_resolve(tmp_path, capsys):
    prefix = _tf1_checkpoint(tmp_path / "model.ckpt")
    index = tmp_path / "model.ckpt.index"
    data = tmp_path / "model.ckpt.data-00000-of-00001"
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt"\n')
    x = np.random.default_rng(1).normal(size=(1, 3, 6)).astype(np.float32)
    want = lstmviz.load_model(index).trace(x).output
    for route in (prefix, index, data, tmp_path):
        assert resolve_model_path(route) == route
        np.testing.assert_array_equal(lstmviz.load_model(route).trace(x).output, want)
        assert cli_main(["trace", str(route)]) == 0
        assert "lstm_l1: units=5" in capsys.readouterr().out
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "t.npz"
    assert (
        cli_main(
            ["export", str(prefix), "--input", str(tmp_path / "x.npy"), "--out", str(out), "-q"]
        )
        == 0
    )
    assert out.stat().st_size > 0


def test_missing_paths_name_what_is_there(tmp_path):
    (tmp_path / "model.ckpt.index").write_bytes(b"x")
    with pytest.raises(
        ModelFileError,
        match=r"model.ckp: no such model file \(in that folder: "
        r"model.ckpt.index\)",
    ):
        resolve_model_path(tmp_path / "model.ckp")
    with pytest.raises(ModelFileError, match=r"is a folder, not a model file"):
        resolve_model_path(tmp_path)
    with pytest.raises(ModelFileError, match="must be a file path"):
        resolve_model_path(None)
    # a checkpoint state file may only name a checkpoint inside its folder
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "../../etc/passwd"\n')
    with pytest.raises(ModelFileError, match="is a folder"):
        resolve_model_path(tmp_path)


def test_keras3_weights_only_files(tmp_path, capsys):
    """What the weather-forecasting example's ModelCheckpoint(save_weights_only=True) writes."""
    pytest.importorskip("keras")
    from tests.zoo.keras_zoo import weather

    model, x, _ = weather()
    model.save_weights(tmp_path / "model.weights.h5")
    import keras

    cb = keras.callbacks.ModelCheckpoint(
        filepath=str(tmp_path / "model_checkpoint.weights.h5"), save_weights_only=True
    )
    model.fit(x, np.zeros((2, 1)), epochs=1, verbose=0, callbacks=[cb])
    for name in ("model.weights.h5", "model_checkpoint.weights.h5"):
        with pytest.raises(WeightsOnlyError, match=r"holds weights only.*" + r"save the model"):
            lstmviz.load_model(tmp_path / name)
        assert cli_main(["trace", str(tmp_path / name)]) == 2
        assert FIX in capsys.readouterr().err
    # the fix, followed: the whole model opens and matches Keras
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(
        lstmviz.load_model(tmp_path / "m.keras").trace(x).output,
        model.predict(x, verbose=0),
        atol=1e-5,
    )


def test_tf_keras_weights_only_files(tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    m = tf_keras.Sequential([tf_keras.layers.LSTM(4, input_shape=(5, 3)), tf_keras.layers.Dense(1)])
    m.save_weights(str(tmp_path / "w.h5"))
    with pytest.raises(WeightsOnlyError, match=r"tf.keras / Keras 2 model.save_weights"):
        lstmviz.load_model(tmp_path / "w.h5")
    m.save_weights(str(tmp_path / "ckpt"))  # a TF2 object-based checkpoint
    with pytest.raises(WeightsOnlyError, match=r"TF2 object-based checkpoint.*" + "save the model"):
        lstmviz.load_model(tmp_path / "ckpt")
