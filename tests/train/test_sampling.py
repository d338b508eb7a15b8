"""Text generation at a temperature, on the NumPy engine."""

from __future__ import annotations

import numpy as np
import pytest

import lstmviz
from lstmviz.errors import LstmvizError
from lstmviz.examples import get_example
from lstmviz.train.sampling import apply_temperature, generate, next_token_probs


def test_temperature():
    p = np.array([0.1, 0.2, 0.7])
    np.testing.assert_allclose(apply_temperature(p, 1.0), p)
    assert apply_temperature(p, 0).tolist() == [0, 0, 1]
    cold, hot = apply_temperature(p, 0.5), apply_temperature(p, 3.0)
    assert cold[2] > p[2] > hot[2] and np.isclose(hot.sum(), 1)


def test_incremental_state_equals_full_trace():
    e = get_example("char_textgen")
    m = lstmviz.load_model(e.path)
    from lstmviz.io.inputs import encode_text

    x = encode_text(m, "Shall I compare", e.info)
    full, _ = next_token_probs(m, x)
    head, state = next_token_probs(m, x[:, :-3])
    for t in range(x.shape[1] - 3, x.shape[1]):
        head, state = next_token_probs(m, x[:, t : t + 1], state)
    np.testing.assert_allclose(head, full, atol=1e-5)


@pytest.mark.parametrize("name", ["char_textgen", "word_lm"])
def test_generate(name):
    e = get_example(name)
    m = lstmviz.load_model(e.path)
    seed = "Shall I compare thee" if name == "char_textgen" else "mary had a"
    greedy = generate(m, e.info, seed, n=12, temperature=0)
    assert greedy.startswith(seed) and len(greedy) > len(seed)
    assert generate(m, e.info, seed, n=12, temperature=0) == greedy  # deterministic
    a = generate(m, e.info, seed, n=30, temperature=1.5, rng=1)
    b = generate(m, e.info, seed, n=30, temperature=1.5, rng=2)
    assert a != b
    if name == "char_textgen":
        from lstmviz.io.inputs import encode_text

        probs, _ = next_token_probs(m, encode_text(m, "Shall I compare th", e.info))
        assert e.info.vocab[int(np.argmax(probs))] == "e"
        assert all(ch in e.info.vocab for ch in a)
    else:
        assert greedy.split()[3] == "little"  # "mary had a little lamb"


def test_generate_refuses_non_text_models():
    e = get_example("digit_sum")
    with pytest.raises(LstmvizError, match="character or word vocabulary"):
        generate(lstmviz.load_model(e.path), e.info, "1 2", n=3)
