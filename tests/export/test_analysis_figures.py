"""Figures of the causal analyses: every one renders headless to PNG/SVG/PDF with real text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.analysis import (
    ablate,
    ablation_scan,
    activation_patching,
    attribute,
    connectivity,
    fixed_points,
    intervene,
    intervention_effect,
    logit_attribution,
    memory_paths,
    state_pca,
)
from lstmviz.errors import InputError, LstmvizError
from lstmviz.export import analysis_figures as af
from lstmviz.io.inputs import encode_text, token_labels
from lstmviz.io.meta import load_info

pytest.importorskip("matplotlib")
EXAMPLES = Path(__file__).resolve().parents[2] / "lstmviz" / "assets" / "examples"


@pytest.fixture(scope="module")
def adder():
    p = EXAMPLES / "binary_addition.keras"
    m, info = lstmviz.load_model(p), load_info(p)
    clean = encode_text(m, "0110111 + 0000001", info)
    return m, info, clean, encode_text(m, "0110110 + 0000001", info)


def _figures(adder):
    m, info, clean, corrupt = adder
    tok = token_labels(m, clean, info)
    wl = lstmviz.load_model(EXAMPLES / "word_lm.keras")
    ids = np.array([[3, 5, 7, 2, 9]])
    ff = lstmviz.load_model(EXAMPLES / "flip_flop.keras")
    x = np.zeros((1, 30, 3), np.float32)
    x[0, 0] = [1, -1, 1]
    x[0, 10, 1] = 1
    pts = fixed_points(ff, "lstm", n_init=64, inits=x)
    pca = state_pca(ff.trace(x), "lstm")
    eff = intervention_effect(intervene(m, clean, []), ablate(m, clean, "lstm", 2, "cell", "mean"))
    return {
        "attribution": af.attribution_figure(attribute(m, clean, (3, 0), "ig"), tok),
        "lrp": af.attribution_figure(attribute(wl, ids, (-1, 4), "lrp")),
        "connectivity": af.connectivity_figure(connectivity(wl, ids, unit=4)),
        "ablation": af.ablation_figure(ablation_scan(m, clean, (3, 0), mode="mean")),
        "effect": af.intervention_figure(eff, "lstm", "cell", tok),
        "patching": af.patching_figure(
            activation_patching(m, clean, corrupt, (3, 0), space="logit"), tok
        ),
        "state": af.state_space_figure(pca, pts, t=10),
        "paths": af.memory_paths_figure(memory_paths(wl, ids, (-1, 4))),
        "logit": af.logit_attribution_figure(logit_attribution(wl, ids, 4)),
    }


def test_every_figure_renders_with_real_text(adder, tmp_path):
    for name, fig in _figures(adder).items():
        svg = af.save_figure(fig, tmp_path / f"{name}.svg")
        text = svg.read_text(encoding="utf-8")
        assert "<text" in text, name  # labels are text, not paths
        png = af.save_figure(fig, tmp_path / f"{name}.png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = af.save_figure(fig, tmp_path / "last.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_bad_figure_arguments(adder, tmp_path):
    m, _, clean, _ = adder
    a = attribute(m, clean, (3, 0), "gradient")
    with pytest.raises(InputError, match="tokens: 3 labels for 8 steps"):
        af.attribution_figure(a, ["a", "b", "c"])
    with pytest.raises(LstmvizError, match=r"written as \.png, \.svg or \.pdf"):
        af.save_figure(af.attribution_figure(a), tmp_path / "x.gif")


def test_a_figure_is_saved_at_its_styles_resolution(tmp_path):
    import struct

    wl = lstmviz.load_model(EXAMPLES / "word_lm.keras")
    conn = connectivity(wl, np.array([[3, 5, 7, 2, 9]]), unit=4)
    for style, size in (("slide", (1920, 1080)), ("paper", (1020, 690))):
        png = af.save_figure(af.connectivity_figure(conn, style=style), tmp_path / f"{style}.png")
        assert struct.unpack(">II", png.read_bytes()[16:24]) == size, style
