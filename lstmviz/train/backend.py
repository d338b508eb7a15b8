"""Importing TensorFlow/Keras lazily, with one helpful message when it is missing."""

from __future__ import annotations

import os
import threading
from typing import Any

from ..errors import MissingDependencyError

_lock = threading.Lock()
_keras: Any = None


def keras_module() -> Any:
    """``keras`` on the TensorFlow backend, imported on first use (thread-safe).

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
                import tensorflow  # noqa: F401
            except ImportError:
                raise MissingDependencyError("tensorflow", "lstmviz[train]") from None
            try:
                import keras
            except ImportError:
                raise MissingDependencyError("keras", "lstmviz[train]") from None
            _keras = keras
    return _keras


def is_loaded() -> bool:
    """Whether TensorFlow has been imported already (no import is triggered)."""
    import sys

    return "tensorflow" in sys.modules and _keras is not None


def set_seed(seed: int) -> None:
    """``keras.utils.set_random_seed``: Python, NumPy and TensorFlow at once."""
    keras_module().utils.set_random_seed(int(seed))
