"""Read Keras models -- Keras 3 ``.keras`` zips and legacy ``.h5`` -- without TensorFlow.

The config is parsed as data (``json``); weights are read with ``h5py``. Nothing from the file
is ever executed or unpickled: a ``Lambda`` layer (which carries Python bytecode) or any custom
class is refused with a message naming it.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import budget
from ..engine import layers as L
from ..engine.cell import LSTMWeights
from ..engine.model import Model, Node, TensorRef
from ..errors import (
    LstmvizError,
    MemoryBudgetError,
    ModelFileError,
    UnsafeModelError,
    UnsupportedLayerError,
)
from .checks import check_h5

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

MAX_CONFIG_BYTES = 64 * 2**20  # a config.json larger than this is not a model
MAX_WEIGHTS_BYTES = 4 * 2**30
MAX_ARRAY_ELEMENTS = 2**31  # one weight array; refuse before reading
MAX_COMPRESSION_RATIO = 1000
MAX_DECLARED_SIZE = 10_000_000  # a declared input axis (timesteps, features) beyond this is absurd
MAX_MODEL_NESTING = 32  # models inside models inside models...

IDENTITY_LAYERS = {
    "Dropout",
    "SpatialDropout1D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "SpatialDropout2D",
    "SpatialDropout3D",
}
RECURRENT_UNSUPPORTED = {
    "GRU",
    "SimpleRNN",
    "RNN",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "CuDNNGRU",
    "CuDNNLSTM",
    "GRUV1",
    "GRUV2",
    "StackedRNNCells",
    "SimpleRNNCell",
    "GRUCell",
    "LSTMCell",
}
MERGE_LAYERS = {"Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}
MODEL_CLASSES = {"Sequential", "Functional", "Model"}
#: keras.ops that Keras 3 writes into functional graphs (mask computations, squeezes).
OPS = {"NotEqual", "Equal", "Squeeze", "ExpandDims", "Cast", "Greater", "Less"}
SUPPORTED_LAYERS = sorted(
    {
        "InputLayer",
        "LSTM",
        "Bidirectional",
        "Embedding",
        "Dense",
        "Conv1D",
        "Flatten",
        "Reshape",
        "Permute",
        "Activation",
        "TimeDistributed",
        "RepeatVector",
        "LayerNormalization",
        "BatchNormalization",
        "Masking",
        "GlobalAveragePooling1D",
        "GlobalMaxPooling1D",
    }
    | IDENTITY_LAYERS
    | MERGE_LAYERS
    | MODEL_CLASSES
    | OPS
)


# ------------------------------------------------------------------------------------------
# weights
# ------------------------------------------------------------------------------------------
def _read_dataset(ds: Any, where: str, tally: list[int] | None = None) -> np.ndarray:
    """One weight array as float32, after checking its size against the memory budget.

    ``tally`` (one int) adds up the bytes of every array read for one model, so a file of many
    arrays, each small enough alone, cannot add up past the budget either.
    """
    import h5py

    if not isinstance(ds, h5py.Dataset):
        raise ModelFileError(f"{where}: expected a weight array, found a group")
    n = math.prod(int(d) for d in ds.shape) if ds.shape else 1
    if n > MAX_ARRAY_ELEMENTS:
        raise ModelFileError(f"{where}: weight array of shape {ds.shape} is too large to be real")
    if ds.dtype.kind not in "fiub":
        raise ModelFileError(f"{where}: weight array has non-numeric dtype {ds.dtype}")
    nbytes = n * ds.dtype.itemsize
    if nbytes > 2**24:  # a big array must really be in the file, not only declared
        try:
            stored = int(ds.id.get_storage_size())
        except (OSError, RuntimeError, ValueError):
            stored = 0
        if stored * MAX_COMPRESSION_RATIO < nbytes:
            raise ModelFileError(
                f"{where}: weight array of shape {ds.shape} declares {nbytes} "
                f"bytes but the file stores {stored}: refused"
            )
    # reading holds the stored values and their float32 copy at once (int8 -> float32 is 4x)
    need = n * (ds.dtype.itemsize + (0 if ds.dtype == np.float32 else 4))
    total = need + (tally[0] if tally else 0)
    budget.check(total, what=f"{where}: weight array of shape {tuple(ds.shape)} ({ds.dtype})")
    try:
        raw = ds[()]
        with np.errstate(over="ignore", invalid="ignore"):
            a = np.asarray(raw, dtype=np.float32)
    except (OSError, ValueError, TypeError) as e:
        raise ModelFileError(f"{where}: cannot read weight array ({e})") from None
    if ds.dtype.itemsize > 4 and ds.dtype.kind == "f":
        lost = np.isinf(a) & np.isfinite(raw)
        if np.any(lost):
            v = float(np.asarray(raw)[lost].flat[0])
            raise ModelFileError(
                f"{where}: weight value {v:g} is out of float32 range; lstmviz computes in "
                "float32 as Keras does, and cannot represent it"
            )
    del raw
    if tally is not None:
        tally[0] += a.nbytes
    return a


def to_snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class KerasV3Weights:
    """Weights of a Keras 3 ``model.weights.h5``: ``layers/<key>/.../vars/<i>``.

    Keras keys a layer not by its name but by its class in snake case, numbered in layer order
    (``lstm``, ``lstm_1``, ``dense``, ...): :meth:`key_for` reproduces that.
    """

    by_class = True

    @staticmethod
    def key_for(cls: str, name: str, used: dict[str, int]) -> str:
        base = to_snake_case("Functional" if cls == "Model" else cls)
        n = used.get(base, 0)
        used[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    _ORDER = ("vars", "cell", "forward_layer", "backward_layer", "layer", "layers")

    def __init__(self, h5: Any, source: str) -> None:
        self.h5 = h5
        self.source = source
        self.tally = [0]  # bytes of weights read so far

    def arrays(self, path: list[str]) -> list[np.ndarray]:
        import h5py

        g = self.h5
        where = self.source
        try:
            g = g["layers"]
            for i, name in enumerate(path):
                if i:
                    g = g["layers"]
                g = g[name]
                where = f"{self.source}: layer {'/'.join(path)!r}"
        except (KeyError, TypeError):
            return []
        if not isinstance(g, h5py.Group):
            raise ModelFileError(f"{where}: weights entry is not a group")
        out: list[np.ndarray] = []
        self._collect(g, out, where, top=True)
        return out

    def _collect(self, g: Any, out: list[np.ndarray], where: str, top: bool = False) -> None:
        import h5py

        keys = list(g.keys())
        if "vars" in keys and isinstance(g["vars"], h5py.Group):
            v = g["vars"]
            try:
                idx = sorted(v.keys(), key=int)
            except ValueError:
                raise ModelFileError(f"{where}: unexpected weight names {list(v.keys())}") from None
            out += [_read_dataset(v[k], f"{where} var {k}", self.tally) for k in idx]
        rest = [k for k in self._ORDER[1:] if k in keys]
        rest += sorted(k for k in keys if k not in self._ORDER)
        for k in rest:
            if k == "layers" and top:
                # a nested model: its sub-layers, each in turn
                continue
            sub = g[k]
            if isinstance(sub, h5py.Group):
                self._collect(sub, out, where)


class LegacyH5Weights:
    """Weights of a legacy HDF5 file: ``model_weights/<layer>`` with ``weight_names``."""

    by_class = False

    @staticmethod
    def key_for(cls: str, name: str, used: dict[str, int]) -> str:
        return name

    def __init__(self, group: Any, source: str) -> None:
        self.g = group
        self.source = source
        self._queues: dict[str, list[np.ndarray]] = {}
        self.tally = [0]  # bytes of weights read so far

    def arrays(self, path: list[str]) -> list[np.ndarray]:
        top = path[0]
        if len(path) > 1:
            # nested model: its top-level group lists every sub-layer's weights in order
            q = self._queues.get(top)
            if q is None:
                q = self._queues[top] = self._read(top)
            return q  # the caller takes what it needs from the front
        return self._read(top)

    def _read(self, name: str) -> list[np.ndarray]:
        if name not in self.g:
            return []
        grp = self.g[name]
        names = grp.attrs.get("weight_names", [])
        out = []
        for wn in names:
            wn = wn.decode() if isinstance(wn, bytes) else str(wn)
            try:
                ds = grp[wn]
            except KeyError:
                raise ModelFileError(
                    f"{self.source}: layer {name!r}: weight {wn!r} is listed but missing"
                ) from None
            out.append(
                _read_dataset(ds, f"{self.source}: layer {name!r} weight {wn!r}", self.tally)
            )
        return out


# ------------------------------------------------------------------------------------------
# config -> engine layers
# ------------------------------------------------------------------------------------------
def _is_tensor_ref(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"


def _activation_name(layer: str, value: Any, source: str) -> str:
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        cfg = value.get("config")
        cls = value.get("class_name")
        if cls == "function" and isinstance(cfg, str):
            return cfg
        if isinstance(cls, str) and cls not in ("function",):
            # e.g. {"class_name": "ReLU", ...}: a layer object as activation
            return cls.lower()
    raise UnsafeModelError(
        f"{source}: layer {layer!r} uses a custom activation {value!r}; lstmviz only runs "
        "built-in activations and never executes code from a file"
    )


def _flag(cfg: dict[str, Any], key: str, default: bool) -> bool:
    """A boolean config entry; anything but true/false/null is a malformed file (a value such
    as ``1.5`` or ``"x"`` is refused rather than reinterpreted)."""
    v = cfg.get(key, default)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise TypeError(f"{key!r} must be true or false; found {v!r:.40}")
    return v


def _is_ref(item: list[Any]) -> bool:
    """``[layer name, node index, tensor index, ...]`` with real indices."""
    return isinstance(item[0], str) and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31 for v in item[1:3]
    )


def _batch_shape(shape: Any) -> tuple[int | None, ...] | None:
    """A declared input shape: sizes that are integers (or null), none of them absurd."""
    if shape is None:
        return None
    if (
        not isinstance(shape, (list, tuple))
        or not 1 <= len(shape) <= 8
        or not all(
            d is None
            or (isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_DECLARED_SIZE)
            for d in shape
        )
    ):
        raise TypeError(
            f"input shape {shape!r:.80} must list up to 8 sizes, each an integer "
            f"0..{MAX_DECLARED_SIZE} or null"
        )
    return tuple(shape)


def _first(v: Any) -> Any:
    return v[0] if isinstance(v, (list, tuple)) else v


class _Builder:
    def __init__(self, source: str, weights: Any, keras_version: str) -> None:
        self.source = source
        self.weights = weights
        self.keras2 = keras_version.startswith(("1.", "2."))
        self.keras_version = keras_version
        self._names: dict[tuple[str, ...], str] = {}  # weight path -> layer name, for messages

    # ---- safety ---------------------------------------------------------------------------
    def check_class(self, entry: dict[str, Any], where: str) -> str:
        if not isinstance(entry, dict):
            raise ModelFileError(
                f"{self.source}: {where}: expected a layer object, found {type(entry).__name__}"
            )
        cls = entry.get("class_name")
        if not isinstance(cls, str):
            raise ModelFileError(
                f"{self.source}: {where}: a layer's class_name must be a string; found "
                f"{'none' if cls is None else f'{cls!r:.60}'}"
            )
        raw_cfg = entry.get("config")
        cfg: dict[str, Any] = raw_cfg if isinstance(raw_cfg, dict) else {}
        name = cfg.get("name", where)
        module = entry.get("module")
        registered = entry.get("registered_name")
        if cls in ("Lambda", "TFOpLambda", "SlicingOpLambda"):
            raise UnsafeModelError(
                f"{self.source}: layer {name!r} is a {cls} layer: it holds Python code, and "
                "lstmviz never runs code from a file. Replace it by built-in layers (for "
                "tf.squeeze use Reshape) and save the model again."
            )
        custom = (
            isinstance(registered, str)
            and registered not in (cls, "function")
            and not registered.startswith("keras")
        ) or (isinstance(module, str) and module and not module.startswith(("keras", "tf_keras")))
        if custom:
            raise UnsafeModelError(
                f"{self.source}: layer {name!r} is the custom class {registered or cls!r}"
                f"{f' from module {module!r}' if module else ''}: loading it would need its "
                "Python code, which lstmviz never runs. Use built-in Keras layers."
            )
        if cls in RECURRENT_UNSUPPORTED:
            raise UnsupportedLayerError(
                f"{self.source}: layer {name!r} is a {cls}; lstmviz traces LSTM layers only "
                f"({cls} is not supported)"
            )
        if cls not in SUPPORTED_LAYERS:
            raise UnsupportedLayerError(
                f"{self.source}: layer {name!r} of class {cls!r} is not supported; supported "
                f"layers: {', '.join(SUPPORTED_LAYERS)}"
            )
        return cls

    def take(self, path: list[str], names: list[str], cls: str) -> list[np.ndarray]:
        arrs = self.weights.arrays(path)
        where = self._names.get(tuple(path), "/".join(path))
        if len(path) > 1 and isinstance(self.weights, LegacyH5Weights):
            if len(arrs) < len(names):
                raise ModelFileError(
                    f"{self.source}: layer {where!r} ({cls}): expected {len(names)} weight arrays "
                    f"({', '.join(names)}); found {len(arrs)}"
                )
            got = [arrs.pop(0) for _ in names]
            return got
        if len(arrs) != len(names):
            raise ModelFileError(
                f"{self.source}: layer {where!r} ({cls}): expected {len(names)} weight arrays "
                f"({', '.join(names) or 'none'}); found {len(arrs)}"
                + (" -- the weights are missing" if not arrs else "")
            )
        return list(arrs)

    def check_shape(
        self, path: list[str], what: str, a: np.ndarray, shape: tuple[Any, ...]
    ) -> None:
        ok = a.ndim == len(shape) and all(
            s is None or s == d for s, d in zip(shape, a.shape, strict=True)
        )
        if not ok:
            exp = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
            raise ModelFileError(
                f"{self.source}: layer {self._names.get(tuple(path), '/'.join(path))!r}: "
                f"{what} has shape {a.shape}; expected "
                f"{exp}"
            )

    # ---- layers ---------------------------------------------------------------------------
    def layer(self, entry: dict[str, Any], path: list[str], name: str) -> L.Layer:
        """Build one layer; ``path`` addresses its weights, ``name`` is its name."""
        cls = self.check_class(entry, name)
        cfg = entry.get("config")
        if not isinstance(cfg, dict):
            raise ModelFileError(f"{self.source}: layer {name!r}: config is not an object")
        try:
            return self._layer(cls, cfg, name, path)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise ModelFileError(
                f"{self.source}: layer {name!r} ({cls}): malformed config ({type(e).__name__}: {e})"
            ) from None
        except LstmvizError as e:  # an engine check (an unknown activation...): name the file
            if str(e).startswith(self.source):
                raise
            kind = (
                type(e)
                if isinstance(e, (ModelFileError, UnsupportedLayerError))
                else ModelFileError
            )
            raise kind(f"{self.source}: layer {name!r} ({cls}): {e}") from None

    def _layer(self, cls: str, cfg: dict[str, Any], name: str, path: list[str]) -> L.Layer:
        def act(key: str = "activation") -> str:
            return _activation_name(name, cfg.get(key), self.source)

        if cls == "InputLayer":
            shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
            return L.InputLayer(name, _batch_shape(shape), cfg.get("dtype", "float32"))
        if cls in IDENTITY_LAYERS:
            return L.Identity(name, cls)
        if cls == "LSTM":
            return self.lstm(cfg, name, path)
        if cls == "Bidirectional":
            inner = cfg["layer"]
            icls = self.check_class(inner, f"{name}/layer")
            if icls != "LSTM":
                raise UnsupportedLayerError(
                    f"{self.source}: layer {name!r}: Bidirectional over {icls} is not supported "
                    "(LSTM only)"
                )
            back_cfg = cfg.get("backward_layer")
            arrs = (
                self.weights.arrays(path)
                if not isinstance(self.weights, LegacyH5Weights) or len(path) == 1
                else None
            )
            fwd_cfg = inner["config"]
            bwd_cfg = back_cfg["config"] if isinstance(back_cfg, dict) else fwd_cfg
            if arrs is None:
                arrs = self.take(path, ["k", "r", "b", "k", "r", "b"], cls)
            nf = 3 if _flag(fwd_cfg, "use_bias", True) else 2
            nb = 3 if _flag(bwd_cfg, "use_bias", True) else 2
            if len(arrs) != nf + nb:
                raise ModelFileError(
                    f"{self.source}: layer {name!r} (Bidirectional): expected {nf + nb} weight "
                    f"arrays (forward and backward kernel, recurrent_kernel, bias); found "
                    f"{len(arrs)}" + (" -- the weights are missing" if not arrs else "")
                )
            fwd = self.lstm(fwd_cfg, f"{name}/forward", path, arrs[:nf])
            bwd = self.lstm(bwd_cfg, f"{name}/backward", path, arrs[nf:])
            if not isinstance(back_cfg, dict):  # Keras 2: the backward half is the inverse
                bwd.go_backwards = not fwd.go_backwards
            mm = cfg.get("merge_mode", "concat")
            return L.Bidirectional(name, fwd, bwd, mm)
        if cls == "Embedding":
            (emb,) = self.take(path, ["embeddings"], cls)
            self.check_shape(path, "embeddings", emb, (cfg.get("input_dim"), cfg.get("output_dim")))
            return L.Embedding(name, emb, _flag(cfg, "mask_zero", False))
        if cls == "Dense":
            names = ["kernel", "bias"] if _flag(cfg, "use_bias", True) else ["kernel"]
            arrs = self.take(path, names, cls)
            self.check_shape(path, "kernel", arrs[0], (None, cfg.get("units")))
            bias = arrs[1] if len(arrs) > 1 else None
            if bias is not None:
                self.check_shape(path, "bias", bias, (cfg.get("units"),))
            return L.Dense(name, arrs[0], bias, act())
        if cls == "Conv1D":
            if cfg.get("data_format", "channels_last") != "channels_last":
                raise UnsupportedLayerError(
                    f"{self.source}: layer {name!r} (Conv1D): data_format "
                    f"{cfg.get('data_format')!r} is not supported (channels_last only)"
                )
            names = ["kernel", "bias"] if _flag(cfg, "use_bias", True) else ["kernel"]
            arrs = self.take(path, names, cls)
            k = int(_first(cfg.get("kernel_size", 1)))
            self.check_shape(path, "kernel", arrs[0], (k, None, cfg.get("filters")))
            if len(arrs) > 1:
                self.check_shape(path, "bias", arrs[1], (arrs[0].shape[-1],))
            return L.Conv1D(
                name,
                arrs[0],
                arrs[1] if len(arrs) > 1 else None,
                strides=int(_first(cfg.get("strides", 1))),
                padding=str(cfg.get("padding", "valid")),
                dilation_rate=int(_first(cfg.get("dilation_rate", 1))),
                groups=int(cfg.get("groups", 1) or 1),
                activation=act(),
            )
        if cls == "Flatten":
            return L.Flatten(name)
        if cls == "Reshape":
            return L.Reshape(name, tuple(cfg["target_shape"]))
        if cls == "Permute":
            return L.Permute(name, tuple(cfg["dims"]))
        if cls == "Activation":
            return L.Activation(name, act())
        if cls == "RepeatVector":
            return L.RepeatVector(name, int(cfg["n"]))
        if cls == "Masking":
            return L.Masking(name, float(cfg.get("mask_value", 0.0)))
        if cls in ("GlobalAveragePooling1D", "GlobalMaxPooling1D"):
            if cfg.get("data_format", "channels_last") != "channels_last":
                raise UnsupportedLayerError(
                    f"{self.source}: layer {name!r}: channels_first pooling is not supported"
                )
            return L.GlobalPooling1D(name, cls)
        if cls in MERGE_LAYERS:
            return L.Merge(name, cls, int(cfg.get("axis", -1)))
        if cls == "TimeDistributed":
            inner = cfg["layer"]
            icls = self.check_class(inner, f"{name}/layer")
            if icls not in ("Dense", "Activation", *IDENTITY_LAYERS):
                raise UnsupportedLayerError(
                    f"{self.source}: layer {name!r}: TimeDistributed({icls}) is not supported "
                    "(TimeDistributed(Dense) is)"
                )
            return L.TimeDistributed(name, self._layer(icls, inner["config"], name, path))
        if cls == "LayerNormalization":
            names = [
                n
                for n, on in (
                    ("gamma", _flag(cfg, "scale", True)),
                    ("beta", _flag(cfg, "center", True)),
                )
                if on
            ]
            arrs = dict(zip(names, self.take(path, names, cls), strict=True))
            return L.LayerNormalization(
                name,
                arrs.get("gamma"),
                arrs.get("beta"),
                float(cfg.get("epsilon", 1e-3)),
                cfg.get("axis", -1),
                _flag(cfg, "rms_scaling", False),
            )
        if cls == "BatchNormalization":
            names = [
                n
                for n, on in (
                    ("gamma", _flag(cfg, "scale", True)),
                    ("beta", _flag(cfg, "center", True)),
                )
                if on
            ]
            names += ["moving_mean", "moving_variance"]
            arrs = dict(zip(names, self.take(path, names, cls), strict=True))
            for n in names:  # one value per channel, the same number for each
                self.check_shape(path, n, arrs[n], (arrs["moving_mean"].size,))
            axis = _first(cfg.get("axis", -1))
            return L.BatchNormalization(
                name,
                arrs.get("gamma"),
                arrs.get("beta"),
                arrs["moving_mean"],
                arrs["moving_variance"],
                float(cfg.get("epsilon", 1e-3)),
                int(axis),
            )
        if cls in MODEL_CLASSES:
            sub = self.model(cls, cfg, path)
            return SubModel(name, sub)
        if cls in OPS:
            return OpLayer(name, cls, cfg)
        raise UnsupportedLayerError(  # pragma: no cover - check_class guards
            f"{self.source}: layer {name!r} of class {cls!r} is not supported"
        )

    def lstm(
        self, cfg: dict[str, Any], name: str, path: list[str], arrs: list[np.ndarray] | None = None
    ) -> L.LSTM:
        if _flag(cfg, "stateful", False):
            pass  # traced from a zero (or given) state, as a fresh stateful layer would be
        if _flag(cfg, "time_major", False):
            raise UnsupportedLayerError(
                f"{self.source}: layer {name!r}: time_major LSTM is not supported"
            )
        use_bias = _flag(cfg, "use_bias", True)
        if arrs is None:
            names = (
                ["kernel", "recurrent_kernel", "bias"]
                if use_bias
                else ["kernel", "recurrent_kernel"]
            )
            arrs = self.take(path, names, "LSTM")
        units = int(cfg["units"])
        self.check_shape(path, "kernel", arrs[0], (None, 4 * units))
        self.check_shape(path, "recurrent_kernel", arrs[1], (units, 4 * units))
        bias = None
        if use_bias:
            bias = arrs[2]
            if bias.shape == (8 * units,):  # CuDNN-style two biases
                bias = bias[: 4 * units] + bias[4 * units :]
            self.check_shape(path, "bias", bias, (4 * units,))
        rec = _activation_name(name, cfg.get("recurrent_activation", "sigmoid"), self.source)
        if rec == "hard_sigmoid" and self.keras2:
            rec = "hard_sigmoid_keras2"
        a = _activation_name(name, cfg.get("activation", "tanh"), self.source)
        if a == "hard_sigmoid" and self.keras2:
            a = "hard_sigmoid_keras2"
        w = LSTMWeights(arrs[0], arrs[1], bias, activation=a, recurrent_activation=rec)
        return L.LSTM(
            name,
            w,
            return_sequences=_flag(cfg, "return_sequences", False),
            return_state=_flag(cfg, "return_state", False),
            go_backwards=_flag(cfg, "go_backwards", False),
            zero_output_for_mask=_flag(cfg, "zero_output_for_mask", False),
            stateful=_flag(cfg, "stateful", False),
        )

    # ---- models ---------------------------------------------------------------------------
    def layer_name(self, name: Any, i: int) -> str:
        """A layer's name from the config: a string (missing: ``layer_<i>``)."""
        if name is None or name == "":
            return f"layer_{i}"
        if not isinstance(name, str):
            raise ModelFileError(
                f"{self.source}: layer #{i}: its name must be a string; found "
                f"{type(name).__name__} {name!r:.60}"
            )
        return name

    def model_name(self, cfg: dict[str, Any], default: str) -> str:
        name = cfg.get("name")
        return name if isinstance(name, str) and name else default

    def model(self, cls: str, cfg: dict[str, Any], path: list[str]) -> Model:
        layers_cfg = cfg.get("layers")
        if not isinstance(layers_cfg, list) or not layers_cfg:
            raise ModelFileError(
                f"{self.source}: model {self.model_name(cfg, '(unnamed)')!r} has no layers"
            )
        if len(path) >= MAX_MODEL_NESTING:
            raise ModelFileError(
                f"{self.source}: models nested more than {MAX_MODEL_NESTING} deep; refused"
            )
        if cls == "Sequential":
            return self.sequential(cfg, layers_cfg, path)
        return self.functional(cfg, layers_cfg, path)

    def sequential(self, cfg: dict[str, Any], layers_cfg: list[Any], path: list[str]) -> Model:
        nodes: list[Node] = []
        prev: TensorRef | None = None
        inputs: list[TensorRef] = []
        used: dict[str, int] = {}
        for i, entry in enumerate(layers_cfg):
            if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
                raise ModelFileError(f"{self.source}: layer #{i} of the model is malformed")
            lname = self.layer_name(entry.get("name") or entry["config"].get("name"), i)
            if prev is None and entry.get("class_name") != "InputLayer":
                shape = entry["config"].get("batch_input_shape") or entry["config"].get(
                    "batch_shape"
                )
                if shape is None and (entry.get("build_config") or {}).get("input_shape"):
                    shape = entry["build_config"]["input_shape"]
                try:
                    inp = L.InputLayer("input", _batch_shape(shape))
                except TypeError as e:
                    raise ModelFileError(f"{self.source}: layer {lname!r}: {e}") from None
                nodes.append(Node(inp, 0, []))
                prev = ("input", 0, 0)
                inputs = [prev]
            key = self.weights.key_for(str(entry.get("class_name")), lname, used)
            self._names[(*path, key)] = lname
            lay = self.layer(entry, [*path, key], lname)
            if isinstance(lay, L.InputLayer):
                nodes.append(Node(lay, 0, []))
                prev = (lay.name, 0, 0)
                inputs = [prev]
                continue
            assert prev is not None  # the first layer made the input
            nodes.append(Node(lay, 0, [prev]))
            prev = (lay.name, 0, 0)
        assert prev is not None  # model() refuses a model without layers
        return Model(self.model_name(cfg, "sequential"), nodes, inputs, [prev], source=self.source)

    def _refs_v3(self, obj: Any) -> list[TensorRef]:
        out: list[TensorRef] = []
        if _is_tensor_ref(obj):
            cfg = obj.get("config")
            h = cfg.get("keras_history") if isinstance(cfg, dict) else None
            if not (
                isinstance(h, list)
                and len(h) == 3
                and isinstance(h[0], str)
                and all(
                    isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31 for v in h[1:]
                )
            ):
                raise ModelFileError(
                    f"{self.source}: malformed tensor reference "
                    f"{str(obj)[:120]} (expected keras_history "
                    "[layer name, node index, tensor index])"
                )
            out.append((h[0], h[1], h[2]))
        elif isinstance(obj, (list, tuple)):
            for o in obj:
                out += self._refs_v3(o)
        elif isinstance(obj, dict):
            for o in obj.values():
                out += self._refs_v3(o)
        return out

    def _refs_v2(self, obj: Any) -> list[TensorRef]:
        if (
            isinstance(obj, list)
            and len(obj) >= 3
            and isinstance(obj[0], str)
            and isinstance(obj[1], int)
            and isinstance(obj[2], int)
        ):
            return [(obj[0], obj[1], obj[2])]
        out: list[TensorRef] = []
        if isinstance(obj, (list, tuple)):
            for o in obj:
                out += self._refs_v2(o)
        return out

    def _parse_node(self, raw: Any) -> tuple[list[TensorRef], dict[str, list[TensorRef]], bool]:
        if isinstance(raw, dict) and "args" in raw:  # Keras 3
            args = raw.get("args", [])
            if not isinstance(args, list) or not isinstance(raw.get("kwargs") or {}, dict):
                raise ModelFileError(
                    f"{self.source}: malformed inbound node {str(raw)[:120]} "
                    "(args must be a list, kwargs an object)"
                )
            ins = self._refs_v3(args)
            nested = bool(args) and isinstance(args[0], list)
            kw: dict[str, Any] = {}
            consts: list[Any] = [a for a in args[1:] if isinstance(a, (int, float, bool, str))]
            consts += [
                v
                for k, v in (raw.get("kwargs") or {}).items()
                if k in ("axis", "dtype", "x2") and isinstance(v, (int, float, str, list))
            ]
            if consts:
                kw["_consts"] = consts
            for key, val in (raw.get("kwargs") or {}).items():
                refs = self._refs_v3(val)
                if refs and key in ("initial_state", "mask"):
                    kw[key] = refs
            return ins, kw, nested
        if isinstance(raw, list):  # Keras 2: [[name, node, tensor, kwargs], ...]
            ins, kw = [], {}
            for item in raw:
                if not (isinstance(item, list) and len(item) >= 3 and _is_ref(item)):
                    raise ModelFileError(f"{self.source}: malformed inbound node {item!r:.120}")
                ins.append((str(item[0]), int(item[1]), int(item[2])))
                if len(item) > 3 and isinstance(item[3], dict):
                    for key in ("initial_state", "mask"):
                        if key in item[3]:
                            kw[key] = self._refs_v2(item[3][key])
            return ins, kw, len(raw) > 1
        raise ModelFileError(f"{self.source}: malformed inbound node {raw!r}")

    def _io_refs(self, v: Any, what: str) -> list[TensorRef]:
        if isinstance(v, list) and len(v) == 3 and isinstance(v[0], str):
            v = [v]
        if not isinstance(v, list) or not v:
            raise ModelFileError(f"{self.source}: model config has no {what}")
        refs = []
        for item in v:
            if _is_tensor_ref(item):
                refs += self._refs_v3(item)
            elif isinstance(item, list) and len(item) >= 3 and _is_ref(item):
                refs.append((str(item[0]), int(item[1]), int(item[2])))
            else:
                raise ModelFileError(f"{self.source}: malformed {what} entry {item!r}")
        return refs

    def functional(self, cfg: dict[str, Any], layers_cfg: list[Any], path: list[str]) -> Model:
        by_name: dict[str, L.Layer] = {}
        pending: list[Node] = []
        used: dict[str, int] = {}
        for i, entry in enumerate(layers_cfg):
            if not isinstance(entry, dict):
                raise ModelFileError(f"{self.source}: layer #{i} of the model is malformed")
            raw_i = entry.get("config")
            cfg_i: dict[str, Any] = raw_i if isinstance(raw_i, dict) else {}
            lname = self.layer_name(entry.get("name") or cfg_i.get("name"), i)
            key = self.weights.key_for(str(entry.get("class_name")), lname, used)
            self._names[(*path, key)] = lname
            lay = self.layer(entry, [*path, key], lname)
            lay.name = lname
            by_name[lname] = lay
            raw_nodes = entry.get("inbound_nodes") or []
            if isinstance(lay, L.InputLayer):
                pending.append(Node(lay, 0, []))
                continue
            if not isinstance(raw_nodes, list):
                raise ModelFileError(
                    f"{self.source}: layer {lname!r}: inbound_nodes must be a "
                    f"list; found {raw_nodes!r:.60}"
                )
            for ni, raw in enumerate(raw_nodes):
                ins, kw, nested = self._parse_node(raw)
                if not ins:
                    raise ModelFileError(
                        f"{self.source}: layer {lname!r}: call #{ni} has no input tensors"
                    )
                pending.append(Node(lay, ni, ins, kw, nested))
        inputs = self._io_refs(cfg.get("input_layers"), "input_layers")
        outputs = self._io_refs(cfg.get("output_layers"), "output_layers")
        single = not (
            isinstance(cfg.get("output_layers"), list)
            and cfg["output_layers"]
            and isinstance(cfg["output_layers"][0], list)
            and len(cfg["output_layers"]) > 1
        )
        nodes = self._toposort(pending)
        for r in inputs + outputs:
            if r[0] not in by_name:
                raise ModelFileError(
                    f"{self.source}: model input/output refers to unknown layer {r[0]!r}"
                )
        return Model(
            self.model_name(cfg, "model"),
            nodes,
            inputs,
            outputs,
            source=self.source,
            single_output=single,
        )

    def _toposort(self, nodes: list[Node]) -> list[Node]:
        done: set[tuple[str, int]] = set()
        order: list[Node] = []
        remaining = list(nodes)
        while remaining:
            progressed = False
            for n in list(remaining):
                deps = {(r[0], r[1]) for r in n.inputs} | {
                    (r[0], r[1]) for k, refs in n.kwargs.items() if k != "_consts" for r in refs
                }
                if deps <= done:
                    order.append(n)
                    done.add(n.key)
                    remaining.remove(n)
                    progressed = True
            if not progressed:
                missing = sorted(
                    {
                        f"{r[0]}[{r[1]}]"
                        for n in remaining
                        for r in n.inputs
                        if (r[0], r[1]) not in done
                    }
                )
                raise ModelFileError(
                    f"{self.source}: the layer graph refers to tensors nothing produces: "
                    f"{', '.join(missing)}"
                )
        return order


