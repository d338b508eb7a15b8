"""Write the zoo's golden files: small trained models from the official Keras examples and
PyTorch tutorials/examples, each with an input and the framework's expected outputs.

    python tests/zoo/make_golden.py [NAME ...]      # all entries, or the named ones

Each entry writes ``tests/zoo/golden/<name>/``: the model file(s) as the framework saves them
(``.keras``, legacy ``.h5``, ``.safetensors`` + sidecar, ``.onnx``, ``.pt2``, a TF1
checkpoint), ``input.npz`` (one array per model input), ``expected.npz`` (the framework's
outputs ``output_<k>``, and per LSTM layer the hidden and cell states and gates lstmviz
recorded when the file was written -- checked then against the framework) and ``meta.json``
(architecture, source, route, framework versions, the max error found). Entries whose file
lstmviz must refuse (a weights-only file, a state_dict without the sidecar that says what
``forward()`` does) record ``expect_error`` instead.

``tests/zoo/test_golden.py`` reads the committed files with no framework installed (a format
change in a future Keras or torch shows up when the files are regenerated), and
``tests/zoo/test_zoo.py`` rebuilds every entry with the frameworks and checks it to 1e-5.
Sizes are the examples' architectures with fewer units, so each directory stays small.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GOLDEN = Path(__file__).resolve().parent / "golden"
TOL = 1e-5
QUANTITIES = ("forget_gate", "input_gate", "output_gate", "candidate", "cell", "hidden")

ENTRIES: dict[str, Callable[[Path], dict[str, Any]]] = {}


def entry(name: str) -> Callable[[Callable[[Path], dict[str, Any]]], Callable[..., Any]]:
    def deco(fn: Callable[[Path], dict[str, Any]]) -> Callable[[Path], dict[str, Any]]:
        ENTRIES[name] = fn
        return fn

    return deco


# ------------------------------------------------------------------------------ helpers
def _sidecar(path: Path, doc: dict[str, Any]) -> None:
    path.with_name(path.stem + ".lstmviz.json").write_text(json.dumps(doc, indent=1))


def _versions(*mods: str) -> dict[str, str]:
    out = {}
    for m in mods:
        with contextlib.suppress(ImportError):
            out[m] = __import__(m).__version__
    return out


def finish(
    out: Path,
    *,
    architecture: str,
    source: str,
    route: str,
    model_file: str,
    inputs: dict[str, np.ndarray],
    outputs: list[np.ndarray] | None,
    framework: dict[str, str],
    needs: tuple[str, ...] = (),
    hidden: dict[str, np.ndarray] | None = None,
    expect_error: tuple[str, str] | None = None,
    compare: Callable[[Any], list[np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Load what was written with lstmviz, check it against the framework, write the
    expected values and meta.json; returns the meta."""
    import lstmviz
    from lstmviz.io.input_files import match_inputs

    np.savez(out / "input.npz", **inputs)
    meta: dict[str, Any] = {
        "architecture": architecture,
        "source": source,
        "route": route,
        "model_file": model_file,
        "framework": framework,
        "needs": list(needs),
        "inputs": list(inputs),
    }
    if expect_error is not None:
        try:
            lstmviz.load_model(out / model_file)
        except lstmviz.LstmvizError as e:
            got = (type(e).__name__, str(e))
        else:
            raise AssertionError(f"{out.name}: loading did not fail")
        if got[0] != expect_error[0] or expect_error[1] not in got[1]:
            raise AssertionError(f"{out.name}: expected {expect_error}; got {got}")
        meta["expect_error"] = list(expect_error)
        meta["max_error"] = None
        (out / "meta.json").write_text(json.dumps(meta, indent=1))
        return meta
    assert outputs is not None
    model = lstmviz.load_model(out / model_file)
    x = match_inputs(model, dict(inputs), "input.npz")
    trace = model.trace(x)
    got = (
        compare(trace)
        if compare is not None
        else (trace.output if isinstance(trace.output, list) else [trace.output])
    )
    errs = []
    for k, (a, b) in enumerate(zip(got, outputs, strict=True)):
        a = np.asarray(a, np.float64)
        b = np.asarray(b, np.float64)
        assert a.shape == b.shape, (out.name, k, a.shape, b.shape)
        errs.append(float(np.max(np.abs(a - b))) if a.size else 0.0)
    for lt in trace.layers:  # .pt2: the recorded h and c against what torch computed
        if "torch_max_error" in lt.meta:
            errs.append(float(lt.meta["torch_max_error"]))
    for lname, h in (hidden or {}).items():
        a = trace.layer(lname).hidden
        assert a.shape == h.shape, (out.name, lname, a.shape, h.shape)
        errs.append(float(np.max(np.abs(a - h))))
    err = max(errs)
    assert err <= TOL, f"{out.name}: lstmviz differs from the framework by {err}"
    expected = {f"output_{k}": np.asarray(o) for k, o in enumerate(outputs)}
    for lt in trace.layers:
        for q in QUANTITIES:
            expected[f"{lt.name}|{q}"] = np.asarray(lt.get(q))
    np.savez_compressed(out / "expected.npz", **expected)
    meta["max_error"] = err
    meta["layers"] = [lt.name for lt in trace.layers]
    meta["compare"] = "custom" if compare is not None else "output"
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


