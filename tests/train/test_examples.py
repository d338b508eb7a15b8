"""The bundled example models: produced by lstmviz.train, small, loadable, trained."""

from __future__ import annotations

import numpy as np
import pytest

import lstmviz
from lstmviz.examples import EXAMPLES_DIR, get_example, list_examples
from lstmviz.io.inputs import encode_text, example_input
from lstmviz.io.meta import TOKEN_KINDS

NAMES = [
    "digit_sum",
    "binary_addition",
    "toy_classification",
    "char_textgen",
    "word_lm",
    "stacked_lstm",
    "flip_flop",
]


def test_every_example_is_bundled_and_small():
    names = [e.name for e in list_examples()]
    assert names[0] == "digit_sum"  # the default the app opens
    assert sorted(names) == sorted(NAMES)
    for n in NAMES:
        p = EXAMPLES_DIR / f"{n}.keras"
        assert p.stat().st_size < 1_000_000, n
        info = get_example(n).info
        assert info is not None and info.title and len(info.description) > 200
        assert info.token_kind in TOKEN_KINDS and info.example


@pytest.mark.parametrize("name", NAMES)
def test_example_loads_and_traces_its_example(name):
    e = get_example(name)
    m = lstmviz.load_model(e.path)
    x = example_input(m, e.info)
    tr = m.trace(x)
    assert tr.layers and np.all(np.isfinite(tr.layer(0).cell))


@pytest.mark.parametrize("name", NAMES)
def test_example_output_equals_keras(name):
    keras = pytest.importorskip("keras")
    e = get_example(name)
    km = keras.saving.load_model(e.path, compile=False)
    m = lstmviz.load_model(e.path)
    x = example_input(m, e.info)
    np.testing.assert_allclose(m.trace(x).output, np.asarray(km(x)), atol=1e-5)


def test_digit_sum_has_learned():
    e = get_example("digit_sum")
    m = lstmviz.load_model(e.path)
    tr = m.trace(encode_text(m, "4 7 3 9 1", e.info))
    assert int(tr.output.argmax()) == 4  # 24 mod 10
    assert tr.step_output[0].argmax(-1).tolist() == [4, 1, 4, 3, 4]  # the running sum
    rng = np.random.default_rng(7)
    digits = rng.integers(0, 10, (300, 9))
    x = np.eye(10, dtype=np.float32)[digits]
    acc = (m.trace(x).output.argmax(-1) == digits.sum(1) % 10).mean()
    assert acc >= 0.99


def test_binary_addition_generalises_and_has_a_carry_unit():
    from lstmviz.train.make_examples import carry_correlation
    from lstmviz.train.tasks import binary_addition_data

    e = get_example("binary_addition")
    m = lstmviz.load_model(e.path)
    b = binary_addition_data(np.random.default_rng(11), 100, 40)  # 4x the training length
    assert ((m.trace(b.x).output > 0.5) == b.y).mean() >= 0.99
    unit, r = carry_correlation(m)
    assert abs(r) >= 0.9, (unit, r)
    # "1011011 + 0110110" = 91 + 54 = 145 = 10010001
    x = encode_text(m, e.info.example, e.info)
    bits = (m.trace(x).output[0] > 0.5).astype(int)
    assert "".join(map(str, bits[::-1])) == "10010001"


def test_toy_classification_answers_the_seed():
    from lstmviz.train.tasks import SEED_X, SEED_Y

    m = lstmviz.load_model(get_example("toy_classification").path)
    assert m.trace(SEED_X).output.argmax(-1).tolist() == SEED_Y.tolist()


@pytest.mark.parametrize("name", ["char_textgen", "word_lm"])
def test_language_models_predict_their_text(name):
    e = get_example(name)
    m = lstmviz.load_model(e.path)
    x = encode_text(m, e.info.example, e.info)
    pred = m.trace(x).output[0].argmax(-1)  # (T,) next-token guesses
    acc = (pred[:-1] == x[0, 1:]).mean()
    assert acc >= 0.5, acc  # the example line comes from the training text
