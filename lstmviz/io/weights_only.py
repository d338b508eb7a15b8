"""Recognise weights-only files, so that opening one says what it is and what to do.

``model.save_weights(...)`` and ``ModelCheckpoint(save_weights_only=True)`` (the only file the
Keras weather-forecasting example writes) store a model's weights without its architecture; a
TF2 ``tf.train.Checkpoint`` stores objects, not layers. lstmviz needs the architecture to run a
model, so it refuses these with :class:`WeightsOnlyError` naming the case and the fix.
"""

from __future__ import annotations

from typing import Any

from ..errors import ModelFileError

FIX = (
    "save the model with model.save('m.keras') and open that (or rebuild the model in Python, "
    "load these weights into it, and call lstmviz.show(model, x))"
)


class WeightsOnlyError(ModelFileError):
    """The file holds a model's weights but not its architecture."""


def keras_h5_weights_only(f: Any, source: str) -> WeightsOnlyError | None:
    """The error for an open HDF5 file (h5py) that holds Keras weights only, else None.

    Keras 3's ``model.weights.h5`` / ``*.weights.h5`` has top-level ``layers`` / ``vars``
    groups and no ``model_config``; Keras 2 / tf.keras ``save_weights('w.h5')`` has a
    ``layer_names`` attribute and no ``model_config``.
    """
    attrs = getattr(f, "attrs", {})
    if "model_config" in attrs:
        return None
    try:
        keys = set(f.keys())
    except (OSError, RuntimeError, KeyError, TypeError):
        return None
    if "layer_names" in attrs:
        return WeightsOnlyError(
            f"{source}: this file holds weights only (tf.keras / Keras 2 "
            f"model.save_weights), not the model; {FIX}"
        )
    if keys and keys <= {
        "layers",
        "vars",
        "optimizer",
        "metrics",
        "_layer_checkpoint_dependencies",
    }:
        return WeightsOnlyError(
            f"{source}: this file holds weights only (Keras model.save_weights or "
            f"ModelCheckpoint(save_weights_only=True) writes *.weights.h5), not the model; {FIX}"
        )
    return None


def tf_checkpoint_weights_only(names: list[str], source: str) -> WeightsOnlyError | None:
    """The error for a TF2 object-based checkpoint (``tf.train.Checkpoint`` /
    ``model.save_weights('ckpt')`` in tf.keras), recognised by its ``.ATTRIBUTES`` names."""
    if any("/.ATTRIBUTES/" in n for n in names):
        return WeightsOnlyError(
            f"{source}: this is a TF2 object-based checkpoint (tf.train.Checkpoint or "
            f"model.save_weights): it holds weights only, not the model; {FIX}"
        )
    return None
