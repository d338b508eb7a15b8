"""lstmviz.analysis imports NumPy and the engine only: no Qt, no TensorFlow, no torch."""

from __future__ import annotations

import subprocess
import sys


def test_analysis_imports_no_qt_or_frameworks():
    code = (
        "import sys; from lstmviz.analysis import *; "  # every analysis (they load on first use)
        "bad = [m for m in ('PySide6', 'pyqtgraph', 'tensorflow', 'keras', 'torch', "
        "'scipy', 'lstmviz.app') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "", f"lstmviz.analysis pulled in: {out.stdout.strip()}"
