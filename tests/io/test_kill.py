"""SIGKILL in the middle of repeated session saves: the file on disk always loads.

A child process saves a session to the same path in a loop, each version with different
content (every array filled with the version number) and prints the version after each save
returns. The parent kills it with SIGKILL at pseudo-random moments (fixed seed), many times;
after every kill ``Session.load`` must succeed and give the last reported version or the one
being written when the kill came -- never a torn file, never an older one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lstmviz import Session

KILLS = 40
SEED = 7
ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys
import numpy as np
from lstmviz import Session

path, start = sys.argv[1], int(sys.argv[2])
big = np.empty((64, 1024), np.float32)  # 256 kB per snapshot array: writes take a while
v = start
while True:
    big.fill(v)
    s = Session(model_path=None, input=np.full((1, 8, 3), v, np.float32), layer=f"v{v}",
                t=v, units=[v % 7], view={"version": v},
                snapshots=[{"epoch": v, "batch": i, "weights": [big, big[:, :10]]}
                           for i in range(4)])
    s.save(path)
    print(v, flush=True)
    v += 1
"""


def _version(s: Session) -> int:
    """The version a loaded session holds, checking every part agrees (no mixed content)."""
    v = s.t
    assert s.layer == f"v{v}"
    assert s.view == {"version": v}
    assert s.units == [v % 7]
    assert np.all(s.input == v)
    assert len(s.snapshots) == 4
    for snap in s.snapshots:
        assert snap["epoch"] == v
        assert all(np.all(w == v) for w in snap["weights"])
    return v


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_during_repeated_saves_never_leaves_a_broken_file(tmp_path):
    rng = np.random.default_rng(SEED)
    path = tmp_path / "work.lstmviz"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    expected_next = 0
    mid_write = 0
    for k in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(expected_next)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        try:
            first = proc.stdout.readline()  # one save done: the loop is running
            assert first.strip(), proc.stderr.read()
            time.sleep(float(rng.uniform(0.0, 0.25)))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            rest = proc.stdout.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        reported = [int(x) for x in (first + rest).split()]
        last = reported[-1]
        loaded = _version(Session.load(path))
        # the last save that returned, or the one in flight when the kill came
        assert loaded in (last, last + 1), (k, loaded, last)
        leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        # a kill cannot clean up its temporary file; the next save to the folder does, so
        # at most this kill's own file is there, never those of the kills before
        assert len(leftovers) <= 1, leftovers
        mid_write += bool(leftovers)
        expected_next = loaded + 1
    # how many kills hit a write in progress (left a temporary file behind)
    print(f"\n{KILLS} kills, {mid_write} in the middle of a write; the file loaded every time")
    Session(t=0).save(tmp_path / "other.lstmviz")  # one more save cleans the last one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.lstmviz", "work.lstmviz"]
