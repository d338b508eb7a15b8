"""The training tasks: the bundled examples, each a data generator correct by construction,
a Keras model and a default training budget.

The data side is pure NumPy (importable and testable without TensorFlow); Keras is imported
only inside :meth:`Task.build_model`.

==================== =====================================================================
task                 what the model learns
==================== =====================================================================
digit-sum            one-hot digits -> LSTM -> softmax: the digit sum mod 10
binary-addition      two binary numbers, least significant bit first -> their sum bits,
                     Conv1D -> Conv1D -> LSTM(activation=None) -> sigmoid
toy-classification   which symbol repeats in a sequence of symbols 0..3
char-textgen         next character of a bundled public-domain text
word-lm              Embedding -> LSTM -> next word over a small vocabulary
==================== =====================================================================

Every task trains on *per-step* targets where the task has them (the running digit sum, every
sum bit, the next token after every position): the LSTM is told what it should know at every
step, which makes training fast. The saved digit-sum model still returns only ``h_T`` (as the
original digit-sum exercise does); its head applied at every step then shows the running sum.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LstmvizError
from ..io.meta import ModelInfo

CORPORA = Path(__file__).resolve().parent.parent / "assets" / "corpora"


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run.

    Parameters
    ----------
    epochs : int
        Passes of ``steps_per_epoch`` batches (fresh generated data every batch).
    batch_size : int
        Sequences per batch.
    learning_rate : float
        Adam's learning rate.
    units : int
        LSTM units of the task's model.
    steps_per_epoch : int
        Batches per epoch.
    seed : int
        Seeds the data, the weight initialisation and Keras (``keras.utils.set_random_seed``).
    snapshot_every : int
        Hand a weight snapshot to ``on_snapshot`` every this many batches (0: only at the
        start and at the end of every epoch).
    """

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.01
    units: int = 32
    steps_per_epoch: int = 100
    seed: int = 0
    snapshot_every: int = 0

    def __post_init__(self) -> None:
        for name, lo in (
            ("epochs", 1),
            ("batch_size", 1),
            ("units", 1),
            ("steps_per_epoch", 1),
            ("snapshot_every", 0),
            ("seed", 0),
        ):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < lo:
                raise LstmvizError(f"{name} must be an integer >= {lo}; got {v!r}")
        lr = self.learning_rate
        if not isinstance(lr, (int, float)) or not np.isfinite(lr) or not 0 < lr <= 10:
            raise LstmvizError(f"learning_rate must be a number in (0, 10]; got {lr!r}")

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


@dataclass
class Batch:
    """One batch of data: ``x`` the input, ``y`` per-step targets ``(B, T)`` (or None),
    ``y_final`` the target for the whole sequence ``(B,)``."""

    x: np.ndarray
    y: np.ndarray | None
    y_final: np.ndarray


