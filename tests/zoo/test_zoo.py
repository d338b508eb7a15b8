"""The zoo with its frameworks: every entry rebuilt (trained a few steps), saved the way its
example saves it, opened through its file route and checked to 1e-5; and opened in the real
window, headless."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.zoo.make_golden import ENTRIES, make

GOLDEN = Path(__file__).resolve().parent / "golden"
ROOT = Path(__file__).resolve().parents[2]

_NEEDS = {
    "keras": ("keras", "tensorflow"),
    "torch": ("torch", "safetensors"),
    "tf1": ("tensorflow", "tf_keras"),
}


def _frameworks(name: str) -> tuple[str, ...]:
    if name.startswith("keras_"):
        return _NEEDS["keras"]
    if name.startswith("torch_"):
        return _NEEDS["torch"] + (("onnx",) if name.endswith("_onnx") else ())
    return _NEEDS["tf1"]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_rebuilt_with_the_framework(tmp_path, name):
    for mod in _frameworks(name):
        pytest.importorskip(mod)
    meta = make(name, tmp_path)
    if meta.get("expect_error"):
        assert meta["max_error"] is None
    else:
        assert meta["max_error"] <= 1e-5, meta
    committed = json.loads((GOLDEN / name / "meta.json").read_text())
    assert meta.get("expect_error") == committed.get("expect_error")
    # (Keras numbers its layer names per process: compare how many LSTM layers there are)
    assert len(meta.get("layers", [])) == len(committed.get("layers", []))


WINDOW = [
    ("torch_word_language_model_onnx", "model.onnx", None),
    ("torch_time_sequence_prediction_pt2", "model.pt2", None),
    ("torch_mnist_rnn", "model.safetensors", None),
    ("tf1_multirnn_4_5", "model.ckpt.index", None),
    ("keras_lstm_seq2seq", "model.keras", "input.npz"),
]


@pytest.mark.parametrize(("name", "file", "inp"), WINDOW, ids=[w[0] for w in WINDOW])
def test_opened_in_the_real_window(tmp_path, name, file, inp):
    """``lstmviz MODEL [--input X] --screenshot OUT.png``: the real window, offscreen."""
    meta = json.loads((GOLDEN / name / "meta.json").read_text())
    for mod in meta["needs"]:
        pytest.importorskip(mod)
    pytest.importorskip("PySide6")
    out = tmp_path / "shot.png"
    cmd = [
        sys.executable,
        "-m",
        "lstmviz",
        str(GOLDEN / name / file),
        "--screenshot",
        str(out),
        "--size",
        "1200x800",
    ]
    if inp:
        cmd += ["--input", str(GOLDEN / name / inp)]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    assert out.stat().st_size > 20_000