# ------------------------------------------------------------------------------ Keras
KERAS_SOURCES = {
    "addition_rnn": "keras.io/examples/nlp/addition_rnn",
    "char_textgen": "keras.io/examples/generative/lstm_character_level_text_generation",
    "bidirectional_imdb": "keras.io/examples/nlp/bidirectional_lstm_imdb",
    "weather": "keras.io/examples/timeseries/timeseries_weather_forecasting",
    "lstm_seq2seq": "keras.io/examples/nlp/lstm_seq2seq",
    "rnn_guide": "keras.io/guides/working_with_rnns",
}


def _keras_entry(
    out: Path, name: str, architecture: str, builder_kwargs: dict[str, Any], fmt: str = ".keras"
) -> dict[str, Any]:
    from tests.zoo import keras_zoo

    model, x, info = keras_zoo.BUILDERS[name](**builder_kwargs)
    path = out / f"model{fmt}"
    if fmt == ".h5":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.save(path)  # Keras 3's legacy HDF5 save
    else:
        model.save(path)
    if info is not None:
        _sidecar(path, info)
    xs = x if isinstance(x, list) else [x]
    import lstmviz
    from lstmviz.io.input_files import model_input_names

    names = model_input_names(lstmviz.load_model(path))
    ref = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    return finish(
        out,
        architecture=architecture,
        source=KERAS_SOURCES[name],
        route="file",
        model_file=path.name,
        inputs=dict(zip(names, xs, strict=True)),
        outputs=[ref],
        framework=_versions("keras", "tensorflow"),
    )


@entry("keras_addition_rnn")
def _(out: Path) -> dict[str, Any]:
    return _keras_entry(
        out,
        "addition_rnn",
        "LSTM -> RepeatVector -> LSTM(seq) -> Dense(softmax)",
        {"num_units": 16},
    )


@entry("keras_char_textgen_h5")
def _(out: Path) -> dict[str, Any]:
    return _keras_entry(
        out, "char_textgen", "LSTM -> Dense(softmax), legacy .h5", {"units": 16}, fmt=".h5"
    )


@entry("keras_bidirectional_imdb")
def _(out: Path) -> dict[str, Any]:
    return _keras_entry(
        out,
        "bidirectional_imdb",
        "Embedding -> Bidirectional(LSTM, seq) -> Bidirectional(LSTM) -> Dense(sigmoid)",
        {"embed": 8, "units": 6, "max_features": 50},
    )


@entry("keras_weather")
def _(out: Path) -> dict[str, Any]:
    return _keras_entry(out, "weather", "LSTM -> Dense (regression)", {"units": 8})


