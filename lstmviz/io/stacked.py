"""Build an engine :class:`~lstmviz.engine.Model` for a stack of LSTM layers.

Shared by the PyTorch and TF1 loaders, whose files hold weights but no graph: the graph is
always ``input -> [embedding] -> lstm_l0 -> lstm_l1 -> ... -> [head]``.

Layer and trace names (stable, documented in ``docs/formats.md``):

* ``lstm_l0``, ``lstm_l1``, ... -- one per layer, returning the whole sequence;
* a bidirectional layer is a ``Bidirectional`` named ``lstm_l<k>`` whose trace names are
  ``lstm_l<k>/forward`` and ``lstm_l<k>/backward`` (outputs concatenated, forward first);
* the head is a ``Dense`` applied at every timestep (``head_on="all"``) or to the last
  output only (``head_on="last"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engine import layers as L
from ..engine.cell import LSTMWeights
from ..engine.model import Model, Node, TensorRef
from ..errors import ModelFileError

HEAD_ON = ("all", "last")


class LastStep(L.Layer):
    """``x[:, -1]``: the last timestep of a sequence (what ``output[:, -1]`` does in torch)."""

    kind = "LastStep"
    supports_masking = False

    def call(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x[:, -1])  # (B, T, D) -> (B, D)

    def describe(self) -> str:
        return "LastStep: output[:, -1]"


def lstm_name(layer: int) -> str:
    """The stable name of stacked layer ``layer`` (``"lstm_l0"``)."""
    return f"lstm_l{layer}"


def build_stack(
    name: str,
    source: str,
    fmt: str,
    stack: Sequence[Sequence[LSTMWeights]],
    *,
    embedding: tuple[str, np.ndarray] | None = None,
    head: tuple[str, np.ndarray, np.ndarray | None, str] | None = None,
    head_on: str = "all",
    meta: dict[str, Any] | None = None,
) -> Model:
    """A Model for ``stack`` (one entry per layer: ``[forward]`` or ``[forward, backward]``).

    Parameters
    ----------
    embedding : (name, table (V, F)), optional
        An embedding in front: the model then takes ``(batch, T)`` token ids.
    head : (name, kernel (D, K), bias (K,) or None, activation), optional
        A dense layer after the last LSTM.
    head_on : {"all", "last"}
        Apply the head at every timestep, or to the last timestep's output only.
    """
    if not stack:
        raise ModelFileError(f"{source}: no LSTM layers")
    if head_on not in HEAD_ON:
        raise ModelFileError(f"{source}: head_on must be one of {HEAD_ON}; got {head_on!r}")
    first = stack[0][0]
    nodes: list[Node] = []
    if embedding is not None:
        inp = L.InputLayer("input", (None, None), dtype="int64")
    else:
        inp = L.InputLayer("input", (None, None, first.input_dim))
    nodes.append(Node(inp, 0, []))
    prev: TensorRef = ("input", 0, 0)
    if embedding is not None:
        ename, table = embedding
        nodes.append(Node(L.Embedding(ename, table), 0, [prev]))
        prev = (ename, 0, 0)
    n = len(stack)
    for k, dirs in enumerate(stack):
        lname = lstm_name(k)
        # the last unidirectional layer feeding a "last" head returns h_T only, so the
        # engine can still show the head at every step (Trace.step_output)
        seq = not (k == n - 1 and head is not None and head_on == "last" and len(dirs) == 1)
        if len(dirs) == 1:
            layer: L.Layer = L.LSTM(lname, dirs[0], return_sequences=seq)
        elif len(dirs) == 2:
            fwd = L.LSTM(f"{lname}_forward", dirs[0], return_sequences=True)
            bwd = L.LSTM(f"{lname}_backward", dirs[1], return_sequences=True, go_backwards=True)
            layer = L.Bidirectional(lname, fwd, bwd, "concat")
        else:
            raise ModelFileError(f"{source}: layer {k} has {len(dirs)} directions")
        nodes.append(Node(layer, 0, [prev]))
        prev = (lname, 0, 0)
    if head is not None:
        hname, kernel, bias, activation = head
        last = nodes[-1].layer
        if head_on == "last" and isinstance(last, L.Bidirectional):
            nodes.append(Node(LastStep("last_step"), 0, [prev]))
            prev = ("last_step", 0, 0)
        nodes.append(Node(L.Dense(hname, kernel, bias, activation), 0, [prev]))
        prev = (hname, 0, 0)
    return Model(name, nodes, [("input", 0, 0)], [prev], source=source, fmt=fmt, meta=meta)
