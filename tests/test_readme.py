"""The README's Python snippets run as pasted, one after the other as a reader pastes them
into one session (a newcomer copies them first)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
#: blocks about a live torch/Keras model in a notebook: the notebook test runs those
LIVE = ("lstmviz.show(", "lstmviz.trace(model")


def test_readme_python_blocks_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    ran = 0
    for k, code in enumerate(BLOCKS):
        if any(marker in code for marker in LIVE):
            continue
        exec(compile(code, f"README.md python block {k}", "exec"), namespace)
        ran += 1
    assert ran >= 3, "the README lost its Python examples"


@pytest.mark.parametrize("k", range(len(BLOCKS)))
def test_readme_block_is_python(k):
    compile(BLOCKS[k], f"README.md python block {k}", "exec")