@entry("keras_weather_weights_only")
def _(out: Path) -> dict[str, Any]:
    import keras

    from tests.zoo import keras_zoo

    model, x, _ = keras_zoo.weather(units=8)
    cb = keras.callbacks.ModelCheckpoint(
        filepath=str(out / "model_checkpoint.weights.h5"), save_weights_only=True
    )
    model.fit(x, np.zeros((len(x), 1)), epochs=1, verbose=0, callbacks=[cb])
    return finish(
        out,
        architecture="ModelCheckpoint(save_weights_only=True), the weather example's file",
        source=KERAS_SOURCES["weather"],
        route="file (refused)",
        model_file="model_checkpoint.weights.h5",
        inputs={"x": x},
        outputs=None,
        framework=_versions("keras"),
        expect_error=("WeightsOnlyError", "save the model with model.save('m.keras')"),
    )


@entry("keras_lstm_seq2seq")
def _(out: Path) -> dict[str, Any]:
    return _keras_entry(
        out,
        "lstm_seq2seq",
        "encoder LSTM(return_state) -> decoder LSTM(initial_state) -> Dense(softmax); 2 inputs",
        {},
    )


@entry("keras_rnn_guide")
def _(out: Path) -> dict[str, Any]:
    meta = _keras_entry(
        out,
        "rnn_guide",
        "Embedding -> LSTM -> Dense (logits)",
        {"vocab": 100, "embed": 8, "units": 16},
    )
    side = out / "model.lstmviz.json"  # labels that rich text would swallow
    doc = json.loads(side.read_text())
    doc["outputs"]["labels"] = ["<START>", "<END>", "<unk>", "a&b", " ", "5", "6", "7", "8", "9"]
    side.write_text(json.dumps(doc, indent=1))
    return meta


# ------------------------------------------------------------------------------ PyTorch
TORCH_SOURCES = {
    "lstm_tagger": "pytorch.org/tutorials/beginner/nlp/sequence_models_tutorial",
    "word_language_model": "github.com/pytorch/examples/tree/main/word_language_model",
    "time_sequence": "github.com/pytorch/examples/tree/main/time_sequence_prediction",
    "mnist_rnn": "github.com/pytorch/examples/tree/main/mnist_rnn",
    "bilstm_crf": "pytorch.org/tutorials/beginner/nlp/advanced_tutorial",
}


def _save_safetensors(net: Any, path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(path))


def _torch_out(fn: Callable[[], Any]) -> list[np.ndarray]:
    import torch

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn()
    outs = out if isinstance(out, (list, tuple)) else [out]
    flat: list[np.ndarray] = []
    for o in outs:
        if isinstance(o, (list, tuple)):
            flat += [t.numpy() for t in o]
        else:
            flat.append(o.numpy())
    return flat


def _export_onnx(net: Any, args: tuple[Any, ...], path: Path) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, args, str(path), dynamo=False)


def _export_pt2(net: Any, args: tuple[Any, ...], path: Path) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.save(torch.export.export(net, args), str(path))


def _torch_versions() -> dict[str, str]:
    return _versions("torch", "onnx", "safetensors")


@entry("torch_lstm_tagger")
def _(out: Path) -> dict[str, Any]:
    import torch

    from tests.zoo import torch_zoo as tz

    net, sent = tz.lstm_tagger()
    path = out / "model.safetensors"
    _save_safetensors(net, path)
    _sidecar(
        path,
        {
            "format_version": 1,
            "extra": {
                "torch": {
                    "lstm_prefix": "lstm.",
                    "embedding": "word_embeddings.",
                    "head": ["hidden2tag.", "log_softmax"],
                    "head_on": "all",
                    "batch_first": False,
                }
            },
        },
    )
    ref = _torch_out(lambda: net(torch.from_numpy(sent)))
    return finish(
        out,
        architecture="Embedding -> LSTM -> Linear -> log_softmax (state_dict + sidecar)",
        source=TORCH_SOURCES["lstm_tagger"],
        route="file (state_dict)",
        model_file=path.name,
        inputs={"input": sent[None]},
        outputs=[ref[0][None]],
        framework=_torch_versions(),
    )


