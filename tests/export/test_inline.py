"""trace.plot and trace.animate: inline figures and HTML5 animations for notebooks."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from lstmviz.engine import LSTMWeights, Trace, run_lstm
from lstmviz.errors import LstmvizError
from lstmviz.export.inline import MAX_FRAMES, InlineAnimation


def _trace(steps=8, units=5, backwards=False):
    rng = np.random.default_rng(0)
    w = LSTMWeights(
        rng.normal(0, 0.5, (3, 4 * units)),
        rng.normal(0, 0.5, (units, 4 * units)),
        rng.normal(0, 0.1, 4 * units),
    )
    x = rng.normal(0, 1, (2, steps, 3)).astype(np.float32)
    lt = run_lstm(x, w, name="lstm", go_backwards=backwards)
    return Trace(output=np.asarray(lt.hidden[:, -1]), layers=(lt,), inputs=x)


def test_plot_is_a_figure_with_the_cursor_at_t():
    from matplotlib.figure import Figure

    tr = _trace()
    fig = tr.plot(t=4, units=range(3))
    assert isinstance(fig, Figure)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 6
    assert images[0].get_array().shape == (3, 8)  # units x time
    np.testing.assert_allclose(images[0].get_array(), tr.layer(0).forget_gate[0][:, :3].T)
    # a trace carries no model name: the title names the layer, not a placeholder "model"
    assert fig.get_suptitle() == "layer lstm  ·  batch item 0  ·  t = 4"
    one = tr.plot(quantities="c", batch=1)
    assert len([ax for ax in one.axes if ax.images]) == 1
    np.testing.assert_allclose(one.axes[0].images[0].get_array(), tr.layer(0).cell[1].T)
    with pytest.raises(LstmvizError, match="unknown quantity"):
        tr.plot(quantities="q")
    with pytest.raises(LstmvizError):
        tr.plot(t=8)


def test_animate_jshtml_and_video(tmp_path):
    tr = _trace(backwards=True)
    anim = tr.animate(fps=6)
    assert isinstance(anim, InlineAnimation)
    assert anim.steps == list(range(7, -1, -1))  # the order the layer runs in
    html = anim._repr_html_()
    assert "<script" in html and html.count("data:image/png;base64,") == 8  # one per frame
    assert anim.save(tmp_path / "a.html").read_text(encoding="utf-8") == html
    video = tr.animate(mode="video", steps=[0, 2, 4], quantities=["f", "h"])._repr_html_()
    assert "<video" in video
    gif = tr.animate(steps=[1, 2]).save(tmp_path / "a.gif")
    assert gif.read_bytes()[:3] == b"GIF"


def test_animate_refuses_what_it_cannot_embed():
    tr = _trace(steps=MAX_FRAMES + 1, units=2)
    with pytest.raises(LstmvizError, match="steps=range"):
        tr.animate()
    assert len(tr.animate(steps=range(0, MAX_FRAMES + 1, 10)).steps) == 25
    with pytest.raises(LstmvizError, match="out of range"):
        tr.animate(steps=[0, MAX_FRAMES + 1])
    with pytest.raises(LstmvizError, match="mode"):
        tr.animate(mode="gif")
