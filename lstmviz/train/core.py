"""The training loop as a plain function, testable without Qt.

:func:`train` runs Keras ``fit`` on fresh generated batches. A Keras callback
(:class:`_Control`) does everything between batches: it reports progress, stops the run when
``should_stop()`` says so (``model.stop_training = True``, as Keras's ``TerminateOnNaN``),
waits while paused, hands weight snapshots to ``on_snapshot`` and catches a NaN loss (the
last good weights are kept). Weight snapshots are plain NumPy: the GUI thread turns them into
an engine model without TensorFlow (:meth:`Snapshot.engine_model`).
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import LstmvizError
from .tasks import Batch, Task, TrainConfig, adam

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


class TrainingError(LstmvizError):
    """Training could not go on (a NaN/inf loss, a model that does not fit the task's data).

    ``result`` holds what was trained up to the last good batch (or None)."""

    def __init__(self, msg: str, result: TrainResult | None = None) -> None:
        super().__init__(msg)
        self.result = result


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """What the GUI needs, besides weights, to build an engine model: the Keras config."""

    config: dict[str, Any]
    name: str = "training"
    keras_version: str = "3"

    @classmethod
    def from_keras(cls, model: Any, name: str = "") -> ModelSpec:
        from .backend import keras_module

        cfg = json.loads(model.to_json())
        return cls(cfg, name or model.name, str(keras_module().__version__))


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The model's weights after ``step`` batches (epoch ``epoch``, batch ``batch`` in it).

    ``weights`` maps a layer's path (``"lstm"``, ``"inner_model/dense"``) to its arrays in
    Keras order; ``metrics`` are the running loss/accuracy at that moment.
    """

    epoch: int
    batch: int
    step: int
    weights: dict[str, list[np.ndarray]]
    spec: ModelSpec
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.step == 0:
            return "before training"
        return f"epoch {self.epoch + 1}, batch {self.batch + 1} (step {self.step})"

    def engine_model(self) -> Any:
        """An :class:`lstmviz.engine.Model` with these weights (NumPy only, no TF)."""
        from .snapshot import engine_model

        return engine_model(self.spec, self.weights)


@dataclass(frozen=True)
class BatchLog:
    """One batch's numbers, for the live curves: this batch's loss and accuracy (not
    Keras's running mean over the epoch)."""

    step: int
    total: int
    epoch: int
    loss: float
    accuracy: float
    elapsed: float
    eta: float


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained (export) Keras model and its numbers."""

    task: Task
    config: TrainConfig
    model: Any  # the Keras model to save
    history: dict[str, list[float]]
    metrics: dict[str, float]
    snapshots: list[Snapshot]
    stopped: bool
    steps: int
    seconds: float

    def save(self, path: str, info: Any = None) -> str:
        """Save the model as ``.keras`` and its sidecar ``.lstmviz.json``; returns the path."""
        return save_model(self, path, info)


class Pausable(Protocol):
    """What :func:`train` polls between batches: a :class:`PauseGate`, or anything with the
    same two members (the training process's pause flag)."""

    @property
    def paused(self) -> bool: ...

    def wait(self, should_stop: ShouldStop | None = None) -> None: ...


class PauseGate:
    """Pause between batches: the training thread waits on a condition while paused."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def wait(self, should_stop: ShouldStop | None = None) -> None:
        """Block while paused (wakes every 0.1 s to check ``should_stop``)."""
        with self._cond:
            while self._paused and not (should_stop and should_stop()):
                self._cond.wait(0.1)


def layer_weights(model: Any) -> dict[str, list[np.ndarray]]:
    """Every layer's weights by path (nested models give ``"outer/inner"``), as copies."""
    out: dict[str, list[np.ndarray]] = {}

    def walk(m: Any, prefix: str) -> None:
        for lay in m.layers:
            key = f"{prefix}{lay.name}"
            if hasattr(lay, "layers") and lay.__class__.__name__ in (
                "Sequential",
                "Functional",
                "Model",
            ):
                walk(lay, key + "/")
                continue
            out[key] = [np.array(w, dtype=np.float32, copy=True) for w in lay.get_weights()]

    walk(model, "")
    return out


def _finite(ws: dict[str, list[np.ndarray]]) -> bool:
    return all(np.all(np.isfinite(a)) for arrs in ws.values() for a in arrs)


def _batches(
    task: Task, config: TrainConfig, targets: Callable[[Batch], Any]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Fresh batches forever, batch ``k`` drawn from ``default_rng([seed, k])``.

    A plain generator (Keras reads it through ``tf.data``): no helper threads, so a run
    stopped in the middle of an epoch ends at once, and the data are deterministic."""
    for k in itertools.count():
        rng = np.random.default_rng([config.seed, k])
        b = task.batch(rng, config.batch_size, k)
        yield b.x, targets(b)


def _targets_for(task: Task, model: Any) -> Callable[[Batch], Any]:
    """Pick the task's per-step or whole-sequence targets to fit ``model``'s output."""
    shape = tuple(model.output_shape) if not isinstance(model.output_shape, list) else None
    if shape is None:
        raise TrainingError(
            f"model {model.name!r} has several outputs; lstmviz trains models with one output"
        )
    per_step = len(shape) == 3 or (task.loss_kind == "binary" and len(shape) == 2)
    if per_step:

        def seq(b: Batch) -> Any:
            if b.y is None:
                raise TrainingError(
                    f"model {model.name!r} outputs one answer per step {shape}, but task "
                    f"{task.name!r} has only one answer per sequence; use a model whose last "
                    "LSTM has return_sequences=False"
                )
            return b.y

        return seq
    return lambda b: b.y_final


def _check_fits(task: Task, model: Any) -> None:
    shape = model.input_shape
    if isinstance(shape, list):
        raise TrainingError(
            f"model {model.name!r} has {len(shape)} inputs; task {task.name!r} feeds one"
        )
    feats = task.input_features
    if feats is None:
        if len(shape) != 2:
            raise TrainingError(
                f"task {task.name!r} feeds token ids (batch, T); model "
                f"{model.name!r} expects input {shape}"
            )
    elif len(shape) != 3 or shape[-1] not in (None, feats):
        raise TrainingError(
            f"task {task.name!r} feeds (batch, T, {feats}); model "
            f"{model.name!r} expects input {shape}"
        )
    out = model.output_shape
    classes = len(task.output_labels) if task.loss_kind != "binary" else 1
    if not isinstance(out, list) and task.loss_kind != "binary" and out[-1] not in (None, classes):
        raise TrainingError(
            f"task {task.name!r} has {classes} classes; model {model.name!r} "
            f"outputs {out[-1]} values per answer"
        )


def prepare_model(task: Task, config: TrainConfig, model: Any = None) -> tuple[Any, Any]:
    """``(train_model, export_model)`` for ``task``: its own, or ``model`` (a Keras model,
    e.g. the open model's architecture) compiled for the task's loss."""
    from .backend import keras_module

    keras = keras_module()
    if model is None:
        return task.build_model(config)
    _check_fits(task, model)
    loss = (
        "binary_crossentropy" if task.loss_kind == "binary" else "sparse_categorical_crossentropy"
    )
    metric = "binary_accuracy" if task.loss_kind == "binary" else "accuracy"
    model.compile(optimizer=adam(keras, config), loss=loss, metrics=[metric])
    return model, model


def clone_architecture(path: str) -> Any:
    """A fresh Keras model with the architecture of the ``.keras`` file at ``path``
    (new random weights; the file's own code is never run: ``safe_mode``)."""
    import zipfile

    from .backend import keras_module

    keras = keras_module()
    try:
        with zipfile.ZipFile(path) as zf:
            cfg = zf.read("config.json").decode("utf-8")
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise LstmvizError(f"{path}: cannot read the model's architecture ({e})") from None
    try:
        return keras.models.model_from_json(cfg)
    except (ValueError, TypeError) as e:
        raise LstmvizError(f"{path}: Keras cannot rebuild this architecture ({e})") from None


def _copy_into(src: Any, dst: Any) -> None:
    if src is dst:
        return
    for lay in dst.layers:
        ws = src.get_layer(lay.name).get_weights()
        if ws:
            lay.set_weights(ws)


def train(
    task: Task,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    on_snapshot: Callable[[Snapshot], None] | None = None,
    *,
    on_batch: Callable[[BatchLog], None] | None = None,
    pause: Pausable | None = None,
    model: Any = None,
    evaluate: bool = True,
) -> TrainResult:
    """Train ``task``'s model (or ``model``) with ``config``.

    Parameters
    ----------
    task : Task
        What to learn (:func:`lstmviz.train.tasks.get_task`).
    config : TrainConfig, optional
        Hyper-parameters; default ``task.defaults``.
    progress : callable, optional
        ``progress(done_batches, total_batches)`` after every batch.
    should_stop : callable, optional
        Polled after every batch; True stops training (the result holds the weights so far).
    on_snapshot : callable, optional
        Receives a :class:`Snapshot` before training, every ``config.snapshot_every``
        batches and at the end of every epoch.
    on_batch : callable, optional
        Receives a :class:`BatchLog` (loss, accuracy, ETA) after every batch.
    pause : PauseGate, optional
        Training waits between batches while it is paused (any :class:`Pausable`).
    model : keras.Model, optional
        Train this model (e.g. the open model's architecture) on the task's data instead of
        the task's own model.
    evaluate : bool
        Score the trained model on the task's held-out set (``result.metrics``).

    Raises
    ------
    TrainingError
        On a NaN or inf loss (``error.result`` keeps the last good weights) or a model that
        does not fit the task's data.
    """
    from .backend import keras_module, set_seed

    cfg: TrainConfig = config or task.defaults
    stop: ShouldStop = should_stop or (lambda: False)
    keras: Any = keras_module()
    t0 = time.monotonic()
    set_seed(cfg.seed)
    train_model, export_model = prepare_model(task, cfg, model)
    spec = ModelSpec.from_keras(export_model)
    targets = _targets_for(task, train_model)
    data = _batches(task, cfg, targets)
    total = cfg.total_steps
    snapshots: list[Snapshot] = []
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "step": []}
    state: dict[str, Any] = {"step": 0, "epoch": 0, "nan": None, "stopped": False}
    export_names = {lay.name for lay in export_model.layers}
    # small models keep a copy of the weights after every good batch (NaN -> roll back);
    # larger ones roll back to the last snapshot
    small = train_model.count_params() <= 2_000_000

    def weights_now() -> dict[str, list[np.ndarray]]:
        ws = layer_weights(train_model)
        return {k: v for k, v in ws.items() if k.split("/")[0] in export_names}

    def snap(epoch: int, batch: int, metrics: dict[str, float]) -> None:
        s = Snapshot(epoch, batch, state["step"], weights_now(), spec, metrics)
        state["good"] = s
        if on_snapshot is not None:
            on_snapshot(s)
        snapshots.append(s)

    class _Control(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            snap(0, -1, {})
            self._t_start = time.monotonic()

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            state["epoch"] = epoch

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            logs = logs or {}
            state["step"] += 1
            step = state["step"]
            # Keras logs the running mean over the epoch so far; undo it: this batch's values
            mean_loss = float(logs.get("loss", float("nan")))
            mean_acc = float(logs.get("accuracy", logs.get("binary_accuracy", float("nan"))))
            prev_loss, prev_acc = state.get("means", (0.0, 0.0)) if batch else (0.0, 0.0)
            loss = (batch + 1) * mean_loss - batch * prev_loss
            acc = (batch + 1) * mean_acc - batch * prev_acc
            state["means"] = (mean_loss, mean_acc)
            if not math.isfinite(mean_loss):
                state["nan"] = (state["epoch"], batch, loss)
                self.model.stop_training = True
                return
            if small:
                state["last_good"] = (step, weights_now())
            history["loss"].append(loss)
            history["accuracy"].append(acc)
            history["step"].append(step)
            elapsed = time.monotonic() - self._t_start
            eta = elapsed / step * (total - step)
            if progress is not None:
                progress(step, total)
            if on_batch is not None:
                on_batch(BatchLog(step, total, state["epoch"], loss, acc, elapsed, eta))
            every = cfg.snapshot_every
            if every and step % every == 0 and batch + 1 < cfg.steps_per_epoch:
                snap(state["epoch"], batch, {"loss": mean_loss, "accuracy": mean_acc})
            if stop():
                state["stopped"] = True
                self.model.stop_training = True
                return
            if pause is not None and pause.paused:
                pause.wait(stop)
                if stop():
                    state["stopped"] = True
                    self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if state["nan"] is not None:
                return
            logs = logs or {}
            metrics = {
                "loss": float(logs.get("loss", float("nan"))),
                "accuracy": float(logs.get("accuracy", logs.get("binary_accuracy", float("nan")))),
            }
            snap(epoch, cfg.steps_per_epoch - 1, metrics)

    train_model.fit(
        data,
        epochs=cfg.epochs,
        steps_per_epoch=cfg.steps_per_epoch,
        verbose=0,
        shuffle=False,
        callbacks=[_Control()],
    )

    if state["nan"] is not None:
        good: Snapshot = state["good"]
        if "last_good" in state and state["last_good"][0] > good.step:
            step, ws = state["last_good"]
            state["step"] = step
            good = Snapshot(state["epoch"], -1, step, ws, spec, {"last_good": 1.0})
            if on_snapshot is not None:
                on_snapshot(good)
            snapshots.append(good)
        _set_weights(train_model, good.weights)
        _copy_into(train_model, export_model)
        epoch, batch, loss = state["nan"]
        res = TrainResult(
            task,
            cfg,
            export_model,
            history,
            {},
            snapshots,
            True,
            good.step,
            time.monotonic() - t0,
        )
        raise TrainingError(
            f"training diverged: the loss became {loss} in epoch {epoch + 1}, batch "
            f"{batch + 1}. The last good weights (after batch {good.step}) are kept. Try a "
            f"smaller learning rate than {cfg.learning_rate:g}.",
            res,
        )
    _copy_into(train_model, export_model)
    metrics: dict[str, float] = {}
    if evaluate and not state["stopped"]:
        metrics = evaluate_model(task, export_model)
    if history["loss"]:
        tail = history["loss"][-min(len(history["loss"]), cfg.steps_per_epoch) :]
        metrics.setdefault("final_loss", float(np.mean(tail)))  # the last epoch's mean
    return TrainResult(
        task,
        cfg,
        export_model,
        history,
        metrics,
        snapshots,
        state["stopped"],
        state["step"],
        time.monotonic() - t0,
    )


def _set_weights(model: Any, weights: dict[str, list[np.ndarray]]) -> None:
    def walk(m: Any, prefix: str) -> None:
        for lay in m.layers:
            key = f"{prefix}{lay.name}"
            if weights.get(key):
                lay.set_weights(weights[key])
            elif hasattr(lay, "layers"):
                walk(lay, key + "/")

    walk(model, "")


def evaluate_model(task: Task, model: Any) -> dict[str, float]:
    """Held-out accuracy of a Keras model on ``task`` (plus training-text accuracy for the
    language models).

    The model runs on lstmviz's NumPy engine (checked against Keras to 1e-5 in the tests):
    eager Keras calls hold Python's GIL for long stretches, which would stall the GUI thread
    while the app trains in a worker.
    """
    from .snapshot import engine_model_from_keras

    em = engine_model_from_keras(model)

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(em.trace(x, step_outputs=False).output)

    out = {"heldout_accuracy": task.score(predict)["accuracy"]}
    train_acc = getattr(task, "train_accuracy", None)
    if callable(train_acc):
        out["train_accuracy"] = task.score(predict, train_acc())["accuracy"]
    return out


def save_model(result: TrainResult, path: str, info: Any = None) -> str:
    """Save ``result.model`` to ``path`` (``.keras``) and its sidecar; atomic."""
    from pathlib import Path

    from ..io.atomic import atomic_target
    from ..io.meta import save_info

    p = Path(path)
    if p.suffix != ".keras":
        raise LstmvizError(f"{p}: the trained model is saved as .keras; use a .keras file name")
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(p) as tmp:
        result.model.save(str(tmp))
    if info is None:
        info = result.task.info(result.config, result.metrics)
    side = save_info(p, info)
    _readable(p, side)
    return str(p)


def _readable(*paths: Any) -> None:
    """Temporary files are created 0600; give saved models the usual permissions."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    for q in paths:
        os.chmod(q, 0o666 & ~umask)
