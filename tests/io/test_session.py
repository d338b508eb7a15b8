"""Sessions: round trip, format checks, bounded and pickle-free reading, model hash, atomicity."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz import LstmvizError, Session
from lstmviz.io import session as S


def _full_session(model_path: str | None = None) -> Session:
    rng = np.random.default_rng(0)
    return Session(
        model_path=model_path,
        model_sha256=None if model_path else "ab" * 32,
        input=rng.normal(size=(2, 7, 3)).astype(np.float32),
        input_text="1 2 3 ünïcode ✓",
        layer="lstm_1",
        batch=1,
        units=[0, 4, 2],
        t=5,
        view={"colormap": "viridis", "dim_future": True, "zoom": [1.5, 2], "nested": {"a": None}},
        engine="numpy",
        snapshots=[
            {
                "epoch": e,
                "batch": 10 * e,
                "loss": 1.0 / (e + 1),
                "metrics": {"acc": 0.5},
                "weights": [
                    rng.normal(size=(3, 16)).astype(np.float32),
                    rng.normal(size=(4, 16)).astype(np.float32),
                    np.zeros(16, np.float32),
                ],
            }
            for e in range(3)
        ],
    )


def _rewrite(path: Path, edit) -> None:
    """Rewrite a session zip, passing session.json through ``edit(doc) -> doc``."""
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    doc = edit(json.loads(members["session.json"]))
    members["session.json"] = json.dumps(doc).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in members.items():
            zf.writestr(k, v)


def _replace_member(path: Path, name: str, data: bytes) -> None:
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    members[name] = data
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in members.items():
            zf.writestr(k, v)


def _npy_header_only(shape, descr="<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


# ---- round trip ---------------------------------------------------------------------------
def test_round_trip_equal(tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"PK\x03\x04 not really a model, only hashed")
    s = _full_session(str(model))
    p = s.save(tmp_path / "a.lstmviz")
    back = Session.load(p)
    assert back == s
    assert back.model_sha256 == S.file_sha256(model)
    assert back.snapshots[2]["loss"] == pytest.approx(1 / 3)
    assert back.snapshots[0]["weights"][0].dtype == np.float32
    assert back.source == str(p)
    # and what changed is seen by __eq__
    back.snapshots[1]["weights"][1][0, 0] += 1
    assert back != s


@pytest.mark.parametrize(
    "x",
    [
        None,
        np.array([[1, 5, 0, 3]], dtype=np.int64),
        [np.ones((1, 4, 2), np.float32), np.zeros((1, 3, 5), np.float32)],
    ],
)
def test_round_trip_inputs(tmp_path, x):
    s = Session(model_path=None, input=x, layer=None, units=[])
    back = Session.load(s.save(tmp_path / "x.lstmviz"))
    assert back == s
    if isinstance(x, list):
        assert isinstance(back.input, list)
        assert len(back.input) == 2
    elif x is not None:
        assert back.input.dtype == np.int64


def test_session_is_exported():
    assert lstmviz.Session is Session
    assert "Session" in lstmviz.__all__


def test_file_is_json_and_npz_without_pickle(tmp_path):
    p = _full_session().save(tmp_path / "a.lstmviz")
    with zipfile.ZipFile(p) as zf:
        assert set(zf.namelist()) == {"session.json", "arrays.npz"}
        doc = json.loads(zf.read("session.json"))
        assert doc["format_version"] == S.FORMAT_VERSION
        assert doc["kind"] == "lstmviz-session"
        npz = np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False)
        assert "input_0" in npz.files
        assert "snap_00002_002" in npz.files


def test_object_arrays_refused_on_save(tmp_path):
    s = Session(input=np.array([object()], dtype=object))
    with pytest.raises(LstmvizError, match="object arrays"):
        s.save(tmp_path / "o.lstmviz")
    assert not (tmp_path / "o.lstmviz").exists()


def test_view_must_be_json(tmp_path):
    with pytest.raises(LstmvizError, match="view"):
        Session(view={"a": np.zeros(3)}).save(tmp_path / "v.lstmviz")
    with pytest.raises(LstmvizError, match="view"):
        Session(view={"a": float("nan")}).save(tmp_path / "v.lstmviz")


# ---- reading refuses what it should -------------------------------------------------------
def test_unknown_format_version_is_named(tmp_path):
    p = _full_session().save(tmp_path / "a.lstmviz")
    _rewrite(p, lambda d: {**d, "format_version": 99})
    with pytest.raises(LstmvizError, match=r"unknown session format_version 99"):
        Session.load(p)
    _rewrite(p, lambda d: {k: v for k, v in d.items() if k != "format_version"})
    with pytest.raises(LstmvizError, match="no format_version"):
        Session.load(p)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("batch", "one", r"'batch' must be an integer"),
        ("batch", -1, r"'batch' must be an integer >= 0"),
        ("t", 1.5, r"'t' must be an integer"),
        ("t", True, r"'t' must be an integer"),
        ("units", [1, "2"], r"'units' must be a list of integers"),
        ("units", 3, r"'units' must be a list"),
        ("layer", 7, r"'layer' must be a layer name"),
        ("view", [], r"'view' must be an object"),
        ("engine", 5, r"'engine' must be a string"),
        ("kind", "other-thing", r"not an lstmviz session"),
        ("snapshots", {}, r"'snapshots' must be a list"),
        ("snapshots", [7], r"snapshots\[0\] must be an object"),
        ("snapshots", [{"weights": ["nope"]}], r"missing from arrays.npz"),
        ("input", {"arrays": ["input_9"]}, r"input array 'input_9' is missing"),
        ("input", {"arrays": []}, r"input.arrays must be a non-empty list"),
        ("model", {"sha256": "xyz"}, r"model.sha256 must be 64 hex digits"),
        ("model", {"embedded": "model/gone.keras"}, r"not in the file"),
        ("model", "m.keras", r"'model' must be an object"),
    ],
)
def test_wrong_types_give_specific_messages(tmp_path, key, value, message):
    p = _full_session().save(tmp_path / "a.lstmviz")
    _rewrite(p, lambda d: {**d, key: value})
    with pytest.raises(LstmvizError, match=message) as ei:
        Session.load(p)
    assert str(p) in str(ei.value)


def test_not_a_session(tmp_path):
    p = tmp_path / "x.lstmviz"
    p.write_bytes(b"")
    with pytest.raises(LstmvizError, match="empty"):
        Session.load(p)
    p.write_bytes(b"hello world")
    with pytest.raises(LstmvizError, match="does not start like"):
        Session.load(p)
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("other.txt", "x")
    with pytest.raises(LstmvizError, match=r"no session\.json"):
        Session.load(p)
    with pytest.raises(LstmvizError, match="no such"):
        Session.load(tmp_path / "missing.lstmviz")
    with pytest.raises(LstmvizError, match="directory"):
        Session.load(tmp_path)


def test_pickled_arrays_are_never_unpickled(tmp_path, monkeypatch):
    p = _full_session().save(tmp_path / "a.lstmviz")
    buf = io.BytesIO()
    np.savez(buf, input_0=np.array([{"evil": 1}], dtype=object))  # a pickled member
    _replace_member(p, "arrays.npz", buf.getvalue())

    def boom(*a, **k):
        raise AssertionError("pickle must never run")

    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "load", boom)
    with pytest.raises(LstmvizError, match="only numeric arrays"):
        Session.load(p)


@pytest.mark.parametrize(
    ("key", "shape", "message"),
    [
        ("input_0", (1, 10**9, 1), "timesteps"),
        ("input_0", (10**5, 10**5, 10**5), "too large"),
        ("snap_00000_000", (2**20, 2**20), "too large to be real"),
        ("input_0", (1, 4, 2), "bytes follow"),  # header fine, data missing
    ],
)
def test_huge_declared_shapes_refused_before_allocation(tmp_path, key, shape, message):
    p = _full_session().save(tmp_path / "a.lstmviz")
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr(key + ".npy", _npy_header_only(shape))
    _replace_member(p, "arrays.npz", inner.getvalue())
    with pytest.raises(LstmvizError, match=message):
        Session.load(p)


def _patch_declared_size(path: Path, member: str, size: int) -> None:
    """Overwrite the uncompressed size of ``member`` in the central directory."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    i = data.find(b"PK\x01\x02")
    while i >= 0:
        n = struct.unpack_from("<H", data, i + 28)[0]
        if bytes(data[i + 46 : i + 46 + n]) == name:
            struct.pack_into("<I", data, i + 24, size)
        i = data.find(b"PK\x01\x02", i + 4)
    path.write_bytes(bytes(data))


