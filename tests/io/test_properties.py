"""Property-based tests (hypothesis) for the readers and writers this package owns.

- sessions: anything ``Session.save`` writes, ``Session.load`` reads back equal -- every
  field, fields of a later version, extra arrays and members; and a *session mutator*:
  whatever a mutated file turns into (JSON values replaced or deleted anywhere, ``.npy``
  headers rewritten, bytes flipped, the file cut), ``Session.load`` either refuses it with
  an :class:`~lstmviz.errors.LstmvizError` or returns a session that saves and reloads equal;
- Keras files: a config value replaced anywhere, or a weight array of any shape and dtype,
  loads to a model that traces (or refuses to) or is refused -- never another exception;
- inputs: any CSV text, any ``.npy`` header, any typed text: an array or an ``InputError``;
  numbers written as CSV read back exactly;
- model info sidecars, atomic writes of any file name up to 255 bytes, and trace indexing
  (``t=-1`` is the last step; out of range is refused).

Examples per test are kept small so the file runs in well under a minute; ``bench/fuzz.py``
runs the same mutators at scale.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from lstmviz.errors import ArgumentError, InputError, LstmvizError  # noqa: E402
from lstmviz.io.session import MAX_INT, Session  # noqa: E402
from tests.io import hostile as H  # noqa: E402

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples every run: CI stays reproducible
)


def _refusal(fn: Any, *args: Any, error: type[Exception] = LstmvizError) -> Any:
    """``fn(*args)``, or the message of the ``error`` it raised (a str)."""
    try:
        return fn(*args)
    except error as e:
        return str(e)


def _tmpdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="lstmviz-prop-"))


# ------------------------------------------------------------------------------------------
# strategies
# ------------------------------------------------------------------------------------------
text = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)  # surrogates too
json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_value = st.recursive(
    json_scalar,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(text, c, max_size=4),
    max_leaves=12,
)
DTYPES = ["bool", "int8", "uint8", "int32", "int64", "float16", "float32", "float64", ">f4", "<i2"]
arrays = hnp.arrays(
    dtype=st.sampled_from(DTYPES).map(np.dtype),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
)
index = st.integers(0, MAX_INT - 1)
later_key = st.from_regex(r"x_[a-z0-9_]{1,10}", fullmatch=True)
later_fields = st.dictionaries(later_key, json_value, min_size=1, max_size=3)


@st.composite
def sessions(draw: Any) -> Session:
    model_bytes = draw(st.none() | st.binary(max_size=64))
    inp = draw(st.none() | arrays | st.lists(arrays, min_size=1, max_size=3))
    snaps = draw(
        st.lists(
            st.fixed_dictionaries(
                {"epoch": index, "batch": index, "weights": st.lists(arrays, max_size=3)},
                optional={"loss": json_value, "metrics": json_value, "_unknown": later_fields},
            ),
            max_size=3,
        )
    )
    unknown: dict[str, Any] = {}
    for place in ("", "model", *(["input"] if inp is not None else [])):
        if draw(st.booleans()):
            unknown[place] = draw(later_fields)
    return Session(
        model_path=draw(st.none() | text.map(lambda t: "/nowhere/" + t.replace("\x00", ""))),
        model_sha256=None
        if model_bytes is not None
        else draw(st.none() | st.from_regex(r"[0-9a-f]{64}", fullmatch=True)),
        model_bytes=model_bytes,
        model_name=draw(st.none() | text),
        input=inp,
        input_text=draw(st.none() | text),
        layer=draw(st.none() | text),
        batch=draw(index),
        units=draw(st.lists(index, max_size=5)),
        t=draw(index),
        view=draw(st.dictionaries(text, json_value, max_size=4)),
        engine=draw(text),
        snapshots=snaps,
        unknown=unknown,
        unknown_arrays=draw(
            st.dictionaries(st.from_regex(r"future_[a-z]{1,6}", fullmatch=True), arrays, max_size=2)
        ),
        unknown_members=draw(
            st.dictionaries(
                st.from_regex(r"extra/[a-z]{1,8}\.bin", fullmatch=True),
                st.binary(max_size=32),
                max_size=3,
            )
        ),
    )


# ------------------------------------------------------------------------------------------
# sessions
# ------------------------------------------------------------------------------------------
@SETTINGS
@given(s=sessions())
def test_anything_saved_loads_back_equal(s):
    d = _tmpdir()
    p = s.save(d / "s.lstmviz")
    back = Session.load(p)
    assert back == s
    assert back.unknown == s.unknown
    assert back.model_bytes == s.model_bytes
    again = Session.load(back.save(d / "again.lstmviz"))  # and again: nothing drifts
    assert again == s


@SETTINGS
@given(
    field=st.sampled_from(["batch", "t", "units", "view", "engine", "layer", "snapshots", "input"]),
    value=json_value | st.integers(-(2**80), 2**80) | arrays,
)
def test_bad_session_arguments_are_argument_errors(field, value):
    try:
        Session(**{field: value})
    except ArgumentError:
        return
    except LstmvizError as e:  # pragma: no cover - must be the argument subclass
        raise AssertionError(f"{field}={value!r}: {type(e).__name__} {e}") from None


# the session mutator ---------------------------------------------------------------------
def _json_paths(obj: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _json_paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _json_paths(v, (*path, i))
    return out


def _set(obj: Any, path: tuple, value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return obj


@functools.lru_cache(maxsize=1)
def _base_session_bytes() -> bytes:
    """A real session file (input, snapshots, an embedded model, later-version fields),
    written once: the mutator must see the same bytes every time."""
    base = Session(
        model_path="/nowhere/m.keras",
        model_bytes=b"PK\x03\x04 model bytes",
        input=np.arange(12, dtype=np.float32).reshape(1, 4, 3),
        input_text="1 2 3",
        layer="lstm",
        units=[1, 2],
        t=3,
        view={"unit_filter": ["all", None]},
        snapshots=[{"epoch": 1, "batch": 0, "weights": [np.ones((2, 2), np.float32)]}],
        unknown={"": {"x_future": [1, 2]}},
    )
    return base.save(_tmpdir() / "base.lstmviz").read_bytes()


@st.composite
def mutated_sessions(draw: Any) -> bytes:
    """The base session with one structured mutation."""
    buf = io.BytesIO()
    data = _base_session_bytes()
    kind = draw(st.sampled_from(["json", "json", "npy_header", "bytes", "truncate"]))
    if kind in ("bytes", "truncate"):
        raw = bytearray(data)
        if kind == "truncate":
            return bytes(raw[: draw(st.integers(0, len(raw) - 1))])
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(raw)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    if kind == "json":
        doc = json.loads(members["session.json"])
        path = draw(st.sampled_from(_json_paths(doc)))
        delete = bool(path) and draw(st.booleans())
        doc = _set(doc, path, draw(json_value | st.integers(-(2**64), 2**64)), delete)
        members["session.json"] = json.dumps(doc).encode()
    else:
        with zipfile.ZipFile(io.BytesIO(members["arrays.npz"])) as z:
            inner = {i.filename: z.read(i) for i in z.infolist()}
        name = draw(st.sampled_from(sorted(inner)))
        header = draw(
            st.fixed_dictionaries(
                {
                    "descr": st.sampled_from(["<f4", "|O", "<U3", "<c8", "|b1", "V8", "<f4"]),
                    "fortran_order": st.booleans(),
                    "shape": st.lists(st.integers(-2, 2**40), max_size=4).map(tuple),
                }
            )
        )
        h = repr(header).encode()
        h += b" " * ((-len(h) - 11) % 64) + b"\n"
        body = inner[name][128:] if len(inner[name]) > 128 else b""
        inner[name] = b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + body
        ibuf = io.BytesIO()
        with zipfile.ZipFile(ibuf, "w") as z:
            for k, v in inner.items():
                z.writestr(k, v)
        members["arrays.npz"] = ibuf.getvalue()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    return buf.getvalue()


@settings(SETTINGS, max_examples=150)
@given(data=mutated_sessions())
def test_mutated_sessions_are_refused_or_round_trip(data):
    d = _tmpdir()
    p = d / "mutated.lstmviz"
    p.write_bytes(data)
    refused = _refusal(Session.load, p)
    if isinstance(refused, str):
        assert "mutated.lstmviz" in refused
        return
    s = refused
    # accepted: then it is a session like any other -- it saves and reloads equal
    back = Session.load(s.save(d / "resaved.lstmviz"))
    assert back == s


# ------------------------------------------------------------------------------------------
# Keras files
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras_base(tmp_path_factory):
    d = tmp_path_factory.mktemp("kprop")
    return H.digit_lstm_files(d)


def _rezip_config(src: Path, dst: Path, config: Any) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json":
                data = json.dumps(config).encode()
            zout.writestr(info, data)
    return dst


def _load_and_trace(p: Path, features: int) -> None:
    from lstmviz.io import load_model

    m = _refusal(load_model, p)
    if isinstance(m, str):
        assert p.name in m, m
        return
    with contextlib.suppress(LstmvizError):
        m.trace(np.zeros((1, 4, features), np.float32))


@settings(SETTINGS, max_examples=80)
@given(data=st.data())
def test_keras_config_mutations_load_or_refuse(keras_base, data):
    with zipfile.ZipFile(keras_base["keras"]) as z:
        cfg = json.loads(z.read("config.json"))
    path = data.draw(st.sampled_from(_json_paths(cfg)))
    delete = bool(path) and data.draw(st.booleans())
    cfg = _set(cfg, path, data.draw(json_value), delete)
    d = _tmpdir()
    _load_and_trace(_rezip_config(keras_base["keras"], d / "m.keras", cfg), keras_base["features"])


@settings(SETTINGS, max_examples=40)
@given(
    which=st.sampled_from(["lstm", "dense"]),
    i=st.integers(0, 2),
    a=hnp.arrays(
        dtype=st.sampled_from(["float32", "float64", "int8", "uint8", "bool", "float16"]).map(
            np.dtype
        ),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=20),
    ),
)
def test_keras_weights_of_any_shape_and_dtype_load_or_refuse(keras_base, which, i, a):
    v3 = {k: list(v) for k, v in keras_base["v3"].items()}
    i = min(i, len(v3[which]) - 1)
    v3[which][i] = a
    d = _tmpdir()
    p = H.write_keras(d / "w.keras", keras_base["layers"], v3)
    _load_and_trace(p, keras_base["features"])


# ------------------------------------------------------------------------------------------
# inputs, model info, atomic writes, trace indexing
# ------------------------------------------------------------------------------------------
@SETTINGS
@given(body=st.text(st.sampled_from("0123456789.,; \t\n-+eEnaif#x"), max_size=200))
def test_any_csv_text_is_an_array_or_an_input_error(body):
    from lstmviz.io.inputs import read_array

    p = _tmpdir() / "in.csv"
    p.write_text(body)
    try:
        a = read_array(p)
    except InputError:
        return
    assert a.ndim == 2 and a.dtype == np.float64 and a.size > 0


@SETTINGS
@given(
    a=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, max_side=6),
        elements=st.floats(allow_nan=False, allow_infinity=False),
    ),
    sep=st.sampled_from([",", " ", ";", "\t", ", "]),
)
def test_csv_numbers_read_back_exactly(a, sep):
    from lstmviz.io.inputs import read_array

    p = _tmpdir() / "in.csv"
    p.write_text("\n".join(sep.join(repr(float(v)) for v in row) for row in a) + "\n")
    np.testing.assert_array_equal(read_array(p), a)


@SETTINGS
@given(
    header=st.fixed_dictionaries(
        {
            "descr": st.sampled_from(["<f4", "|O", "<U3", "<c8", "|b1", "V8", "<i8", "x"]),
            "fortran_order": st.booleans() | st.just("yes"),
            "shape": st.lists(st.integers(-3, 2**62), max_size=5).map(tuple) | st.just("(1,"),
        }
    ),
    body=st.binary(max_size=64),
)
def test_any_npy_header_is_an_array_or_an_input_error(header, body):
    from lstmviz.io.inputs import read_array

    h = repr(header).encode()
    h += b" " * ((-len(h) - 11) % 64) + b"\n"
    p = _tmpdir() / "x.npy"
    p.write_bytes(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + body)
    try:
        a = read_array(p)
    except LstmvizError:
        return
    assert a.dtype.kind in "biuf"


@SETTINGS
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_typed_numbers_fit_float32_or_are_refused_as_out_of_range(keras_base, value):
    from lstmviz.io import load_model
    from lstmviz.io.inputs import encode_text

    m = load_model(keras_base["keras"])
    typed = " ".join([repr(value)] * keras_base["features"])
    x = _refusal(encode_text, m, typed, error=InputError)
    if isinstance(x, str):
        assert abs(value) > float(np.finfo(np.float32).max)
        assert "out of float32 range" in x
        return
    assert np.all(np.isfinite(x)) and x.dtype == np.float32
    m.trace(x)


@SETTINGS
@given(text=st.text(max_size=30))
def test_typed_token_text_is_ids_or_an_input_error(text):
    from lstmviz.engine import layers as L
    from lstmviz.engine.cell import LSTMWeights
    from lstmviz.engine.model import Model, Node
    from lstmviz.io.inputs import encode_text

    w = LSTMWeights(*H.lstm_weights(3, 2))
    nodes = [
        Node(L.InputLayer("ids", (None, None), "int64"), 0, []),
        Node(L.Embedding("emb", np.eye(5, 3, dtype=np.float32)), 0, [("ids", 0, 0)]),
        Node(L.LSTM("lstm", w), 0, [("emb", 0, 0)]),
    ]
    m = Model("tok", nodes, [("ids", 0, 0)], [("lstm", 0, 0)])
    try:
        x = encode_text(m, text)
        m.trace(x)
    except InputError:
        return


@SETTINGS
@given(doc=json_value)
def test_any_model_info_json_is_info_or_an_error(doc):
    from lstmviz.io.meta import ModelInfo

    info = _refusal(ModelInfo.from_json, doc, "m.lstmviz.json")
    if isinstance(info, str):
        assert "m.lstmviz.json" in info
        return
    again = ModelInfo.from_json(json.loads(json.dumps(info.to_json())), "again")
    assert again == info


NAME_CHARS = st.characters(exclude_characters="/\x00", codec="utf-8")


@SETTINGS
@given(name=st.text(NAME_CHARS, min_size=1, max_size=255), data=st.binary(max_size=64))
def test_atomic_writes_of_any_name_up_to_255_bytes(name, data):
    from lstmviz.io.atomic import atomic_write_bytes

    assume(name not in (".", "..") and len(name.encode("utf-8")) <= 255)
    d = _tmpdir()
    if isinstance(_refusal(atomic_write_bytes, d / name, data), str):
        assert not os.path.exists(d / name)  # a file system that refuses the name itself
        return
    assert (d / name).read_bytes() == data
    assert os.listdir(d) == [name]


@SETTINGS
@given(t=st.integers(-(2**40), 2**40), b=st.integers(-5, 5))
def test_trace_positions_are_numpy_like_or_refused(t, b):
    from lstmviz.engine.cell import LSTMWeights, run_lstm

    x = np.linspace(-1, 1, 2 * 6 * 3, dtype=np.float32).reshape(2, 6, 3)
    lt = run_lstm(x, LSTMWeights(*H.lstm_weights(3, 2)))
    try:
        c = lt.contributions(t, b)
    except ArgumentError:
        assert not (-6 <= t < 6 and -2 <= b < 2)
        return
    tt, bb = t % 6, b % 2
    ref = lt.contributions(tt, bb)
    for gate in c:
        for k in c[gate]:
            np.testing.assert_array_equal(c[gate][k], ref[gate][k])
    h, _ = lt.prev_state(t, b)
    np.testing.assert_array_equal(h, lt.prev_state(tt, bb)[0])
    assert math.isfinite(float(c["forget_gate"]["z"].sum()))
