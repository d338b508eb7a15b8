"""Weight snapshots -> engine models, on the GUI thread, without TensorFlow or files.

The Keras config (``model.to_json()``, saved once when training starts) is built by the same
builder that reads ``.keras`` files (:func:`lstmviz.io.keras._top_model`); the weights come
from a snapshot's ``{layer path: [arrays]}`` instead of an HDF5 file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelFileError

if TYPE_CHECKING:
    from ..engine.model import Model
    from .core import ModelSpec


class SnapshotWeights:
    """A weights provider for :func:`lstmviz.io.keras._top_model` keyed by layer path."""

    by_class = False

    def __init__(self, weights: dict[str, list[np.ndarray]], source: str) -> None:
        self.weights = weights
        self.source = source

    @staticmethod
    def key_for(cls: str, name: str, used: dict[str, int]) -> str:
        return name

    def arrays(self, path: list[str]) -> list[np.ndarray]:
        return [np.asarray(a, np.float32) for a in self.weights.get("/".join(path), [])]


def engine_model(
    spec: ModelSpec, weights: dict[str, list[np.ndarray]], source: str | None = None
) -> Model:
    """An :class:`lstmviz.engine.Model` from a Keras config and a weight snapshot."""
    from ..io.keras import _top_model

    src = source or f"<training: {spec.name}>"
    try:
        m = _top_model(spec.config, src, SnapshotWeights(weights, src), spec.keras_version)
    except KeyError as e:  # pragma: no cover - the builder reports its own errors
        raise ModelFileError(f"{src}: snapshot lacks weights for {e}") from None
    m.format = "keras"
    m.source = ""
    m.meta["training_spec"] = (spec, weights)  # lets the Keras engine rebuild the model
    return m


def engine_model_from_keras(model: Any) -> Model:
    """An engine model from a live Keras model (used by tests and the Keras engine)."""
    from .core import ModelSpec, layer_weights

    return engine_model(ModelSpec.from_keras(model), layer_weights(model))
