"""Builders for hostile files, and the calls the malicious-file suite runs in a capped child.

The builders write real Keras files by hand -- a Keras 3 ``.keras`` zip (``config.json``,
``metadata.json``, ``model.weights.h5`` laid out as Keras 3 lays it out) and a legacy ``.h5``
(``model_config`` attribute, ``model_weights/<layer>`` groups with ``weight_names``) -- so the
suite needs neither TensorFlow nor Keras, and each file can carry exactly one trick: an HDF5
external link, external storage, a virtual dataset, a config asking for 10**7 repeats...

The ``run_*`` functions are what :func:`tests.io.malicious.run_capped` calls in the child
(``"tests.io.hostile:run_trace_long"``); they return a short string.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RNG = np.random.default_rng(16)


# ------------------------------------------------------------------------------------------
# layer configs (Keras 3 shape, only what a reader looks at)
# ------------------------------------------------------------------------------------------
def input_layer(name: str, shape: list[int | None]) -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {"batch_shape": [None, *shape], "dtype": "float32", "name": name},
        "registered_name": None,
    }


def layer(cls: str, name: str, **config: Any) -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": cls,
        "config": {"name": name, **config},
        "registered_name": None,
    }


def lstm_layer(name: str, units: int, return_sequences: bool = False) -> dict[str, Any]:
    return layer(
        "LSTM",
        name,
        units=units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        return_sequences=return_sequences,
    )


def lstm_weights(features: int, units: int) -> list[np.ndarray]:
    return [
        RNG.normal(0, 0.3, (features, 4 * units)).astype(np.float32),
        RNG.normal(0, 0.3, (units, 4 * units)).astype(np.float32),
        RNG.normal(0, 0.1, (4 * units,)).astype(np.float32),
    ]


def dense_weights(d: int, k: int) -> list[np.ndarray]:
    return [RNG.normal(0, 0.3, (d, k)).astype(np.float32), np.zeros(k, np.float32)]


# ------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------
H5Hook = Callable[[Any], None]


def weights_h5(
    weights: dict[str, list[np.ndarray]], hook: H5Hook | None = None, lstm_keys: tuple = ()
) -> bytes:
    """A Keras 3 ``model.weights.h5``: ``layers/<key>/vars/<i>`` (``layers/<key>/cell/vars``
    for the LSTMs in ``lstm_keys``). ``hook(h5file)`` adds a trick before it is closed."""
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_group("layers")
        f.create_group("vars")
        for key, arrays in weights.items():
            g = f["layers"].create_group(key)
            g.create_group("vars")
            target = g.create_group("cell").create_group("vars") if key in lstm_keys else g["vars"]
            for i, a in enumerate(arrays):
                target.create_dataset(str(i), data=a)
        if hook is not None:
            hook(f)
    return buf.getvalue()


def write_keras(
    path: Path,
    layers: list[dict[str, Any]],
    weights: dict[str, list[np.ndarray]],
    *,
    hook: H5Hook | None = None,
    weights_bytes: bytes | None = None,
    compress: bool = False,
    name: str = "hostile",
) -> Path:
    """A Keras 3 ``.keras`` of a Sequential model."""
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": name, "layers": layers},
        "registered_name": None,
    }
    lstm_keys = tuple(k for k in weights if k.startswith("lstm"))
    data = weights_bytes if weights_bytes is not None else weights_h5(weights, hook, lstm_keys)
    ct = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", data, compress_type=ct)
    return path


def write_legacy_h5(
    path: Path,
    layers: list[dict[str, Any]],
    weights: dict[str, list[tuple[str, np.ndarray]]],
    *,
    hook: H5Hook | None = None,
    name: str = "hostile",
) -> Path:
    """A legacy HDF5 model: ``model_config`` + ``model_weights/<layer>/<layer>/<w>:0``.

    ``weights`` maps a layer name to ``[(weight name, array), ...]`` in Keras's order.
    """
    import h5py

    config = {"class_name": "Sequential", "config": {"name": name, "layers": layers}}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = [n.encode() for n in weights]
        for lname, arrays in weights.items():
            g = mw.create_group(lname)
            names = [f"{lname}/{w}:0" for w, _ in arrays]
            g.attrs["weight_names"] = [n.encode() for n in names]
            for n, (_, a) in zip(names, arrays, strict=True):
                g.create_dataset(n, data=a)
        if hook is not None:
            hook(f)
    return path


def digit_lstm_files(d: Path, units: int = 4, features: int = 3) -> dict[str, Any]:
    """A small Input -> LSTM -> Dense model as ``.keras`` and legacy ``.h5``, with the
    pieces to rebuild either with a trick."""
    layers = [
        input_layer("x", [None, features]),
        lstm_layer("lstm", units),
        layer("Dense", "head", units=2, activation="softmax", use_bias=True),
    ]
    lw = lstm_weights(features, units)
    dw = dense_weights(units, 2)
    v3 = {"lstm": lw, "dense": dw}
    legacy = {
        "lstm": list(zip(("kernel", "recurrent_kernel", "bias"), lw, strict=True)),
        "head": list(zip(("kernel", "bias"), dw, strict=True)),
    }
    return {
        "layers": layers,
        "v3": v3,
        "legacy": legacy,
        "keras": write_keras(d / "small.keras", layers, v3),
        "h5": write_legacy_h5(d / "small.h5", layers, legacy),
        "features": features,
        "units": units,
    }


def secret_file(d: Path) -> Path:
    """A file outside the model that a trick would make the LSTM kernel: float32 values
    anyone would recognise (7.0, 7.0, ...)."""
    p = d / "secret.bin"
    p.write_bytes(np.full(4096, 7.0, np.float32).tobytes())
    return p


def secret_h5(d: Path) -> Path:
    import h5py

    p = d / "secret.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("data", data=np.full((64, 64), 7.0, np.float32))
    return p


# ------------------------------------------------------------------------------------------
# payloads: code that creates a marker file if anything ever runs it
# ------------------------------------------------------------------------------------------
class MarkerPayload:
    """Pickled, it calls ``os.system("touch MARKER")`` when unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def pickled_npy(marker: str) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([MarkerPayload(marker)], dtype=object), allow_pickle=True)
    return buf.getvalue()


