"""The correct answer at every step, for the bundled tasks, and how the model's output compares.

:func:`ground_truth` knows each task lstmviz trains and bundles:

================== ==========================================================================
digit-sum          the running digit sum mod 10 after every digit
binary-addition    the sum bit at every step (two numbers fed least significant bit first)
toy-classification the symbol that appears twice in a row (the model answers at the last step)
char-textgen       the next character of the source text
word-lm            the next word of the source text
================== ==========================================================================

A model without a known task (the untrained stacked example, a user's own model) gets a
:class:`GroundTruth` whose ``available`` is False and whose ``note`` says why.
:meth:`GroundTruth.compare` lines the model's per-step output up with the answers: which steps
it gets wrong, its accuracy over the shown input, and a sentence per step for the screen
("expected 7, model says 2").

NumPy only: the answers are computed from the input itself, never from a framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError, LstmvizError
from ..io.meta import ModelInfo

#: What each task's answer is, in plain words.
WHAT = {
    "digit-sum": "the running digit sum mod 10",
    "binary-addition": "the sum bit",
    "toy-classification": "the symbol that repeats",
    "char-textgen": "the next character of the text",
    "word-lm": "the next word of the text",
}
TASKS = tuple(WHAT)


class GroundTruthError(InputError):
    """The input does not fit the task whose answers were asked for."""


def _visible(s: str) -> str:
    return {" ": "␣", "\n": "⏎", "\t": "⇥", "": "∅"}.get(s, s)


def _task_and_info(example_or_info: Any) -> tuple[str, ModelInfo | None]:
    info: Any = example_or_info
    if hasattr(info, "info") and not isinstance(info, ModelInfo):  # an Example
        info = info.info
    if info is None:
        return "", None
    if isinstance(info, str):
        return info.strip().lower().replace("_", "-"), None
    if isinstance(info, dict):
        info = ModelInfo.from_json(info, "model info")
    if not isinstance(info, ModelInfo):
        raise LstmvizError(
            "ground_truth: expected a bundled example, a ModelInfo, a sidecar dict or a task "
            f"name; got {type(example_or_info).__name__}"
        )
    return info.task.strip().lower().replace("_", "-"), info


@dataclass(frozen=True)
class Agreement:
    """The model's per-step answers next to the correct ones (see :meth:`GroundTruth.compare`).

    Arrays are ``(batch, T)``: ``predicted`` class ids (bit 0/1 for a sigmoid),
    ``confidence`` the probability of that answer, ``correct`` True where the model is right,
    ``checked`` True where there is a correct answer to compare with and the step is one of
    the model's answers.
    """

    truth: GroundTruth
    predicted: np.ndarray
    confidence: np.ndarray
    correct: np.ndarray
    checked: np.ndarray

    def accuracy(self, b: int = 0) -> float | None:
        """Fraction of checked steps of batch item ``b`` the model gets right (None: none)."""
        n = int(self.checked[b].sum())
        return None if n == 0 else float(self.correct[b].sum() / n)

    def accuracy_all(self) -> float:
        """Fraction of checked steps of every batch item the model gets right (0 when none)."""
        n = int(self.checked.sum())
        return 0.0 if n == 0 else float(self.correct.sum() / n)

    def mismatches(self, b: int = 0) -> list[int]:
        """Steps of batch item ``b`` where the model's answer is wrong."""
        return [int(t) for t in np.flatnonzero(self.checked[b] & ~self.correct[b])]

    def says(self, t: int, b: int = 0) -> str:
        """The model's answer at step ``t`` as a label."""
        return self.truth.label_of(int(self.predicted[b, t]))

    def text(self, t: int, b: int = 0) -> str:
        """One line for the screen: ``"expected 7, model says 2"`` (``"... says 7 ✓"`` when
        right; the model's answer only where nothing is known)."""
        says = self.says(t, b)
        exp = self.truth.label(t, b)
        if int(self.truth.expected[b, t]) < 0:
            return f"model says {says} (no correct answer known here)"
        if not self.checked[b, t]:
            return f"expected {exp} at the end; model says {says} so far"
        mark = " ✓" if self.correct[b, t] else " ✗"
        return f"expected {exp}, model says {says}{mark}"

    def summary(self, b: int = 0) -> str:
        """Accuracy over the shown input in words: ``"right at 19 of 21 steps (90 %); wrong
        at t = 19, 20"``."""
        n = int(self.checked[b].sum())
        if n == 0:
            return self.truth.note or "no step of this input has a known correct answer"
        k = int(self.correct[b].sum())
        unit = "step" if n == 1 else "steps"
        s = f"right at {k} of {n} {unit} ({100 * k / n:.0f} %)"
        bad = self.mismatches(b)
        if bad:
            shown = ", ".join(str(t) for t in bad[:8]) + (" …" if len(bad) > 8 else "")
            s += f"; wrong at t = {shown}"
        return s


