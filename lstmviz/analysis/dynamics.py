"""State space: PCA of the hidden or cell state, and the fixed and slow points of an LSTM's
step map with their stability (Sussillo & Barak 2013), in NumPy.

With a constant input ``x`` the LSTM is a map of its state ``s = (h, c)``::

    F(h, c) = (o' · tanh(c'), c'),   c' = f · c + i · g,   [i, f, o, g] = act(x W + h U + b)

A fixed point has ``F(s) = s``. :func:`fixed_points` minimises ``q(s) = ½‖F(s) - s‖²`` from many
starting states (Levenberg-Marquardt with the map's exact Jacobian, all starts at once) and
classifies what it finds by the Jacobian's eigenvalues: all inside the unit circle, stable (an
attractor: a memory); some outside, a saddle. Local minima with ``q`` above the tolerance are
slow points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np

from .. import budget
from ..engine import activations
from ..engine.backward import activation_derivative
from ..engine.model import Model
from ..engine.reprs import dataclass_repr
from ..engine.trace import LayerTrace, Trace
from ..errors import InputError, LstmvizError

Arr = np.ndarray


# ------------------------------------------------------------------------------------------
# PCA
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class StatePCA:
    """Principal components of one layer's ``quantity`` over a trace or a corpus.

    Attributes
    ----------
    components : ndarray
        ``(k, D)`` unit vectors, largest variance first.
    mean : ndarray
        ``(D,)``.
    explained_variance, explained_ratio : ndarray
        ``(k,)`` the variance along each component and its share of the total.
    projected : ndarray or None
        ``(batch, T, k)``: the fitted trace's trajectory in the components (None for a corpus).
    layer, quantity : str
    """

    components: Arr
    mean: Arr
    explained_variance: Arr
    explained_ratio: Arr
    projected: Arr | None
    layer: str
    quantity: str

    __repr__ = dataclass_repr  # arrays by dtype and shape, not every value

    def project(self, states: Arr) -> Arr:
        """``(..., D)`` states -> ``(..., k)`` coordinates."""
        s = np.asarray(states, np.float64)
        if s.shape[-1] != self.mean.shape[0]:
            raise InputError(
                f"states have {s.shape[-1]} values each; this PCA is of {self.mean.shape[0]}"
            )
        return (s - self.mean) @ self.components.T


def _layer_trace(source: Trace | LayerTrace, layer: str | int | None) -> LayerTrace:
    if isinstance(source, LayerTrace):
        return source
    if isinstance(source, Trace):
        return source.layer(0 if layer is None else layer)
    raise InputError(
        f"source must be a Trace, a LayerTrace or a CorpusStore; got {type(source).__name__}"
    )


def state_pca(
    source: Any,
    layer: str | int | None = None,
    quantity: str = "hidden",
    k: int = 3,
) -> StatePCA:
    """PCA of ``quantity`` (``"hidden"``, ``"cell"``, or a gate) of one LSTM layer.

    ``source``: a :class:`Trace` (every batch item and valid step pooled), a
    :class:`LayerTrace`, or a :class:`~lstmviz.analysis.CorpusStore` (its stored values,
    read in chunks: a corpus larger than memory works).
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive integer; got {k!r}")
    if type(source).__name__ == "CorpusStore":
        return _corpus_pca(source, layer, quantity, int(k))
    lt = _layer_trace(source, layer)
    vals = np.asarray(lt.per_unit(quantity), np.float64)  # (B, T, D)
    keep = np.ones(vals.shape[:2], bool) if lt.mask is None else np.asarray(lt.mask, bool)
    data = vals[keep]
    if data.shape[0] < 2:
        raise InputError("PCA needs at least 2 states")
    mean = data.mean(axis=0)
    _, sv, vt = np.linalg.svd(data - mean, full_matrices=False)
    var = sv**2 / max(data.shape[0] - 1, 1)
    k = min(int(k), vt.shape[0])
    comps = _orient(vt[:k])
    total = var.sum()
    return StatePCA(
        components=comps,
        mean=mean,
        explained_variance=var[:k],
        explained_ratio=var[:k] / total if total > 0 else np.zeros(k),
        projected=(vals - mean) @ comps.T,
        layer=lt.name,
        quantity=quantity,
    )