@entry("torch_lstm_tagger_no_sidecar")
def _(out: Path) -> dict[str, Any]:
    from tests.zoo import torch_zoo as tz

    net, sent = tz.lstm_tagger()
    _save_safetensors(net, out / "model.safetensors")
    return finish(
        out,
        architecture="LSTMTagger state_dict alone (its log_softmax is in forward())",
        source=TORCH_SOURCES["lstm_tagger"],
        route="file (refused)",
        model_file="model.safetensors",
        inputs={"input": sent[None]},
        outputs=None,
        framework=_torch_versions(),
        expect_error=("ModelFileError", "Only the LSTM can be known"),
    )


@entry("torch_lstm_tagger_onnx")
def _(out: Path) -> dict[str, Any]:
    import torch

    from tests.zoo import torch_zoo as tz

    net, sent = tz.lstm_tagger()
    _export_onnx(net, (torch.from_numpy(sent),), out / "model.onnx")
    ref = _torch_out(lambda: net(torch.from_numpy(sent)))
    return finish(
        out,
        architecture="LSTMTagger exported to ONNX (unbatched (T,) sentence)",
        source=TORCH_SOURCES["lstm_tagger"],
        route="ONNX",
        model_file="model.onnx",
        inputs={"sentence": sent[None]},
        outputs=ref,
        framework=_torch_versions(),
        needs=("onnx",),
    )


@entry("torch_word_language_model")
def _(out: Path) -> dict[str, Any]:
    import torch

    from tests.zoo import torch_zoo as tz

    net, ids = tz.word_language_model()
    path = out / "model.safetensors"
    _save_safetensors(net, path)
    _sidecar(
        path,
        {
            "format_version": 1,
            "extra": {
                "torch": {
                    "lstm_prefix": "rnn.",
                    "embedding": "encoder.",
                    "head": ["decoder.", "log_softmax"],
                    "head_on": "all",
                    "batch_first": False,
                }
            },
        },
    )
    ref = _torch_out(lambda: net(torch.from_numpy(ids), net.init_hidden(1)))
    return finish(
        out,
        architecture="Embedding -> LSTM(2 layers, time-major) -> Linear -> log_softmax",
        source=TORCH_SOURCES["word_language_model"],
        route="file (state_dict)",
        model_file=path.name,
        inputs={"input": ids.T},
        outputs=[ref[0][None]],
        framework=_torch_versions(),
    )


@entry("torch_word_language_model_onnx")
def _(out: Path) -> dict[str, Any]:
    import torch

    from tests.zoo import torch_zoo as tz

    net, ids = tz.word_language_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tz.export_onnx(net, str(out / "model.onnx"))  # the example's own export
    ref = _torch_out(lambda: net(torch.from_numpy(ids), net.init_hidden(1)))
    import onnx

    first = onnx.load(str(out / "model.onnx")).graph.input[0].name
    return finish(
        out,
        architecture="word_language_model's ONNX export (Gather, h0/c0 inputs, time-major)",
        source=TORCH_SOURCES["word_language_model"],
        route="ONNX",
        model_file="model.onnx",
        inputs={first: ids.T},
        outputs=ref,
        framework=_torch_versions(),
        needs=("onnx",),
    )


@entry("torch_word_language_model_pt2")
def _(out: Path) -> dict[str, Any]:
    import torch

    from tests.zoo import torch_zoo as tz

    net, ids = tz.word_language_model()
    _export_pt2(net, (torch.from_numpy(ids), net.init_hidden(1)), out / "model.pt2")
    ref = _torch_out(lambda: net(torch.from_numpy(ids), net.init_hidden(1)))
    return finish(
        out,
        architecture="word_language_model as a torch.export program",
        source=TORCH_SOURCES["word_language_model"],
        route=".pt2",
        model_file="model.pt2",
        inputs={"input": ids.T},
        outputs=ref,
        framework=_torch_versions(),
        needs=("torch",),
    )


