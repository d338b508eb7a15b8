"""Nothing lost: what a session holds survives re-saving, interrupted saves clean up after
themselves, and long names save.

- a model that exists only embedded in a session is embedded again when the session is
  re-saved -- also when a new session is made from the model it loaded;
- fields, arrays and members a later lstmviz (same major format version) wrote are kept;
- temporary files of a save that a kill interrupted are removed at the next save to that
  folder (never those of a save in progress);
- names of 243-255 bytes save (the temporary file's name must fit in NAME_MAX too).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lstmviz.errors import LstmvizError
from lstmviz.io.atomic import atomic_open, atomic_target, clean_stale_temps
from lstmviz.io.session import Session
from tests.io import hostile as H

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def model(tmp_path):
    return H.digit_lstm_files(tmp_path)["keras"]


def _members(p: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(p) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def _write_members(p: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(p, "w") as z:
        for k, v in members.items():
            z.writestr(k, v)


# ---- the embedded model ---------------------------------------------------------------------
def test_resaving_a_session_keeps_its_embedded_model(tmp_path, model):
    x = np.ones((1, 5, 3), np.float32)
    shared = Session(model_path=str(model), input=x, t=2).save(
        tmp_path / "shared.lstmviz", embed_model=True
    )
    model.unlink()  # the colleague who receives it has only the session
    s = Session.load(shared)
    again = s.save(tmp_path / "again.lstmviz")  # embed_model not asked: kept anyway
    m = Session.load(again).load_model()
    assert m.name == "hostile"
    np.testing.assert_array_equal(Session.load(again).input, x)


def test_a_new_session_from_an_embedded_model_keeps_it(tmp_path, model):
    shared = Session(model_path=str(model)).save(tmp_path / "shared.lstmviz", embed_model=True)
    original = model.read_bytes()
    model.unlink()
    m = Session.load(shared).load_model()
    assert m.meta["embedded"] is True
    s = Session(input=np.zeros((1, 4, 3), np.float32), t=1)  # what the viewer shows now
    assert s.keep_embedded(m)
    p = s.save(tmp_path / "autosave.lstmviz", embed_model=False)
    back = Session.load(p)
    assert back.model_bytes == original
    assert back.model_path == str(model)
    assert back.load_model().name == "hostile"
    assert not Session().keep_embedded(H)  # anything without an embedded copy: no-op


# ---- fields of a later version -----------------------------------------------------------
def test_fields_of_a_later_version_survive_a_resave(tmp_path):
    snaps = [{"epoch": 1, "batch": 2, "weights": [np.ones((2, 3), np.float32)], "loss": 0.5}]
    p = Session(input=np.zeros((1, 4, 2), np.float32), t=3, snapshots=snaps).save(
        tmp_path / "v1.lstmviz"
    )
    members = _members(p)
    doc = json.loads(members["session.json"])
    doc["format_minor"] = 7
    doc["annotations"] = [{"t": 2, "text": "the carry", "style": {"color": "red"}}]
    doc["model"]["origin"] = {"url": "https://example.org/m.keras"}
    doc["input"]["tokenizer"] = "chars"
    doc["input"]["arrays_extra"] = ["future_mask"]
    doc["snapshots"][0]["lr"] = 0.001
    members["session.json"] = json.dumps(doc).encode()
    npz = io.BytesIO(members["arrays.npz"])
    arrays = dict(np.load(npz))
    arrays["future_mask"] = np.array([[1, 0, 1, 1]], np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    members["arrays.npz"] = buf.getvalue()
    members["thumbnail.png"] = b"\x89PNG not really"
    _write_members(p, members)

    s = Session.load(p)
    assert s.t == 3 and s.snapshots[0]["loss"] == 0.5
    s.t = 1  # the user changes something and saves
    q = s.save(tmp_path / "resaved.lstmviz")
    doc2 = json.loads(_members(q)["session.json"])
    assert doc2["format_minor"] == 7
    assert doc2["annotations"] == doc["annotations"]
    assert doc2["model"]["origin"] == doc["model"]["origin"]
    assert doc2["input"]["tokenizer"] == "chars"
    assert doc2["input"]["arrays_extra"] == ["future_mask"]
    assert doc2["snapshots"][0]["lr"] == 0.001
    assert doc2["t"] == 1
    arrays2 = np.load(io.BytesIO(_members(q)["arrays.npz"]))
    np.testing.assert_array_equal(arrays2["future_mask"], arrays["future_mask"])
    assert _members(q)["thumbnail.png"] == b"\x89PNG not really"
    again = Session.load(q)
    assert again.unknown == s.unknown and again == s


def test_a_different_major_version_is_still_refused(tmp_path):
    p = Session(t=1).save(tmp_path / "s.lstmviz")
    members = _members(p)
    doc = json.loads(members["session.json"])
    doc["format_version"] = 2
    members["session.json"] = json.dumps(doc).encode()
    _write_members(p, members)
    with pytest.raises(LstmvizError, match="format_version 2"):
        Session.load(p)


# ---- interrupted saves -------------------------------------------------------------------------
WRITER = r"""
import sys, time
from lstmviz.io.atomic import atomic_open
with atomic_open(sys.argv[1], "wb") as fh:
    fh.write(b"half a session")
    fh.flush()
    print("writing", flush=True)
    time.sleep(600)
"""


def _writer(target: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    return proc


def _temps(d: Path) -> list[str]:
    return sorted(n for n in os.listdir(d) if n.startswith("."))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_temp_files_of_a_killed_save_are_cleaned_at_the_next_save(tmp_path):
    target = tmp_path / "work.lstmviz"
    proc = _writer(target)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    left = _temps(tmp_path)
    assert len(left) == 1  # the kill left its temporary file beside the user's
    Session(t=1).save(tmp_path / "other.lstmviz")  # any save to that folder
    assert _temps(tmp_path) == []
    assert not target.exists()  # the interrupted save never replaced anything


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_a_save_in_progress_is_never_cleaned(tmp_path):
    target = tmp_path / "work.lstmviz"
    proc = _writer(target)
    try:
        Session(t=1).save(tmp_path / "other.lstmviz")
        assert clean_stale_temps(tmp_path) == []
        assert len(_temps(tmp_path)) == 1  # still there: its writer is alive and holds it
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


# ---- long names ----------------------------------------------------------------------------
@pytest.mark.parametrize("n", [243, 250, 255])
def test_names_up_to_255_bytes_save(tmp_path, n):
    name = "s" * (n - len(".lstmviz")) + ".lstmviz"
    p = Session(t=4).save(tmp_path / name)
    assert Session.load(p).t == 4
    assert os.listdir(tmp_path) == [name]


def test_multibyte_names_up_to_255_bytes_save(tmp_path):
    name = "é" * 123 + ".lstmviz"  # 246 characters, 254 bytes
    assert len(name.encode()) == 254
    p = Session(t=2).save(tmp_path / name)
    assert Session.load(p).t == 2
    with atomic_target(tmp_path / ("ü" * 125 + ".png")) as tmp:
        assert len(tmp.name.encode()) <= 255 and tmp.suffix == ".png"
        tmp.write_bytes(b"png")
    assert sorted(os.listdir(tmp_path)) == sorted([name, "ü" * 125 + ".png"])


def test_a_name_over_255_bytes_is_refused_with_the_limit(tmp_path):
    with pytest.raises(LstmvizError, match="at most 255"):
        Session().save(tmp_path / ("s" * 250 + ".lstmviz"))
    with pytest.raises(LstmvizError, match="at most 255"), atomic_open(tmp_path / ("x" * 256)):
        pass