class Task:
    """A learning task: data, model, budget and what the app shows about it."""

    name: str = ""
    title: str = ""
    description: str = ""
    #: ``"sparse_categorical"`` (softmax over classes) or ``"binary"`` (sigmoid bits)
    loss_kind: str = "sparse_categorical"
    token_kind: str = "floats"
    output_kind: str = "classes"
    example: str = ""
    defaults: TrainConfig = TrainConfig()
    #: the file name (stem) of the bundled example
    example_name: str = ""
    #: what the held-out accuracy measures
    heldout_note: str = ""

    # ---- data ------------------------------------------------------------------------------
    def batch(self, rng: np.random.Generator, batch_size: int, step: int = 0) -> Batch:
        """A fresh batch of training data (``step`` may vary the sequence length)."""
        raise NotImplementedError

    def heldout(self) -> list[Batch]:
        """A fixed held-out set (its own seed, never seen in training)."""
        raise NotImplementedError

    # ---- model -----------------------------------------------------------------------------
    def build_model(self, config: TrainConfig) -> tuple[Any, Any]:
        """``(train_model, export_model)``: Keras models with the same layer names and
        weights layout; the first is trained, the second saved (often the same object)."""
        raise NotImplementedError

    @property
    def vocab(self) -> list[str]:
        return []

    @property
    def output_labels(self) -> list[str]:
        return []

    @property
    def input_features(self) -> int | None:
        """Features per step of the input (None: token ids)."""
        return None

    def info(
        self, config: TrainConfig | None = None, metrics: dict[str, float] | None = None
    ) -> ModelInfo:
        extra: dict[str, Any] = {}
        if config is not None:
            extra["training"] = {
                "epochs": config.epochs,
                "batch_size": config.batch_size,
                "learning_rate": config.learning_rate,
                "units": config.units,
                "steps_per_epoch": config.steps_per_epoch,
                "seed": config.seed,
            }
        if metrics:
            extra["metrics"] = {k: round(float(v), 5) for k, v in metrics.items()}
        return ModelInfo(
            task=self.name,
            title=self.title,
            description=self.description,
            token_kind=self.token_kind,
            vocab=list(self.vocab),
            example=self.example,
            output_kind=self.output_kind,
            output_labels=list(self.output_labels),
            extra=extra,
        )

    # ---- evaluation ------------------------------------------------------------------------
    def score(
        self, predict: Callable[[np.ndarray], np.ndarray], batches: list[Batch] | None = None
    ) -> dict[str, float]:
        """Held-out accuracy of ``predict`` (x -> the model's output as a NumPy array)."""
        batches = self.heldout() if batches is None else batches
        hits = 0
        total = 0
        for b in batches:
            out = np.asarray(predict(b.x))
            h, n = self._hits(out, b)
            hits += h
            total += n
        return {"accuracy": hits / max(total, 1)}

    def _hits(self, out: np.ndarray, b: Batch) -> tuple[int, int]:
        if self.loss_kind == "binary":
            pred = (out.reshape(out.shape[0], -1) > 0.5).astype(np.int64)
            if b.y is not None and pred.shape == b.y.shape:
                return int((pred == b.y).sum()), int(b.y.size)
            pred = pred[:, -1]
            return int((pred == b.y_final).sum()), len(b.y_final)
        pred = out.argmax(-1)
        if pred.ndim == 2:
            if b.y is None:
                raise LstmvizError(f"task {self.name!r} has no per-step targets")
            return int((pred == b.y).sum()), int(b.y.size)
        return int((pred == b.y_final).sum()), len(b.y_final)

    def __repr__(self) -> str:
        return f"<Task {self.name}>"


def _keras() -> Any:
    from .backend import keras_module

    return keras_module()


def adam(keras: Any, config: TrainConfig) -> Any:
    """Adam with gradient clipping and a cosine decay of the learning rate to 5 % over the
    run (fast start, calm finish: the gates settle into crisp values)."""
    sched = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, config.total_steps, alpha=0.05
    )
    return keras.optimizers.Adam(learning_rate=sched, clipnorm=1.0)


# ------------------------------------------------------------------------------------------
# digit-sum
# ------------------------------------------------------------------------------------------
def digit_sum_data(rng: np.random.Generator, n: int, length: int) -> Batch:
    """``n`` random ``length``-digit numbers, one-hot ``(n, length, 10)``; ``y`` the running
    digit sum mod 10 after every digit ``(n, length)``; ``y_final`` the whole number's."""
    digits = rng.integers(0, 10, (n, length))  # (n, T)
    x = np.eye(10, dtype=np.float32)[digits]  # (n, T, 10)
    y = np.cumsum(digits, axis=1) % 10  # (n, T)
    return Batch(x, y.astype(np.int64), y[:, -1].astype(np.int64))