def _orient(comps: Arr) -> Arr:
    """Flip each component so that its largest entry is positive (a deterministic sign)."""
    idx = np.argmax(np.abs(comps), axis=1)
    signs = np.sign(comps[np.arange(len(comps)), idx])
    return comps * np.where(signs == 0, 1, signs)[:, None]


def _corpus_pca(store: Any, layer: str | int | None, quantity: str, k: int) -> StatePCA:
    name = (
        store.layers[0]
        if layer is None
        else (store.layers[layer] if isinstance(layer, int) else layer)
    )
    arr = store.array(name, quantity)  # (D, N) memory-mapped
    d, n = arr.shape[0], int(store.n_steps)
    if n < 2:
        raise InputError("PCA needs at least 2 states")
    s1 = np.zeros(d)
    s2 = np.zeros((d, d))
    for lo in range(0, n, 1 << 16):
        block = np.asarray(arr[:, lo : min(n, lo + (1 << 16))], np.float64)  # (D, n_b)
        s1 += block.sum(axis=1)
        s2 += block @ block.T
    mean = s1 / n
    cov = (s2 - n * np.outer(mean, mean)) / (n - 1)
    var, vecs = np.linalg.eigh(cov)
    order = np.argsort(var)[::-1]
    var, vecs = np.maximum(var[order], 0), vecs[:, order]
    k = min(k, d)
    comps = _orient(vecs[:, :k].T)
    return StatePCA(comps, mean, var[:k], var[:k] / max(var.sum(), 1e-300), None, name, quantity)


# ------------------------------------------------------------------------------------------
# the step map and its Jacobian
# ------------------------------------------------------------------------------------------
class StepMap:
    """One LSTM's state map ``(h, c) -> (h', c')`` for a constant layer input ``u``.

    States are ``(N, P + U)`` rows ``[h, c]`` (P = U without a projection).
    """

    def __init__(self, lt_weights: Any, u: Arr) -> None:
        w = lt_weights
        if w.recurrent_activation in ("softmax", "log_softmax"):
            raise LstmvizError(
                f"fixed points need an elementwise recurrent activation; this LSTM uses "
                f"{w.recurrent_activation!r}"
            )
        kernel, rec, bias = (
            None if a is None else np.asarray(a, np.float64) for a in w._internal()
        )
        assert kernel is not None and rec is not None
        self.units = w.units
        self.pdim = w.output_units
        self.rec = rec  # (P, 4U) blocks i, f, o, c
        self.proj = None if w.projection is None else np.asarray(w.projection, np.float64)
        u = np.asarray(u, np.float64).reshape(-1)
        if u.shape[0] != w.input_dim:
            raise InputError(
                f"the constant input has {u.shape[0]} values; the LSTM takes {w.input_dim}"
            )
        self.xw = u @ kernel + (0 if bias is None else bias)  # (4U,) the input's constant part
        self.sig_name, self.act_name = w.recurrent_activation, w.activation
        self.sig = activations.get(w.recurrent_activation)
        self.act = activations.get(w.activation)

    @property
    def dim(self) -> int:
        return self.pdim + self.units

    def split(self, s: Arr) -> tuple[Arr, Arr]:
        return s[..., : self.pdim], s[..., self.pdim :]

    @overload
    def __call__(self, s: Arr, jacobian: Literal[True]) -> tuple[Arr, Arr]: ...
    @overload
    def __call__(self, s: Arr, jacobian: Literal[False] = ...) -> tuple[Arr, None]: ...
    def __call__(self, s: Arr, jacobian: bool = False) -> tuple[Arr, Arr | None]:
        """``F(s)`` ``(N, D)``, and with ``jacobian`` ``dF/ds`` ``(N, D, D)``."""
        u_ = self.units
        h, c = self.split(np.atleast_2d(s))
        z = self.xw + h @ self.rec  # (N, 4U)
        a = np.empty_like(z)
        self.sig(z[:, : 3 * u_], a[:, : 3 * u_])
        self.act(z[:, 3 * u_ :], a[:, 3 * u_ :])
        i, f, o, g = a[:, :u_], a[:, u_ : 2 * u_], a[:, 2 * u_ : 3 * u_], a[:, 3 * u_ :]
        c2 = f * c + i * g
        tc = self.act(c2, np.empty_like(c2))
        hu = o * tc
        h2 = hu if self.proj is None else hu @ self.proj
        out = np.concatenate([h2, c2], axis=1)
        if not jacobian:
            return out, None
        ds = activation_derivative(self.sig_name, z[:, : 3 * u_], a[:, : 3 * u_])  # (N, 3U)
        dg = activation_derivative(self.act_name, z[:, 3 * u_ :], g)  # (N, U)
        dtc = activation_derivative(self.act_name, c2, tc)  # (N, U)
        rt = self.rec.T  # (4U, P): row j is d z_j / d h
        ri, rf, ro, rg = rt[:u_], rt[u_ : 2 * u_], rt[2 * u_ : 3 * u_], rt[3 * u_ :]
        # dc'/dh (N, U, P) and dc'/dc (N, U, U)
        dc_dh = (
            (c * ds[:, u_ : 2 * u_])[:, :, None] * rf[None]
            + (g * ds[:, :u_])[:, :, None] * ri[None]
            + (i * dg)[:, :, None] * rg[None]
        )
        eye = np.eye(u_)
        dc_dc = f[:, :, None] * eye[None]
        # dhu/dh and dhu/dc (N, U, ·)
        k = (o * dtc)[:, :, None]
        dhu_dh = (tc * ds[:, 2 * u_ : 3 * u_])[:, :, None] * ro[None] + k * dc_dh
        dhu_dc = k * dc_dc
        if self.proj is not None:
            pt = self.proj.T  # (P, U)
            dh_dh, dh_dc = pt @ dhu_dh, pt @ dhu_dc
        else:
            dh_dh, dh_dc = dhu_dh, dhu_dc
        top = np.concatenate([dh_dh, dh_dc], axis=2)
        bottom = np.concatenate([dc_dh, dc_dc], axis=2)
        return out, np.concatenate([top, bottom], axis=1)


