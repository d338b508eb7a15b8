"""Training: the seeds' tasks, a training loop with snapshots, a Keras LSTM that returns its
gates, and the command ``lstmviz train``.

Importing this package does not import TensorFlow; that happens when training starts
(:func:`lstmviz.train.backend.keras_module`).

>>> from lstmviz.train import get_task, train
>>> result = train(get_task("digit-sum"))          # doctest: +SKIP
>>> result.save("digit_sum.keras")                 # doctest: +SKIP
"""

from __future__ import annotations

from .core import BatchLog, PauseGate, Snapshot, TrainingError, TrainResult, train
from .tasks import TASK_NAMES, Task, TrainConfig, get_task, list_tasks

__all__ = [
    "TASK_NAMES",
    "BatchLog",
    "PauseGate",
    "Snapshot",
    "Task",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "get_task",
    "list_tasks",
    "train",
]
