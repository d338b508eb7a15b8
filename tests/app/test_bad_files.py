"""Every bad file through the app's own Open actions: a dialog, no crash, the model stays.

Also: a worker that raises in the middle of its work leaves the app usable with the last good
result, and closing the window while work runs stops the worker cleanly.
"""

from __future__ import annotations

import io
import json
import struct
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QFileDialog

from lstmviz.examples import EXAMPLES_DIR

GOOD = EXAMPLES_DIR / "digit_sum.keras"


def _members(p: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(p) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _zip(p: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(p, "w") as zf:
        for n, b in members:
            zf.writestr(n, b)
    return p


def _config_edit(d: Path, name: str, edit) -> Path:
    ms = _members(GOOD)
    cfg = json.loads(dict(ms)["config.json"])
    edit(cfg)
    return _zip(
        d / name, [(n, json.dumps(cfg).encode() if n == "config.json" else b) for n, b in ms]
    )


def _layer(cfg: dict, cls: str) -> dict:
    return next(x for x in cfg["config"]["layers"] if x["class_name"] == cls)


def _weights_edit(d: Path, name: str, edit) -> Path:
    import h5py

    ms = _members(GOOD)
    tmp = d / (name + ".weights.h5")
    tmp.write_bytes(dict(ms)["model.weights.h5"])
    with h5py.File(tmp, "r+") as f:
        edit(f)
    return _zip(d / name, [(n, tmp.read_bytes() if n == "model.weights.h5" else b) for n, b in ms])


def _first_dataset(f, contains: str = "") -> str:
    import h5py

    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return next(n for n in sorted(names) if contains in n)


def _huge(f) -> None:
    n = _first_dataset(f, "lstm")
    del f[n]
    f.create_dataset(n, shape=(10**9, 40), dtype="f4", chunks=(1, 40))


def _misshape(f) -> None:
    n = _first_dataset(f, "lstm")
    a = f[n][()]
    del f[n]
    f.create_dataset(n, data=a[:-1])


def _drop(f) -> None:
    del f[_first_dataset(f, "dense")]


def _bomb(d: Path) -> Path:
    data = bytearray(GOOD.read_bytes())
    i = data.find(b"PK\x01\x02")
    while i >= 0:
        struct.pack_into("<I", data, i + 24, 0xFFFFFFF0)  # every member "4 GB"
        i = data.find(b"PK\x01\x02", i + 4)
    (d / "bomb.keras").write_bytes(bytes(data))
    return d / "bomb.keras"


def bad_models(d: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a regex its error message must match)."""
    data = GOOD.read_bytes()
    out: dict[str, tuple[Path, str]] = {}

    def raw(name: str, b: bytes, msg: str) -> None:
        (d / name).write_bytes(b)
        out[name] = (d / name, msg)

    raw("empty.keras", b"", "empty")
    raw("text.keras", b"hello, I am not a model\n" * 10, "not a model file")
    raw("half.keras", data[: len(data) // 2], "not a readable|damaged")
    raw("head.keras", data[:40], "not a readable|damaged")
    raw("tail_cut.keras", data[:-30], "not a readable|damaged")
    raw("garbage.h5", b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8, "HDF5")
    raw("npy_as_model.keras", b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'}", "not a model file")
    out["bomb.keras"] = (_bomb(d), "zip bomb|declares")
    out["no_config.keras"] = (
        _zip(d / "no_config.keras", [m for m in _members(GOOD) if m[0] != "config.json"]),
        "no config.json",
    )
    out["no_weights.keras"] = (
        _zip(d / "no_weights.keras", [m for m in _members(GOOD) if m[0] != "model.weights.h5"]),
        "weights are missing",
    )
    out["bad_json.keras"] = (
        _zip(
            d / "bad_json.keras",
            [(n, b"{not json" if n == "config.json" else b) for n, b in _members(GOOD)],
        ),
        "not valid JSON",
    )

    def lam(cfg):
        _layer(cfg, "Dense")["class_name"] = "Lambda"

    def custom(cfg):
        _layer(cfg, "Dense")["module"] = "homework.layers"
        _layer(cfg, "Dense")["registered_name"] = "homework>Squash"

    def gru(cfg):
        _layer(cfg, "LSTM")["class_name"] = "GRU"

    def flag(cfg):
        _layer(cfg, "LSTM")["config"]["go_backwards"] = "yes"

    def units(cfg):
        _layer(cfg, "LSTM")["config"]["units"] = 10**9

    def nolayers(cfg):
        cfg["config"]["layers"] = {}

    out["lambda.keras"] = (_config_edit(d, "lambda.keras", lam), "never runs code")
    out["custom.keras"] = (_config_edit(d, "custom.keras", custom), "custom class")
    out["gru.keras"] = (_config_edit(d, "gru.keras", gru), "GRU")
    out["flag.keras"] = (_config_edit(d, "flag.keras", flag), "must be true or false")
    out["units.keras"] = (_config_edit(d, "units.keras", units), "shape")
    out["no_layers.keras"] = (_config_edit(d, "no_layers.keras", nolayers), "has no layers")
    out["huge_weights.keras"] = (_weights_edit(d, "huge_weights.keras", _huge), "too large")
    out["misshaped.keras"] = (_weights_edit(d, "misshaped.keras", _misshape), "shape")
    out["dropped.keras"] = (_weights_edit(d, "dropped.keras", _drop), "weight arrays")
    session = d / "a_session.keras"
    from lstmviz import Session

    Session(model_path=str(GOOD)).save(session)  # a session picked in "Open model"
    out["a_session.keras"] = (session, "is an lstmviz session, not a model")
    (d / "folder.keras").mkdir()
    out["folder.keras"] = (d / "folder.keras", "directory")
    out["missing.keras"] = (d / "missing.keras", "no such file")
    return out


def bad_inputs(d: Path) -> dict[str, tuple[Path, str]]:
    out = {}
    p = d / "long.npy"
    with open(p, "wb") as fh:  # 10^9 timesteps, header only
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (1, 10**9, 10)}
        )
    out["long.npy"] = (p, "timesteps|too large")
    p = d / "pickled.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    out["pickled.npy"] = (p, "pickle|object")
    p = d / "wrong_features.npy"
    np.save(p, np.zeros((1, 4, 3), np.float32))
    out["wrong_features.npy"] = (p, "features|shape")
    p = d / "words.csv"
    p.write_text("1,2,3\n4,five,6\n")
    out["words.csv"] = (p, "not numbers")
    p = d / "nan.csv"
    p.write_text(";".join(["nan"] * 10) + "\n" + ",".join(["1"] * 10) + "\n")
    out["nan.csv"] = (p, "NaN|not numbers|shape")
    return out


def bad_sessions(d: Path) -> dict[str, tuple[Path, str]]:
    from lstmviz import Session

    good = Session(model_path=str(GOOD), t=2).save(d / "good.lstmviz", embed_model=True)
    data = good.read_bytes()
    out = {}
    for name, b, msg in [
        ("s_empty.lstmviz", b"", "empty"),
        ("s_text.lstmviz", b"{}", "does not start like"),
        ("s_half.lstmviz", data[: len(data) // 2], "damaged|not a readable"),
        ("s_model_as_session.lstmviz", GOOD.read_bytes(), "no session.json"),
    ]:
        (d / name).write_bytes(b)
        out[name] = (d / name, msg)
    ms = _members(good)
    doc = json.loads(dict(ms)["session.json"])
    for name, change, msg in [
        ("s_version.lstmviz", {"format_version": 7}, "format_version 7"),
        ("s_types.lstmviz", {"t": "soon"}, "'t' must be an integer"),
        ("s_nomodel.lstmviz", {"model": {"path": str(d / "gone.keras")}}, "missing"),
    ]:
        _zip(
            d / name,
            [
                (n, json.dumps({**doc, **change}).encode() if n == "session.json" else b)
                for n, b in ms
                if not (name == "s_nomodel.lstmviz" and n.startswith("model/"))
            ],
        )
        out[name] = (d / name, msg)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        hdr = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            hdr, {"descr": "<f4", "fortran_order": False, "shape": (1, 10**9, 10)}
        )
        zf.writestr("input_0.npy", hdr.getvalue())
    doc2 = {**doc, "input": {"arrays": ["input_0"], "list": False}}
    _zip(
        d / "s_huge.lstmviz",
        [
            (
                n,
                json.dumps(doc2).encode()
                if n == "session.json"
                else inner.getvalue()
                if n == "arrays.npz"
                else b,
            )
            for n, b in ms
        ],
    )
    out["s_huge.lstmviz"] = (d / "s_huge.lstmviz", "timesteps")
    return out


# ------------------------------------------------------------------------------------------
@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    pytest.importorskip("h5py")
    if not GOOD.is_file():
        pytest.skip("bundled example digit_sum missing")
    monkeypatch.setenv("LSTMVIZ_DATA_DIR", str(tmp_path / "data"))
    from lstmviz.app.main_window import MainWindow

    w = MainWindow(actions=False)
    qtbot.addWidget(w)
    w.build_actions()
    w.show()
    qtbot.waitExposed(w)
    w.open_model(GOOD)
    qtbot.waitUntil(lambda: w.state.trace is not None and not w.runner.is_running(), timeout=20000)
    yield w
    if w.error_dialog is not None:
        w.error_dialog.close()
    w.close()


def _action(window, text: str):
    return next(a for a in window.menu("File").actions() if a.text() == text)


def _try(qtbot, w, monkeypatch, action_text: str, path: Path, pattern: str) -> None:
    import re

    doc = w.state
    before = (doc.model, doc.trace, w.windowTitle(), doc.t)
    w.last_error = None
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    _action(w, action_text).trigger()
    qtbot.waitUntil(lambda: w.last_error is not None and not w.runner.is_running(), timeout=20000)
    msg = w.last_error
    assert path.name in msg, msg
    assert re.search(pattern, msg, re.IGNORECASE), (pattern, msg)
    assert "Traceback" not in msg
    assert "Unexpected error" not in msg
    assert w.error_dialog is not None
    assert w.error_dialog.isVisible()
    assert (doc.model, doc.trace, w.windowTitle(), doc.t) == before  # nothing changed
    w.error_dialog.close()
    doc.set_t(1)  # still usable
    assert doc.t == 1
    doc.set_t(before[3])


def test_every_bad_model_through_open(qtbot, window, tmp_path, monkeypatch):
    cases = bad_models(tmp_path)
    assert len(cases) >= 20
    for _name, (path, pattern) in cases.items():
        _try(qtbot, window, monkeypatch, "&Open model…", path, pattern)


def test_every_bad_input_through_open_input(qtbot, window, tmp_path, monkeypatch):
    for _name, (path, pattern) in bad_inputs(tmp_path).items():
        _try(qtbot, window, monkeypatch, "Open &input…", path, pattern)


def test_every_bad_session_through_open_session(qtbot, window, tmp_path, monkeypatch):
    for _name, (path, pattern) in bad_sessions(tmp_path).items():
        _try(qtbot, window, monkeypatch, "Open &session…", path, pattern)


# ------------------------------------------------------------------------------------------
# workers: a failure mid-way keeps the last good state; closing stops them cleanly
# ------------------------------------------------------------------------------------------
def test_worker_failing_mid_epoch_keeps_last_good_weights(qtbot, window):
    """A training-like task hands on new weights per step, then raises: the app shows the
    error, keeps the last good weights' trace, and stays usable."""
    w, doc = window, window.state
    model = doc.model
    lstm = model.lstm(model.lstm_trace_names[0])
    w0 = lstm.weights
    shown: list[float] = []

    def train(progress, should_stop):
        for step in range(1, 100):
            if step == 4:
                raise FloatingPointError("loss became NaN in epoch 1, batch 4")
            progress.partial(step)  # "weights after this batch"
            progress(step, 100)
            threading.Event().wait(0.01)
        return None

    def on_partial(step):
        from lstmviz.engine.cell import LSTMWeights

        lstm.weights = LSTMWeights(
            w0.kernel * (1 + 0.1 * step),
            w0.recurrent_kernel,
            w0.bias,
            w0.activation,
            w0.recurrent_activation,
        )
        doc.retrace()
        shown.append(step)

    with qtbot.waitSignal(w.runner.failed, timeout=20000):
        w.run_worker(train, None, "Training", on_partial=on_partial)
    qtbot.waitUntil(lambda: not w.runner.is_running() and w.last_error is not None)
    assert "FloatingPointError" in w.last_error
    assert "NaN" in w.last_error
    assert shown == [1, 2, 3]
    # the trace shown is the one of the last good weights (step 3)
    expect = model.trace(doc.x).layer(doc.layer).hidden
    np.testing.assert_array_equal(doc.layer_trace.hidden, expect)
    np.testing.assert_allclose(lstm.weights.kernel, w0.kernel * 1.3, rtol=1e-6)
    w.error_dialog.close()
    doc.set_t(2)
    assert doc.t == 2
    # and new work runs
    with qtbot.waitSignal(
        w.runner.running_changed, timeout=20000, check_params_cb=lambda running, label: not running
    ):
        w.run_worker(lambda p, s: 42, None, "Again")


def test_closing_the_window_during_work_stops_the_worker(qtbot, tmp_path, monkeypatch, qtlog):
    monkeypatch.setenv("LSTMVIZ_DATA_DIR", str(tmp_path / "data"))
    from lstmviz.app.main_window import MainWindow

    w = MainWindow(actions=False)
    qtbot.addWidget(w)
    w.build_actions()
    w.show()
    started = threading.Event()
    stopped = threading.Event()

    def long_task(progress, should_stop):
        started.set()
        for i in range(100_000):  # "epochs"; checks should_stop like the Keras callback
            if should_stop():
                stopped.set()
                return None
            progress(i, 100_000)
            threading.Event().wait(0.005)
        return None

    worker = w.run_worker(long_task, None, "Training")
    assert started.wait(10)
    thread = worker._thread
    w.close()
    assert stopped.is_set()
    thread.join(5)
    assert not thread.is_alive()
    assert not any(
        "QThread: Destroyed while thread is still running" in r.message for r in qtlog.records
    )


def test_mutated_sessions_through_the_app(qtbot, window, tmp_path):
    """Sessions with wrongly typed or missing values (fixed seed): each one either opens --
    with whatever it says that still fits (a layer that is not there, a unit out of range, a
    bad window layout is skipped with a note) -- or shows a dialog; never an exception."""
    from lstmviz import Session
    from tests.io.test_fuzz import mutate_json

    w, doc = window, window.state
    doc.set_t(2)
    base = w.session_actions.save_session(tmp_path / "base.lstmviz")
    ms = _members(base)
    doc0 = json.loads(dict(ms)["session.json"])
    doc0["view"]["unit_filter"] = ["list", [0, 2]]
    rng = np.random.default_rng(11)
    opened = failed = 0
    for i in range(40):
        mutated, _meta = mutate_json(doc0, rng)
        p = _zip(
            tmp_path / f"m{i}.lstmviz",
            [(n, json.dumps(mutated).encode() if n == "session.json" else b) for n, b in ms],
        )
        w.last_error = None
        done: list[int] = []
        w.session_actions.open_session(p, then=lambda d=done: d.append(1))
        qtbot.waitUntil(
            lambda d=done: (bool(d) or w.last_error is not None) and not w.runner.is_running(),
            timeout=20000,
        )
        if done and w.last_error is None:
            opened += 1
            assert doc.trace is not None
            Session.load(p)
        else:
            failed += 1
            assert "Unexpected error" not in (w.last_error or "")
            if w.error_dialog is not None:
                w.error_dialog.close()
    assert opened > 0
    assert failed > 0
