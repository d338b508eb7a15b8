"""Exports for the lecture hall: 1080p slides, animations with the token and output rows,
"all six now" without hidden scaling, the diagram from the command line."""

from __future__ import annotations

import numpy as np
import pytest

import lstmviz
from lstmviz.analysis.all_six import all_six_now
from lstmviz.errors import LstmvizError
from lstmviz.examples import get_example
from lstmviz.export import Source, export_trace
from lstmviz.export.cli import main as export_main
from lstmviz.io.inputs import encode_text


def _bundled(name, text=None):
    ex = get_example(name)
    m = lstmviz.load_model(ex.path)
    x = encode_text(m, text or ex.info.example, ex.info)
    return m.trace(x), Source(model=m, model_path=ex.path, info=ex.info)


@pytest.mark.parametrize("quantities", [None, ["cell"]])
def test_slide_style_is_exactly_1080p(tmp_path, quantities):
    from PIL import Image

    tr, src = _bundled("digit_sum", "4 7 3 9 1")
    out = export_trace(
        tmp_path / "s.png",
        tr,
        src,
        style="slide",
        quantities=quantities
        or ("forget_gate", "input_gate", "output_gate", "candidate", "cell", "hidden"),
    )
    with Image.open(out) as im:
        assert im.size == (1920, 1080)


@pytest.mark.parametrize("ext", ["gif", "mp4"])
def test_animations_have_token_and_output_rows(tmp_path, monkeypatch, ext):
    """Every animation frame shows the input tokens and what the model says (and the correct
    answer for a bundled task), the current step boxed."""
    from lstmviz.export import figure

    made = []
    real = figure.GridFigure.__init__

    def spy(self, *a, **kw):
        real(self, *a, **kw)
        made.append(self)

    monkeypatch.setattr(figure.GridFigure, "__init__", spy)
    tr, src = _bundled("digit_sum", "4 7 3 9 1")
    export_trace(tmp_path / f"a.{ext}", tr, src, dpi=40, units=range(4))
    (grid,) = made
    assert [r.name for r in grid.rows_above] == ["input"]
    assert [r.name for r in grid.rows_below] == ["model says", "correct"]
    assert grid.rows_above[0].labels == ("4", "7", "3", "9", "1")
    assert grid.rows_below[1].labels == ("4", "1", "4", "3", "4")
    # the strip shows the labels of the current step, the box on it
    grid.set_step(3)
    top = grid._strips[0]
    assert [t.get_text() for t in top.texts[0]][:5] == ["4", "7", "3", "9", "1"]
    assert top.box.get_x() == pytest.approx(2.5)
    # and each frame differs in the rows: the box moves along
    a = grid.frame(0)
    b = grid.frame(4)
    assert a.shape == b.shape and not np.array_equal(a, b)
    # the labels are drawn in the frames, not only set: the rows hold dark text pixels
    assert all(t.get_visible() for t in top.texts[0][:5])
    bbox = top.ax.get_window_extent()
    h = a.shape[0]
    rows = a[int(h - bbox.y1) : int(h - bbox.y0), int(bbox.x0) : int(bbox.x1)]
    assert (rows.min(axis=-1) < 100).sum() > 50


def test_output_rows_mark_wrong_answers():
    from lstmviz.export.rows import WRONG, output_rows

    tr, src = _bundled("char_textgen")
    says, correct = output_rows(tr, src.info, 0)
    assert says.labels[1] == "␣" and correct.labels[1] == "a"
    assert says.colour(1) == WRONG
    assert correct.labels[-1] == ""  # nothing follows the typed text
    # a model without a softmax or sigmoid head has no answers to show
    tr, src = _bundled("stacked_lstm")
    assert output_rows(tr, src.info, 0) == []


