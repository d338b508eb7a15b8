"""Start-up and tracing never import TensorFlow/Keras; engine and io never import Qt."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "lstmviz"

BLOCKER = textwrap.dedent(
    """
    import sys, importlib.abc
    BLOCKED = {"tensorflow", "keras", "tf_keras", "torch", "PySide6", "pyqtgraph"}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked import of {name}")
            return None
    sys.meta_path.insert(0, Block())
    """
)


def _module_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    mods = set()
    for node in tree.body:  # module level only: lazy imports inside functions are allowed
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module.split(".")[0])
    return mods


@pytest.mark.parametrize("sub", ["engine", "io", "analysis"])
def test_no_qt_or_tf_at_module_level(sub):
    bad = {}
    for f in (PKG / sub).rglob("*.py"):
        found = _module_imports(f) & {"tensorflow", "keras", "PySide6", "pyqtgraph", "torch"}
        if found:
            bad[str(f.relative_to(ROOT))] = sorted(found)
    assert not bad, f"forbidden module-level imports: {bad}"


def test_only_train_imports_tensorflow_at_module_level():
    bad = {}
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG)
        if rel.parts[0] == "train":
            continue
        found = _module_imports(f) & {"tensorflow", "keras", "tf_keras"}
        if found:
            bad[str(rel)] = sorted(found)
    assert not bad, f"TensorFlow/Keras imported at module level outside lstmviz/train: {bad}"


def test_load_and_trace_without_tensorflow_or_qt(tmp_path):
    """Load a real .keras and .h5 model and trace it with TF, Keras and Qt unimportable."""
    keras = pytest.importorskip("keras")
    from tests import keras_models as km

    m = km.text_generator()
    km.randomize(m)
    m.save(tmp_path / "m.keras")
    m.save(tmp_path / "m.h5")
    code = BLOCKER + textwrap.dedent(
        f"""
        import numpy as np, lstmviz
        for name in ("m.keras", "m.h5"):
            model = lstmviz.load_model({str(tmp_path)!r} + "/" + name)
            tr = model.trace(np.array([[1, 2, 3, 4]]))
            assert tr.output.shape == (1, 30), tr.output.shape
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not heavy, heavy
        print("ok")
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]
    del keras


def test_cli_info_does_not_import_tensorflow(tmp_path):
    pytest.importorskip("keras")
    from tests import keras_models as km

    m = km.digit_sum()
    m.save(tmp_path / "d.keras")
    code = BLOCKER + textwrap.dedent(
        f"""
        from lstmviz.cli import main
        rc = main(["info", {str(tmp_path / "d.keras")!r}])
        assert rc == 0
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "lstm_digits" in r.stdout


def test_import_contracts_hold():
    """The import-linter contracts of pyproject.toml (layers; Qt only under app; TensorFlow
    only under train; nothing imports app): they see imports inside functions too."""
    pytest.importorskip("importlinter")
    r = subprocess.run(
        [sys.executable, "-m", "importlinter.cli", "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if "No module named importlinter.cli" in r.stderr:
        r = subprocess.run(["lint-imports"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