def test_zip_bombs_refused(tmp_path):
    # a member whose central directory claims 4 GB
    p = _full_session().save(tmp_path / "a.lstmviz")
    _patch_declared_size(p, "session.json", 0xFFFFFFF0)
    with pytest.raises(LstmvizError, match="declares 4294967280 bytes"):
        Session.load(p)
    # a real high-ratio member: 32 MB of spaces compress to ~32 kB
    p = _full_session().save(tmp_path / "b.lstmviz")
    with zipfile.ZipFile(p) as zf:
        doc = zf.read("session.json")
    bomb = doc[:-1] + b" " * (32 * 2**20) + doc[-1:]
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("session.json", bomb)
    with pytest.raises(LstmvizError, match="refused"):
        Session.load(p)
    # a member that decompresses to more than it declares is cut and reported
    p = _full_session().save(tmp_path / "c.lstmviz")
    with zipfile.ZipFile(p) as zf:
        real = zf.getinfo("session.json").file_size
    _patch_declared_size(p, "session.json", real - 10)
    with pytest.raises(LstmvizError, match=r"session\.json"):
        Session.load(p)


def test_too_many_members(tmp_path):
    p = tmp_path / "m.lstmviz"
    with zipfile.ZipFile(p, "w") as zf:
        for i in range(S.MAX_MEMBERS + 1):
            zf.writestr(f"f{i}", "x")
    with pytest.raises(LstmvizError, match="members"):
        Session.load(p)


