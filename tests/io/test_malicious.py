"""Hand-made hostile files, each loaded in a child process under a memory cap.

Every case runs through :func:`tests.io.malicious.run_capped`: a fresh Python whose address
space is capped a few hundred MB above its imports, with lstmviz's memory budget set below
the cap. A reader that regresses makes the case *fail* -- a raw ``MemoryError`` when the cap
is hit, a timeout when it blocks, a payload's marker file appearing -- instead of swapping
the machine or hanging pytest. The files are built by hand (``tests/io/hostile.py``): no
TensorFlow needed.

Classes of cases (the reliability issue's numbered points):

- other files read: HDF5 external storage, virtual datasets, external links, soft links, in a
  ``.h5``, in the weights of a ``.keras`` and in a model embedded in a session;
- memory: a big weights member streamed, int8 weights whose float32 copy is 4x, session
  arrays over the budget, ``RepeatVector(10**7)`` and Conv1D ``dilation_rate=10**12`` at load,
  trace buffers of 10**7 steps, a CSV of millions of rows;
- one error type: Conv1D ``strides=0``, non-string class names and layer names, a sidecar
  nested 100,000 deep, embedded-model names ``..``/NUL/300 characters, errors from an
  embedded model naming the session, FIFOs and devices;
- code never runs: a Lambda with marshalled code, pickled arrays in a session and an input.

Run alone: ``python -m pytest tests/io/test_malicious.py -q`` (about half a minute).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.io import hostile as H
from tests.io.malicious import run_capped

h5py = pytest.importorskip("h5py")

CAP_MB = 400  # address space a case may add above its imports
BUDGET = "64MiB"  # lstmviz's budget in the child: far below the cap


def capped(fn: str, *args, mem_mb: int = CAP_MB, budget: str = BUDGET, **kw):
    return run_capped(f"tests.io.hostile:{fn}", list(args), mem_mb, budget=budget, **kw)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    return d, H.digit_lstm_files(d)


def test_the_clean_files_load(base):
    """The builders make real models: without a trick they load, under the cap."""
    _, f = base
    for kind in ("keras", "h5"):
        r = capped("run_load_and_kernel", str(f[kind]))
        assert r.outcome == "ok", r.describe()
        assert "7.000" not in r.value


# ==========================================================================================
# 2. other files read through HDF5
# ==========================================================================================
KERNEL_V3 = "layers/lstm/cell/vars/0"
KERNEL_LEGACY = "model_weights/lstm/lstm/kernel:0"


def _trick(kind: str, d: Path, shape: tuple[int, int]):
    """A hook that replaces the LSTM kernel by ``kind``: pointing at 7.0s outside it."""
    secret = H.secret_file(d)
    with h5py.File(d / "secret.h5", "w") as s:
        s.create_dataset("kernel", data=np.full(shape, 7.0, np.float32))

    def hook(path_in_file: str):
        def apply(f):
            del f[path_in_file]
            if kind == "external_storage":
                nbytes = int(np.prod(shape)) * 4
                f.create_dataset(
                    path_in_file, shape=shape, dtype="f4", external=[(str(secret), 0, nbytes)]
                )
            elif kind == "virtual":
                layout = h5py.VirtualLayout(shape=shape, dtype="f4")
                layout[:] = h5py.VirtualSource(str(d / "secret.h5"), "kernel", shape=shape)
                f.create_virtual_dataset(path_in_file, layout)
            elif kind == "external_link":
                f[path_in_file] = h5py.ExternalLink(str(d / "secret.h5"), "/kernel")
            elif kind == "soft_link":
                f.create_dataset("elsewhere/kernel", data=np.full(shape, 7.0, np.float32))
                f[path_in_file] = h5py.SoftLink("/elsewhere/kernel")
            else:  # pragma: no cover
                raise AssertionError(kind)

        return apply

    return hook


TRICKS = {
    "external_storage": "external file",
    "virtual": "virtual dataset",
    "external_link": "external link",
    "soft_link": "soft link",
}


@pytest.mark.parametrize("kind", sorted(TRICKS))
@pytest.mark.parametrize("container", ["h5", "keras", "embedded-h5", "embedded-keras"])
def test_hdf5_that_reads_elsewhere_is_refused(base, tmp_path, kind, container):
    _, f = base
    shape = (f["features"], 4 * f["units"])
    hook = _trick(kind, tmp_path, shape)
    fmt = container.rsplit("-", 1)[-1]
    if fmt == "h5":
        model = H.write_legacy_h5(
            tmp_path / "m.h5", f["layers"], f["legacy"], hook=hook(KERNEL_LEGACY)
        )
    else:
        model = H.write_keras(tmp_path / "m.keras", f["layers"], f["v3"], hook=hook(KERNEL_V3))
    if not container.startswith("embedded"):
        r = capped("run_load_and_kernel", str(model))
        r.assert_refused("ModelFileError", TRICKS[kind], "m." + fmt)
        return
    from lstmviz.io.session import Session

    sp = Session(model_path=str(model)).save(tmp_path / "shared.lstmviz", embed_model=True)
    model.unlink()  # the session is all the user has
    r = capped("run_session_model", str(sp))
    r.assert_refused("ModelFileError", TRICKS[kind], "shared.lstmviz", "embedded model")
    assert "lstmviz-session-" not in r.message  # not the deleted temporary path


# ==========================================================================================
# 3. memory
# ==========================================================================================
def test_big_weights_member_is_streamed_not_read_whole(base, tmp_path):
    """A ``model.weights.h5`` of 80 MB (an unused dataset) deflated inside the ``.keras``:
    loading it must not hold the member in memory."""
    _, f = base

    def pad(h5):
        h5.create_dataset("padding", data=np.zeros(20 * 2**20, np.float32))  # 80 MB
        h5.create_dataset("noise", data=H.RNG.integers(0, 255, 2**20, dtype=np.uint8))

    p = H.write_keras(tmp_path / "big.keras", f["layers"], f["v3"], hook=pad, compress=True)
    assert p.stat().st_size < 4 * 2**20
    r = capped("run_load", str(p), budget="1GiB")
    assert r.outcome == "ok", r.describe()
    assert r.peak_mb < 50, r.describe()  # the member is 80 MB


def test_int8_weights_checked_with_their_float32_copy(base, tmp_path):
    """gzip int8 weights: 20 MB stored values become 80 MB of float32 -- both are counted."""
    features, units = 5 * 2**20, 1
    layers = [H.input_layer("x", [None, features]), H.lstm_layer("lstm", units)]
    k = H.RNG.integers(0, 2, (features, 4 * units)).astype(np.int8)

    def as_int8(h5):
        del h5[KERNEL_V3]
        h5.create_dataset(KERNEL_V3, data=k, compression="gzip", chunks=(2**18, 4))

    w = {"lstm": [np.zeros((1, 4), np.float32), *H.lstm_weights(1, units)[1:]]}
    p = H.write_keras(tmp_path / "int8.keras", layers, w, hook=as_int8)
    assert p.stat().st_size < 8 * 2**20
    r = capped("run_load", str(p), budget="48MiB")
    r.assert_refused("MemoryBudgetError", "int8", "memory budget")


def test_session_arrays_over_the_budget_are_refused(tmp_path):
    from lstmviz.io.session import Session

    p = Session(input=np.zeros((1, 10_000, 1000), np.float32)).save(tmp_path / "big.lstmviz")
    r = capped("run_session", str(p), budget="16MiB")
    r.assert_refused("MemoryBudgetError", "big.lstmviz", "memory budget")


def _seq2seq(d: Path, n: int) -> Path:
    layers = [
        H.input_layer("x", [None, 3]),
        H.lstm_layer("encoder", 4),
        H.layer("RepeatVector", "repeat", n=n),
        H.lstm_layer("decoder", 2, return_sequences=True),
    ]
    w = {"lstm": H.lstm_weights(3, 4), "lstm_1": H.lstm_weights(4, 2)}
    return H.write_keras(d / f"repeat_{n}.keras", layers, w)


def test_repeat_vector_dry_run_is_bounded(tmp_path):
    assert capped("run_load", str(_seq2seq(tmp_path, 5))).outcome == "ok"
    r = capped("run_load", str(_seq2seq(tmp_path, 10**7)))
    r.assert_refused("MemoryBudgetError", "repeat_10000000.keras", "repeat")


def _conv(d: Path, **conv) -> Path:
    layers = [
        H.input_layer("x", [None, 3]),
        H.layer(
            "Conv1D",
            "conv",
            filters=4,
            kernel_size=[2],
            activation="linear",
            use_bias=True,
            **conv,
        ),
        H.lstm_layer("lstm", 2),
    ]
    w = {
        "conv1d": [H.RNG.normal(0, 1, (2, 3, 4)).astype(np.float32), np.zeros(4, np.float32)],
        "lstm": H.lstm_weights(4, 2),
    }
    name = "_".join(f"{k}{v}" for k, v in conv.items())
    return H.write_keras(d / f"conv_{name}.keras", layers, w)


def test_conv1d_strides_zero_and_huge_dilation(tmp_path):
    ok = _conv(tmp_path, strides=[1], dilation_rate=[2], padding="causal")
    assert capped("run_load", str(ok)).outcome == "ok"
    r = capped("run_load", str(_conv(tmp_path, strides=[0], padding="valid")))
    r.assert_refused("ModelFileError", "strides must be an integer >= 1")
    r = capped("run_load", str(_conv(tmp_path, strides=[1], padding="same", dilation_rate=[0])))
    r.assert_refused("ModelFileError", "dilation_rate")
    big = _conv(tmp_path, strides=[1], padding="causal", dilation_rate=[10**12])
    r = capped("run_load", str(big))
    r.assert_refused("MemoryBudgetError", "conv", "memory budget")


def test_trace_buffers_are_checked_before_allocation(base):
    """10**7 steps of a 4-unit LSTM: 1.6 GB of trace buffers; the input is 120 MB."""
    _, f = base
    r = capped("run_trace_long", str(f["keras"]), 10**7, mem_mb=700, budget="256MiB")
    r.assert_refused("MemoryBudgetError", "small.keras", "lstmviz corpus trace", "GiB")
    assert r.peak_mb < 400, r.describe()
    ok = capped("run_trace_long", str(f["keras"]), 1000, budget="256MiB")
    assert ok.outcome == "ok" and "1000" in ok.value, ok.describe()


def test_csv_input_read_in_bounded_memory(tmp_path):
    """A million one-value rows (4 MB of text): one compact buffer (8 MB), not a Python
    list per row (~100 MB)."""
    p = tmp_path / "long.csv"
    p.write_bytes(b"0.5\n" * 1_000_000)
    r = capped("run_input", str(p), budget="256MiB")
    assert r.outcome == "ok" and "(1000000, 1)" in r.value, r.describe()
    assert r.peak_mb < 40, r.describe()
    r = capped("run_input", str(p), budget="4MiB")
    r.assert_refused("MemoryBudgetError", "long.csv")


# ==========================================================================================
# 4. one error type
# ==========================================================================================
def _edit_config(src: Path, dst: Path, edit) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json":
                cfg = json.loads(data)
                edit(cfg)
                data = json.dumps(cfg).encode()
            zout.writestr(info, data)
    return dst


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("top", 7, "expected a Keras model"),
        ("top", ["Sequential"], "expected a Keras model"),
        ("layer", 7, "class_name must be a string"),
        ("layer", {"a": 1}, "class_name must be a string"),
        ("name", {"a": 1}, "name must be a string"),
        ("name", ["lstm"], "name must be a string"),
    ],
)
def test_non_string_class_names_and_layer_names(base, tmp_path, where, value, message):
    _, f = base

    def edit(cfg):
        if where == "top":
            cfg["class_name"] = value
        elif where == "layer":
            cfg["config"]["layers"][1]["class_name"] = value
        else:
            cfg["config"]["layers"][1]["config"]["name"] = value

    p = _edit_config(f["keras"], tmp_path / "names.keras", edit)
    capped("run_load", str(p)).assert_refused("ModelFileError", "names.keras", message)


def test_sidecar_nested_100000_deep(base, tmp_path):
    _, f = base
    model = tmp_path / "deep.keras"
    model.write_bytes(f["keras"].read_bytes())
    (tmp_path / "deep.lstmviz.json").write_text("[" * 100_000 + "]" * 100_000)
    r = capped("run_info", str(model))
    r.assert_refused("LstmvizError", "deep.lstmviz.json", "nested too deeply")


def test_keras_config_nested_deeply(base, tmp_path):
    _, f = base
    with zipfile.ZipFile(f["keras"]) as zin:
        members = {i.filename: zin.read(i) for i in zin.infolist()}
    cfg = members["config.json"].decode()
    members["config.json"] = cfg.replace(
        '"units": 4', '"junk": ' + "[" * 100_000 + "]" * 100_000 + ', "units": 4'
    ).encode()
    p = tmp_path / "deep.keras"
    with zipfile.ZipFile(p, "w") as zout:
        for k, v in members.items():
            zout.writestr(k, v)
    r = capped("run_load", str(p))
    r.assert_refused("ModelFileError", "deep.keras", "nested too deeply")


def _session_with_name(tmp_path: Path, model: Path, name: str) -> Path:
    from lstmviz.io.session import Session

    p = Session(model_path=str(model)).save(tmp_path / "named.lstmviz", embed_model=True)
    with zipfile.ZipFile(p) as zin:
        members = {i.filename: zin.read(i) for i in zin.infolist()}
    doc = json.loads(members.pop("session.json"))
    doc["model"]["name"] = name
    doc["model"]["path"] = "/nowhere/" + "m.keras"  # only the embedded copy is left
    with zipfile.ZipFile(p, "w") as zout:
        zout.writestr("session.json", json.dumps(doc))
        for k, v in members.items():
            zout.writestr(k, v)
    return p


@pytest.mark.parametrize(
    "name", ["..", ".", "a\x00b.keras", "x" * 300 + ".keras", "../../etc/m.keras", "", "/"]
)
def test_embedded_model_names_from_the_file(base, tmp_path, name):
    _, f = base
    p = _session_with_name(tmp_path, f["keras"], name)
    r = capped("run_session_model", str(p))
    assert r.outcome == "ok", r.describe()  # a safe temporary name; the model loads
    assert not (tmp_path.parent / "m.keras").exists()


def test_errors_from_an_embedded_model_name_the_session(tmp_path):
    from lstmviz.io.session import Session

    s = Session(model_path="/gone/broken.keras", model_bytes=b"PK\x03\x04 not really a zip")
    p = s.save(tmp_path / "team.lstmviz")
    r = capped("run_session_model", str(p))
    r.assert_refused("ModelFileError", "team.lstmviz", "embedded model 'broken.keras'")
    assert "lstmviz-session-" not in r.message


@pytest.fixture
def fifo(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    p = tmp_path / "pipe"
    os.mkfifo(p)
    assert stat.S_ISFIFO(os.stat(p).st_mode)
    return p


@pytest.mark.parametrize(
    ("fn", "suffix", "error"),
    [
        ("run_session", ".lstmviz", "SessionFileError"),
        ("run_load", ".keras", "ModelFileError"),
        ("run_load", ".h5", "ModelFileError"),
        ("run_input", ".csv", "InputError"),
        ("run_input", ".npy", "InputError"),
    ],
)
def test_fifo_refused_before_opening(tmp_path, fn, suffix, error):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    p = tmp_path / f"pipe{suffix}"
    os.mkfifo(p)
    r = capped(fn, str(p), timeout=20)
    r.assert_refused(error, "FIFO")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
@pytest.mark.parametrize(
    ("fn", "error"),
    [
        ("run_session", "SessionFileError"),
        ("run_load", "ModelFileError"),
        ("run_input", "InputError"),
    ],
)
def test_devices_refused_before_opening(tmp_path, fn, error):
    link = tmp_path / ("zero.lstmviz" if fn == "run_session" else "zero.npy")
    link.symlink_to("/dev/zero")
    r = capped(fn, str(link), timeout=20)
    r.assert_refused(error, "character device")


# ==========================================================================================
# code never runs
# ==========================================================================================
def test_lambda_with_code_is_refused_and_never_runs(base, tmp_path):
    _, f = base
    marker = tmp_path / "PWNED_lambda"
    layers = [*f["layers"][:2], H.lambda_layer(str(marker)), f["layers"][2]]
    p = H.write_keras(tmp_path / "lambda.keras", layers, f["v3"])
    r = capped("run_load", str(p), marker=marker)
    r.assert_refused("UnsafeModelError", "Lambda", "never runs code")


def test_pickled_arrays_never_unpickled(tmp_path):
    from lstmviz.io.session import Session

    marker = tmp_path / "PWNED_pickle"
    payload = H.pickled_npy(str(marker))
    npy = tmp_path / "input.npy"
    npy.write_bytes(payload)
    capped("run_input", str(npy), marker=marker).assert_refused("InputError", "object arrays")

    p = Session(input=np.zeros((1, 3, 2), np.float32)).save(tmp_path / "s.lstmviz")
    with zipfile.ZipFile(p) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as inner:
        inner.writestr("input_0.npy", payload)
    members["arrays.npz"] = buf.getvalue()
    with zipfile.ZipFile(p, "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    r = capped("run_session", str(p), marker=marker)
    r.assert_refused("SessionFileError", "pickled objects")


def test_harness_reports_a_raw_memory_error_as_a_failure():
    """The cap works: an allocation past it is reported as an error, not swapped."""
    r = run_capped("numpy:ones", [[40_000, 10_000]], mem_mb=200)
    assert r.outcome == "error" and r.exc_type == "MemoryError", r.describe()
    assert not r.is_lstmviz_error


def test_harness_reports_a_hang(tmp_path):
    r = run_capped("time:sleep", [30], mem_mb=100, timeout=2)
    assert r.outcome in ("timeout", "crash"), r.describe()


if sys.platform == "win32":  # pragma: no cover
    pytestmark = pytest.mark.skip(reason="resource.setrlimit is POSIX")
