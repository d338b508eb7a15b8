"""The committed zoo goldens, read with no framework: each model file traces to the outputs its
framework computed when the file was written (1e-5), or is refused as it was then.

Regenerate with ``python tests/zoo/make_golden.py`` (needs Keras, TensorFlow, torch, onnx).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.io.input_files import match_inputs, read_npz

GOLDEN = Path(__file__).resolve().parent / "golden"
ENTRIES = sorted(p.name for p in GOLDEN.iterdir() if (p / "meta.json").is_file())
ATOL = 1e-5


def _meta(name: str) -> dict:
    return json.loads((GOLDEN / name / "meta.json").read_text())


def check_entry(name: str) -> str:
    """Load, trace and compare one golden entry; returns what was checked."""
    d = GOLDEN / name
    meta = _meta(name)
    path = d / meta["model_file"]
    if meta.get("expect_error"):
        cls, text = meta["expect_error"]
        try:
            lstmviz.load_model(path)
        except lstmviz.LstmvizError as e:
            got = (type(e).__name__, str(e))
        else:
            raise AssertionError(f"{name}: {path.name} loaded; expected {cls}")
        assert got[0] == cls and text in got[1], (name, got)
        return "refused as expected"
    model = lstmviz.load_model(path)
    x = match_inputs(model, read_npz(d / "input.npz"), "input.npz")
    trace = model.trace(x)
    expected = np.load(d / "expected.npz")
    outs = trace.output if isinstance(trace.output, list) else [trace.output]
    n_out = len([k for k in expected.files if k.startswith("output_")])
    assert len(outs) >= n_out, (name, len(outs), n_out)
    for k in range(n_out):
        np.testing.assert_allclose(
            np.asarray(outs[k]), expected[f"output_{k}"], atol=ATOL, err_msg=f"{name} output {k}"
        )
    assert trace.layer_names == meta["layers"], name
    for key in expected.files:
        if "|" in key:
            layer, q = key.split("|")
            np.testing.assert_allclose(
                trace.layer(layer).get(q), expected[key], atol=ATOL, err_msg=f"{name} {key}"
            )
    return "traced"


@pytest.mark.parametrize("name", ENTRIES)
def test_golden(name):
    for mod in _meta(name)["needs"]:
        pytest.importorskip(mod)
    check_entry(name)


def test_there_are_at_least_twelve_architectures():
    sources = {_meta(n)["source"] for n in ENTRIES}
    archs = {_meta(n)["architecture"] for n in ENTRIES}
    assert len(sources) >= 11 and len(archs) >= 12, (sources, archs)
    routes = {_meta(n)["route"] for n in ENTRIES}
    assert {"file", "ONNX", ".pt2", "file (state_dict)", "file (TF1 ckpt)"} <= routes


def test_goldens_need_no_framework():
    """Every file route reads with TensorFlow, Keras and torch unimportable."""
    names = [n for n in ENTRIES if not _meta(n)["needs"]]
    code = (
        "import sys\n"
        "for m in ('tensorflow', 'keras', 'torch', 'tf_keras'):\n"
        "    sys.modules[m] = None\n"
        "from tests.zoo.test_golden import check_entry\n"
        f"for n in {names!r}:\n"
        "    print(n, check_entry(n))\n"
    )
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("\n") == len(names)


def test_golden_sizes():
    for n in ENTRIES:
        size = sum(f.stat().st_size for f in (GOLDEN / n).iterdir())
        assert size < 200 * 1024, (n, size)


def test_cli_routes_on_goldens(tmp_path, capsys):
    """The command line takes what the Python API takes: a TF1 prefix, two inputs in an npz."""
    from lstmviz.cli import main

    assert (
        main(
            [
                "trace",
                str(GOLDEN / "tf1_multirnn_4_5" / "model.ckpt"),
                "--input",
                str(GOLDEN / "tf1_multirnn_4_5" / "input.npz"),
            ]
        )
        == 0
    )
    assert "lstm_l1: units=5" in capsys.readouterr().out
    s2s = GOLDEN / "keras_lstm_seq2seq"
    assert main(["trace", str(s2s / "model.keras"), "--input", str(s2s / "input.npz")]) == 0
    out = capsys.readouterr().out
    assert "units=16 T=7" in out and "units=16 T=5" in out
    assert (
        main(
            [
                "export",
                str(s2s / "model.keras"),
                "--input",
                str(s2s / "input.npz"),
                "--out",
                str(tmp_path / "s2s.npz"),
                "-q",
            ]
        )
        == 0
    )
    assert (
        main(["trace", str(GOLDEN / "keras_weather_weights_only" / "model_checkpoint.weights.h5")])
        == 2
    )
    assert "holds weights only" in capsys.readouterr().err


def test_outputs_are_what_the_model_says():
    from lstmviz.analysis.outputs import display_label, output_labels, output_spec, top_k
    from lstmviz.io.meta import load_info

    kinds = {
        "keras_addition_rnn": "probabilities",
        "keras_bidirectional_imdb": "bits",
        "keras_weather": "regression",
        "keras_rnn_guide": "logits",
        "torch_lstm_tagger": "log_probabilities",
        "torch_word_language_model": "log_probabilities",
        "torch_time_sequence_prediction": "regression",
        "torch_mnist_rnn": "log_probabilities",
    }
    for name, kind in kinds.items():
        path = GOLDEN / name / _meta(name)["model_file"]
        model = lstmviz.load_model(path)
        assert output_spec(model, load_info(path)).kind == kind, name
    path = GOLDEN / "keras_rnn_guide" / "model.keras"
    info = load_info(path)
    labels = output_labels(info, 10)
    assert labels[0] == "<START>"
    assert display_label(labels[0], html_escape=True) == "&lt;START&gt;"
    model = lstmviz.load_model(path)
    x = match_inputs(model, read_npz(GOLDEN / "keras_rnn_guide" / "input.npz"))
    out = model.trace(x).output[0]
    top = top_k(out, output_spec(model, info), labels, k=3)
    assert top[0].value == out.max() and top[0].probability > top[1].probability
