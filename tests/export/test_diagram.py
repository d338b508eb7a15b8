"""The cell diagram: every number on it equals the trace at that step; the scene; the renderer."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import lstmviz
from lstmviz.errors import LstmvizError
from lstmviz.examples import get_example
from lstmviz.export.diagram import (
    DiagramFigure,
    WireValue,
    cell_scene,
    diagram_values,
    fmt,
    layer_values,
    stacked_layers,
    unit_values,
    write_diagram_animation,
)
from lstmviz.io.inputs import encode_text, token_labels

EXAMPLES = {
    "digit_sum": "4 7 3 9 1 8",
    "binary_addition": "1011011 + 0110110",
    "stacked_lstm": None,
}


@pytest.fixture(scope="module", params=list(EXAMPLES))
def bundled(request):
    ex = get_example(request.param)
    m = lstmviz.load_model(ex.path)
    x = encode_text(m, EXAMPLES[request.param] or ex.info.example, ex.info)
    return request.param, m, x, m.trace(x), token_labels(m, x, ex.info)


def _number(text: str) -> float:
    return float(text.replace("−", "-"))


def test_every_unit_number_equals_the_trace(bundled):
    name, _m, _x, tr, _labels = bundled
    lts = stacked_layers(tr)
    for k, lt in enumerate(lts):
        for t in range(lt.timesteps):
            for u in range(lt.units):
                per_layer = [min(u, other.units - 1) for other in lts]
                v = diagram_values(tr, t, 0, per_layer)
                w = {key.split("/", 1)[1]: val for key, val in v.items() if key.startswith(f"{k}/")}
                want = {
                    "f": lt.forget_gate[0, t, u],
                    "i": lt.input_gate[0, t, u],
                    "o": lt.output_gate[0, t, u],
                    "g": lt.candidate[0, t, u],
                    "c": lt.cell[0, t, u],
                    "h": lt.hidden[0, t, u],
                    "h_up": lt.hidden[0, t, u],
                    "c_prev": lt.cell_prev[0, t, u],
                    "h_prev": lt.hidden_prev[0, t, u],
                    "z_f": lt.z_f[0, t, u],
                    "z_i": lt.z_i[0, t, u],
                    "z_c": lt.z_c[0, t, u],
                    "z_o": lt.z_o[0, t, u],
                }
                for key, ref in want.items():
                    got = w[key]
                    assert isinstance(got, WireValue)
                    # the value is the trace's (pre-activations: the split's sum, float32)
                    tol = 2e-5 * max(1.0, abs(float(ref))) if key.startswith("z_") else 0.0
                    assert got.value == pytest.approx(float(ref), abs=tol), (name, key, t, u)
                    # ... and the number printed is that value, rounded as printed
                    assert _number(got.text) == pytest.approx(
                        float(ref), abs=0.0051 * max(1, abs(float(ref)))
                    ), (name, key)
                # the products and the sum on the belt add up
                assert w["kept"].value + w["written"].value == pytest.approx(
                    float(lt.cell[0, t, u]), abs=1e-5
                )
                assert w["o"].value * w["tanh_c"].value == pytest.approx(
                    float(lt.hidden[0, t, u]), abs=1e-5
                )
                np.testing.assert_array_equal(w["x"].value, lt.x[0, t])


def test_every_layer_strip_equals_the_trace(bundled):
    _name, _m, _x, tr, _labels = bundled
    for k, lt in enumerate(stacked_layers(tr)):
        for t in range(lt.timesteps):
            v = diagram_values(tr, t, 0, None)
            got = {key.split("/", 1)[1]: val for key, val in v.items() if key.startswith(f"{k}/")}
            np.testing.assert_array_equal(got["f"], lt.forget_gate[0, t])
            np.testing.assert_array_equal(got["i"], lt.input_gate[0, t])
            np.testing.assert_array_equal(got["g"], lt.candidate[0, t])
            np.testing.assert_array_equal(got["o"], lt.output_gate[0, t])
            np.testing.assert_array_equal(got["c"], lt.cell[0, t])
            np.testing.assert_array_equal(got["h"], lt.hidden[0, t])
            np.testing.assert_array_equal(got["c_prev"], lt.cell_prev[0, t])
            np.testing.assert_array_equal(got["h_prev"], lt.hidden_prev[0, t])
            np.testing.assert_allclose(got["z_f"], lt.z_f[0, t], rtol=1e-5, atol=2e-5)
            np.testing.assert_allclose(got["kept"] + got["written"], lt.cell[0, t], atol=1e-5)


def test_the_rendered_numbers_are_the_trace(bundled, tmp_path):
    """Read the numbers back out of the SVG: each one is the trace's value at that step."""
    name, _m, _x, tr, labels = bundled
    lt = tr.layers[0]
    t = min(3, lt.timesteps - 1)
    fig = DiagramFigure(tr, t=t, units=0, labels=labels, model_name=name, ghosts=False)
    out = fig.save(tmp_path / "d.svg")
    texts = [
        "".join(el.itertext())
        for el in ET.parse(out).getroot().iter("{http://www.w3.org/2000/svg}text")
    ]
    shown = []
    for s in texts:
        m = re.fullmatch(r"(?:[fio] = )?(−?\d+\.\d+|−?\d+)", s.strip())
        if m:
            shown.append(_number(m.group(1)))
    vals = diagram_values(tr, t, 0, 0)
    trace_numbers = {
        round(float(v.value), 2)
        for v in vals.values()
        if isinstance(v, WireValue) and np.ndim(v.value) == 0
    }
    assert len(shown) >= 14
    for n in shown:
        assert any(abs(n - ref) <= 0.051 for ref in trace_numbers), n
    assert f"unit 0  ·  t = {t}" in fig.title_text()


