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


def _window_entries() -> list[str]:
    out = []
    for d in sorted(GOLDEN.iterdir()):
        if (d / "meta.json").is_file():
            out.append(d.name)
    return out


def test_every_golden_opens_in_the_real_window(qtbot, monkeypatch, tmp_path):
    """Each zoo file opened in the real main window (offscreen) on its golden input: the
    window's trace is the framework's output; refused files leave an error dialog and a
    usable window."""
    pytest.importorskip("PySide6")
    import numpy as np

    from lstmviz.app.main_window import MainWindow

    monkeypatch.setenv("LSTMVIZ_DATA_DIR", str(tmp_path / "data"))
    w = MainWindow(actions=False)
    qtbot.addWidget(w)
    w.resize(1600, 900)
    w.show()
    qtbot.waitExposed(w)
    try:
        for name in _window_entries():
            meta = json.loads((GOLDEN / name / "meta.json").read_text())
            if any(_missing(m) for m in meta["needs"]):
                continue
            path = GOLDEN / name / meta["model_file"]
            if meta["route"] == "file (TF1 ckpt)":
                path = path.with_name(path.name + ".index")
            w.last_error = None
            if meta.get("expect_error"):
                w.open_model(path)
                qtbot.waitUntil(lambda: w.last_error is not None, timeout=60000)
                assert meta["expect_error"][1] in w.last_error, (name, w.last_error)
                continue
            w.open_model(path, input_path=str(GOLDEN / name / "input.npz"))
            qtbot.waitUntil(
                lambda p=str(path): (
                    (
                        w.state.model_path == p
                        and w.state.trace is not None
                        and not w.state.busy
                        and not w.trace_runner.is_running()
                    )
                    or w.last_error is not None
                ),
                timeout=60000,
            )
            assert w.last_error is None, (name, w.last_error)
            expected = np.load(GOLDEN / name / "expected.npz")
            out = w.state.trace.output
            out0 = out[0] if isinstance(out, list) else out
            np.testing.assert_allclose(out0, expected["output_0"], atol=1e-5, err_msg=name)
            assert w.state.trace.layer_names == meta["layers"], name
    finally:
        if w.error_dialog is not None:
            w.error_dialog.close()
        w.close()


def _missing(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(mod) is None


WINDOW = [
    ("keras_lstm_seq2seq", "model.keras", "input.npz"),
]


@pytest.mark.parametrize(("name", "file", "inp"), WINDOW, ids=[w[0] for w in WINDOW])
def test_opened_in_the_real_window(tmp_path, name, file, inp):
    """``lstmviz MODEL --input inputs.npz --screenshot OUT.png``: the command line opens a
    two-input model in the real window, offscreen."""
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
