"""lstmviz.analysis loads its submodules on first use, with the same public names as before."""

from __future__ import annotations

import subprocess
import sys

import pytest

import lstmviz.analysis as analysis


def test_every_public_name_resolves():
    for name in analysis.__all__:
        assert getattr(analysis, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from lstmviz.analysis import *", namespace)
    assert set(analysis.__all__) <= set(namespace)
    from lstmviz.analysis.corpus import find_pattern
    from lstmviz.analysis.gradients import integrated_gradients

    assert namespace["find_pattern"] is find_pattern
    assert analysis.integrated_gradients is integrated_gradients
    assert analysis.outputs.__name__ == "lstmviz.analysis.outputs"
    assert "what_if" in dir(analysis)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_analysis"):
        analysis.no_such_analysis  # noqa: B018 - the lookup is the test


def _fresh(code: str) -> str:
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return r.stdout.strip()


def test_importing_one_module_leaves_the_rest_unloaded():
    """The viewer imports lstmviz.analysis.levels at start-up: the corpus machinery, the
    gradients' users and the panels' analyses stay unloaded until asked for."""
    out = _fresh(
        "import sys, lstmviz.analysis.levels, lstmviz.analysis.units; "
        "lazy = ('corpus', 'attribution', 'interventions', 'dynamics', 'patching', 'search', "
        "'whatif', 'probes', 'compare', 'decompose', 'diagnose', 'logit_attribution', 'lrp'); "
        "print(','.join(m for m in lazy if 'lstmviz.analysis.' + m in sys.modules))"
    )
    assert out == ""


def test_functions_named_like_their_module_stay_functions():
    """``lstmviz.analysis.compare`` is the function even when its module was imported first."""
    out = _fresh(
        "import lstmviz.analysis.compare, lstmviz.analysis.lrp, lstmviz.analysis.decompose; "
        "import lstmviz.analysis as a; "
        "print(all(callable(f) and type(f).__name__ == 'function' "
        "for f in (a.compare, a.lrp, a.decompose, a.diagnose, a.saturation)))"
    )
    assert out == "True"


def test_the_lazy_table_and_the_type_checkers_imports_agree():
    """``_LAZY`` (what ``__getattr__`` loads) and the TYPE_CHECKING imports (what type
    checkers see) list the same names of the same modules, each public in its module."""
    import ast
    import importlib
    from pathlib import Path

    tree = ast.parse(Path(analysis.__file__).read_text(encoding="utf-8"))
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    )
    typed: dict[str, set[str]] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1, ast.unparse(node)
        if node.module is None:  # from . import outputs, probes: whole modules
            for a in node.names:
                typed.setdefault(a.name, set())
        else:
            typed.setdefault(node.module, set()).update(a.name for a in node.names)
    assert typed == {m: set(names) for m, names in analysis._LAZY.items()}
    for module, names in analysis._LAZY.items():
        mod = importlib.import_module(f"lstmviz.analysis.{module}")
        public = getattr(mod, "__all__", None)
        for name in names:
            assert hasattr(mod, name), (module, name)
            if public is not None:
                assert name in public, (module, name)
    assert len(analysis.__all__) == len(set(analysis.__all__))
