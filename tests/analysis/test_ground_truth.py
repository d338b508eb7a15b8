"""The correct answer at every step, compared with the bundled models' outputs; the story."""

from __future__ import annotations

import numpy as np
import pytest

import lstmviz
from lstmviz.analysis.ground_truth import (
    GroundTruthError,
    ground_truth,
    predictions,
    repeated_symbol,
    sum_bits,
)
from lstmviz.analysis.story import Story, carry_unit, story
from lstmviz.errors import LstmvizError
from lstmviz.examples import get_example
from lstmviz.io.inputs import encode_text


def _bundled(name, text=None):
    ex = get_example(name)
    m = lstmviz.load_model(ex.path)
    x = encode_text(m, text or ex.info.example, ex.info)
    return ex, m, x, m.trace(x)


def test_digit_sum_answers_and_the_bundled_model():
    ex, _m, x, tr = _bundled("digit_sum", "4 7 3 9 1")
    gt = ground_truth(ex, x)
    assert gt.available and gt.what == "the running digit sum mod 10"
    assert [gt.label(t) for t in range(5)] == ["4", "1", "4", "3", "4"]
    agree = gt.compare(tr)
    assert agree.accuracy() == 1.0 and agree.mismatches() == []
    assert agree.text(2) == "expected 4, model says 4 ✓"
    assert agree.summary() == "right at 5 of 5 steps (100 %)"


def test_a_wrong_answer_is_named():
    ex, _m, x, tr = _bundled("digit_sum", "4 7 3")
    gt = ground_truth(ex.info, x)
    so = np.array(tr.step_output, copy=True)  # (1, 3, 10)
    so[0, 1] = np.eye(10)[2]  # the model "says" 2 at t = 1 (expected 1)
    agree = gt.compare(so)
    assert agree.mismatches() == [1]
    assert agree.text(1) == "expected 1, model says 2 ✗"
    assert agree.accuracy() == pytest.approx(2 / 3)
    assert agree.summary() == "right at 2 of 3 steps (67 %); wrong at t = 1"


def test_binary_addition_sum_bits_and_carry():
    # 3 + 1 = 4: bits lsb first 110 + 100 -> 001, carries 1 1 0
    x = np.array([[[1, 1], [1, 0], [0, 0]]], np.float32)
    s, c = sum_bits(x)
    assert s.tolist() == [[0, 0, 1]] and c.tolist() == [[1, 1, 0]]
    ex, _m, x, tr = _bundled("binary_addition", "1011011 + 0110110")
    gt = ground_truth(ex, x)
    a, b = 0b1011011, 0b0110110
    want = [(a + b) >> t & 1 for t in range(x.shape[1])]
    assert gt.expected[0].tolist() == want
    assert gt.compare(tr).accuracy() == 1.0
    assert gt.extra["carry"].shape == gt.expected.shape


def test_toy_classification_answers_at_the_end():
    x = np.array([[0, 0, 3, 3, 0, 1]], np.float32)[..., None]
    assert repeated_symbol(x).tolist() == [[-1, -1, -1, 3, 3, 3]]
    ex, _m, x, tr = _bundled("toy_classification", "0 0 0 2 2 0")
    gt = ground_truth(ex, x)
    assert gt.scored[0].tolist() == [False] * 5 + [True]
    agree = gt.compare(tr)
    assert agree.checked[0].sum() == 1 and agree.accuracy() == 1.0
    assert agree.text(0).endswith("(no correct answer known here)")
    assert agree.text(4).startswith("expected 2 at the end")


@pytest.mark.parametrize(("name", "follow"), [("char_textgen", "\n"), ("word_lm", "the")])
def test_language_models_next_token(name, follow):
    ex, _m, x, tr = _bundled(name)
    gt = ground_truth(ex, x)
    assert gt.expected[0, -1] == -1  # nothing follows the typed text
    assert gt.expected[0, :-1].tolist() == x[0, 1:].tolist()
    gt2 = ground_truth(ex, x, tokens=follow)
    assert gt2.label(x.shape[1] - 1) == {"\n": "⏎"}.get(follow, follow)
    agree = gt2.compare(tr)
    assert 0 < agree.accuracy() <= 1
    with pytest.raises(LstmvizError, match="vocabulary"):
        ground_truth(ex.info.task, x)