@dataclass(frozen=True)
class GroundTruth:
    """The correct answer at every step of an input.

    Attributes
    ----------
    task : str
        The task name (``"digit-sum"``...), or ``""`` when unknown.
    what : str
        What the answer is, in plain words (``"the running digit sum mod 10"``).
    expected : ndarray
        ``(batch, T)`` int64 answer ids (indices into ``labels``); -1 where no answer is known
        (the next token after the end of the text, a repeat not seen yet).
    labels : tuple of str
        Answer id -> label (digits, bits, symbols, characters, words).
    scored : ndarray
        ``(batch, T)`` bool: the steps whose output is one of the model's answers (every step
        for the per-step tasks; only the last step for the toy classifier, which answers once).
    note : str
        Why nothing is known, for a model without a task.
    """

    task: str
    what: str
    expected: np.ndarray
    labels: tuple[str, ...]
    scored: np.ndarray
    note: str = ""
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return bool(self.task) and bool((self.expected >= 0).any())

    def label_of(self, k: int) -> str:
        if 0 <= k < len(self.labels):
            return _visible(self.labels[k])
        return "?" if k < 0 else str(k)

    def label(self, t: int, b: int = 0) -> str:
        """The correct answer at step ``t`` as a label (``"?"`` where none is known)."""
        return self.label_of(int(self.expected[b, t]))

    def compare(self, outputs: Any) -> Agreement:
        """Compare the model's per-step output with the answers.

        ``outputs``: a :class:`~lstmviz.engine.trace.Trace` (its ``step_output``) or the
        array ``(batch, T, K)`` of per-step outputs (softmax probabilities, or one sigmoid
        probability per step), or ``(batch, T)`` sigmoid probabilities.
        """
        so = getattr(outputs, "step_output", outputs)
        if so is None:
            raise LstmvizError(
                "this model has no per-step output to compare with the correct answers"
            )
        pred, conf = predictions(so)
        if pred.shape != self.expected.shape:
            raise LstmvizError(
                f"the model's output covers {pred.shape} (batch, steps); the answers cover "
                f"{self.expected.shape}"
            )
        checked = self.scored & (self.expected >= 0)
        correct = checked & (pred == self.expected)
        return Agreement(self, pred, conf, correct, checked)


def predictions(step_output: Any) -> tuple[np.ndarray, np.ndarray]:
    """The model's answer at every step and its probability: ``(ids, confidence)``, each
    ``(batch, T)``.

    One value per step is a sigmoid probability (answer 1 when >= 0.5, its confidence then
    ``p``, else ``1 - p``); several are class probabilities (the answer is the most probable).
    """
    p = np.asarray(step_output, dtype=np.float64)
    if p.ndim == 2:
        p = p[..., None]
    if p.ndim != 3 or p.shape[-1] < 1:
        raise LstmvizError(f"per-step output must be (batch, T, K); got shape {p.shape}")
    if p.shape[-1] == 1:
        q = p[..., 0]
        ids = (q >= 0.5).astype(np.int64)
        return ids, np.where(ids == 1, q, 1 - q)
    ids = p.argmax(-1)
    return ids.astype(np.int64), np.take_along_axis(p, ids[..., None], -1)[..., 0]


# --- the tasks -----------------------------------------------------------------------------
def digits_of(x: Any) -> np.ndarray:
    """One-hot digits ``(batch, T, 10)`` -> digits ``(batch, T)``."""
    a = np.asarray(x)
    if a.ndim != 3 or a.shape[-1] != 10:
        raise GroundTruthError(
            f"digit-sum input must be one-hot digits (batch, T, 10); got {a.shape}"
        )
    if not (np.isin(a, (0, 1)).all() and (a.sum(-1) == 1).all()):
        raise GroundTruthError("digit-sum input must be one-hot: one 1 and nine 0s per step")
    return a.argmax(-1).astype(np.int64)


def running_digit_sum(x: Any) -> np.ndarray:
    """The digit sum mod 10 after every digit: ``(batch, T)``."""
    return np.cumsum(digits_of(x), axis=1) % 10


def _bits(x: Any) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 3 or a.shape[-1] != 2:
        raise GroundTruthError(
            f"binary-addition input must be two bits per step (batch, T, 2); got {a.shape}"
        )
    b = np.rint(a).astype(np.int64)
    if not (np.isin(b, (0, 1)).all() and np.allclose(a, b)):
        raise GroundTruthError("binary-addition input must hold only bits 0 and 1")
    return b