def test_adder_draws_the_identity():
    ex = get_example("binary_addition")
    m = lstmviz.load_model(ex.path)
    x = encode_text(m, "1011 + 0110", ex.info)
    lt = m.trace(x).layers[0]
    assert lt.weights.activation == "linear"
    w = unit_values(lt, 2, 0, 2)
    assert w["tanh_c"].value == w["c"].value  # no tanh: the cell goes out as it is
    assert "(no activation)" in w["tanh_c"].formula
    assert w["g"].value == pytest.approx(w["z_c"].value, abs=1e-5)
    scene = cell_scene(["lstm"], activations=["linear"])
    assert {b.text for b in scene.boxes if b.kind == "activation"} == {"id"}
    assert cell_scene(1).boxes[2].text == "tanh"
    assert cell_scene(1, activations=["relu"]).boxes[2].text == "relu"


def test_scene_is_renderer_agnostic_and_complete():
    import json

    s = cell_scene(["lstm_1", "lstm_2"])
    keys = {w.key for w in s.wires if not w.ghost}
    assert keys >= {
        "x",
        "h_prev",
        "c_prev",
        "z_f",
        "z_i",
        "z_c",
        "z_o",
        "f",
        "i",
        "g",
        "o",
        "kept",
        "written",
        "c",
        "tanh_c",
        "h",
    }
    assert {w.id for w in s.wires if not w.ghost and w.layer == 1} >= {"1/c", "1/h", "1/x"}
    # layer 1 sits above layer 0: its input x comes from layer 0's h going up
    up = s.wire("0/h_up").points
    x1 = s.wire("1/x").points
    assert up[-1] == x1[0] and up[-1][1] > x1[-1][1]
    assert {c.ghost for c in s.cells} == {"", "prev", "next"}
    # every part names the quantity it computes (the app highlights its equation and row)
    parts = {b.id: b.quantity for b in s.boxes if not b.ghost and b.layer == 0}
    assert parts["0/box_f"] == "forget_gate" and parts["0/add"] == "cell"
    assert parts["0/mul_o"] == "hidden" and all(parts.values())
    # the ghost of t+1 picks up c and h where this cell's end
    c_end = s.wire("0/c").points[-1]
    assert any(w.ghost and w.points[0] == c_end for w in s.wires)
    json.dumps(s.to_dict())
    with pytest.raises(LstmvizError, match="no wire"):
        s.wire("7/c")
    with pytest.raises(LstmvizError, match="at least one"):
        cell_scene([])


def test_bad_arguments_are_named(bundled):
    _name, _m, _x, tr, _labels = bundled
    lt = tr.layers[0]
    with pytest.raises(LstmvizError, match="out of range"):
        unit_values(lt, lt.timesteps, 0, 0)
    with pytest.raises(LstmvizError, match="unit 99"):
        unit_values(lt, 0, 0, 99)
    with pytest.raises(LstmvizError, match="batch item 5"):
        layer_values(lt, 0, 5)
    with pytest.raises(LstmvizError, match="one per layer"):
        diagram_values(tr, 0, 0, [0] * 5)


def test_fmt():
    assert fmt(-0.004) == "0.00"
    assert fmt(-1.234) == "−1.23"
    assert fmt(17.04) == "17.0"
    assert fmt(-123.4) == "−123"
    assert fmt(float("nan")) == "—"


def test_slide_png_is_1080p_and_type_is_legible(tmp_path):
    ex = get_example("digit_sum")
    m = lstmviz.load_model(ex.path)
    x = encode_text(m, "4 7 3", ex.info)
    fig = DiagramFigure(m.trace(x), t=1, units=5, style="slide")
    assert fig.pixel_size() == (1920, 1080)
    # numbers at least 28 px tall on a 1080p projector
    assert fig.number_pt * fig.dpi / 72 >= 28
    out = fig.save(tmp_path / "d.png")
    from PIL import Image

    with Image.open(out) as im:
        assert im.size == (1920, 1080)
    pdf = fig.save(tmp_path / "d.pdf")
    assert pdf.read_bytes()[:4] == b"%PDF"


@pytest.mark.parametrize("ext", ["gif", "mp4"])
def test_diagram_animation(tmp_path, ext):
    ex = get_example("binary_addition")
    m = lstmviz.load_model(ex.path)
    x = encode_text(m, "101 + 011", ex.info)
    tr = m.trace(x)
    fig = DiagramFigure(tr, t=0, units=None, style="paper", dpi=40)
    seen = []
    out = write_diagram_animation(
        tmp_path / f"d.{ext}", fig, fps=4, progress=lambda i, n: seen.append(i)
    )
    assert out.stat().st_size > 0 and seen == list(range(1, tr.timesteps + 1))
    if ext == "gif":
        import imageio.v3 as iio

        assert iio.imread(out, index=None).shape[0] == tr.timesteps