# ---- atomic writes --------------------------------------------------------------------------
def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    p = tmp_path / "a.lstmviz"
    s = _full_session()
    s.save(p)
    before = p.read_bytes()
    with pytest.raises(LstmvizError):
        Session(view={"bad": object()}).save(p)
    real = zipfile.ZipFile.writestr

    def disk_full_midway(self, name, *a, **k):  # session.json is written, then the disk fills
        if name == "arrays.npz":
            raise OSError(28, "No space left on device")
        return real(self, name, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", disk_full_midway)
    s2 = _full_session()
    s2.t = 99
    with pytest.raises(LstmvizError, match="No space left on device"):
        s2.save(p)
    monkeypatch.undo()
    assert p.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["a.lstmviz"]  # no temporary left
    assert Session.load(p) == s


def test_save_to_missing_directory(tmp_path):
    with pytest.raises(LstmvizError, match="does not exist"):
        Session().save(tmp_path / "nope" / "a.lstmviz")


# ---- the model: hash, embedding, relative path --------------------------------------------
@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    pytest.importorskip("keras")
    from tests import keras_models as km

    d = tmp_path_factory.mktemp("model")
    m = km.digit_sum(4)
    km.randomize(m, seed=3)
    p = d / "digits.keras"
    m.save(p)
    return p


def test_model_hash_and_embedding(tmp_path, model_file):
    import shutil

    mp = tmp_path / "digits.keras"
    shutil.copy(model_file, mp)
    x = np.eye(10, dtype=np.float32)[[3, 1, 4, 1, 5]][None]
    s = Session(model_path=str(mp), input=x, layer="lstm_digits", t=2)
    plain = s.save(tmp_path / "plain.lstmviz")
    embedded = Session(model_path=str(mp), input=x).save(tmp_path / "emb.lstmviz", embed_model=True)
    ref = lstmviz.load_model(mp).trace(x).output

    a = Session.load(plain)
    assert a.model_status() == "ok"
    np.testing.assert_array_equal(a.load_model().trace(x).output, ref)
    assert a.warnings == []

    # the model file changes: warning, and the embedded copy wins where there is one
    other = tmp_path / "other.keras"
    from tests import keras_models as km

    m2 = km.digit_sum(4)
    km.randomize(m2, seed=9)
    m2.save(other)
    shutil.copy(other, mp)
    a = Session.load(plain)
    assert a.model_status() == "changed"
    a.load_model()
    assert any("changed since the session was saved" in w for w in a.warnings)
    b = Session.load(embedded)
    np.testing.assert_array_equal(b.load_model().trace(x).output, ref)
    assert any("embedded" in w for w in b.warnings)

    # the model file is gone
    mp.unlink()
    with pytest.raises(LstmvizError, match="missing and the session has no embedded copy"):
        Session.load(plain).load_model()
    b = Session.load(embedded)
    assert b.model_status() == "missing"
    np.testing.assert_array_equal(b.load_model().trace(x).output, ref)


def test_embedded_model_tampered(tmp_path, model_file):
    p = Session(model_path=str(model_file)).save(tmp_path / "e.lstmviz", embed_model=True)
    _replace_member(p, "model/digits.keras", b"PK\x03\x04 something else")
    with pytest.raises(LstmvizError, match="does not match its SHA-256"):
        Session.load(p)


def test_model_found_beside_moved_session(tmp_path, model_file):
    import shutil

    a = tmp_path / "a"
    a.mkdir()
    shutil.copy(model_file, a / "digits.keras")
    Session(model_path=str(a / "digits.keras")).save(a / "s.lstmviz")
    b = tmp_path / "b"
    os.rename(a, b)  # the folder moved: absolute path gone, relative path still fits
    s = Session.load(b / "s.lstmviz")
    assert s.model_status() == "ok"
    assert s.load_model().name == "digit_sum"
    assert any("using" in w for w in s.warnings)


def test_embedded_bytes_and_hash_agree(tmp_path):
    """The hash saved is the hash of what is embedded, whatever the file on disk holds."""
    model = tmp_path / "m.keras"
    model.write_bytes(b"version one")
    s = Session(model_path=str(model))
    s.save(tmp_path / "a.lstmviz")  # hash of version one, nothing embedded
    model.write_bytes(b"version two")
    back = Session.load(tmp_path / "a.lstmviz")
    back.save(tmp_path / "b.lstmviz", embed_model=True)  # embeds version two
    again = Session.load(tmp_path / "b.lstmviz")
    assert again.model_bytes == b"version two"
    assert again.model_status() == "ok"
    given = Session(model_path=str(model), model_bytes=b"other bytes")  # given, not read
    given.save(tmp_path / "c.lstmviz")
    assert Session.load(tmp_path / "c.lstmviz").model_bytes == b"other bytes"


def test_the_before_training_snapshot_round_trips(tmp_path):
    """Training's first snapshot holds the weights before the first batch (batch -1): a
    session with it saves and loads (the autosave after any training failed on it)."""
    s = _full_session()
    s.snapshots[0]["batch"] = -1
    s.snapshots[0]["epoch"] = 0
    p = tmp_path / "s.lstmviz"
    s.save(p)
    back = Session.load(p)
    assert [x["batch"] for x in back.snapshots] == [-1, 10, 20]
    s.snapshots[0]["batch"] = -2  # nothing else below zero
    with pytest.raises(LstmvizError, match="batch must be an integer >= -1"):
        s.save(tmp_path / "bad.lstmviz")
    _rewrite(p, lambda d: {**d, "snapshots": [{**d["snapshots"][0], "batch": -2}]})
    with pytest.raises(LstmvizError, match="'batch' must be an integer >= -1"):
        Session.load(p)