def sum_bits(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """The sum bit and the carry out of every step of a binary addition: ``(sum, carry)``,
    each ``(batch, T)`` (numbers fed least significant bit first)."""
    b = _bits(x)
    s = np.zeros(b.shape[:2], np.int64)
    c = np.zeros(b.shape[:2], np.int64)
    carry = np.zeros(b.shape[0], np.int64)
    for t in range(b.shape[1]):
        tot = b[:, t, 0] + b[:, t, 1] + carry
        s[:, t] = tot % 2
        carry = tot // 2
        c[:, t] = carry
    return s, c


def repeated_symbol(x: Any) -> np.ndarray:
    """For the toy classifier: the symbol (1-3) that has appeared twice in a row up to and
    including step t, or -1 before any repeat: ``(batch, T)``."""
    a = np.asarray(x)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise GroundTruthError(
            f"toy-classification input must be one symbol per step (batch, T, 1); got {a.shape}"
        )
    s = np.rint(a).astype(np.int64)
    out = np.full(s.shape, -1, np.int64)
    for b in range(s.shape[0]):
        found = -1
        for t in range(s.shape[1]):
            if found < 0 and t > 0 and s[b, t] == s[b, t - 1] and s[b, t] > 0:
                found = int(s[b, t])
            out[b, t] = found
    return out


def next_tokens(ids: Any, following: Sequence[int] | None = None) -> np.ndarray:
    """The token after every position: ``(batch, T)`` with ``out[:, t] = ids[:, t + 1]``;
    the last step's is ``following[b]`` when given (the source text goes on), else -1."""
    a = np.asarray(ids)
    if a.ndim != 2 or a.dtype.kind not in "iu":
        raise GroundTruthError(
            f"a language model's input must be token ids (batch, T); got {a.shape}"
        )
    out = np.full(a.shape, -1, np.int64)
    out[:, :-1] = a[:, 1:]
    if following is not None:
        out[:, -1] = np.asarray(following, np.int64)
    return out


def _token_index(tokens: Sequence[str], vocab: Sequence[str], kind: str) -> int:
    index = {t: i for i, t in enumerate(vocab)}
    if not tokens:
        return -1
    tok = tokens[0]
    if tok in index:
        return index[tok]
    if tok.lower() in index:
        return index[tok.lower()]
    return index.get("<unk>", -1) if kind == "words" else -1


def _split_tokens(tokens: str | Sequence[str] | None, kind: str) -> list[str] | None:
    if tokens is None:
        return None
    if isinstance(tokens, str):
        return list(tokens) if kind == "chars" else tokens.split()
    return [str(t) for t in tokens]


def ground_truth(
    example_or_info: Any,
    x: Any,
    tokens: str | Sequence[str] | None = None,
) -> GroundTruth:
    """The correct answer at every step of ``x`` for a bundled task.

    Parameters
    ----------
    example_or_info : Example, ModelInfo, dict or str
        A bundled example (:func:`lstmviz.examples.get_example`), the model's sidecar info
        (its ``task`` names the task), the sidecar as a dict, or a task name.
    x : array_like
        The model's input as traced: ``(batch, T, F)`` floats or ``(batch, T)`` token ids.
    tokens : str or sequence of str, optional
        Language models: what follows the input in the source text (a string, or tokens).
        Its first token is the correct answer at the last step; without it the last step
        has no known answer.

    Returns
    -------
    GroundTruth
        ``available`` is False for a model without a known task (``note`` says why).

    Raises
    ------
    GroundTruthError
        ``x`` does not fit the task (e.g. digits that are not one-hot).
    """
    task, info = _task_and_info(example_or_info)
    a = np.asarray(x[0] if isinstance(x, list) else x)
    shape = a.shape[:2] if a.ndim >= 2 else (1, a.shape[0] if a.ndim else 1)
    if task not in WHAT:
        note = (
            "This model was not trained on a task lstmviz knows, so there is no correct "
            "answer to compare with."
            if not task
            else f"lstmviz knows no correct answers for the task {task!r}."
        )
        empty = np.full(shape, -1, np.int64)
        return GroundTruth("", "", empty, (), np.zeros(shape, bool), note)
    scored = np.ones(shape, bool)
    extra: dict[str, np.ndarray] = {}
    if task == "digit-sum":
        exp = running_digit_sum(a)
        labels: tuple[str, ...] = tuple(str(i) for i in range(10))
    elif task == "binary-addition":
        exp, carry = sum_bits(a)
        extra["carry"] = carry
        labels = ("0", "1")
    elif task == "toy-classification":
        exp = repeated_symbol(a)
        labels = ("0", "1", "2", "3")
        scored = np.zeros(shape, bool)
        scored[:, -1] = True  # the model answers once, from h_T
    else:
        kind = "chars" if task == "char-textgen" else "words"
        vocab = list(info.vocab) if info is not None else []
        if not vocab:
            raise LstmvizError(
                f"the correct next {kind[:-1]} needs the model's vocabulary (its sidecar info); "
                "pass the ModelInfo or the bundled example, not only the task name"
            )
        if info is not None and info.output_labels and len(info.output_labels) != len(vocab):
            vocab = list(info.output_labels)
        following = None
        toks = _split_tokens(tokens, kind)
        if toks is not None:
            following = [_token_index(toks, vocab, kind)] * shape[0]
        exp = next_tokens(a, following)
        labels = tuple(vocab)
    return GroundTruth(task, WHAT[task], exp, labels, scored, "", extra)