class DigitSum(Task):
    name = "digit-sum"
    example_name = "digit_sum"
    title = "Digit sum mod 10"
    description = (
        "The LSTM reads a number one digit at a time (each digit as 10 inputs, one of them 1) "
        "and has to answer the sum of its digits modulo 10: for 4 7 3 9 1 that is 24 mod 10 = "
        "4. To do it, it must keep a running total in its memory, the cell state. A trained "
        "model's output at every step (the softmax applied to h_t) gives the running sum 4, 1, "
        "4, 3, 4; the correct answer is shown under the model's output, so you can see "
        "whether this model has learned it. The model: digits -> LSTM -> Dense(10, softmax); "
        "the saved LSTM returns only its last hidden state h_T, which the softmax reads."
    )
    token_kind = "digits"
    output_kind = "classes"
    example = "4 7 3 9 1"
    defaults = TrainConfig(
        epochs=12, batch_size=64, learning_rate=0.01, units=32, steps_per_epoch=100
    )
    #: training numbers have up to this many digits (every prefix is supervised, so every
    #: shorter length is learned too)
    train_length = 12
    heldout_lengths = (1, 2, 3, 5, 8, 12)
    heldout_note = "the final answer for 3000 unseen numbers of 1 to 12 digits"

    @property
    def output_labels(self) -> list[str]:
        return [str(i) for i in range(10)]

    @property
    def input_features(self) -> int:
        return 10

    def batch(self, rng: np.random.Generator, batch_size: int, step: int = 0) -> Batch:
        return digit_sum_data(rng, batch_size, self.train_length)

    def heldout(self) -> list[Batch]:
        rng = np.random.default_rng(10_000)
        return [digit_sum_data(rng, 500, t) for t in self.heldout_lengths]

    def build_model(self, config: TrainConfig) -> tuple[Any, Any]:
        keras = _keras()
        L = keras.layers
        train = keras.Sequential(
            [
                keras.Input((None, 10), name="digits"),
                L.LSTM(config.units, return_sequences=True, name="lstm"),
                L.Dense(10, activation="softmax", name="digit_sum"),
            ],
            name="digit_sum_train",
        )
        export = keras.Sequential(
            [
                keras.Input((None, 10), name="digits"),
                L.LSTM(config.units, name="lstm"),
                L.Dense(10, activation="softmax", name="digit_sum"),
            ],
            name="digit_sum",
        )
        train.compile(
            optimizer=adam(keras, config),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return train, export


# ------------------------------------------------------------------------------------------
# binary addition
# ------------------------------------------------------------------------------------------
def binary_addition_data(
    rng: np.random.Generator, n: int, length: int, keep_runs: float = 0.0
) -> Batch:
    """Two random binary numbers per row, least significant bit first: ``x`` ``(n, T, 2)``
    float bits, ``y`` ``(n, T)`` the sum's bits (carry propagated).

    Some rows end in zero bits, so the final carry shows up as a sum bit (as when the app
    encodes ``"1011 + 0110"``). A share ``keep_runs`` of the rows has a run of ``T/2`` to
    ``T`` columns with exactly one 1 (1 + 0 or 0 + 1), through which a carry (or its
    absence) has to pass unchanged; random numbers have such runs of 5 or more columns only
    once in 32 positions."""
    a = rng.integers(0, 2, (n, length, 2))  # (n, T, 2)
    if keep_runs > 0:
        rows = np.nonzero(rng.random(n) < keep_runs)[0]
        runs = rng.integers(length // 2, length + 1, len(rows))
        starts = rng.integers(0, length - runs + 1)
        pos = np.arange(length)[None, :]
        inside = (pos >= starts[:, None]) & (pos < (starts + runs)[:, None])  # (r, T)
        a[rows, :, 1] = np.where(inside, 1 - a[rows, :, 0], a[rows, :, 1])
    # pad a random number of most significant positions with zeros in ~half of the rows
    pad = np.where(rng.random(n) < 0.5, rng.integers(1, max(2, length // 2), n), 0)
    pos = np.arange(length)[None, :]
    a = np.where((pos >= length - pad[:, None])[..., None], 0, a)
    y = np.zeros((n, length), np.int64)
    carry = np.zeros(n, np.int64)
    for t in range(length):
        s = a[:, t, 0] + a[:, t, 1] + carry
        y[:, t] = s % 2
        carry = s // 2
    return Batch(a.astype(np.float32), y, y[:, -1].copy())


def carries(x: np.ndarray) -> np.ndarray:
    """The carry *out of* every step of a binary addition ``x`` ``(B, T, 2)``: ``(B, T)``."""
    bits = np.asarray(x).round().astype(np.int64)
    out = np.zeros(bits.shape[:2], np.int64)
    carry = np.zeros(bits.shape[0], np.int64)
    for t in range(bits.shape[1]):
        carry = (bits[:, t, 0] + bits[:, t, 1] + carry) // 2
        out[:, t] = carry
    return out


def case_code(conv1: Any, conv2: Any, scale: float = 1.0) -> None:
    """Start the adder's front-end (two ``Conv1D(kernel_size=1)`` ReLU layers, 8 and 4
    features) as the code of a column's three cases: feature 0 of ``conv2`` is ``scale`` for
    0 + 0, feature 1 for 1 + 0 and 0 + 1, feature 2 for 1 + 1, else 0; feature 3 and
    ``conv1``'s features 3.. keep their random start. Everything stays trainable.

    These are the cases the carry story is told in (0 + 0 clears the carry, one 1 keeps it,
    1 + 1 sets it). Without them each gate first has to learn the cases from the two bits
    through the random front-end, and the runs end in many different codes of the carry,
    most of them spread over several units.
    """
    w1, b1 = (np.array(a) for a in conv1.get_weights())  # (1, 2, 8), (8,)
    w2, b2 = (np.array(a) for a in conv2.get_weights())  # (1, 8, 4), (4,)
    w1[0, :, 0], b1[0] = 1.0, 0.0  # a + b
    w1[0, :, 1], b1[1] = 1.0, -1.0  # a + b - 1: 1 for 1 + 1
    w1[0, :, 2], b1[2] = -1.0, 1.0  # 1 - a - b: 1 for 0 + 0
    w2[0, :3, :] = 0.0
    w2[0, :, :3] = 0.0
    w2[0, 2, 0] = scale  # 0 + 0
    w2[0, 0, 1], w2[0, 1, 1] = scale, -2.0 * scale  # a + b - 2 (1 + 1): 1 for one 1
    w2[0, 1, 2] = scale  # 1 + 1
    b2[:3] = 0.0
    conv1.set_weights([w1, b1])
    conv2.set_weights([w2, b2])


class BinaryAddition(Task):
    name = "binary-addition"
    example_name = "binary_addition"
    title = "Binary addition (the carry)"
    description = (
        "Two binary numbers go in least significant bit first, one bit of each per step (2 "
        "inputs), and the model outputs the sum bit at every step. The sum bit depends on the "
        "carry from the previous step, which nothing in the input shows: the LSTM has to "
        "remember it. In a trained model, look for the cell unit whose state follows the "
        "carry: 1+1 sets it, 1+0 and 0+1 keep it (the forget gate stays open, the input gate "
        "shut), 0+0 clears it (which sign means 'carry' is the network's choice). This LSTM "
        "has no tanh (activation=None), so its cell state is a plain running value. Trained "
        "on 10-bit numbers, a trained model adds numbers of any length."
    )
    loss_kind = "binary"
    token_kind = "bits"
    output_kind = "bits"
    example = "1011011 + 0110110"
    defaults = TrainConfig(
        epochs=12, batch_size=64, learning_rate=0.02, units=8, steps_per_epoch=100
    )
    train_length = 10
    heldout_length = 20
    #: the adder's LSTM has no tanh: the cell state is a plain running value
    lstm_activation: str | None = None
    conv_bias = 0.5
    #: the front-end starts as the code of a column's three cases (0 + 0, one 1, 1 + 1): the
    #: cases the carry story is told in (:func:`case_code`)
    case_code_scale: float | None = 1.0
    #: the recurrent kernel starts small (normal, this std) and pays an L1 penalty: a unit
    #: listens to another only where the sum needs it, so the carry stays in one unit
    recurrent_init_std: float | None = 0.1
    recurrent_l1: float = 1e-2
    #: an L2 penalty on the LSTM's output h: the cross-entropy alone rewards a cell state
    #: that keeps growing (a larger h is a surer answer), so "keep" would add a little at
    #: every step and "set" would add to what is there; with the penalty an exact value wins
    activity_l2: float = 1e-4
    #: the share of training rows with a long run of one-1 columns (the carry's "keep"):
    #: a forget gate that leaks, or an input gate that adds, shows in them
    keep_runs = 0.25
    heldout_note = "per bit, on unseen 20- and 40-bit additions; trained on 10 bits"

    @property
    def output_labels(self) -> list[str]:
        return ["0", "1"]

    @property
    def input_features(self) -> int:
        return 2

    def batch(self, rng: np.random.Generator, batch_size: int, step: int = 0) -> Batch:
        return binary_addition_data(rng, batch_size, self.train_length, self.keep_runs)

    def heldout(self) -> list[Batch]:
        rng = np.random.default_rng(20_000)
        return [
            binary_addition_data(rng, 500, self.heldout_length),
            binary_addition_data(rng, 250, 2 * self.heldout_length),
        ]

    def build_model(self, config: TrainConfig) -> tuple[Any, Any]:
        keras = _keras()
        L = keras.layers
        init = keras.initializers.Constant(self.conv_bias)
        rec: dict[str, Any] = {}
        if self.recurrent_init_std is not None:
            rec["recurrent_initializer"] = keras.initializers.RandomNormal(
                0.0, self.recurrent_init_std
            )
        if self.recurrent_l1:
            rec["recurrent_regularizer"] = keras.regularizers.L1(self.recurrent_l1)
        if self.activity_l2:
            rec["activity_regularizer"] = keras.regularizers.L2(self.activity_l2)
        m = keras.Sequential(
            [
                keras.Input((None, 2), name="bits"),
                # positive biases keep every ReLU alive at the start (a dead feature can hide
                # the carry's cause for good and leave training stuck near 90 %)
                L.Conv1D(8, 1, activation="relu", bias_initializer=init, name="conv1"),
                L.Conv1D(4, 1, activation="relu", bias_initializer=init, name="conv2"),
                L.LSTM(
                    config.units,
                    activation=self.lstm_activation,
                    return_sequences=True,
                    name="lstm",
                    **rec,
                ),
                L.Dense(1, activation="sigmoid", name="sum_bit"),
                L.Reshape((-1,), name="squeeze"),
            ],
            name="binary_addition",
        )
        if self.case_code_scale is not None:
            case_code(m.get_layer("conv1"), m.get_layer("conv2"), self.case_code_scale)
        m.compile(
            optimizer=adam(keras, config), loss="binary_crossentropy", metrics=["binary_accuracy"]
        )
        return m, m


# ------------------------------------------------------------------------------------------
# toy classification
# ------------------------------------------------------------------------------------------
#: the six hand-written sequences of the toy classifier: which symbol (1, 2, 3) repeats
SEED_X = np.array(
    [
        [0, 1, 1, 0, 0, 0],
        [0, 0, 0, 2, 2, 0],
        [0, 0, 0, 0, 3, 3],
        [0, 2, 2, 0, 0, 0],
        [0, 0, 3, 3, 0, 0],
        [0, 0, 0, 0, 1, 1],
    ],
    dtype=np.float32,
)[..., None]  # (6, 6, 1)
SEED_Y = np.array([1, 2, 3, 2, 3, 1], dtype=np.int64)


def toy_classification_data(
    rng: np.random.Generator, n: int, length: int = 6, distractor: float = 0.5
) -> Batch:
    """Sequences of symbols 0..3 (0 = blank) where one symbol 1..3 appears twice in a row;
    the label is that symbol. With probability ``distractor`` another symbol appears once
    elsewhere (never next to the pair), so "which symbol is there" is not enough."""
    x = np.zeros((n, length), np.int64)
    k = rng.integers(1, 4, n)  # (n,) the repeated symbol
    p = rng.integers(0, length - 1, n)  # (n,) position of the pair
    rows = np.arange(n)
    x[rows, p] = k
    x[rows, p + 1] = k
    for r in np.flatnonzero(rng.random(n) < distractor):
        free = [q for q in range(length) if q < p[r] - 1 or q > p[r] + 2]
        if free:
            others = [s for s in (1, 2, 3) if s != k[r]]
            x[r, free[rng.integers(len(free))]] = others[rng.integers(2)]
    y_seq = None
    return Batch(x.astype(np.float32)[..., None], y_seq, k.astype(np.int64))


class ToyClassification(Task):
    name = "toy-classification"
    example_name = "toy_classification"
    title = "Which symbol repeats?"
    description = (
        "A sequence of six symbols, 0 for blank and 1-3, in which one symbol appears twice in "
        "a row; the model names it (0 0 3 3 0 0 -> 3). Each symbol is one number per step. "
        "The LSTM has to remember the previous symbol to notice the repeat, then hold the "
        "answer until the end, where the softmax reads h_T. Trained on six hand-written "
        "sequences plus generated ones that also hold one distracting symbol."
    )
    token_kind = "floats"
    output_kind = "classes"
    example = "0 0 0 2 2 0"
    defaults = TrainConfig(
        epochs=6, batch_size=64, learning_rate=0.01, units=16, steps_per_epoch=60
    )
    length = 6
    heldout_note = "the 6 hand-written sequences and 1000 unseen generated ones"

    @property
    def output_labels(self) -> list[str]:
        return ["0", "1", "2", "3"]

    @property
    def input_features(self) -> int:
        return 1

    def batch(self, rng: np.random.Generator, batch_size: int, step: int = 0) -> Batch:
        b = toy_classification_data(rng, batch_size, self.length)
        if step % 4 == 0:  # mix the six hand-written examples in
            n = min(len(SEED_Y), batch_size)
            b.x[:n] = SEED_X[:n]
            b.y_final[:n] = SEED_Y[:n]
        return b

    def heldout(self) -> list[Batch]:
        rng = np.random.default_rng(30_000)
        return [Batch(SEED_X, None, SEED_Y), toy_classification_data(rng, 1000, self.length)]

    def build_model(self, config: TrainConfig) -> tuple[Any, Any]:
        keras = _keras()
        L = keras.layers
        m = keras.Sequential(
            [
                keras.Input((None, 1), name="symbols"),
                L.LSTM(config.units, name="first_lstm"),
                L.Dense(4, activation="softmax", name="symbol"),
            ],
            name="toy_classification",
        )
        m.compile(
            optimizer=adam(keras, config),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return m, m


# ------------------------------------------------------------------------------------------
# language models: characters and words
# ------------------------------------------------------------------------------------------
def read_corpus(name: str) -> str:
    p = CORPORA / name
    try:
        return p.read_text(encoding="utf-8")
    except OSError as e:
        raise LstmvizError(f"{p}: cannot read the bundled corpus ({e})") from None


def windows(ids: np.ndarray, rng: np.random.Generator, n: int, length: int) -> Batch:
    """``n`` random windows of ``length`` tokens from ``ids`` and the token after each
    position: ``x`` ``(n, length)``, ``y`` ``(n, length)`` with ``y[:, t] == ids[s + t + 1]``."""
    if len(ids) < length + 2:
        raise LstmvizError(f"the corpus has {len(ids)} tokens; need at least {length + 2}")
    starts = rng.integers(0, len(ids) - length - 1, n)  # (n,)
    idx = starts[:, None] + np.arange(length)[None, :]  # (n, T)
    x = ids[idx]
    y = ids[idx + 1]
    return Batch(x.astype(np.int64), y.astype(np.int64), y[:, -1].astype(np.int64))


class _LanguageModel(Task):
    corpus_name = ""
    window = 32
    embed_dim = 16
    heldout_fraction = 0.1
    output_kind = "next-token"
    heldout_note = "next-token accuracy on the last 10% of the corpus, never trained on"

    def tokenize(self, text: str) -> list[str]:
        raise NotImplementedError

    @cached_property
    def tokens(self) -> list[str]:
        return self.tokenize(read_corpus(self.corpus_name))

    @cached_property
    def _vocab(self) -> list[str]:
        return sorted(set(self.tokens))

    @property
    def vocab(self) -> list[str]:
        return self._vocab

    @property
    def output_labels(self) -> list[str]:
        return self.vocab

    @cached_property
    def ids(self) -> np.ndarray:
        index = {t: i for i, t in enumerate(self.vocab)}
        unk = index.get("<unk>", 0)
        return np.asarray([index.get(t, unk) for t in self.tokens], np.int64)

    @property
    def _split(self) -> int:
        return int(len(self.ids) * (1 - self.heldout_fraction))

    def batch(self, rng: np.random.Generator, batch_size: int, step: int = 0) -> Batch:
        return windows(self.ids[: self._split], rng, batch_size, self.window)

    def heldout(self) -> list[Batch]:
        rng = np.random.default_rng(40_000)
        return [
            windows(
                self.ids[self._split :], rng, 200, min(self.window, len(self.ids) - self._split - 2)
            )
        ]

    def train_accuracy(self) -> list[Batch]:
        """Windows of the training text (a language model on a tiny corpus mostly learns
        *that* text; this is how well it has)."""
        rng = np.random.default_rng(41_000)
        return [windows(self.ids[: self._split], rng, 200, self.window)]

    def build_model(self, config: TrainConfig) -> tuple[Any, Any]:
        keras = _keras()
        L = keras.layers
        m = keras.Sequential(
            [
                keras.Input((None,), dtype="int32", name="tokens"),
                L.Embedding(len(self.vocab), self.embed_dim, name="embedding"),
                L.LSTM(config.units, return_sequences=True, name="lstm"),
                L.Dense(len(self.vocab), activation="softmax", name="next_token"),
            ],
            name=self.name.replace("-", "_"),
        )
        m.compile(
            optimizer=adam(keras, config),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return m, m


class CharTextgen(_LanguageModel):
    name = "char-textgen"
    example_name = "char_textgen"
    title = "Character-level text generation"
    description = (
        "A character-level language model trained on Shakespeare's sonnets and the "
        "Gettysburg Address (public domain, lstmviz/assets/corpora/sonnets.txt). Each character "
        "becomes an id, then a vector (its embedding), then goes into the LSTM; at every step "
        "the softmax guesses the next character, and the correct next character is shown "
        "under it. Look for units that switch on inside a word and reset at spaces, or that "
        "track the position in the line; then generate text at a temperature: low is safe "
        "and repetitive, high is adventurous."
    )
    token_kind = "chars"
    example = "Shall I compare thee to a summer's day?"
    corpus_name = "sonnets.txt"
    window = 48
    embed_dim = 16
    defaults = TrainConfig(
        epochs=14, batch_size=32, learning_rate=0.005, units=96, steps_per_epoch=100
    )

    def tokenize(self, text: str) -> list[str]:
        return list(text)


_WORD = re.compile(r"[a-z']+")


class WordLM(_LanguageModel):
    name = "word-lm"
    example_name = "word_lm"
    title = "Word language model"
    description = (
        "A word-level language model: word ids -> Embedding -> LSTM -> softmax over the "
        "vocabulary, guessing the next word after every word. Trained on nursery rhymes "
        "(public domain, lstmviz/assets/corpora/rhymes.txt) with their small vocabulary; each word "
        "becomes a vector of 8 numbers before the LSTM sees it. Type a line such as 'mary had "
        "a little' and see which word the model expects next, and which units carry the rhyme "
        "you are in."
    )
    token_kind = "words"
    example = "mary had a little lamb its fleece was white as snow"
    corpus_name = "rhymes.txt"
    window = 16
    embed_dim = 8
    defaults = TrainConfig(
        epochs=12, batch_size=32, learning_rate=0.01, units=48, steps_per_epoch=80
    )

    def tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text.lower())

    @cached_property
    def _vocab(self) -> list[str]:
        counts = Counter(self.tokens)
        return ["<unk>", *sorted(counts)]


# ------------------------------------------------------------------------------------------
# registry
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Registry:
    tasks: dict[str, Task] = field(default_factory=dict)


_REGISTRY = _Registry(
    {
        t.name: t
        for t in (DigitSum(), BinaryAddition(), ToyClassification(), CharTextgen(), WordLM())
    }
)
from .flipflop import FlipFlop  # noqa: E402  (subclasses Task, defined above)

_REGISTRY.tasks[FlipFlop.name] = FlipFlop()
TASK_NAMES: tuple[str, ...] = tuple(_REGISTRY.tasks)


def get_task(name: str) -> Task:
    """A task by name (``"digit-sum"``; underscores work too)."""
    key = name.strip().lower().replace("_", "-")
    try:
        return _REGISTRY.tasks[key]
    except KeyError:
        raise LstmvizError(f"unknown task {name!r}; tasks: {', '.join(TASK_NAMES)}") from None


def list_tasks() -> list[Task]:
    return list(_REGISTRY.tasks.values())


def with_overrides(config: TrainConfig, **kw: Any) -> TrainConfig:
    """``config`` with the given fields replaced (None values are ignored)."""
    return replace(config, **{k: v for k, v in kw.items() if v is not None})