def test_hidden_future_is_hidden():
    from lstmviz.export.figure import GridFigure
    from lstmviz.export.rows import token_row

    tr, _src = _bundled("digit_sum", "4 7 3 9 1")
    g = GridFigure(
        tr,
        step=1,
        labels=list("47391"),
        rows_above=[token_row(list("47391"))],
        hide_future=True,
        dpi=30,
    )
    assert g._futures[0].get_alpha() == 1.0
    g.draw()
    ticks = [t.get_text() for t in g.axes["cell"].get_xticklabels()]
    assert ticks == ["4", "7", "", "", ""]  # the inputs to come are not given away
    texts = g._strips[0].texts[0]
    assert texts[1].get_alpha() == 1.0 and texts[2].get_alpha() == 0.0


def test_all_six_shows_selected_units_without_scaling():
    tr, _src = _bundled("binary_addition")
    lt = tr.layers[0]
    a = all_six_now(lt, 2, units=[2])
    assert a.units == (2,) and a.selected and a.caption == "the 1 selected unit at t = 2"
    # nothing divided: every bar is the trace's value
    for q in ("forget_gate", "input_gate", "output_gate", "candidate", "cell", "hidden"):
        assert a.value(q, 2) == pytest.approx(float(lt.get(q)[0, 2, 2]))
    gates, free = a.groups
    assert gates.range == (0.0, 1.0) and "between 0 and 1" in gates.title
    # the adder has no tanh: g, c and h have no bound and say so, with their scale
    assert free.quantities == ("candidate", "cell", "hidden")
    assert "no bound" in free.title and "÷" not in free.title
    assert free.range[1] >= abs(float(lt.cell[0, 2, 2]))
    none = all_six_now(lt, 2)
    assert not none.selected and none.caption == "all 4 units at t = 2"
    tr, _src = _bundled("digit_sum")
    lt = tr.layers[0]
    top = all_six_now(lt, 1, max_units=5)
    assert "5 most active units" in top.caption
    h = np.abs(lt.hidden[0, 1])
    assert set(top.units) == set(np.argsort(-h)[:5].tolist())
    bounded, cell = top.groups
    assert cell.quantities == ("cell",) and bounded.range == (-1.0, 1.0)
    with pytest.raises(LstmvizError, match="unit 99"):
        all_six_now(lt, 1, units=[99])
    with pytest.raises(LstmvizError, match="out of range"):
        all_six_now(lt, 50)


def test_cli_diagram_and_bars(tmp_path, capsys):
    import xml.etree.ElementTree as ET

    out = tmp_path / "cell.svg"
    assert (
        export_main(
            [
                "digit_sum",
                "--text",
                "4 7 3",
                "--view",
                "diagram",
                "--units",
                "20",
                "--step",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    texts = "".join(ET.parse(out).getroot().itertext())
    assert "unit 20" in texts and "f = " in texts
    out = tmp_path / "bars.pdf"
    assert export_main(["digit_sum", "--view", "bars", "--step", "2", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"%PDF"
    with pytest.raises(LstmvizError, match="one unit"):
        export_main(
            [
                "stacked_lstm",
                "--view",
                "diagram",
                "--units",
                "0,1,2",
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
    capsys.readouterr()


def test_locked_levels_reach_the_figure():
    """A LevelLock keeps the colour scale of the first trace for the next one (epoch 1 vs 12)."""
    from lstmviz.analysis.levels import LevelLock, levels
    from lstmviz.export.figure import GridFigure

    short, _ = _bundled("binary_addition", "1 + 1")
    long_, _ = _bundled("binary_addition", "1011011 + 0110110")
    lock = LevelLock()
    lock.lock(short.layers[0])
    g = GridFigure(long_, levels=lock, dpi=30)
    assert g.images["cell"].get_clim() == levels("cell", short.layers[0])
    assert g.images["cell"].get_clim() != levels("cell", long_.layers[0])
    g = GridFigure(long_, levels={"cell": (-3.0, 3.0)}, dpi=30)
    assert g.images["cell"].get_clim() == (-3.0, 3.0)
    with pytest.raises(LstmvizError, match="lo < hi"):
        GridFigure(long_, levels={"cell": (3.0, -3.0)}, dpi=30)
