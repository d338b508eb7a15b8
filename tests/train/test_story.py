"""The story metric per training snapshot (what the Train panel shows)."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")

from lstmviz.train.core import train  # noqa: E402
from lstmviz.train.story import StoryTracker  # noqa: E402
from lstmviz.train.tasks import TrainConfig, get_task  # noqa: E402


def test_story_over_snapshots_of_a_tiny_run():
    task = get_task("digit-sum")
    tracker = StoryTracker(task)
    seen = []
    cfg = TrainConfig(epochs=2, batch_size=32, learning_rate=0.01, units=8, steps_per_epoch=10)
    train(task, cfg, on_snapshot=lambda s: seen.append(tracker.add(s)), evaluate=False)
    assert len(seen) == 3  # before training and after each epoch
    labels = [label for label, _ in tracker.values()]
    assert labels[0] == "before training" and labels[-1].startswith("epoch 2")
    assert all(0 <= v <= 1 for _, v in tracker.values())
    # 20 batches teach the running sum to nobody: the panel says so, and what to do
    assert not tracker.stories[-1].present
    verdict = tracker.verdict()
    assert verdict.startswith("This run has no clear story")
    assert "open the bundled model" in verdict


def test_story_of_the_adder_snapshot_names_its_best_unit():
    task = get_task("binary-addition")
    tracker = StoryTracker(task)
    cfg = TrainConfig(epochs=1, batch_size=32, learning_rate=0.02, units=4, steps_per_epoch=5)
    res = train(task, cfg, evaluate=False)
    s = tracker.add(res.snapshots[-1])
    assert s is not None and s.unit in range(4) and s.metric == "carry |r|"
    assert ("Unit" in s.sentence) or ("No unit" in s.sentence)


def test_language_model_story_uses_the_example_text():
    task = get_task("word-lm")
    tracker = StoryTracker(task)
    cfg = TrainConfig(epochs=1, batch_size=8, learning_rate=0.01, units=8, steps_per_epoch=3)
    res = train(task, cfg, evaluate=False)
    s = tracker.add(res.snapshots[-1])
    assert s is not None and s.metric == "next word accuracy"
    assert tracker.verdict(finished=False) == s.sentence
