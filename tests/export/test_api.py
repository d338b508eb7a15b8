"""export_trace directly: progress, cancel (no file, no temporary left), the renderer."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.errors import LstmvizError
from lstmviz.export import ExportCancelled, Source, export_trace


@pytest.fixture(scope="module")
def src(digits):
    import lstmviz
    from lstmviz.io.meta import load_info

    p, xp, tr = digits
    return tr, Source(
        model=lstmviz.load_model(p),
        model_path=p,
        input_kind="file",
        input_path=str(xp),
        info=load_info(p),
    )


@pytest.mark.parametrize("ext", ["gif", "mp4"])
def test_animation_progress_reaches_every_frame(src, tmp_path, ext):
    tr, source = src
    seen = []
    out = export_trace(
        tmp_path / f"a.{ext}", tr, source, dpi=40, fps=8, progress=lambda i, n: seen.append((i, n))
    )
    assert out.stat().st_size > 0
    assert seen == [(i, tr.timesteps) for i in range(1, tr.timesteps + 1)]


@pytest.mark.parametrize("ext", ["gif", "mp4", "csv"])
def test_cancel_leaves_nothing(src, tmp_path, ext):
    tr, source = src
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(ExportCancelled, match="cancelled"):
        export_trace(
            tmp_path / f"a.{ext}",
            tr,
            source,
            dpi=40,
            should_stop=should_stop,
            units=range(10) if ext != "csv" else None,
        )
    assert list(tmp_path.iterdir()) == []


def test_cancel_keeps_the_old_file(src, tmp_path):
    tr, source = src
    out = tmp_path / "a.gif"
    out.write_bytes(b"old")
    with pytest.raises(ExportCancelled):
        export_trace(out, tr, source, dpi=40, force=True, should_stop=lambda: True)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.gif"]


def test_frames_are_the_full_drawing(src):
    """Blitted animation frames equal a full redraw of the same step."""
    from lstmviz.export.animation import frames
    from lstmviz.export.figure import GridFigure

    tr, _ = src
    g = GridFigure(tr, dpi=30)
    fr = list(frames(g))
    assert len(fr) == tr.timesteps
    ref = GridFigure(tr, dpi=30)
    ref.freeze_layout()
    for t in (0, 4, tr.timesteps - 1):
        ref.set_step(t)
        np.testing.assert_array_equal(ref.rgb(), fr[t])


def test_grid_title_and_levels(src):
    from lstmviz.export.figure import GridFigure

    tr, _source = src
    lt = tr.layers[0]
    g = GridFigure(
        tr, step=2, batch=1, model_name="digits", labels=[str(k) for k in range(tr.timesteps)]
    )
    assert g.title_text() == f"digits  ·  layer {lt.name}  ·  batch item 1  ·  t = 2 (input 2)"
    assert g.images["forget_gate"].get_clim() == (0.0, 1.0)
    assert g.images["hidden"].get_clim() == (-1.0, 1.0)
    # the cell's levels are the shared function's (the app draws with the same)
    from lstmviz.analysis.levels import levels

    assert g.images["cell"].get_clim() == levels("cell", lt)
    m = float(np.abs(lt.cell).max())
    assert 0.5 * m <= levels("cell", lt)[1] <= 1.25 * m
    # rows are units, columns timesteps: the picture is the trace
    np.testing.assert_array_equal(g.images["input_gate"].get_array(), lt.input_gate[1].T)
    g.set_step(None)
    assert "all 9 timesteps" in g.title_text()


def test_bad_figure_arguments(src, tmp_path):
    tr, source = src
    with pytest.raises(LstmvizError, match="dpi"):
        export_trace(tmp_path / "a.png", tr, source, dpi=5)
    with pytest.raises(LstmvizError, match="frames per second"):
        export_trace(tmp_path / "a.gif", tr, source, fps=0)
    with pytest.raises(LstmvizError, match="style"):
        export_trace(tmp_path / "a.png", tr, source, style="poster")
    assert list(tmp_path.iterdir()) == []


def test_labels_without_glyphs_do_not_break_the_font():
    from lstmviz.export.figure import safe_label

    assert safe_label("␣") == "␣"
    assert safe_label("漢x") == "?x"  # no CJK in DejaVu Sans: no missing-glyph warning
    assert safe_label("$x$") == r"\$x\$"
    assert len(safe_label("a" * 40)) == 12


def _backwards_masked_trace():
    """An engine-only model: Embedding(mask_zero) -> LSTM(go_backwards) (no Keras needed)."""
    from lstmviz.engine.cell import LSTMWeights
    from lstmviz.engine.layers import LSTM, Embedding, InputLayer
    from lstmviz.engine.model import Model, Node

    rng = np.random.default_rng(0)
    w = LSTMWeights(rng.normal(0, 1, (3, 16)), rng.normal(0, 1, (4, 16)), rng.normal(0, 1, 16))
    nodes = [
        Node(InputLayer("input", (None, None), dtype="int32"), 0, []),
        Node(Embedding("emb", rng.normal(0, 1, (6, 3)), mask_zero=True), 0, [("input", 0, 0)]),
        Node(LSTM("back", w, return_sequences=True, go_backwards=True), 0, [("emb", 0, 0)]),
    ]
    m = Model("backwards", nodes, [("input", 0, 0)], [("back", 0, 0)])
    return m, m.trace(np.array([[1, 2, 3, 4, 0, 0], [5, 4, 3, 2, 1, 2]]))


def test_backwards_layer_dims_the_other_side_and_animates_in_processing_order():
    from lstmviz.export.animation import frames
    from lstmviz.export.figure import GridFigure

    _m, tr = _backwards_masked_trace()
    g = GridFigure(tr, step=2, dpi=30)
    assert "runs backwards" in g.title_text()
    fut = g._futures[0]
    assert (fut.get_x(), fut.get_width()) == (-0.5, 2)  # steps 0, 1 are not processed yet
    g.set_step(0)
    assert not fut.get_visible()
    order = []
    g2 = GridFigure(tr, dpi=30)
    real = g2.frame
    g2.frame = lambda t, even=False: order.append(t) or real(t, even)
    assert len(list(frames(g2))) == 6
    assert order == [5, 4, 3, 2, 1, 0]


def test_masked_steps_are_hatched(tmp_path):
    from lstmviz.export.figure import GridFigure

    m, tr = _backwards_masked_trace()
    g = GridFigure(tr, batch=0, dpi=30)
    hatched = [p for p in g.axes["cell"].patches if p.get_hatch()]
    assert len(hatched) == 1
    assert (hatched[0].get_x(), hatched[0].get_width()) == (3.5, 2)  # padding at t = 4, 5
    g1 = GridFigure(tr, batch=1, dpi=30)
    assert not [p for p in g1.axes["cell"].patches if p.get_hatch()]
    out = export_trace(tmp_path / "b.svg", tr, Source(model=m), quantities=["cell"])
    assert out.stat().st_size > 0
