"""Attribution of one output to the input tokens and to every (t, unit): one result type for
every method, so that the token strip, a heatmap and an export draw it the same way.

=====================  ===================================================================
method                 what a token's score is
=====================  ===================================================================
``"gradient"``         ``‖∂target / ∂x_t‖`` (saliency; always >= 0)
``"grad_x_input"``     ``∂target / ∂x_t · x_t``
``"ig"``               integrated gradients (:func:`~lstmviz.analysis.integrated_gradients`)
``"occlusion"``        ``target(x) - target(x with step t replaced by the baseline)``
``"lrp"``              layer-wise relevance (:func:`~lstmviz.analysis.lrp`)
=====================  ===================================================================

Per (t, unit) scores (:attr:`Attribution.units`): ``h_t · ∂target/∂h_t`` for the gradient
methods (the first-order share of each unit's hidden state), the relevance of ``h_t`` for LRP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.backward import record
from ..engine.model import Model
from ..engine.reprs import dataclass_repr
from ..errors import InputError
from ._util import engine_model
from .gradients import (
    Target,
    _target_backward,
    describe_target,
    gradient,
    integrated_gradients_full,
    output_seed,
    seed_in_space,
)

METHODS = ("gradient", "grad_x_input", "ig", "occlusion", "lrp")
METHOD_TITLES = {
    "gradient": "gradient (saliency)",
    "grad_x_input": "gradient × input",
    "ig": "integrated gradients",
    "occlusion": "occlusion",
    "lrp": "LRP (Arras et al. 2017)",
}


@dataclass(frozen=True, eq=False)
class Attribution:
    """Scores of one target for every input step, and for every (t, unit) of each LSTM.

    Attributes
    ----------
    scores : ndarray
        ``(batch, T)`` one score per input step (token).
    per_feature : ndarray or None
        ``(batch, T, F)`` (or the embedding's dimension for token ids) where the method has it.
    units : dict
        ``{trace name: (batch, T, units)}`` per (t, unit) scores (empty for occlusion).
    method, target, space : str
    value : ndarray
        ``(batch,)`` the target's value.
    check : dict
        What verifies the scores: ``{"completeness_error": ...}`` for integrated gradients,
        ``{"conservation_error": ...}`` for LRP with ``bias_factor=1`` and
        ``{"share_kept_by_biases": ...}`` with the default 0 (relative, per batch item).
    """

    scores: np.ndarray
    per_feature: np.ndarray | None
    units: dict[str, np.ndarray]
    method: str
    target: str
    space: str
    value: np.ndarray
    check: dict[str, np.ndarray] = field(default_factory=dict)

    __repr__ = dataclass_repr  # arrays by dtype and shape, not every value

    @property
    def title(self) -> str:
        return f"{METHOD_TITLES.get(self.method, self.method)} of {self.target}"

    def normalized(self, b: int = 0) -> np.ndarray:
        """Batch item ``b``'s scores divided by their largest magnitude: ``(T,)`` in [-1, 1]
        (what the token strip colours)."""
        s = np.asarray(self.scores[b], np.float64)
        m = np.abs(s).max()
        return s / m if m > 0 else s


def occlusion(
    model: Model,
    x: Any,
    target: Target,
    *,
    baseline: Any = None,
    window: int = 1,
    space: str = "output",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """``target(x) - target(x with steps t..t+window-1 replaced)`` for every t: ``(batch, T)``.

    ``baseline``: the replacement -- None for zeros (floats) or token id 0 (token ids: for a
    ``mask_zero`` Embedding that drops the step), a number, a feature vector ``(F,)`` or a token
    id. All occluded copies run as one batch per batch item.
    """
    engine_model(model, "occlusion")
    from .interventions import evaluate

    if isinstance(x, list):
        raise InputError("occlusion works on single-input models")
    xc = np.asarray(model.check_input(x))
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise InputError(f"window must be a positive integer; got {window!r}")
    b, steps = xc.shape[:2]
    if model.takes_tokens:
        fill = 0 if baseline is None else baseline
        if not isinstance(fill, (int, np.integer)) or isinstance(fill, bool):
            raise InputError(f"baseline: a token model is occluded with a token id; got {fill!r}")
    else:
        fill = 0.0 if baseline is None else np.asarray(baseline, np.float32)
        if np.ndim(fill) not in (0, 1) or (np.ndim(fill) == 1 and np.shape(fill)[0] != xc.shape[2]):
            raise InputError(
                f"baseline: a number or a feature vector of {xc.shape[2]}; got {np.shape(fill)}"
            )
    clean = evaluate(model, xc, [], target, space)
    out = np.zeros((b, steps))
    for i in range(b):
        copies = np.repeat(xc[i : i + 1], steps, axis=0)  # (T, ...) copy t occludes step t
        for t in range(steps):
            copies[t, t : t + window] = fill
        out[i] = clean[i] - evaluate(model, copies, [], target, space)
        if progress is not None:
            progress(i + 1, b)
    return out


def attribute(
    model: Model,
    x: Any,
    target: Target,
    method: str = "ig",
    *,
    space: str | None = None,
    baseline: Any = None,
    steps: int = 64,
    window: int = 1,
    eps: float = 1e-3,
    bias_factor: float = 0.0,
) -> Attribution:
    """Attribute ``target`` to the input steps and to every (t, unit) with ``method``.

    Parameters
    ----------
    method : str
        One of ``"gradient"``, ``"grad_x_input"``, ``"ig"``, ``"occlusion"``, ``"lrp"``.
    space : {"output", "logit", "log"}, optional
        The target's space (default: ``"logit"`` for LRP, ``"output"`` otherwise).
    baseline, steps
        Integrated gradients (and occlusion's replacement).
    window
        Occlusion's window.
    eps, bias_factor
        LRP's ε-rule.
    """
    engine_model(model, "attribute")
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    sp = space or ("logit" if method == "lrp" else "output")
    tape = record(model, x)
    desc = describe_target(model, tape, target)
    if method == "lrp":
        from .lrp import lrp

        r = lrp(model, x, target, eps=eps, bias_factor=bias_factor, space=sp)
        return Attribution(
            scores=r.relevance,
            per_feature=r.per_feature,
            units={k: v["hidden"] for k, v in r.layers.items()},
            method=method,
            target=desc,
            space=sp,
            value=r.total,
            check=(
                {"conservation_error": r.conservation_error}
                if bias_factor == 1.0
                else {"share_kept_by_biases": r.absorbed / np.where(r.total == 0, 1, r.total)}
            ),
        )
    if method == "occlusion":
        scores = occlusion(model, x, target, baseline=baseline, window=window, space=sp)
        _, values = seed_in_space(model, tape, output_seed(model, tape, target), sp)
        return Attribution(scores, None, {}, method, desc, sp, values)
    g, values = _target_backward(model, tape, target, sp)
    units = {}
    for name, lg in g.layers.items():
        lt = tape.trace(name)
        units[name] = np.asarray(lt.hidden, np.float64) * lg.get("hidden")
    check: dict[str, np.ndarray] = {}
    if method == "ig":
        ig = integrated_gradients_full(model, x, target, baseline, steps, space=sp)
        per_feature = ig.per_feature
        scores = ig.attributions if ig.attributions.ndim == 2 else ig.attributions.sum(axis=-1)
        check["completeness_error"] = ig.relative_error
        values = ig.value
    else:
        grad = gradient(model, x, target, "input", space=sp)
        if model.takes_tokens:
            from .gradients import _embed

            inp = _embed(model, np.asarray(x))[0]
        else:
            inp = np.asarray(model.check_input(x), np.float64)
        if method == "gradient":
            per_feature = np.abs(grad)
            scores = np.linalg.norm(grad, axis=-1)
        else:
            per_feature = grad * inp
            scores = per_feature.sum(axis=-1)
    return Attribution(
        scores=np.asarray(scores, np.float64),
        per_feature=per_feature,
        units=units,
        method=method,
        target=desc,
        space=sp,
        value=np.asarray(values, np.float64),
        check=check,
    )