# ------------------------------------------------------------------------------------------
# fixed points
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FixedPoint:
    """A fixed (or slow) point of one LSTM's step map.

    Attributes
    ----------
    h, c : ndarray
        The state: hidden ``(P,)`` and cell ``(U,)``.
    speed : float
        ``q = ½‖F(s) - s‖²`` at the point (0 at an exact fixed point).
    eigenvalues : ndarray
        The Jacobian ``dF/ds``'s eigenvalues (complex), largest magnitude first.
    tol : float
        The ``q`` below which the point counts as fixed.
    """

    h: Arr
    c: Arr
    speed: float
    eigenvalues: Arr
    tol: float

    __repr__ = dataclass_repr  # arrays by dtype and shape, not every value

    @property
    def state(self) -> Arr:
        """``[h, c]`` as one vector."""
        return np.concatenate([self.h, self.c])

    @property
    def spectral_radius(self) -> float:
        return float(np.abs(self.eigenvalues).max()) if self.eigenvalues.size else 0.0

    @property
    def is_fixed(self) -> bool:
        """``q`` below the tolerance (else a slow point)."""
        return self.speed <= self.tol

    @property
    def stable(self) -> bool:
        """A fixed point whose eigenvalues all lie inside the unit circle: an attractor."""
        return self.is_fixed and self.spectral_radius < 1.0

    @property
    def n_unstable(self) -> int:
        """How many eigenvalues lie outside the unit circle (the saddle's unstable directions)."""
        return int((np.abs(self.eigenvalues) > 1.0).sum())

    @property
    def kind(self) -> str:
        """``"stable"``, ``"saddle"`` (some directions unstable), ``"unstable"`` or ``"slow"``."""
        if not self.is_fixed:
            return "slow"
        n = self.n_unstable
        if n == 0:
            return "stable"
        return "unstable" if n == self.eigenvalues.size else "saddle"

    def to_dict(self) -> dict[str, Any]:
        return {
            "h": self.h.tolist(),
            "c": self.c.tolist(),
            "speed": self.speed,
            "eigenvalues_re": self.eigenvalues.real.tolist(),
            "eigenvalues_im": self.eigenvalues.imag.tolist(),
            "kind": self.kind,
        }