def test_no_task_no_answers():
    ex, _m, x, _tr = _bundled("stacked_lstm")
    gt = ground_truth(ex, x)
    assert not gt.available
    assert "not trained on a task" in gt.note
    gt = ground_truth("regression", x)
    assert not gt.available and "regression" in gt.note


def test_bad_inputs_are_named():
    with pytest.raises(GroundTruthError, match="one-hot"):
        ground_truth("digit-sum", np.full((1, 3, 10), 0.5, np.float32))
    with pytest.raises(GroundTruthError, match=r"\(batch, T, 2\)"):
        ground_truth("binary-addition", np.zeros((1, 3, 3)))
    with pytest.raises(GroundTruthError, match="only bits"):
        ground_truth("binary-addition", np.full((1, 3, 2), 0.5))
    with pytest.raises(LstmvizError, match="expected a bundled example"):
        ground_truth(3.5, np.zeros((1, 3, 2)))
    gt = ground_truth("digit-sum", np.eye(10, dtype=np.float32)[[[1, 2]]])
    with pytest.raises(LstmvizError, match="covers"):
        gt.compare(np.zeros((1, 5, 10)))


def test_predictions_of_sigmoid_and_softmax():
    ids, conf = predictions(np.array([[0.2, 0.9]]))
    assert ids.tolist() == [[0, 1]] and conf == pytest.approx(np.array([[0.8, 0.9]]))
    ids, conf = predictions(np.array([[[0.1, 0.7, 0.2]]]))
    assert ids.tolist() == [[1]] and conf[0, 0] == pytest.approx(0.7)
    with pytest.raises(LstmvizError, match="per-step output"):
        predictions(np.zeros((2, 2, 2, 2)))


def test_story_of_the_bundled_models():
    ex, m, _x, _tr = _bundled("binary_addition")
    s = story("binary-addition", m, label="bundled")
    assert isinstance(s, Story) and s.present and s.unit == 2
    assert s.sentence.startswith("Unit 2 carries the carry")
    assert s.value >= 0.99 and s.label == "bundled"
    # the sidecar's claim about the carry unit holds for the model
    assert ex.info.extra["checks"]["carry_unit"] == carry_unit(m)[0]
    _ex, m, _x, _tr = _bundled("digit_sum")
    assert story("digit_sum", m).present


def test_story_absent_for_an_untrained_model():
    from tests.analysis.helpers import make_model

    m = make_model(features=2, units=4, head=1, seed=1)  # random weights, no carry
    s = story("binary-addition", m)
    assert not s.present
    assert "open the bundled model" in s.sentence
    m = make_model(features=10, units=8, head=10, seed=1)
    s = story("digit-sum", m)
    assert not s.present and "only" in s.sentence
    with pytest.raises(LstmvizError, match="no story metric"):
        story("regression", m)


def test_descriptions_are_true_for_the_model():
    """The description says what *this* model does: a trained model, an untrained one."""
    from lstmviz.analysis.story import describe
    from tests.analysis.helpers import make_model

    ex, m, _x, _tr = _bundled("digit_sum")
    text = describe(ex.info, m)
    assert text.startswith(ex.info.description)
    assert text.endswith("This model: it gets the running sum right 100 % of the time.")
    # the description of the task itself promises nothing about an untrained model
    assert "A trained model's output" in ex.info.description
    assert "Seed" not in ex.info.description
    fresh = make_model(features=10, units=8, head=10, seed=2)
    text = describe(ex.info, fresh)
    assert "This model: it gets the running sum right only" in text
    assert "open the bundled model" in text
    ex, m, _x, _tr = _bundled("binary_addition")
    assert describe(ex.info, m).endswith("(r = +0.997).")
    ex, m, _x, _tr = _bundled("stacked_lstm")
    assert describe(ex.info, m) == ex.info.description