def lambda_layer(marker: str) -> dict[str, Any]:
    """A Keras Lambda whose function, if Keras deserialised it unsafely, writes MARKER."""
    import base64
    import marshal

    code = compile(f"open({marker!r}, 'w').write('ran')", "<payload>", "exec")
    blob = base64.b64encode(marshal.dumps(code)).decode("ascii")
    return layer(
        "Lambda",
        "payload",
        function={"class_name": "__lambda__", "config": {"code": blob, "defaults": None}},
    )


# ------------------------------------------------------------------------------------------
# what the capped child runs
# ------------------------------------------------------------------------------------------
def run_load(path: str) -> str:
    from lstmviz.io import load_model

    m = load_model(path)
    return f"loaded {m.name} ({len(m.lstm_layers)} LSTM)"


def run_load_and_kernel(path: str) -> str:
    """Load and report the first LSTM kernel's mean: 7.0 would be the secret file."""
    from lstmviz.io import load_model

    m = load_model(path)
    k = m.lstm_layers[0].weights.kernel
    return f"kernel mean {float(np.mean(k)):.3f}"


def run_session(path: str) -> str:
    from lstmviz.io.session import Session

    s = Session.load(path)
    return f"session t={s.t} arrays={0 if s.input is None else 1}"


def run_session_model(path: str) -> str:
    from lstmviz.io.session import Session

    m = Session.load(path).load_model()
    return f"loaded {m.name}"


def run_input(path: str) -> str:
    from lstmviz.io.inputs import read_array

    a = read_array(path)
    return f"array {a.shape} {a.dtype}"


def run_info(model_path: str) -> str:
    from lstmviz.io.meta import load_info

    info = load_info(model_path)
    return f"info {info!r:.60}"


def run_trace_long(path: str, steps: int) -> str:
    """Trace ``steps`` timesteps of zeros (allocating the input itself is small: F floats
    per step; the trace buffers would be 10 x units floats per step)."""
    from lstmviz.io import load_model

    m = load_model(path)
    x = np.zeros((1, steps, m.input_features or 1), np.float32)
    t = m.trace(x)
    return f"traced {t.layers[0].timesteps}"