@entry("torch_time_sequence_prediction")
def _(out: Path) -> dict[str, Any]:
    import torch

    from tests.zoo import torch_zoo as tz

    net, x = tz.time_sequence(hidden=12, steps=12)
    path = out / "model.safetensors"
    _save_safetensors(net, path)
    _sidecar(
        path,
        {
            "format_version": 1,
            "extra": {
                "torch": {"cells": ["lstm1.", "lstm2."], "head": ["linear."], "head_on": "all"}
            },
        },
    )
    ref = _torch_out(lambda: net(torch.from_numpy(x)))
    return finish(
        out,
        architecture="two nn.LSTMCells in a Python loop -> Linear (cells stacked)",
        source=TORCH_SOURCES["time_sequence"],
        route="file (state_dict)",
        model_file=path.name,
        inputs={"input": x[..., None]},
        outputs=[ref[0][..., None]],
        framework=_torch_versions(),
    )


@entry("torch_time_sequence_prediction_pt2")
def _(out: Path) -> dict[str, Any]:
    import torch

    from tests.zoo import torch_zoo as tz

    net, x = tz.time_sequence(hidden=12, steps=12)
    _export_pt2(net, (torch.from_numpy(x),), out / "model.pt2")
    ref = _torch_out(lambda: net(torch.from_numpy(x)))
    return finish(
        out,
        architecture="two nn.LSTMCells in a Python loop, as a torch.export program",
        source=TORCH_SOURCES["time_sequence"],
        route=".pt2",
        model_file="model.pt2",
        inputs={"input": x},
        outputs=ref,
        framework=_torch_versions(),
        needs=("torch",),
    )


@entry("torch_mnist_rnn")
def _(out: Path) -> dict[str, Any]:
    import torch

    from tests.zoo import torch_zoo as tz

    net, x = tz.mnist_rnn(hidden=16, batch=2)
    path = out / "model.safetensors"
    _save_safetensors(net, path)
    _sidecar(
        path,
        {
            "format_version": 1,
            "extra": {
                "torch": {
                    "lstm_prefix": "rnn.",
                    "head": ["batchnorm.", "fc1.", "relu", "fc2.", "log_softmax"],
                    "head_on": "last",
                    "batch_first": True,
                }
            },
        },
    )
    ref = _torch_out(lambda: net(torch.from_numpy(x)))
    return finish(
        out,
        architecture="LSTM -> last step -> BatchNorm1d -> fc1 -> relu -> fc2 -> log_softmax",
        source=TORCH_SOURCES["mnist_rnn"],
        route="file (state_dict)",
        model_file=path.name,
        inputs={"input": x.reshape(-1, 28, 28)},
        outputs=ref,
        framework=_torch_versions(),
    )


@entry("torch_mnist_rnn_onnx")
def _(out: Path) -> dict[str, Any]:
    import torch

    from tests.zoo import torch_zoo as tz

    net, x = tz.mnist_rnn(hidden=16, batch=2)
    _export_onnx(net, (torch.from_numpy(x),), out / "model.onnx")
    ref = _torch_out(lambda: net(torch.from_numpy(x)))
    import onnx

    first = onnx.load(str(out / "model.onnx")).graph.input[0].name
    return finish(
        out,
        architecture="mnist_rnn exported to ONNX (BatchNormalization, Gemm, LogSoftmax)",
        source=TORCH_SOURCES["mnist_rnn"],
        route="ONNX",
        model_file="model.onnx",
        inputs={first: x},
        outputs=ref,
        framework=_torch_versions(),
        needs=("onnx",),
    )


@entry("torch_mnist_rnn_pt2")
def _(out: Path) -> dict[str, Any]:
    import torch

    from tests.zoo import torch_zoo as tz

    net, x = tz.mnist_rnn(hidden=16, batch=2)
    _export_pt2(net, (torch.from_numpy(x),), out / "model.pt2")
    ref = _torch_out(lambda: net(torch.from_numpy(x)))
    return finish(
        out,
        architecture="mnist_rnn as a torch.export program",
        source=TORCH_SOURCES["mnist_rnn"],
        route=".pt2",
        model_file="model.pt2",
        inputs={"input": x},
        outputs=ref,
        framework=_torch_versions(),
        needs=("torch",),
    )


