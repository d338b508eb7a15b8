"""Has this model learned the story its example tells? One number per task, and a sentence.

The Train panel shows it after every snapshot ("the story emerging": the carry unit's r over
epochs), and says plainly when a run has none, so a classroom demo never promises what the
model on screen does not do.

================== ================================================  =========
task               metric                                            threshold
================== ================================================  =========
binary-addition    best |r| of a unit's cell state with the carry    0.99
digit-sum          running-sum accuracy over every step              0.99
toy-classification accuracy of the final answer                      0.99
char-textgen       next-character accuracy on its example text       0.5
word-lm            next-word accuracy on its example text            0.5
================== ================================================  =========

NumPy only: the model is an engine :class:`~lstmviz.engine.model.Model` (a training snapshot's
:meth:`~lstmviz.train.core.Snapshot.engine_model`), the data are generated here with fixed seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LstmvizError
from .ground_truth import ground_truth, predictions, sum_bits
from .search import correlations

THRESHOLDS = {
    "binary-addition": 0.99,
    "digit-sum": 0.99,
    "toy-classification": 0.99,
    "char-textgen": 0.5,
    "word-lm": 0.5,
}


@dataclass(frozen=True)
class Story:
    """The story metric of one model.

    ``value`` is the metric (``metric`` names it), ``present`` whether it reaches
    ``threshold``; ``unit`` is the carry unit of the adder (else None); ``sentence`` is what to
    show, in plain words.
    """

    task: str
    metric: str
    value: float
    threshold: float
    present: bool
    sentence: str
    unit: int | None = None
    label: str = ""  # e.g. the snapshot's "epoch 3"


def addition_data(n: int, length: int, seed: int = 5) -> np.ndarray:
    """``n`` random binary additions of ``length`` bits, ``(n, length, 2)`` float32 (the top
    bits zero in half of them, so the last carry shows as a sum bit)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, (n, length, 2))
    pad = np.where(rng.random(n) < 0.5, rng.integers(1, max(2, length // 2), n), 0)
    top = np.arange(length)[None, :] >= length - pad[:, None]  # (n, T)
    a = np.where(top[..., None], 0, a)
    return a.astype(np.float32)


def carry_unit(
    model: Any, layer: str | int = 0, length: int = 60, n: int = 200, seed: int = 5
) -> tuple[int, float]:
    """The unit whose cell state follows the carry of a binary addition best: ``(unit, r)``.

    Pearson r between the unit's cell state after step t and the carry out of step t, over
    ``n`` random additions of ``length`` bits (fixed ``seed``).
    """
    x = addition_data(n, length, seed)
    lt = model.trace(x, step_outputs=False).layer(layer)
    _, carry = sum_bits(x)
    r = correlations(lt, carry.astype(np.float64), "cell")
    r = np.where(np.isfinite(r), r, 0.0)
    best = int(np.argmax(np.abs(r)))
    return best, float(r[best])


def _accuracy(model: Any, task: str, x: Any, info: Any) -> float:
    tr = model.trace(x)
    if tr.step_output is None:
        raise LstmvizError(f"the model has no per-step output to score on the {task} task")
    gt = ground_truth(info if info is not None else task, x)
    return gt.compare(tr.step_output).accuracy_all()


def story(
    task: str,
    model: Any,
    *,
    info: Any = None,
    text_ids: Sequence[int] | None = None,
    label: str = "",
) -> Story:
    """The story metric of ``model`` on ``task``, with the sentence to show.

    Parameters
    ----------
    task : str
        ``"binary-addition"``, ``"digit-sum"``, ``"toy-classification"``, ``"char-textgen"``
        or ``"word-lm"``.
    model : engine Model
        The model (for training: ``snapshot.engine_model()``).
    info : ModelInfo, optional
        The language models' vocabulary (their sidecar or ``task.info()``).
    text_ids : sequence of int, optional
        Language models: the token ids to score next-token accuracy on (the example text
        encoded with ``info``'s vocabulary by default... pass it, the example is not known
        here).
    label : str
        A name for this model (a snapshot's "epoch 3"), kept on the result.
    """
    key = task.strip().lower().replace("_", "-")
    if key not in THRESHOLDS:
        raise LstmvizError(f"no story metric for task {task!r}; tasks: {', '.join(THRESHOLDS)}")
    thr = THRESHOLDS[key]
    if key == "binary-addition":
        unit, r = carry_unit(model)
        ok = abs(r) >= thr
        if ok:
            s = (
                f"Unit {unit} carries the carry: its cell state follows the carry bit "
                f"(r = {r:+.3f})."
            )
        else:
            s = (
                f"No unit tracks the carry cleanly yet (best: unit {unit}, |r| = {abs(r):.2f}; "
                f"the story needs {thr}). Train longer, or open the bundled model."
            )
        return Story(key, "carry |r|", abs(r), thr, ok, s, unit, label)
    if key == "digit-sum":
        rng = np.random.default_rng(7)
        digits = rng.integers(0, 10, (300, 12))
        x = np.eye(10, dtype=np.float32)[digits]
        acc = _accuracy(model, key, x, None)
        what = "running sum"
    elif key == "toy-classification":
        from .ground_truth import repeated_symbol

        rng = np.random.default_rng(8)
        rows = np.zeros((300, 6), np.float32)
        k = rng.integers(1, 4, 300)
        p = rng.integers(0, 5, 300)
        rows[np.arange(300), p] = k
        rows[np.arange(300), p + 1] = k
        x = rows[..., None]
        tr = model.trace(x)
        pred, _ = predictions(np.asarray(tr.output)[:, None, :])
        acc = float((pred[:, 0] == repeated_symbol(x)[:, -1]).mean())
        what = "repeated symbol"
    else:
        if text_ids is None or info is None:
            raise LstmvizError(
                f"the {key} story is scored on a text: pass text_ids and the model's info"
            )
        ids = np.asarray(text_ids, np.int64)[None]
        acc = _accuracy(model, key, ids, info)
        what = "next character" if key == "char-textgen" else "next word"
    ok = acc >= thr
    if ok:
        s = f"The model gets the {what} right {100 * acc:.0f} % of the time."
    else:
        s = (
            f"The model gets the {what} right only {100 * acc:.0f} % of the time (the story "
            f"needs {100 * thr:.0f} %). Train longer, or open the bundled model."
        )
    return Story(key, f"{what} accuracy", acc, thr, ok, s, None, label)


def describe(info: Any, model: Any) -> str:
    """The model's description, made true for *this* model: the sidecar's description of
    the task, then what this model actually does (:func:`story` on its example), e.g.
    "... This model: no unit tracks the carry cleanly yet (...)".

    ``info``: the model's :class:`~lstmviz.io.meta.ModelInfo` (a training snapshot's is the
    task's). A model without a known task gets its description unchanged.
    """
    desc = (getattr(info, "description", "") or "").strip()
    task = (getattr(info, "task", "") or "").strip().lower().replace("_", "-")
    if task not in THRESHOLDS:
        return desc
    ids = None
    if task in ("char-textgen", "word-lm"):
        from ..io.inputs import encode_text

        if not getattr(info, "example", ""):
            return desc
        ids = encode_text(model, info.example, info)[0]
    s = story(task, model, info=info, text_ids=ids)
    first = s.sentence
    if first.startswith("The model "):
        first = "it " + first[len("The model ") :]
    elif first.startswith("No "):
        first = "n" + first[1:]
    return f"{desc} This model: {first}".strip()
