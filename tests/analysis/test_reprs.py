"""What a notebook shows for a trace or an analysis result left as a cell's last line: what
the object is (layers, shapes), not every value of every array (85,000 characters for a
small trace before)."""

from __future__ import annotations

import numpy as np

import lstmviz
from lstmviz.analysis import ablation_scan, attribute, what_if
from lstmviz.engine.reprs import dataclass_repr, short
from lstmviz.examples import EXAMPLES_DIR


def _model_and_input():
    model = lstmviz.load_model(EXAMPLES_DIR / "digit_sum.keras")
    x = np.eye(10, dtype=np.float32)[[[4, 7, 3, 9, 1, 8, 2, 6, 5, 0, 3, 7]]]
    return model, x


def test_trace_and_layer_trace_say_what_they_are() -> None:
    model, x = _model_and_input()
    tr = model.trace(x)
    name = tr.layer_names[0]
    lt = tr.layer(name)
    assert repr(tr) == (
        f"Trace(layers={tr.layer_names!r}, batch=1, T=12, "
        f"output=<float32 {np.shape(tr.output)}>, engine={tr.engine!r})"
    )
    assert repr(lt) == f"LayerTrace({name!r}, batch=1, T=12, units={lt.units})"


def test_analysis_results_show_arrays_by_shape() -> None:
    model, x = _model_and_input()
    name = model.lstm_trace_names[0]
    w = what_if(model, x, 3, np.eye(10, dtype=np.float32)[5])
    r = repr(w)
    assert r.startswith("WhatIf(t=3, batch=0, x_before=<float32 (1, 12, 10)>")
    assert f"before=<Trace [{name!r}]>" in r and len(r) < 1500
    scan = ablation_scan(model, x, (-1, 3), name)
    assert f"effect=<float64 ({model.lstm(name).units},)>" in repr(scan)
    assert len(repr(scan)) < 600
    att = attribute(model, x, (-1, 3), "gradient")
    assert "scores=<float64 (1, 12)>" in repr(att) and len(repr(att)) < 600


def test_short_summaries() -> None:
    assert short(np.zeros((2, 3), np.float32)) == "<float32 (2, 3)>"
    assert short(np.float64(2.5)) == "2.5" and short(np.array(3)) == "3"
    assert short(list(range(10))) == "[0, 1, 2, 3, 4, 5, ... 10 items]"
    assert short((1,)) == "(1,)"
    assert short({"a": np.ones(4)}) == "{'a': <float64 (4,)>}"
    assert short("x" * 200) == "'" + "x" * 76 + "..."

    from dataclasses import dataclass, field

    @dataclass
    class R:
        a: np.ndarray
        b: int = 1
        hidden: str = field(default="", repr=False)

    assert dataclass_repr(R(np.zeros(3))) == "R(a=<float64 (3,)>, b=1)"
