"""Hostile PyTorch and safetensors files: refused with an LstmvizError naming the case, no
payload ever runs, nothing large is allocated."""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

import lstmviz
from lstmviz import budget
from lstmviz.errors import MemoryBudgetError, ModelFileError, UnsafeModelError

torch = pytest.importorskip("torch")


class _System:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickles_calling_os_system_are_unsafe_whatever_torch_says(tmp_path, monkeypatch):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(3), "p": _System(marker)}, path)
    with pytest.raises(UnsafeModelError, match=r"posix.system|nt.system"):
        lstmviz.load_model(path)
    assert not marker.exists()

    # the verdict does not depend on torch's wording: the globals are read before torch.load
    def reworded(*a, **k):
        raise pickle.UnpicklingError("Weights only load failed. (new wording)")

    monkeypatch.setattr(torch, "load", reworded)
    with pytest.raises(UnsafeModelError, match=r"system"):
        lstmviz.load_model(path)
    assert not marker.exists()


def test_truncated_data_pkl(tmp_path):
    good = tmp_path / "ok.pt"
    torch.save(torch.nn.LSTM(3, 2).state_dict(), good)
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    pkl = next(n for n in members if n.endswith("data.pkl"))
    for cut in (1, len(members[pkl]) // 2, len(members[pkl]) - 1):
        bad = tmp_path / f"cut{cut}.pt"
        with zipfile.ZipFile(bad, "w") as z:
            for n, d in members.items():
                z.writestr(n, d[:cut] if n == pkl else d)
        with pytest.raises(ModelFileError, match=r"data.pkl is truncated or damaged"):
            lstmviz.load_model(bad)


def test_deflated_storage_bomb_is_refused_by_its_declared_size(tmp_path):
    good = tmp_path / "ok.pt"
    torch.save(torch.nn.LSTM(3, 2).state_dict(), good)
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w") as z:
        for n, d in members.items():
            z.writestr(n, d)
        z.writestr(
            next(iter(members)).split("/")[0] + "/data/99",
            b"\0" * (64 * 2**20),
            compress_type=zipfile.ZIP_DEFLATED,
        )
    assert bomb.stat().st_size < 2**20  # 64 MiB deflated into a few hundred KB
    with budget.budget_set_to("16MiB"), pytest.raises(MemoryBudgetError, match="uncompressed"):
        lstmviz.load_model(bomb)


def _st(path, header, data=b"\0" * 16):
    h = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)
    return path


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"a": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, "unsupported dtype"),
        ({"a": {"dtype": {"F": 32}, "shape": [1], "data_offsets": [0, 4]}}, "unsupported dtype"),
        ({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, "malformed shape"),
        (
            {"a": {"dtype": "F32", "shape": [2**62, 2**62, 4], "data_offsets": [0, 0]}},
            "do not fit shape",
        ),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 2**70]}}, "do not fit"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"{" * 50_000, "bad JSON header|nested too deeply"),
    ],
    ids=[
        "list-dtype",
        "dict-dtype",
        "true-in-shape",
        "int64-overflow",
        "huge-offset",
        "deep",
        "deep-open",
    ],
)
def test_safetensors_headers(tmp_path, header, message):
    path = _st(tmp_path / "h.safetensors", header)
    with pytest.raises(ModelFileError, match=message):
        lstmviz.load_model(path)
    from lstmviz.io.torch_format import read_safetensors_raw

    with pytest.raises(ModelFileError, match=message):
        read_safetensors_raw(path)


def test_hostile_files_in_a_memory_capped_child(tmp_path):
    """The same files in a child process whose memory is capped: refused, never killed."""
    malicious = pytest.importorskip("tests.io.malicious")
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(3), "p": _System(marker)}, evil)
    r = malicious.run_capped(
        "lstmviz.io:load_model",
        [str(evil)],
        mem_mb=400,
        marker=str(marker),
        preimport=("torch",),
    )
    r.assert_refused("UnsafeModelError", "system")
    huge = _st(
        tmp_path / "huge.safetensors",
        {"a": {"dtype": "F32", "shape": [2**40], "data_offsets": [0, 2**42]}},
    )
    r = malicious.run_capped("lstmviz.io:load_model", [str(huge)], mem_mb=200)
    r.assert_refused("ModelFileError")
    assert np.isfinite(r.peak_mb) and r.peak_mb < 100