class OpLayer(L.Layer):
    """A ``keras.ops`` call recorded in a functional graph (``x != 0`` for a mask, squeeze)."""

    supports_masking = False

    def __init__(self, name: str, kind: str, cfg: dict[str, Any]) -> None:
        super().__init__(name)
        self.kind = kind
        self.cfg = cfg

    def __call__(
        self,
        inputs: list[Any],
        masks: list[Any],
        ctx: L.Context,
        _consts: Any = (),
        **kwargs: Any,
    ) -> tuple[list[Any], list[Any]]:
        x = inputs[0]
        other = inputs[1] if len(inputs) > 1 else (_consts[0] if _consts else None)
        k = self.kind
        if k in ("NotEqual", "Equal", "Greater", "Less"):
            if other is None:
                raise ModelFileError(f"op {self.name!r} ({k}) lacks its second operand")
            fn = {
                "NotEqual": np.not_equal,
                "Equal": np.equal,
                "Greater": np.greater,
                "Less": np.less,
            }[k]
            return [fn(x, other)], [None]
        if k == "Squeeze":
            axis = self.cfg.get("axis", _consts[0] if _consts else None)
            if isinstance(axis, list):
                axis = tuple(axis)
            return [np.squeeze(x, axis=axis)], [None]
        if k == "ExpandDims":
            axis = self.cfg.get("axis", _consts[0] if _consts else -1)
            return [np.expand_dims(x, axis)], [None]
        # Cast
        dtype = self.cfg.get("dtype", _consts[0] if _consts else "float32")
        if isinstance(dtype, dict):
            dtype = dtype.get("config", {}).get("name", "float32")
        return [np.asarray(x).astype(str(dtype))], [masks[0]]