def constant_layer_input(
    model: Model, layer: str, x_const: Any = None, settle: int | None = None
) -> Arr:
    """The input an LSTM layer sees when the model's input is ``x_const`` at every step.

    ``x_const``: a feature vector ``(F,)`` (default zeros), or a token id (default 0) for a
    token model. Layers before the LSTM run on it; for an LSTM above another LSTM the
    sequence runs ``settle`` steps (default 200) and the last step's input is taken (the
    lower layers settled into their own state under the constant input).
    """
    names = model.lstm_trace_names
    first = names.index(layer) == 0 if layer in names else False
    steps = settle if settle is not None else (1 if first else 200)
    if model.takes_tokens:
        tok = 0 if x_const is None else x_const
        if not isinstance(tok, (int, np.integer)) or isinstance(tok, bool):
            raise InputError(f"x_const: a token model takes a token id; got {x_const!r}")
        x: Arr = np.full((1, steps), int(tok), np.int64)
    else:
        f = model.input_features
        if f is None:
            raise InputError("x_const: the model's input size is unknown; pass layer_input=")
        v = np.zeros(f, np.float32) if x_const is None else np.asarray(x_const, np.float32)
        if v.shape != (f,):
            raise InputError(f"x_const: expected a vector of {f} input features; got {v.shape}")
        x = np.broadcast_to(v, (1, steps, f)).copy()
    lt = model.trace(x, step_outputs=False).layer(layer)
    return np.asarray(lt.x[0, -1], np.float64)


def _inits(
    inits: Any,
    model: Model,
    layer: str,
    n: int,
    dim: int,
    pdim: int,
    rng: np.random.Generator,
    noise: float,
) -> Arr:
    if inits is None:
        h = rng.uniform(-1, 1, (n, pdim))
        c = rng.uniform(-2, 2, (n, dim - pdim))
        return np.concatenate([h, c], axis=1)
    if isinstance(inits, np.ndarray) and inits.ndim == 2 and inits.shape[1] == dim:
        states = np.asarray(inits, np.float64)
        return states[rng.choice(states.shape[0], size=n, replace=states.shape[0] < n)]
    else:
        tr = inits if isinstance(inits, Trace) else model.trace(inits, step_outputs=False)
        lt = tr.layer(layer)
        keep = np.ones((lt.batch_size, lt.timesteps), bool) if lt.mask is None else lt.mask
        states = np.concatenate(
            [np.asarray(lt.hidden, np.float64)[keep], np.asarray(lt.cell, np.float64)[keep]], axis=1
        )
    # half of the starts are visited states (plus noise), half are spread uniformly over the
    # box the visited states span (a short input visits only some of the memories)
    n_seen = (n + 1) // 2
    pick = rng.choice(states.shape[0], size=n_seen, replace=states.shape[0] < n_seen)
    seen = states[pick]
    if noise:
        seen = seen + noise * rng.normal(size=seen.shape)
    lo, hi = states.min(axis=0), states.max(axis=0)
    pad = 0.1 * (hi - lo) + 1e-3
    box = rng.uniform(lo - pad, hi + pad, (n - n_seen, dim))
    return np.concatenate([seen, box])


def find_fixed_points(
    step: StepMap,
    starts: Arr,
    *,
    tol: float = 1e-12,
    max_iter: int = 200,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Arr, Arr]:
    """Levenberg-Marquardt on ``q(s) = ½‖F(s) - s‖²`` from every start at once.

    Returns the end states ``(N, D)`` and their ``q`` ``(N,)``.
    """
    s = np.array(starts, np.float64)
    n, d = s.shape
    budget.check(n * d * d * 8 * 6, what=f"fixed-point search from {n} starts in {d} dimensions")
    mu = np.full(n, 1e-2)
    eye = np.eye(d)
    f, jac = step(s, jacobian=True)
    r = f - s
    q = 0.5 * (r * r).sum(axis=1)
    active = q > tol * 1e-3
    for it in range(max_iter):
        if not active.any():
            break
        a = np.flatnonzero(active)
        jr = jac[a] - eye  # (n_a, D, D) Jacobian of the residual
        jt = np.swapaxes(jr, 1, 2)
        lhs = jt @ jr + mu[a, None, None] * eye
        rhs = -(jt @ r[a][..., None])[..., 0]
        try:
            delta = np.linalg.solve(lhs, rhs[..., None])[..., 0]
        except np.linalg.LinAlgError:
            delta = np.linalg.lstsq(lhs.reshape(-1, d), rhs.reshape(-1), rcond=None)[0].reshape(
                rhs.shape
            )
        trial = s[a] + delta
        f_t, jac_t = step(trial, jacobian=True)
        r_t = f_t - trial
        q_t = 0.5 * (r_t * r_t).sum(axis=1)
        better = q_t < q[a]
        idx_b = a[better]
        s[idx_b], r[idx_b], q[idx_b] = trial[better], r_t[better], q_t[better]
        jac[idx_b] = jac_t[better]
        mu[idx_b] = np.maximum(mu[idx_b] / 3, 1e-12)
        mu[a[~better]] = np.minimum(mu[a[~better]] * 4, 1e8)
        step_small = np.linalg.norm(delta, axis=1) < 1e-14 * (1 + np.linalg.norm(s[a], axis=1))
        done = (q[a] <= tol * 1e-3) | (step_small & ~better) | (mu[a] >= 1e8)
        active[a[done]] = False
        if progress is not None:
            progress(it + 1, max_iter)
    return s, q


