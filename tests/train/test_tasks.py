"""The tasks' data generators: shapes, and labels correct by construction (no TensorFlow)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lstmviz.errors import LstmvizError
from lstmviz.train.tasks import (
    SEED_X,
    SEED_Y,
    TASK_NAMES,
    TrainConfig,
    binary_addition_data,
    carries,
    digit_sum_data,
    get_task,
    toy_classification_data,
    windows,
)


def test_task_names_are_the_issues():
    assert TASK_NAMES == (
        "digit-sum",
        "binary-addition",
        "toy-classification",
        "char-textgen",
        "word-lm",
        "flip-flop",
    )
    assert get_task("digit_sum").name == "digit-sum"
    with pytest.raises(LstmvizError, match="unknown task 'nope'; tasks: digit-sum"):
        get_task("nope")


def test_digit_sum_labels():
    b = digit_sum_data(np.random.default_rng(1), 50, 7)
    assert b.x.shape == (50, 7, 10) and b.x.dtype == np.float32
    assert np.all(b.x.sum(-1) == 1)
    assert b.y.shape == (50, 7) and b.y_final.shape == (50,)
    for row, ys, yf in zip(b.x, b.y, b.y_final, strict=True):
        digits = [int(np.argmax(v)) for v in row]
        number = "".join(map(str, digits))
        assert yf == sum(int(c) for c in number) % 10
        assert list(ys) == [sum(digits[: t + 1]) % 10 for t in range(7)]


def _bits_to_int(bits):
    return sum(int(v) << k for k, v in enumerate(bits))  # least significant bit first


def test_binary_addition_labels():
    b = binary_addition_data(np.random.default_rng(2), 200, 12)
    assert b.x.shape == (200, 12, 2) and b.y.shape == (200, 12)
    assert set(np.unique(b.x)) <= {0.0, 1.0}
    for x, y in zip(b.x, b.y, strict=True):
        a, c = _bits_to_int(x[:, 0]), _bits_to_int(x[:, 1])
        assert _bits_to_int(y) == (a + c) % (1 << 12)
    # some rows end in zero bits, so the final carry appears as a sum bit
    top_zero = (b.x[:, -1] == 0).all(-1)
    assert top_zero.mean() > 0.3
    for x, y in zip(b.x[top_zero], b.y[top_zero], strict=True):
        assert _bits_to_int(y) == _bits_to_int(x[:, 0]) + _bits_to_int(x[:, 1])


def test_carries():
    x = np.array([[[1, 1], [1, 0], [0, 0], [1, 1]]], np.float32)  # 1+1=10, 1+0+1=10, 0+0+1=1
    assert carries(x).tolist() == [[1, 1, 0, 1]]


def test_toy_classification_labels():
    b = toy_classification_data(np.random.default_rng(3), 300, 6)
    assert b.x.shape == (300, 6, 1) and b.y is None and b.y_final.shape == (300,)
    for x, k in zip(b.x[..., 0].astype(int), b.y_final, strict=True):
        pairs = [x[t] for t in range(5) if x[t] == x[t + 1] and x[t] != 0]
        assert pairs == [k]  # exactly one symbol repeats, and it is the label
        assert sum(x == k) == 2
    assert (b.x[..., 0] > 0).sum(1).max() == 3  # distractors occur


def test_seed_002_data():
    assert SEED_X.shape == (6, 6, 1)
    for x, k in zip(SEED_X[..., 0].astype(int), SEED_Y, strict=True):
        assert [x[t] for t in range(5) if x[t] == x[t + 1] and x[t]] == [k]
    t = get_task("toy-classification")
    b = t.batch(np.random.default_rng(0), 16, step=0)
    np.testing.assert_array_equal(b.x[:6], SEED_X)


def test_language_model_windows():
    ids = np.arange(100)
    b = windows(ids, np.random.default_rng(4), 8, 10)
    assert b.x.shape == (8, 10) and b.y.shape == (8, 10)
    np.testing.assert_array_equal(b.y, b.x + 1)  # the next token
    with pytest.raises(LstmvizError, match="need at least"):
        windows(ids[:5], np.random.default_rng(0), 1, 10)


@pytest.mark.parametrize("name", ["char-textgen", "word-lm"])
def test_language_model_tasks(name):
    t = get_task(name)
    assert len(t.vocab) > 20 and len(set(t.vocab)) == len(t.vocab)
    b = t.batch(np.random.default_rng(0), 4)
    assert b.x.shape == (4, t.window) and b.x.max() < len(t.vocab)
    text = [t.vocab[i] for i in t.ids[:20]]
    assert text == t.tokens[:20]
    held = t.heldout()[0]
    assert held.x.max() < len(t.vocab)
    info = t.info()
    assert info.token_kind == ("chars" if name == "char-textgen" else "words")
    assert info.vocab == t.vocab and info.output_labels == t.vocab
    if name == "word-lm":
        assert t.vocab[0] == "<unk>"
        assert all(tok in t.vocab for tok in t.example.split())
    else:
        assert all(ch in t.vocab for ch in t.example)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_every_task_has_info_and_defaults(name):
    t = get_task(name)
    info = t.info(t.defaults, {"heldout_accuracy": 0.5})
    assert info.task == name and info.title and len(info.description) > 200
    assert info.example and info.extra["training"]["units"] == t.defaults.units
    assert t.heldout_note


def test_train_config_validation():
    with pytest.raises(LstmvizError, match="epochs must be an integer >= 1; got 0"):
        TrainConfig(epochs=0)
    with pytest.raises(LstmvizError, match="learning_rate"):
        TrainConfig(learning_rate=float("nan"))
    assert TrainConfig(epochs=3, steps_per_epoch=7).total_steps == 21


def test_importing_train_does_not_import_tensorflow():
    code = (
        "import sys, lstmviz.train, lstmviz.train.tasks, lstmviz.train.cli, "
        "lstmviz.train.snapshot, lstmviz.train.gate_lstm, lstmviz.train.make_examples, "
        "lstmviz.train.process, lstmviz.train.sampling, lstmviz.app.train_panel; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False False"


def test_binary_addition_keep_runs():
    """Rows with a long run of one-1 columns (the carry's "keep"), labels still exact."""
    rng = np.random.default_rng(4)
    b = binary_addition_data(rng, 400, 10, keep_runs=0.5)
    for x, y in zip(b.x, b.y, strict=True):
        assert _bits_to_int(y) == (_bits_to_int(x[:, 0]) + _bits_to_int(x[:, 1])) % (1 << 10)

    def longest_keep(row):
        best = run = 0
        for one in row.sum(-1) == 1:
            run = run + 1 if one else 0
            best = max(best, run)
        return best

    long_rows = np.mean([longest_keep(x) >= 5 for x in b.x])
    plain = binary_addition_data(np.random.default_rng(4), 400, 10)
    assert long_rows > 0.45 and np.mean([longest_keep(x) >= 5 for x in plain.x]) < 0.3
    assert get_task("binary-addition").keep_runs > 0


def test_binary_addition_front_end_starts_as_the_case_code():
    """conv2's first three features are 1 for exactly one case: 0 + 0, one 1, 1 + 1; the
    recurrent kernel pays an L1 penalty, the output h an L2 penalty."""
    keras = pytest.importorskip("keras")
    task = get_task("binary-addition")
    model, _ = task.build_model(task.defaults)
    front = keras.Model(model.inputs, model.get_layer("conv2").output)
    x = np.array([[[0, 0], [1, 0], [0, 1], [1, 1]]], np.float32)
    code = np.asarray(front(x))[0, :, :3]
    np.testing.assert_array_equal(code, [[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1]])
    reg = model.get_layer("lstm").recurrent_regularizer
    assert reg is not None and reg.get_config()["l1"] == pytest.approx(task.recurrent_l1)
    act = model.get_layer("lstm").activity_regularizer
    assert act is not None and act.get_config()["l2"] == pytest.approx(task.activity_l2)
    assert task.recurrent_l1 > 0 and task.activity_l2 > 0
