"""Every bad input raises LstmvizError with a message naming the file and/or the value."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import lstmviz
from lstmviz.errors import InputError, LstmvizError, ModelFileError, UnsupportedLayerError

keras = pytest.importorskip("keras")

from tests import keras_models as km  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    L = keras.layers
    out = {}
    m = km.digit_sum()
    km.randomize(m)
    m.save(d / "good.keras")
    m.save(d / "good.h5")
    out["good_keras"] = d / "good.keras"
    out["good_h5"] = d / "good.h5"
    emb = km.toy_lm()
    km.randomize(emb)
    emb.save(d / "emb.keras")
    out["emb"] = d / "emb.keras"
    dense = keras.Sequential([keras.Input((4,)), L.Dense(3)])
    dense.save(d / "dense.keras")
    out["dense"] = d / "dense.keras"
    gru = keras.Sequential([keras.Input((None, 3)), L.GRU(4)])
    gru.save(d / "gru.keras")
    out["gru"] = d / "gru.keras"
    lam = keras.Sequential(
        [keras.Input((None, 3)), L.LSTM(4, return_sequences=True), L.Lambda(lambda t: t * 2)]
    )
    lam.save(d / "lambda.keras")
    lam.save(d / "lambda.h5")
    out["lambda"] = d / "lambda.keras"
    out["lambda_h5"] = d / "lambda.h5"

    @keras.saving.register_keras_serializable(package="Homework")
    class Squeeze(L.Layer):
        def call(self, x):
            return keras.ops.squeeze(x, axis=-1)

    cust = keras.Sequential(
        [keras.Input((None, 3)), L.LSTM(4, return_sequences=True), L.Dense(1), Squeeze()]
    )
    cust.save(d / "custom.keras")
    out["custom"] = d / "custom.keras"
    return out


def _rezip(src, dst, replace=None, drop=()):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if item.filename in drop:
                continue
            data = zin.read(item.filename)
            if replace and item.filename in replace:
                data = replace[item.filename]
            zout.writestr(item, data)
    return dst


def test_missing_file(tmp_path):
    p = tmp_path / "nope.keras"
    with pytest.raises(ModelFileError, match=r"nope\.keras: no such file"):
        lstmviz.load_model(p)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.keras"
    p.write_bytes(b"")
    with pytest.raises(ModelFileError, match=r"empty\.keras: the file is empty"):
        lstmviz.load_model(p)


def test_not_a_model(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello, I am not a model")
    with pytest.raises(ModelFileError, match=r"notes\.txt: not a model file.*\.keras"):
        lstmviz.load_model(p)


def test_directory(tmp_path):
    with pytest.raises(ModelFileError, match="is a directory"):
        lstmviz.load_model(tmp_path)


@pytest.mark.parametrize("frac", [0.1, 0.5, 0.9, 0.99])
def test_truncated_keras(files, tmp_path, frac):
    data = files["good_keras"].read_bytes()
    p = tmp_path / "trunc.keras"
    p.write_bytes(data[: int(len(data) * frac)])
    with pytest.raises(ModelFileError, match=r"trunc\.keras"):
        lstmviz.load_model(p)


@pytest.mark.parametrize("frac", [0.05, 0.5, 0.95])
def test_truncated_h5(files, tmp_path, frac):
    data = files["good_h5"].read_bytes()
    p = tmp_path / "trunc.h5"
    p.write_bytes(data[: int(len(data) * frac)])
    with pytest.raises(ModelFileError, match=r"trunc\.h5"):
        lstmviz.load_model(p)


def test_config_not_json(files, tmp_path):
    p = _rezip(
        files["good_keras"], tmp_path / "badjson.keras", replace={"config.json": b"{not json"}
    )
    with pytest.raises(ModelFileError, match=r"badjson\.keras: config\.json is not valid JSON"):
        lstmviz.load_model(p)


def test_zip_without_config(files, tmp_path):
    p = _rezip(files["good_keras"], tmp_path / "noconfig.keras", drop=("config.json",))
    with pytest.raises(ModelFileError, match=r"no config\.json inside"):
        lstmviz.load_model(p)


def test_weights_missing_keras(files, tmp_path):
    p = _rezip(files["good_keras"], tmp_path / "noweights.keras", drop=("model.weights.h5",))
    with pytest.raises(ModelFileError, match="weights are missing"):
        lstmviz.load_model(p)


def test_weights_missing_for_one_layer(files, tmp_path):
    import h5py

    p = tmp_path / "partial.h5"
    p.write_bytes(files["good_h5"].read_bytes())
    with h5py.File(p, "a") as f:
        del f["model_weights/lstm_digits"]
    with pytest.raises(ModelFileError, match=r"layer 'lstm_digits' \(LSTM\): expected 3 weight"):
        lstmviz.load_model(p)


def test_misshaped_weights(files, tmp_path):
    import h5py

    p = tmp_path / "shape.h5"
    p.write_bytes(files["good_h5"].read_bytes())
    with h5py.File(p, "a") as f:
        g = f["model_weights/lstm_digits"]
        name = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]][1]
        del g[name]
        g.create_dataset(name, data=np.zeros((3, 3), np.float32))
    with pytest.raises(ModelFileError, match=r"recurrent_kernel has shape \(3, 3\); expected"):
        lstmviz.load_model(p)


def test_no_lstm(files):
    with pytest.raises(LstmvizError, match="has no LSTM layer"):
        lstmviz.load_model(files["dense"])


def test_gru_named(files):
    with pytest.raises(UnsupportedLayerError, match=r"is a GRU.*GRU is not supported"):
        lstmviz.load_model(files["gru"])


@pytest.mark.parametrize("key", ["lambda", "lambda_h5"])
def test_lambda_refused(files, key):
    with pytest.raises(UnsupportedLayerError, match="is a Lambda layer: it holds Python code"):
        lstmviz.load_model(files[key])


def test_custom_layer_refused(files):
    with pytest.raises(UnsupportedLayerError, match=r"custom class 'Homework>Squeeze'"):
        lstmviz.load_model(files["custom"])


def test_unknown_layer_named(files, tmp_path):
    cfg = json.loads(zipfile.ZipFile(files["good_keras"]).read("config.json"))
    cfg["config"]["layers"][1]["class_name"] = "Conv3DTranspose"
    p = _rezip(
        files["good_keras"],
        tmp_path / "unknown.keras",
        replace={"config.json": json.dumps(cfg).encode()},
    )
    with pytest.raises(
        UnsupportedLayerError,
        match=r"layer 'lstm_digits' of class 'Conv3DTranspose' is not supported",
    ):
        lstmviz.load_model(p)


def test_wrong_rank(files):
    m = lstmviz.load_model(files["good_keras"])
    with pytest.raises(
        InputError,
        match=r"must have shape \(batch, T, features\).*found shape "
        r"\(5, 10\) \(rank 2\)",
    ):
        m.trace(np.zeros((5, 10)))


def test_wrong_features(files):
    m = lstmviz.load_model(files["good_keras"])
    with pytest.raises(InputError, match=r"expects 10 features on axis 2; found 7"):
        m.trace(np.zeros((1, 5, 7)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf(files, bad):
    m = lstmviz.load_model(files["good_keras"])
    x = np.zeros((2, 4, 10), np.float32)
    x[1, 2, 3] = bad
    with pytest.raises(InputError, match=r"contains NaN or inf \(first at index \(1, 2, 3\)\)"):
        m.trace(x)


def test_token_out_of_vocab(files):
    m = lstmviz.load_model(files["emb"])
    with pytest.raises(InputError, match=r"token id 9 is out of the vocabulary \(ids 0\.\.8\)"):
        m.trace(np.array([[1, 2, 9]]))


def test_token_negative(files):
    m = lstmviz.load_model(files["emb"])
    with pytest.raises(InputError, match="token id -3 is negative"):
        m.trace(np.array([[1, -3, 2]]))


def test_token_non_integer(files):
    m = lstmviz.load_model(files["emb"])
    with pytest.raises(InputError, match=r"takes integer token ids; found non-integer value 1\.5"):
        m.trace(np.array([[1.0, 1.5, 2.0]]))


def test_token_wrong_rank(files):
    m = lstmviz.load_model(files["emb"])
    with pytest.raises(InputError, match=r"token ids of shape \(batch, T\); found shape"):
        m.trace(np.zeros((1, 3, 2), np.int64))


def test_integer_floats_accepted_as_tokens(files):
    m = lstmviz.load_model(files["emb"])
    tr = m.trace(np.array([[1.0, 2.0, 3.0]]))
    assert tr.output.shape == (1, 3, 9)


def test_unknown_layer_name_in_trace(files):
    m = lstmviz.load_model(files["good_keras"])
    tr = m.trace(np.eye(10, dtype=np.float32)[None, :3])
    with pytest.raises(LstmvizError, match=r"no LSTM layer named 'nope'.*lstm_digits"):
        tr.layer("nope")
