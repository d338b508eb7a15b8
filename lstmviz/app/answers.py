"""The model's answer at every step and the correct one, as the views show them.

One place glues :mod:`lstmviz.analysis.outputs` (what the output is: probabilities, logits,
bits...) to :mod:`lstmviz.analysis.ground_truth` (the correct answer of a bundled task): the
token strip's output and "correct" rows and presentation mode's prediction read the same
:class:`StepAnswers`, computed once per trace.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LstmvizError
from ..state import ViewerState


@dataclass(frozen=True)
class StepAnswers:
    """The model's answers over one batch item.

    Attributes
    ----------
    said : list of str
        The model's answer at every step, as a label.
    confidence : ndarray
        ``(T,)`` the probability of that answer.
    what : str
        What an answer is ("next character", "prediction").
    agreement : Agreement or None
        The comparison with the correct answers (:meth:`GroundTruth.compare`); None when the
        model's task is not one lstmviz knows.
    batch : int
        The batch item.
    """

    said: list[str]
    confidence: np.ndarray
    what: str
    agreement: Any
    batch: int

    @property
    def truth(self) -> list[str] | None:
        """The correct answer at every step ("?" where none is known), or None."""
        a = self.agreement
        if a is None:
            return None
        return [a.truth.label(t, self.batch) for t in range(len(self.said))]

    def right(self, t: int) -> bool | None:
        """True / False where the answer at ``t`` is checked against a correct one, else None."""
        a = self.agreement
        if a is None or not bool(a.checked[self.batch, t]):
            return None
        return bool(a.correct[self.batch, t])

    def summary(self) -> str:
        """Accuracy over the shown input in words ("" without correct answers)."""
        return self.agreement.summary(self.batch) if self.agreement is not None else ""


_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple[int, int], StepAnswers | None]] = (
    weakref.WeakKeyDictionary()
)


def warm_imports(trace: Any, batch: int) -> None:
    """A preparer (``ViewerState.preparers``, run in the tracing job): import what
    :func:`step_answers` needs, so that the first trace's turn on the GUI thread does not."""
    from ..analysis import ground_truth, outputs  # noqa: F401


def step_answers(state: ViewerState) -> StepAnswers | None:
    """The answers of the state's trace and batch item (cached per trace), or None when its
    per-step output does not read as one answer per step (regression values, a hidden
    sequence, several independent bits)."""
    tr = state.trace
    if tr is None or tr.step_output is None or state.model is None:
        return None
    if not state.output_follows_layer:  # an encoder's steps: the output follows another layer
        return None
    per = _CACHE.setdefault(tr, {})
    key = (state.batch, id(state.info))
    if key not in per:
        try:
            per[key] = _compute(state)
        except LstmvizError:
            per[key] = None
    return per[key]


def _compute(state: ViewerState) -> StepAnswers | None:
    from ..analysis.ground_truth import ground_truth, predictions
    from ..analysis.outputs import display_label, probabilities

    tr = state.trace
    assert tr is not None and tr.step_output is not None
    so = tr.step_output
    spec = state.output_spec  # decided once per model
    if spec is None:
        return None
    probs = probabilities(so, spec)
    if probs is None or (spec.kind == "bits" and probs.shape[-1] > 1):
        return None
    b = min(state.batch, probs.shape[0] - 1)
    ids, conf = predictions(probs)
    k = probs.shape[-1]
    labels = [display_label(s) for s in state.output_labels(k)] if k > 1 else ["0", "1"]
    info = state.info
    kind = str(getattr(info, "output_kind", "") or "")
    what = "next token" if kind == "next-token" else "model says"
    token_kind = getattr(info, "token_kind", None)
    if kind == "next-token" and token_kind in ("chars", "words"):
        what = f"next {token_kind[:-1]}"
    try:
        gt = ground_truth(info, state.x)
        agreement = gt.compare(probs) if gt.available else None
    except LstmvizError:  # the input does not fit the task (a user's own input)
        agreement = None
    return StepAnswers([labels[int(i)] for i in ids[b]], conf[b], what, agreement, b)
