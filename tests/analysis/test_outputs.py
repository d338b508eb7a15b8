"""lstmviz.analysis.outputs: one place decides what an output is."""

from __future__ import annotations

import numpy as np
import pytest

import lstmviz
from lstmviz.analysis import outputs as O
from lstmviz.engine import layers as L
from lstmviz.engine.cell import LSTMWeights
from lstmviz.engine.model import Model, Node
from lstmviz.errors import LstmvizError
from lstmviz.examples import get_example
from lstmviz.io.meta import ModelInfo


def _model(head_activation: str | None, k: int = 4, extra: L.Layer | None = None) -> Model:
    rng = np.random.default_rng(0)
    w = LSTMWeights(rng.normal(size=(3, 8)), rng.normal(size=(2, 8)), rng.normal(size=8))
    nodes = [
        Node(L.InputLayer("x", (None, None, 3)), 0, []),
        Node(L.LSTM("lstm", w, return_sequences=True), 0, [("x", 0, 0)]),
    ]
    prev = ("lstm", 0, 0)
    if head_activation is not None:
        dense = L.Dense("head", rng.normal(size=(2, k)), rng.normal(size=k), head_activation)
        nodes.append(Node(L.TimeDistributed("td", dense), 0, [prev]))
        prev = ("td", 0, 0)
    if extra is not None:
        nodes.append(Node(extra, 0, [prev]))
        prev = (extra.name, 0, 0)
    return Model("m", nodes, [("x", 0, 0)], [prev])


@pytest.mark.parametrize(
    ("act", "kind"),
    [
        ("softmax", "probabilities"),
        ("log_softmax", "log_probabilities"),
        ("sigmoid", "bits"),
        ("tanh", "regression"),
        ("linear", "regression"),
    ],
)
def test_kind_comes_from_the_final_activation(act, kind):
    m = _model(act)
    spec = O.output_spec(m)
    assert (spec.kind, spec.source, spec.activation, spec.layer) == (kind, "model", act, "head")
    # the values never override what the model says
    tr = m.trace(np.random.default_rng(1).normal(size=(1, 5, 3)).astype(np.float32))
    assert O.output_spec(m, values=tr.step_output).kind == kind


def test_pass_through_layers_and_activation_layers_are_followed():
    m = _model("linear", extra=L.Activation("act", "log_softmax"))
    assert O.output_spec(m).kind == "log_probabilities"
    m = _model("softmax", extra=L.Identity("drop", "Dropout"))
    assert O.output_spec(m).kind == "probabilities"
    m = _model(None)  # the LSTM is the output: hidden states are values
    assert O.output_spec(m) == O.OutputSpec("regression", "model", "lstm", "lstm")


def test_a_linear_head_is_logits_only_when_the_info_says_classes():
    m = _model("linear")
    assert O.output_spec(m, ModelInfo(output_kind="classes")).kind == "logits"
    assert O.output_spec(m, ModelInfo(output_kind="next-token")).source == "info"
    assert O.output_spec(m, ModelInfo(output_kind="regression")).kind == "regression"
    # the info never overrides an activation the model declares
    assert O.output_spec(_model("softmax"), ModelInfo(output_kind="regression")).kind == (
        "probabilities"
    )


def test_declared_output_activation_in_meta():
    m = _model(None)
    m.meta["output_activation"] = ["log_softmax"]
    m.meta["output_layer"] = ["LogSoftmax_3"]
    assert O.output_spec(m) == O.OutputSpec(
        "log_probabilities", "model", "log_softmax", "LogSoftmax_3"
    )


def test_values_decide_only_when_the_model_says_nothing():
    class Opaque:
        meta: dict = {}  # noqa: RUF012

    p = np.array([0.1, 0.7, 0.2])
    assert O.output_spec(Opaque(), values=p) == O.OutputSpec("probabilities", "values")
    assert O.output_spec(Opaque(), values=np.log(p)).kind == "log_probabilities"
    assert O.output_spec(Opaque(), values=[0.3]).kind == "bits"
    assert O.output_spec(Opaque(), values=[3.0, -1.0]).kind == "regression"
    assert O.output_spec(Opaque()).kind == "regression"


def test_log_probabilities_rank_the_most_likely_first():
    """The app once ranked log_softmax outputs by |value|: the least likely class first."""
    logp = np.log(np.array([0.05, 0.6, 0.3, 0.05]))
    top = O.top_k(logp, "log_probabilities", ["a", "b", "c", "d"], k=3)
    assert [r.label for r in top] == ["b", "c", "a"]
    np.testing.assert_allclose([r.probability for r in top], [0.6, 0.3, 0.05])
    assert top[0].value == pytest.approx(np.log(0.6))


def test_every_kind_ranks_by_value():
    v = np.array([-2.0, 3.0, 0.5, -5.0])
    for kind in O.KINDS:
        assert [r.index for r in O.top_k(v, kind, k=4)] == [1, 2, 0, 3]
    top = O.top_k(v, "logits", k=2)
    e = np.exp(v - v.max())
    np.testing.assert_allclose(top[0].probability, e[1] / e.sum())
    assert O.top_k(v, "regression")[0].probability is None
    assert O.predicted(v, "regression") == 1
    assert O.predicted([0.7], "bits") == 1
    assert O.predicted([-0.2], "logits") == 0  # one logit: a binary classifier
    np.testing.assert_allclose(O.probabilities([0.0], "logits"), [0.5])


def test_bad_arguments_are_lstmviz_errors():
    with pytest.raises(LstmvizError, match="output kind must be one of"):
        O.probabilities([1.0], "odds")
    with pytest.raises(LstmvizError, match="2 labels for 3 outputs"):
        O.top_k([1, 2, 3], "logits", ["a", "b"])
    with pytest.raises(LstmvizError, match="k must be a positive integer"):
        O.top_k([1, 2, 3], "logits", k=0)
    with pytest.raises(LstmvizError, match="K values of one step"):
        O.rank(np.zeros((2, 2)))


def test_labels_are_escaped_for_display():
    assert O.display_label("<START>", html_escape=True) == "&lt;START&gt;"
    assert O.display_label("<START>") == "<START>"
    assert O.display_label(" ") == "␣"
    assert O.display_label("\n", html_escape=True) == "⏎"
    assert O.display_label("a&b", html_escape=True) == "a&amp;b"
    assert O.display_label("\x07") == "\\x07"
    info = ModelInfo(token_kind="words", vocab=["<pad>", "<START>", "cat"])
    assert O.output_labels(info, 3) == ["<pad>", "<START>", "cat"]
    assert O.output_labels(ModelInfo(output_labels=["no", "yes"]), 2) == ["no", "yes"]
    assert O.output_labels(None, 3) == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("digit_sum", "probabilities"),
        ("binary_addition", "bits"),
        ("char_textgen", "probabilities"),
    ],
)
def test_bundled_examples(name, kind):
    ex = get_example(name)
    m = lstmviz.load_model(ex.path)
    spec = O.output_spec(m, ex.info)
    assert spec.kind == kind
    assert spec.source == "model"