class SubModel(L.Layer):
    """A Sequential/Functional model used as a layer inside another."""

    kind = "Model"

    def __init__(self, name: str, model: Model) -> None:
        super().__init__(name)
        self.model = model

    @property
    def n_params(self) -> int:
        return self.model.n_params

    def __call__(
        self, inputs: list[Any], masks: list[Any], ctx: L.Context, **kwargs: Any
    ) -> tuple[list[Any], list[Any]]:
        vals = self.model._run(list(inputs), ctx)
        return [vals[r] for r in self.model.outputs], [None] * len(self.model.outputs)


# ------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------
def _parse_json(raw: bytes, what: str, source: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{source}: {what} is not valid JSON ({e})") from None
    except RecursionError:
        raise ModelFileError(f"{source}: {what} is nested too deeply to be a model") from None


def _top_model(config: Any, source: str, weights: Any, keras_version: str) -> Model:
    if not isinstance(config, dict):
        raise ModelFileError(
            f"{source}: the model config must be a JSON object; found {type(config).__name__}"
        )
    cls = config.get("class_name")
    if not isinstance(cls, str) or cls not in MODEL_CLASSES:
        if isinstance(cls, str):
            b = _Builder(source, weights, keras_version)
            b.check_class(config, "model")  # a custom model class gets the custom message
        raise ModelFileError(
            f"{source}: the top-level object is {cls!r}; expected a Keras model "
            "(Sequential or Functional)"
        )
    if config.get("registered_name") not in (None, cls) and config.get("module") not in (
        None,
        "keras",
        "keras.models",
        "keras.src.models.functional",
        "keras.src.models.sequential",
    ):
        _Builder(source, weights, keras_version).check_class(config, "model")
    cfg = config.get("config")
    if not isinstance(cfg, dict):
        raise ModelFileError(f"{source}: the model config has no 'config' object")
    b = _Builder(source, weights, keras_version)
    m = b.model(cls, cfg, [])
    m.format = "keras"
    m.meta["keras_version"] = keras_version
    return m


#: A weights member up to this size is decompressed into memory; a larger compressed one is
#: streamed to a temporary file (a stored one is always read in place, never copied).
SPOOL_BYTES = 64 * 2**20


@contextlib.contextmanager
def _open_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, source: str) -> Any:
    """A seekable binary file of one zip member, without holding all of it in memory.

    A stored member (how Keras writes ``model.weights.h5``) is read in place from the zip; a
    compressed one is inflated in 1 MiB chunks into a temporary file that spills to disk past
    :data:`SPOOL_BYTES`, never past the size its header declares.
    """
    if info.compress_type == zipfile.ZIP_STORED:
        with zf.open(info) as fh:
            yield fh
        return
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as tmp:
        with zf.open(info) as fh:
            copied = 0
            while chunk := fh.read(min(1 << 20, info.file_size + 1 - copied)):
                copied += len(chunk)
                if copied > info.file_size:
                    raise ModelFileError(
                        f"{source}: member {info.filename!r} holds more than the "
                        f"{info.file_size} bytes its header declares"
                    )
                tmp.write(chunk)
        tmp.seek(0)
        yield tmp


