"""What a model's output is, decided once: probabilities, log-probabilities, logits, sigmoid
bits or regression values -- and its top-k, ranked by value, with labels safe to display.

The kind comes from what the model says first: the activation of its final layer (a Dense or
Activation with ``softmax`` / ``log_softmax`` / ``sigmoid``, an ONNX graph ending in
``Softmax`` / ``LogSoftmax`` / ``Sigmoid``, a PyTorch head's ``head_activation``), then from
its model info (``outputs.kind`` in the sidecar: ``"classes"`` and ``"next-token"`` make a
linear head's outputs logits, ``"regression"`` makes them values). Only when neither says
anything are the values themselves looked at, and the result says so (``source="values"``).

>>> spec = output_spec(model, info)            # once per model
>>> top = top_k(trace.step_output[0, t], spec, labels, k=5)
>>> top[0].label, top[0].value, top[0].probability

Every kind is ranked by value, largest first: for log-probabilities that is the most likely
class (the value closest to 0), never the largest ``|value|``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LstmvizError

#: The kinds of output lstmviz tells apart.
KINDS: tuple[str, ...] = ("probabilities", "log_probabilities", "logits", "bits", "regression")
#: Where a kind came from: the model's final layer, its model info, or the values.
SOURCES: tuple[str, ...] = ("model", "info", "values")

_BY_ACTIVATION = {
    "softmax": "probabilities",
    "log_softmax": "log_probabilities",
    "sigmoid": "bits",
    "hard_sigmoid": "bits",
}
_LINEAR = ("linear", None, "")
# layers that pass their input through unchanged in value (shape only)
_PASS_THROUGH = frozenset(
    {
        "Dropout",
        "SpatialDropout1D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
        "Flatten",
        "Reshape",
        "Permute",
        "Masking",
        "LastStep",
        "SwapBatchTime",
    }
)
_CLASS_INFO = ("classes", "next-token", "class", "labels", "tokens")


@dataclass(frozen=True)
class OutputSpec:
    """What one model output is.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    source : str
        ``"model"`` (its final layer's activation), ``"info"`` (the model info) or
        ``"values"`` (the model says nothing; inferred from the values).
    activation : str or None
        The final activation the model declares (``"softmax"``, ``"linear"``, ...), if any.
    layer : str
        The layer (or ONNX node) the kind was read from, for messages.
    """

    kind: str
    source: str
    activation: str | None = None
    layer: str = ""

    @property
    def is_probability(self) -> bool:
        """True when :func:`probabilities` gives probabilities for this kind."""
        return self.kind != "regression"

    @property
    def unit(self) -> str:
        """What the values are, for an axis label."""
        return {
            "probabilities": "probability",
            "log_probabilities": "log-probability",
            "logits": "logit",
            "bits": "P(1)",
            "regression": "value",
        }[self.kind]


@dataclass(frozen=True)
class Ranked:
    """One entry of :func:`top_k`: the output index, its label (raw text; display it with
    :func:`display_label`), its value as the model gives it, and its probability (None for
    regression values)."""

    index: int
    label: str
    value: float
    probability: float | None


# ------------------------------------------------------------------------------------ kind
def final_activation(model: Any, output: int = 0) -> tuple[str | None, str] | None:
    """``(activation, layer name)`` of the layer that produces ``model``'s output ``output``,
    or None when the model does not say.

    Reads ``model.meta["output_activation"]`` (a str, or a list with one per output) when a
    loader recorded it (ONNX graphs, PyTorch heads, live models), else walks the engine graph
    back from the output through layers that do not change values (Dropout, Reshape, ...).
    An LSTM at the end gives ``("lstm", name)``: the output is a hidden state.
    """
    meta = getattr(model, "meta", None) or {}
    declared = meta.get("output_activation")
    if isinstance(declared, (list, tuple)):
        declared = declared[output] if output < len(declared) else None
    if isinstance(declared, str):
        where = meta.get("output_layer", "")
        if isinstance(where, (list, tuple)):
            where = where[output] if output < len(where) else ""
        return declared, str(where)
    nodes = getattr(model, "nodes", None)
    outputs = getattr(model, "outputs", None)
    if not nodes or not outputs or output >= len(outputs):
        return None
    by_key = {(n.layer.name, n.index): n for n in nodes}
    ref = outputs[output]
    for _ in range(len(nodes) + 1):
        node = by_key.get((ref[0], ref[1]))
        if node is None:
            return None
        layer = node.layer
        kind = getattr(layer, "kind", "")
        if kind == "TimeDistributed":
            layer = getattr(layer, "inner", layer)
            kind = getattr(layer, "kind", "")
        if kind in ("Dense", "Activation"):
            act = getattr(layer, "activation", None)
            if kind == "Activation" and act in _LINEAR and node.inputs:
                ref = node.inputs[0]
                continue
            return (act or "linear"), layer.name
        if kind in ("LSTM", "Bidirectional"):
            return "lstm", layer.name
        if (kind in _PASS_THROUGH or kind.startswith("Dropout")) and node.inputs:
            ref = node.inputs[0]
            continue
        return None
    return None


def output_spec(
    model: Any,
    info: Any = None,
    output: int = 0,
    values: Any = None,
) -> OutputSpec:
    """Decide what output ``output`` of ``model`` is.

    Parameters
    ----------
    model : Model
        A loaded model (an engine :class:`~lstmviz.engine.Model`, an ONNX model, a live
        model): anything with ``meta`` and, for the graph walk, ``nodes`` / ``outputs``.
    info : ModelInfo, optional
        The model's info (sidecar): ``output_kind`` ``"classes"`` / ``"next-token"`` /
        ``"bits"`` / ``"regression"``.
    output : int
        Which model output (0 for single-output models).
    values : array_like, optional
        Example values ``(..., K)`` (the trace's step output): used only when neither the
        model nor its info says what the output is.

    Returns
    -------
    OutputSpec
    """
    found = final_activation(model, output)
    act, where = found if found is not None else (None, "")
    info_kind = str(getattr(info, "output_kind", "") or "").lower()
    if act is not None and act in _BY_ACTIVATION:
        return OutputSpec(_BY_ACTIVATION[act], "model", act, where)
    if act is not None and act not in _LINEAR and act != "lstm":
        # tanh, relu, ...: values with a range, not a distribution
        return OutputSpec("regression", "model", act, where)
    if info_kind in _CLASS_INFO:
        return OutputSpec("logits", "info", act, where)
    if info_kind in ("bits", "bit", "binary"):
        if act in _LINEAR:
            return OutputSpec("logits", "info", act, where)
        return OutputSpec("bits", "info", act, where)
    if info_kind in ("regression", "values", "value"):
        return OutputSpec("regression", "info", act, where)
    if act is not None:  # linear head or a hidden state, and nothing says it is a class score
        return OutputSpec("regression", "model", act, where)
    return OutputSpec(kind_from_values(values), "values", None, where)


def kind_from_values(values: Any) -> str:
    """The kind when nothing but the values is known: rows in [0, 1] summing to 1 are
    probabilities, rows ``<= 0`` whose exponentials sum to 1 log-probabilities, one value in
    [0, 1] a bit; anything else (or no values) regression values."""
    if values is None:
        return "regression"
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0 or not np.all(np.isfinite(a)):
        return "regression"
    rows = a.reshape(-1, a.shape[-1]) if a.ndim else a.reshape(1, 1)
    k = rows.shape[1]
    if k == 1:
        return "bits" if np.all((rows >= 0) & (rows <= 1)) else "regression"
    if np.all((rows >= 0) & (rows <= 1)) and np.allclose(rows.sum(1), 1, atol=1e-3):
        return "probabilities"
    if np.all(rows <= 1e-6) and np.allclose(np.exp(rows).sum(1), 1, atol=1e-3):
        return "log_probabilities"
    return "regression"


# ------------------------------------------------------------------------------------ values
def probabilities(values: Any, spec: OutputSpec | str) -> np.ndarray | None:
    """The probabilities ``values`` stand for (float64, same shape), or None for regression.

    probabilities: as given; log-probabilities: ``exp``; logits: softmax over the last axis
    (a single logit: sigmoid); bits: as given (each the probability of a 1).
    """
    kind = spec.kind if isinstance(spec, OutputSpec) else spec
    if kind not in KINDS:
        raise LstmvizError(f"output kind must be one of {', '.join(KINDS)}; got {kind!r}")
    a = np.asarray(values, dtype=np.float64)
    if kind in ("probabilities", "bits"):
        return a
    if kind == "log_probabilities":
        return np.exp(a)
    if kind == "logits":
        if a.ndim and a.shape[-1] == 1:  # one logit: a binary classifier's, sigmoid
            return 1.0 / (1.0 + np.exp(-a))
        z = a - a.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=-1, keepdims=True))
    return None


def rank(values: Any) -> np.ndarray:
    """Indices of ``values`` (1-D) from the largest value to the smallest (stable: ties keep
    index order). The same order for every kind: softmax and exp keep it."""
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise LstmvizError(f"rank expects the K values of one step; got shape {a.shape}")
    return np.argsort(-a, kind="stable")


def top_k(
    values: Any,
    spec: OutputSpec | str,
    labels: Sequence[str] | None = None,
    k: int = 5,
) -> list[Ranked]:
    """The ``k`` largest outputs of one step, largest first.

    Parameters
    ----------
    values : array_like, shape (K,)
        One step of the model's output.
    spec : OutputSpec or str
        From :func:`output_spec` (or a kind name).
    labels : sequence of str, optional
        A label per output (:func:`output_labels`); indices otherwise.
    k : int
        How many (all if K is smaller).
    """
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if labels is not None and len(labels) != a.shape[0]:
        raise LstmvizError(f"{len(labels)} labels for {a.shape[0]} outputs")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise LstmvizError(f"k must be a positive integer; got {k!r}")
    probs = probabilities(a, spec)
    out = []
    for i in rank(a)[: int(k)]:
        out.append(
            Ranked(
                int(i),
                labels[i] if labels is not None else str(int(i)),
                float(a[i]),
                None if probs is None else float(probs[i]),
            )
        )
    return out


def predicted(values: Any, spec: OutputSpec | str) -> int | np.ndarray:
    """The model's answer for one step: the index of the largest value, or for bits the
    0/1 of each output (``P(1) >= 0.5``; for bit logits, ``>= 0``)."""
    kind = spec.kind if isinstance(spec, OutputSpec) else spec
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if kind == "bits" or (kind == "logits" and a.shape[0] == 1):
        bits = (a >= (0.5 if kind == "bits" else 0.0)).astype(np.int64)
        return int(bits[0]) if bits.shape[0] == 1 else bits
    return int(rank(a)[0])


def predicted_steps(values: Any, spec: OutputSpec | str) -> np.ndarray:
    """:func:`predicted` for every step at once: ``values`` ``(T, K)`` -> ``(T,)`` int64,
    the class of each step, or for bits the 0/1 of the first output."""
    kind = spec.kind if isinstance(spec, OutputSpec) else spec
    a = np.asarray(values, dtype=np.float64)
    a = a.reshape(a.shape[0], -1)
    if kind == "bits" or (kind == "logits" and a.shape[1] == 1):
        return (a[:, 0] >= (0.5 if kind == "bits" else 0.0)).astype(np.int64)
    return np.argmax(a, axis=1).astype(np.int64)  # the first largest, as rank() orders


# ------------------------------------------------------------------------------------ labels
_VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍", "": "∅"}


def display_label(label: str, html_escape: bool = False) -> str:
    """A label as it should appear on screen: whitespace made visible (``" "`` -> ``"␣"``),
    and with ``html_escape`` the characters Qt rich text would swallow escaped (``<START>``
    stays ``<START>`` on screen)."""
    s = _VISIBLE.get(label, label)
    s = "".join(ch if ch.isprintable() or ch in "␣⏎⇥␍" else f"\\x{ord(ch):02x}" for ch in s)
    return html.escape(s, quote=True) if html_escape else s


def output_labels(info: Any, k_total: int) -> list[str]:
    """A label per output: the info's ``output_labels``, else its vocabulary (chars/words
    models predicting the next token), else ``"0"``, ``"1"``, ... Raw text: pass each through
    :func:`display_label` to show it."""
    if info is not None:
        labels = list(getattr(info, "output_labels", []) or [])
        if len(labels) == k_total:
            return [str(s) for s in labels]
        vocab = list(getattr(info, "vocab", []) or [])
        if getattr(info, "token_kind", None) in ("chars", "words") and len(vocab) == k_total:
            return [str(s) for s in vocab]
    return [str(i) for i in range(k_total)]
