"""Importing the bridge loads neither torch, Keras, TensorFlow nor Qt: a framework is
imported only when one of its models is passed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys, importlib.abc
    BLOCKED = {"tensorflow", "keras", "tf_keras", "torch", "PySide6", "pyqtgraph", "matplotlib"}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked import of {name}")
            return None
    sys.meta_path.insert(0, Block())
    import numpy as np
    import lstmviz, lstmviz.bridge, lstmviz.bridge.torch, lstmviz.bridge.keras
    import lstmviz.export.inline
    from lstmviz.bridge import framework_of
    from lstmviz.engine import LSTMWeights, run_lstm
    assert framework_of(np.zeros(3)) is None
    assert callable(lstmviz.trace)
    try:
        lstmviz.trace(object(), np.zeros((1, 2, 3)))
    except lstmviz.LstmvizError as e:
        assert "torch.nn.Module or keras.Model" in str(e)
    else:
        raise SystemExit("no error")
    print("ok")
    """
)


def test_bridge_imports_no_framework():
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
