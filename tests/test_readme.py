"""The README's Python snippets run as pasted (a newcomer copies them first)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("k", range(len(BLOCKS)))
def test_readme_python_block_runs(k, tmp_path, monkeypatch):
    code = BLOCKS[k]
    if "lstmviz.show(" in code or "import torch" in code or "import keras" in code:
        pytest.skip("needs a display or a framework: covered by the notebook test")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md python block {k}", "exec"), {"__name__": "__readme__"})
