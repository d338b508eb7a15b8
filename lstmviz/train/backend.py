"""Importing TensorFlow/Keras lazily, with one helpful message when it is missing."""

from __future__ import annotations

import os
import threading
from typing import Any

from ..errors import MissingDependencyError

_lock = threading.Lock()
_keras: Any = None


def keras_module(threads: int | None = None) -> Any:
    """``keras`` on the TensorFlow backend, imported on first use (thread-safe).

    ``threads`` limits TensorFlow's thread pools when it is first imported (the app uses 1,
    so training leaves a core to the GUI).

    Raises
    ------
    MissingDependencyError
        When TensorFlow or Keras is not installed.
    """
    global _keras
    if _keras is not None:
        return _keras
    with _lock:
        if _keras is None:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
            os.environ.setdefault("KERAS_BACKEND", "tensorflow")
            os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
            try:
                import tensorflow
            except ImportError:
                raise MissingDependencyError("tensorflow", "lstmviz[train]") from None
            try:
                import keras
            except ImportError:
                raise MissingDependencyError("keras", "lstmviz[train]") from None
            if threads:
                try:
                    tensorflow.config.threading.set_intra_op_parallelism_threads(threads)
                    tensorflow.config.threading.set_inter_op_parallelism_threads(threads)
                except RuntimeError:  # already initialised by someone else
                    pass
            _keras = keras
    return _keras


def is_loaded() -> bool:
    """Whether TensorFlow has been imported already (no import is triggered)."""
    import sys

    return "tensorflow" in sys.modules and _keras is not None


def set_seed(seed: int) -> None:
    """``keras.utils.set_random_seed``: Python, NumPy and TensorFlow at once."""
    keras_module().utils.set_random_seed(int(seed))
