"""``import lstmviz`` alone gives the subpackages the README calls through it
(``lstmviz.bridge.live_model``, ``lstmviz.analysis.rank_units``), loading each on first use."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys
    import lstmviz
    assert "lstmviz.bridge" not in sys.modules and "lstmviz.analysis.search" not in sys.modules
    assert callable(lstmviz.bridge.live_model)
    assert issubclass(lstmviz.bridge.VerificationError, lstmviz.LstmvizError)
    assert callable(lstmviz.analysis.rank_units) and callable(lstmviz.analysis.diagnose)
    assert lstmviz.export.__name__ == "lstmviz.export"
    assert lstmviz.examples.EXAMPLES_DIR.is_dir()
    assert "PySide6" not in sys.modules
    try:
        lstmviz.no_such_thing
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise SystemExit("no AttributeError")
    print("ok")
    """
)


def test_subpackages_are_attributes_after_import_lstmviz() -> None:
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
