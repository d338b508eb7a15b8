"""The training loop: every task learns, snapshots, cancel, pause, NaN, save round trip."""

from __future__ import annotations

import threading

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import lstmviz  # noqa: E402
from lstmviz.errors import LstmvizError  # noqa: E402
from lstmviz.train.core import (  # noqa: E402
    PauseGate,
    TrainingError,
    clone_architecture,
    train,
)
from lstmviz.train.tasks import TASK_NAMES, Batch, TrainConfig, get_task  # noqa: E402

TINY = {
    "digit-sum": TrainConfig(
        epochs=2, batch_size=32, learning_rate=0.01, units=16, steps_per_epoch=15
    ),
    "binary-addition": TrainConfig(
        epochs=2, batch_size=32, learning_rate=0.02, units=4, steps_per_epoch=15
    ),
    "toy-classification": TrainConfig(
        epochs=2, batch_size=32, learning_rate=0.01, units=8, steps_per_epoch=15
    ),
    "char-textgen": TrainConfig(
        epochs=2, batch_size=16, learning_rate=0.01, units=16, steps_per_epoch=15
    ),
    "word-lm": TrainConfig(
        epochs=2, batch_size=16, learning_rate=0.01, units=16, steps_per_epoch=15
    ),
    "flip-flop": TrainConfig(
        epochs=2, batch_size=16, learning_rate=0.01, units=8, steps_per_epoch=15
    ),
}


@pytest.fixture(scope="module")
def runs():
    """One short run per task (module-scoped: trained once for all the tests below)."""
    out = {}
    for name in TASK_NAMES:
        snaps = []
        out[name] = (train(get_task(name), TINY[name], on_snapshot=snaps.append), snaps)
    return out


@pytest.mark.parametrize("name", TASK_NAMES)
def test_short_run_lowers_the_loss(runs, name):
    r, snaps = runs[name]
    loss = r.history["loss"]
    assert len(loss) == TINY[name].total_steps == r.steps
    assert np.mean(loss[-5:]) < np.mean(loss[:5])
    assert 0 <= r.metrics["heldout_accuracy"] <= 1
    # a snapshot before training and one per epoch, all carrying weights for every layer
    assert [s.step for s in snaps] == [0, 15, 30]
    assert snaps[0].label == "before training"
    assert snaps is not r.snapshots and len(r.snapshots) == 3


@pytest.mark.parametrize("name", TASK_NAMES)
def test_snapshot_engine_model_matches_keras(runs, name):
    r, snaps = runs[name]
    task = get_task(name)
    x = task.heldout()[0].x[:3]
    em = snaps[-1].engine_model()  # NumPy only
    np.testing.assert_allclose(em.trace(x).output, np.asarray(r.model(x)), atol=1e-5)
    # the first snapshot holds the untrained weights: the models differ
    first = snaps[0].engine_model().trace(x).output
    assert not np.allclose(first, em.trace(x).output, atol=1e-4)


@pytest.mark.parametrize("name", ["digit-sum", "binary-addition", "word-lm"])
def test_save_and_load_round_trip(runs, name, tmp_path):
    r, _ = runs[name]
    path = tmp_path / f"{name}.keras"
    r.save(str(path))
    m = lstmviz.load_model(path)
    x = get_task(name).heldout()[0].x[:4]
    np.testing.assert_allclose(m.trace(x).output, np.asarray(r.model(x)), atol=1e-5)
    info = lstmviz.io.meta.load_info(path)
    assert info.task == name and info.extra["training"]["epochs"] == 2
    assert "heldout_accuracy" in info.extra["metrics"]


def test_digit_sum_exports_h_T_model(runs):
    r, _ = runs["digit-sum"]
    assert r.model.output_shape == (None, 10)  # the saved model reads only h_T
    assert r.model.get_layer("lstm").return_sequences is False


def test_cancel_stops_within_one_batch():
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) >= 3

    cfg = TrainConfig(epochs=3, batch_size=8, units=4, steps_per_epoch=10)
    r = train(get_task("digit-sum"), cfg, should_stop=should_stop)
    assert r.stopped and r.steps == 3 and len(r.history["loss"]) == 3
    assert r.metrics.get("heldout_accuracy") is None  # not scored when stopped


def test_pause_waits_between_batches():
    gate = PauseGate()
    seen = []
    paused_at = threading.Event()

    def on_batch(b):
        seen.append(b.step)
        if b.step == 2:
            gate.pause()
            paused_at.set()

    cfg = TrainConfig(epochs=1, batch_size=8, units=4, steps_per_epoch=6)
    result = {}
    th = threading.Thread(
        target=lambda: result.setdefault(
            "r", train(get_task("digit-sum"), cfg, on_batch=on_batch, pause=gate)
        )
    )
    th.start()
    assert paused_at.wait(60)
    th.join(0.5)
    assert th.is_alive() and seen == [1, 2]  # held between batches
    gate.resume()
    th.join(60)
    assert not th.is_alive() and seen == [1, 2, 3, 4, 5, 6]
    assert result["r"].steps == 6


class _Poisoned:
    """digit-sum whose 4th batch is NaN: the loss becomes NaN there."""

    def __init__(self):
        self._t = get_task("digit-sum")

    def __getattr__(self, k):
        return getattr(self._t, k)

    def batch(self, rng, n, step=0):
        b = self._t.batch(rng, n, step)
        if step == 3:
            return Batch(np.full_like(b.x, np.nan), b.y, b.y_final)
        return b


def test_nan_loss_raises_and_keeps_last_good_weights():
    snaps = []
    cfg = TrainConfig(epochs=1, batch_size=8, units=4, steps_per_epoch=8, snapshot_every=2)
    with pytest.raises(
        TrainingError, match=r"loss became nan in epoch 1, batch 4.*last good"
    ) as ei:
        train(_Poisoned(), cfg, on_snapshot=snaps.append)
    res = ei.value.result
    assert res is not None and res.steps == 3
    ws = [w for w in res.model.get_weights()]
    assert all(np.all(np.isfinite(w)) for w in ws)
    # the weights after batch 3 (newer than the snapshot of batch 2), handed on as a snapshot
    assert [s.step for s in snaps] == [0, 2, 3]
    np.testing.assert_array_equal(ws[0], snaps[-1].weights["lstm"][0])
    assert isinstance(ei.value, LstmvizError)


def test_open_models_architecture_on_task_data(tmp_path):
    from tests import keras_models

    km = keras_models.digit_sum(units=6)
    path = tmp_path / "mine.keras"
    km.save(path)
    fresh = clone_architecture(str(path))
    cfg = TrainConfig(epochs=1, batch_size=16, units=6, steps_per_epoch=5)
    r = train(get_task("digit-sum"), cfg, model=fresh)
    assert r.model is fresh and r.steps == 5
    assert r.snapshots[-1].engine_model().layers.keys() == lstmviz.load_model(path).layers.keys()
    # a model that does not fit the task's data is refused with a clear message
    with pytest.raises(TrainingError, match=r"task 'binary-addition' feeds \(batch, T, 2\)"):
        train(get_task("binary-addition"), cfg, model=clone_architecture(str(path)))
