"""Rows of one short label per timestep, drawn above and below the heatmaps.

The token row (the input at every step) and the output rows (what the model says at every
step and, for a bundled task, the correct answer, mismatches marked) make an animation tell
the whole story: what went in, what the gates did, what came out, and whether it was right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..engine.trace import Trace

#: Okabe-Ito vermillion (a wrong answer) and bluish green (a right one): colour-blind safe.
WRONG = "#D55E00"
RIGHT = "#009E73"
#: A step with no answer to check.
PLAIN = "black"


@dataclass(frozen=True)
class StepRow:
    """One row: a name shown at its left and a label (and colour) per timestep."""

    name: str
    labels: tuple[str, ...]
    colours: tuple[str, ...] | None = None

    def colour(self, t: int) -> str:
        return self.colours[t] if self.colours is not None else PLAIN


def token_row(labels: Sequence[str], name: str = "input") -> StepRow:
    """The input tokens as a row."""
    return StepRow(name, tuple(str(s) for s in labels))


def output_rows(
    trace: Trace, info: Any = None, batch: int = 0, tokens: Any = None
) -> list[StepRow]:
    """What the model says at every step and, when its task is known, the correct answer.

    ``info`` is the model's sidecar (:class:`~lstmviz.io.meta.ModelInfo`, its task and
    labels); ``tokens`` what follows the input in the source text (language models). Returns
    no rows for a model without per-step output; only the "model says" row when the task is
    unknown. In that row a wrong answer is vermillion, a right one green.
    """
    from ..analysis.ground_truth import GroundTruthError, ground_truth, predictions

    so = trace.step_output
    if so is None:
        return []
    so = np.asarray(so)
    if so.ndim != 3 or so.shape[1] != trace.timesteps:
        return []
    if not is_probabilities(so):
        return []  # raw values (a model without a softmax or sigmoid head): no answer to read
    ids, _conf = predictions(so)
    k = so.shape[-1]
    labels = _class_labels(info, k)
    says = tuple(labels[i] if 0 <= i < len(labels) else str(i) for i in ids[batch])
    truth = None
    if info is not None and str(getattr(info, "task", "") or ""):
        try:
            truth = ground_truth(info, trace.inputs, tokens)
        except GroundTruthError:
            truth = None
    if truth is None or not truth.available or truth.expected.shape != ids.shape:
        return [StepRow("model says", says)]
    agree = truth.compare(so)
    colours = tuple(
        (RIGHT if agree.correct[batch, t] else WRONG) if agree.checked[batch, t] else PLAIN
        for t in range(ids.shape[1])
    )
    expected = tuple(
        truth.label(t, batch) if truth.expected[batch, t] >= 0 else "" for t in range(ids.shape[1])
    )
    return [StepRow("model says", says, colours), StepRow("correct", expected)]


def is_probabilities(step_output: Any) -> bool:
    """Whether a per-step output reads as answers: one sigmoid probability per step, or
    class probabilities that sum to 1 (not, e.g., the hidden state of a model without a
    head)."""
    p = np.asarray(step_output, dtype=np.float64)
    if p.size == 0 or not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        return False
    return p.shape[-1] == 1 or bool(np.allclose(p.sum(-1), 1.0, atol=1e-3))


def _class_labels(info: Any, k: int) -> list[str]:
    vis = {" ": "␣", "\n": "⏎", "\t": "⇥", "": "∅"}
    if info is not None:
        out = list(getattr(info, "output_labels", []) or [])
        if len(out) == k:
            return [vis.get(s, s) for s in out]
        vocab = list(getattr(info, "vocab", []) or [])
        if len(vocab) == k:
            return [vis.get(s, s) for s in vocab]
    if k == 1:
        return ["0", "1"]
    return [str(i) for i in range(k)]