def fixed_points(
    model: Model,
    layer: str | int = 0,
    x_const: Any = None,
    n_init: int = 128,
    tol: float = 1e-10,
    *,
    inits: Any = None,
    layer_input: Arr | None = None,
    noise: float = 0.01,
    slow: bool = False,
    slow_tol: float = 1e-4,
    unique_tol: float = 1e-4,
    max_iter: int = 200,
    seed: int | None = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[FixedPoint]:
    """Fixed points (and with ``slow=True`` slow points) of one LSTM's state map.

    Parameters
    ----------
    model : Model
    layer : str or int
        The LSTM (its trace name or index).
    x_const : array_like or int, optional
        The constant model input: a feature vector (default zeros) or a token id (default 0).
        See :func:`constant_layer_input`; ``layer_input=`` gives the LSTM's own input directly.
    n_init : int
        How many starting states.
    tol : float
        A point is fixed when ``q = ½‖F(s) - s‖² <= tol``.
    inits : optional
        Where the starts come from: an input array or a Trace (half of the starts are states
        the network visits, plus ``noise``; half are spread over the box those states span),
        or an array of states ``(N, P + U)`` (used as given). Default: random states (h in
        [-1, 1], c in [-2, 2]).
    slow : bool
        Also return local minima of ``q`` up to ``slow_tol`` (slow points).
    unique_tol : float
        Points closer than this (relative to the state's scale) are the same point.
    seed : int, optional
        Seeds the starts.

    Returns
    -------
    list of FixedPoint
        Unique points, stable ones first, then by ``q``; each with its state and the
        Jacobian's eigenvalues.
    """
    names = model.lstm_trace_names
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if not 0 <= int(layer) < len(names):
            raise InputError(f"layer index {layer} out of range: LSTM layers {', '.join(names)}")
        name = names[int(layer)]
    elif layer in names:
        name = str(layer)
    else:
        raise InputError(f"no LSTM layer named {layer!r}; LSTM layers: {', '.join(names)}")
    if not isinstance(n_init, (int, np.integer)) or n_init < 1:
        raise InputError(f"n_init must be a positive integer; got {n_init!r}")
    if tol <= 0:
        raise InputError(f"tol must be > 0; got {tol}")
    weights = model.lstm(name).weights
    u = layer_input if layer_input is not None else constant_layer_input(model, name, x_const)
    step = StepMap(weights, u)
    rng = np.random.default_rng(seed)
    starts = _inits(inits, model, name, int(n_init), step.dim, step.pdim, rng, noise)
    ends, q = find_fixed_points(step, starts, tol=tol, max_iter=max_iter, progress=progress)
    keep = q <= (slow_tol if slow else tol)
    ends, q = ends[keep], q[keep]
    order = np.argsort(q, kind="stable")
    uniq: list[int] = []
    scale = 1.0 + np.abs(ends).max() if len(ends) else 1.0
    for i in order:
        if all(np.linalg.norm(ends[i] - ends[j]) > unique_tol * scale for j in uniq):
            uniq.append(int(i))
    points = []
    if uniq:
        _, jac = step(ends[uniq], jacobian=True)
        assert jac is not None
        for k, i in enumerate(uniq):
            ev = np.linalg.eigvals(jac[k])
            ev = ev[np.argsort(-np.abs(ev), kind="stable")]
            h, c = step.split(ends[i])
            points.append(FixedPoint(h.copy(), c.copy(), float(q[i]), ev, float(tol)))
    points.sort(key=lambda p: (not p.stable, not p.is_fixed, p.speed))
    return points


def fixed_point_summary(points: Sequence[FixedPoint]) -> dict[str, int]:
    """How many points of each kind: ``{"stable": 8, "saddle": 12, ...}``."""
    out: dict[str, int] = {}
    for p in points:
        out[p.kind] = out.get(p.kind, 0) + 1
    return out
