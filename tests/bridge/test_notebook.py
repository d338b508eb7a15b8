"""docs/notebooks/quickstart.ipynb runs top to bottom in a real Jupyter kernel (nbclient,
offscreen Qt): two lines give the gates of a torch and a Keras model, inline figures and an
animation render, and lstmviz.show returns a handle without blocking the kernel."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")
pytest.importorskip("torch")
pytest.importorskip("keras")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "docs" / "notebooks" / "quickstart.ipynb"


def _text(cell):
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(o.get("text", ""))
        elif "data" in o:
            out.append(o["data"].get("text/plain", ""))
    return "".join(out)


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.skip("no python3 Jupyter kernel installed")
    # the kernel imports this checkout's lstmviz, draws offscreen, keeps TensorFlow quiet
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("LSTMVIZ_TESTING", "1")
    work = tmp_path / "quickstart.ipynb"
    shutil.copy(NOTEBOOK, work)
    nb = nbformat.read(work, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on any error
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "lstmviz/__init__.py" not in _text(code[0])
    names = _text(code[1])
    assert "['rnn']" in names and "(2, 20, 16)" in names
    assert "output equals model(x): True" in _text(code[2])
    plot = code[3]["outputs"]
    assert any("image/png" in o.get("data", {}) for o in plot), plot
    anim = code[4]["outputs"]
    assert any("<script" in o.get("data", {}).get("text/html", "") for o in anim)
    assert "['encoder', 'decoder']" in _text(code[5]) and "(1, 3, 8)" in _text(code[5])
    assert any("image/png" in o.get("data", {}) for o in code[6]["outputs"])
    assert "t=5 of 30" in _text(code[7]) and "open" in _text(code[7])
    assert "(900, 1600, 4)" in _text(code[8])
    assert "'framework': 'torch'" in _text(code[10]) and "'tolerance': 1e-05" in _text(code[10])
    assert _text(code[11]).startswith("[((")  # the scan's ranking: (units, effect), ...