@entry("torch_bilstm_crf_pt2")
def _(out: Path) -> dict[str, Any]:
    import torch

    from tests.zoo import torch_zoo as tz

    net, sent = tz.bilstm_crf()
    _export_pt2(net, (torch.from_numpy(sent),), out / "model.pt2")
    ref = _torch_out(lambda: net(torch.from_numpy(sent)))
    return finish(
        out,
        architecture="Bi-LSTM CRF features: Embedding -> bidirectional LSTM -> Linear",
        source=TORCH_SOURCES["bilstm_crf"],
        route=".pt2",
        model_file="model.pt2",
        inputs={"sentence": sent[None]},
        outputs=ref,
        framework=_torch_versions(),
        needs=("torch",),
    )


@entry("torch_bilstm_crf_lstm_alone")
def _(out: Path) -> dict[str, Any]:
    import torch

    from tests.zoo import torch_zoo as tz

    net, sent = tz.bilstm_crf()
    path = out / "model.safetensors"
    _save_safetensors(net, path)
    _sidecar(
        path,
        {
            "format_version": 1,
            "extra": {"torch": {"lstm_prefix": "lstm.", "head": None, "batch_first": False}},
        },
    )
    with torch.no_grad():
        emb = net.word_embeds(torch.from_numpy(sent)).view(len(sent), 1, -1)
        y, _ = net.lstm(emb)
    return finish(
        out,
        architecture="Bi-LSTM CRF state_dict, the LSTM alone (CRF transitions ignored)",
        source=TORCH_SOURCES["bilstm_crf"],
        route="file (state_dict)",
        model_file=path.name,
        inputs={"input": emb.numpy().transpose(1, 0, 2)},
        outputs=[y.numpy().transpose(1, 0, 2)],
        framework=_torch_versions(),
    )


# ------------------------------------------------------------------------------ TF1
_TF1_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, tensorflow as tf
    tf1 = tf.compat.v1
    out = sys.argv[1]
    x = np.load(out + "/x.npy")
    g = tf.Graph()
    with g.as_default():
        tf1.set_random_seed(0)
        data = tf1.placeholder(tf.float32, [None, None, 6])
        rnn = tf1.nn.rnn_cell
        cell = rnn.MultiRNNCell([rnn.BasicLSTMCell(4), rnn.BasicLSTMCell(5)])
        y, _ = tf1.nn.dynamic_rnn(cell, data, dtype=tf.float32)
        with tf1.Session(graph=g) as s:
            s.run(tf1.global_variables_initializer())
            np.save(out + "/y.npy", s.run(y, {data: x}))
            tf1.train.Saver().save(s, out + "/model.ckpt")
    """
)


@entry("tf1_multirnn_4_5")
def _(out: Path) -> dict[str, Any]:
    x = np.random.default_rng(0).normal(size=(2, 7, 6)).astype(np.float32)
    np.save(out / "x.npy", x)
    env = {
        **os.environ,
        "TF_USE_LEGACY_KERAS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONWARNINGS": "ignore",
    }
    subprocess.run([sys.executable, "-c", _TF1_SCRIPT, str(out)], env=env, check=True, timeout=600)
    y = np.load(out / "y.npy")
    (out / "x.npy").unlink()
    (out / "y.npy").unlink()
    (out / "checkpoint").unlink(missing_ok=True)
    for meta in out.glob("model.ckpt.meta"):
        meta.unlink()
    return finish(
        out,
        architecture="MultiRNNCell([BasicLSTMCell(4), BasicLSTMCell(5)]) + dynamic_rnn",
        source="tf.compat.v1.nn.rnn_cell (the stacked 4 -> 5 example)",
        route="file (TF1 ckpt)",
        model_file="model.ckpt",
        inputs={"input": x},
        outputs=[y],
        framework=_versions("tensorflow"),
    )


# ------------------------------------------------------------------------------ main
def make(name: str, root: Path = GOLDEN) -> dict[str, Any]:
    """Write entry ``name`` under ``root`` (its directory is replaced); returns its meta."""
    out = root / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return ENTRIES[name](out)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    names = list(argv if argv is not None else sys.argv[1:]) or list(ENTRIES)
    for name in names:
        meta = make(name)
        size = sum(f.stat().st_size for f in (GOLDEN / name).iterdir())
        print(f"{name}: max error {meta['max_error']}, {size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
