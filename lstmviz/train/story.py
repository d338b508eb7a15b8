"""The story emerging while a model trains: the story metric of every training snapshot.

The Train panel feeds each :class:`~lstmviz.train.core.Snapshot` to a :class:`StoryTracker`
and shows ``tracker.values()`` as a curve ("the carry unit's r over epochs") and
``tracker.verdict()`` as a sentence: when the story appeared, or that this run has none and
the bundled model has it. NumPy only (the snapshot becomes an engine model; no TensorFlow).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..analysis.story import THRESHOLDS, Story, story
from .tasks import Task


@dataclass
class StoryTracker:
    """The story metric of each snapshot of one training run.

    Parameters
    ----------
    task : Task
        The task being trained (its name picks the metric; language models are scored on
        the task's example text).
    """

    task: Task
    stories: list[Story] = field(default_factory=list)

    @property
    def available(self) -> bool:
        """Whether this task has a story metric."""
        return self.task.name in THRESHOLDS

    def add(self, snapshot: Any, model: Any = None) -> Story | None:
        """Score ``snapshot`` (or ``model``, its engine model when already built) and keep
        the result; None for a task without a story metric."""
        if not self.available:
            return None
        em = model if model is not None else snapshot.engine_model()
        info = self.task.info()
        ids = None
        if self.task.name in ("char-textgen", "word-lm"):
            from ..io.inputs import encode_text

            ids = encode_text(em, self.task.example, info)[0]
        s = story(self.task.name, em, info=info, text_ids=ids, label=snapshot.label)
        self.stories.append(s)
        return s

    def values(self) -> list[tuple[str, float]]:
        """``(snapshot label, metric)`` of every snapshot so far, for a curve."""
        return [(s.label, s.value) for s in self.stories]

    def verdict(self, finished: bool = True) -> str:
        """One sentence for the panel: the latest story, when it first appeared, or (for a
        finished run without it) that the bundled model has it."""
        if not self.stories:
            return ""
        last = self.stories[-1]
        first = next((s for s in self.stories if s.present), None)
        if last.present:
            since = f" (since {first.label})" if first is not None and first is not last else ""
            return last.sentence + since
        if finished:
            return (
                f"This run has no clear story: {last.sentence[0].lower()}{last.sentence[1:]}"
                if not last.sentence.startswith("No ")
                else f"This run has no clear story. {last.sentence}"
            )
        return last.sentence