def _read_small(zf: zipfile.ZipFile, name: str, source: str) -> bytes:
    info = zf.getinfo(name)
    if info.file_size > MAX_CONFIG_BYTES:
        raise ModelFileError(
            f"{source}: {name} declares {info.file_size} bytes; a model's {name} is "
            f"at most {MAX_CONFIG_BYTES}: refused"
        )
    budget.check(info.file_size, what=f"{source}: {name}")
    return zf.read(name)


def load_keras_zip(path: Path) -> Model:
    """A Keras 3 ``.keras`` file."""
    import h5py

    source = str(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
        raise ModelFileError(f"{source}: not a readable .keras (zip) file: {e}") from None
    with zf:
        names = set(zf.namelist())
        for info in zf.infolist():
            if info.file_size > MAX_WEIGHTS_BYTES or (
                info.compress_size
                and info.file_size / max(info.compress_size, 1) > MAX_COMPRESSION_RATIO
                and info.file_size > 2**24
            ):
                raise ModelFileError(
                    f"{source}: member {info.filename!r} declares {info.file_size} bytes "
                    f"({info.compress_size} compressed): refused as a likely zip bomb"
                )
        if "config.json" not in names and "session.json" in names:
            raise ModelFileError(
                f"{source}: this is an lstmviz session, not a model; open it "
                "with File → Open session… or `lstmviz FILE.lstmviz`"
            )
        if "config.json" not in names:
            raise ModelFileError(
                f"{source}: no config.json inside; this is a zip but not a Keras 3 .keras file "
                f"(members: {', '.join(sorted(names)[:8]) or 'none'})"
            )
        try:
            config = _parse_json(_read_small(zf, "config.json", source), "config.json", source)
            meta = {}
            if "metadata.json" in names:
                m = _parse_json(_read_small(zf, "metadata.json", source), "metadata.json", source)
                meta = m if isinstance(m, dict) else {}
            if "model.weights.h5" not in names:
                raise ModelFileError(
                    f"{source}: no model.weights.h5 inside: the weights are missing"
                )
            kv = str(meta.get("keras_version", "3"))
            with _open_member(zf, zf.getinfo("model.weights.h5"), source) as wfile:
                try:
                    h5 = h5py.File(wfile, "r")
                except (OSError, ValueError) as e:
                    raise ModelFileError(
                        f"{source}: model.weights.h5 inside is not a readable HDF5 file ({e})"
                    ) from None
                with h5:
                    check_h5(h5, f"{source}: model.weights.h5")
                    try:
                        model = _top_model(config, source, KerasV3Weights(h5, source), kv)
                    except (OSError, RuntimeError) as e:
                        raise ModelFileError(f"{source}: damaged weights: {e}") from None
        except (
            zipfile.BadZipFile,
            OSError,
            EOFError,
            RuntimeError,
            ValueError,
            NotImplementedError,
        ) as e:
            raise ModelFileError(f"{source}: damaged .keras file: {e}") from None
        except RecursionError:
            raise ModelFileError(f"{source}: the model config is nested too deeply") from None
    model.format = "keras"
    dry_run(model, source)
    return model


def dry_run(model: Model, source: str) -> None:
    """Run ``model`` once on a small zero input of its declared shape.

    Keras refuses a file whose weights do not fit the layers they are built into (an LSTM
    kernel for 9 features behind an input of 10); the config alone does not always say so,
    so a tiny trace does: the file is refused at load time, naming it, instead of failing
    later in the middle of a trace (or after the app replaced the model on screen).
    Models whose input shape is not declared, or with several inputs, are not checked.
    """
    if len(model.inputs) != 1:
        return
    t = model.input_timesteps or 32
    if t > 4096 or t * model.n_params > 2 * 10**8:  # too long to trace at load time (the
        return  # cost is ~ timesteps x parameters); such a model is checked when traced
    declared = getattr(model.layers.get(model.inputs[0][0]), "batch_shape", None)
    if model.takes_tokens:
        x: np.ndarray = np.ones((1, t), np.int64)
    elif declared is not None and len(declared) != 3:
        # not a sequence: (batch, features) into Dense -> RepeatVector -> LSTM, say
        dims = [1, *declared[1:]]
        if any(d is None for d in dims) or math.prod(dims) > 2**20:
            return
        x = np.zeros(dims, np.float32)
    else:
        f = model.input_features
        if f is None or t * f > 2**20:
            return
        x = np.zeros((1, t, f), np.float32)  # (1, T, F)
    try:
        model.trace(x, step_outputs=False)
    except MemoryBudgetError as e:  # a layer that asks for too much (RepeatVector(10**7))
        msg = str(e)
        if msg.startswith(source):
            msg = msg[len(source) :].lstrip(": ")
        raise MemoryBudgetError(
            f"{source}: a test trace of an input of shape {x.shape} at load: {msg}",
            nbytes=e.nbytes,
            budget=e.budget,
        ) from None
    except LstmvizError as e:
        msg = str(e)
        if msg.startswith(source):
            msg = msg[len(source) :].lstrip(": ")
        raise ModelFileError(
            f"{source}: the weights do not fit the model's layers: a trace "
            f"of an input of shape {x.shape} fails: {msg}"
        ) from None


def _load_h5_model(f: Any, source: str) -> Model:
    raw = f.attrs.get("model_config")
    if raw is None:
        from .weights_only import keras_h5_weights_only

        if (weights_only := keras_h5_weights_only(f, source)) is not None:
            raise weights_only
        if "layer_names" in f.attrs:
            raise ModelFileError(
                f"{source}: this HDF5 file holds weights only (save_weights), no model "
                "config; save the whole model with model.save(...)"
            )
        raise ModelFileError(f"{source}: HDF5 file without a Keras model_config attribute")
    if isinstance(raw, str):  # h5py hands undecodable bytes over as surrogates
        raw = raw.encode("utf-8", "surrogateescape")
    if not isinstance(raw, bytes):
        raise ModelFileError(
            f"{source}: the model_config attribute is not text ({type(raw).__name__})"
        )
    config = _parse_json(raw, "model_config", source)
    kv = f.attrs.get("keras_version", "2")
    kv = kv.decode("utf-8", "replace") if isinstance(kv, bytes) else str(kv)
    if "model_weights" not in f:
        raise ModelFileError(f"{source}: no model_weights group: the weights are missing")
    return _top_model(config, source, LegacyH5Weights(f["model_weights"], source), kv)


def load_keras_h5(path: Path) -> Model:
    """A legacy HDF5 model (Keras 2, tf.keras, or Keras 3's legacy ``.h5`` save)."""
    import h5py

    source = str(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{source}: not a readable HDF5 file ({e})") from None
    with f:
        check_h5(f, source)
        try:
            model = _load_h5_model(f, source)
        except (OSError, RuntimeError, KeyError) as e:  # h5py's errors on a damaged file
            raise ModelFileError(f"{source}: damaged HDF5 file ({e})") from None
        except RecursionError:
            raise ModelFileError(f"{source}: the model config is nested too deeply") from None
    model.format = "h5"
    dry_run(model, source)
    return model


def sniff(path: Path) -> str | None:
    """``"keras"``, ``"h5"`` or None from the first bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    if head.startswith(ZIP_MAGIC):
        return "keras"
    if head == HDF5_MAGIC:
        return "h5"
    return None


LOADERS: dict[str, Callable[[Path], Model]] = {"keras": load_keras_zip, "h5": load_keras_h5}
