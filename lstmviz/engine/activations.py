"""Activation functions, float32, written into a caller's buffer (``out=``) where it matters.

Names follow Keras (``keras.activations``). ``hard_sigmoid`` is Keras 3's ``relu6(x + 3) / 6``;
files written by Keras 2 used ``clip(0.2 x + 0.5, 0, 1)``, available as ``hard_sigmoid_keras2``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import UnsupportedLayerError

Array = np.ndarray


def _linear(x: Array, out: Array) -> Array:
    if out is not x:
        np.copyto(out, x)
    return out


def _sigmoid(x: Array, out: Array) -> Array:
    # sigma(x) = 0.5 * tanh(x / 2) + 0.5: one transcendental call, no overflow.
    np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _tanh(x: Array, out: Array) -> Array:
    np.tanh(x, out=out)
    return out


def _relu(x: Array, out: Array) -> Array:
    np.maximum(x, 0, out=out)
    return out


def _relu6(x: Array, out: Array) -> Array:
    return np.clip(x, 0, 6, out=out)


def _hard_sigmoid(x: Array, out: Array) -> Array:  # Keras 3: relu6(x + 3) / 6
    np.add(x, 3.0, out=out)
    np.clip(out, 0.0, 6.0, out=out)
    out /= 6.0
    return out


def _hard_sigmoid_keras2(x: Array, out: Array) -> Array:  # Keras 2: clip(0.2 x + 0.5, 0, 1)
    np.multiply(x, 0.2, out=out)
    out += 0.5
    np.clip(out, 0.0, 1.0, out=out)
    return out


def _softmax(x: Array, out: Array) -> Array:
    m = np.max(x, axis=-1, keepdims=True)
    np.subtract(x, m, out=out)
    np.exp(out, out=out)
    out /= np.sum(out, axis=-1, keepdims=True)
    return out


def _log_softmax(x: Array, out: Array) -> Array:
    m = np.max(x, axis=-1, keepdims=True)
    shifted = x - m
    lse = np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    np.subtract(shifted, lse, out=out)
    return out


def _softplus(x: Array, out: Array) -> Array:
    np.logaddexp(x, 0.0, out=out)
    return out


def _softsign(x: Array, out: Array) -> Array:
    np.divide(x, 1.0 + np.abs(x), out=out)
    return out


def _elu(x: Array, out: Array) -> Array:
    neg = np.expm1(np.minimum(x, 0.0))
    np.copyto(out, np.where(x > 0, x, neg))
    return out


def _selu(x: Array, out: Array) -> Array:
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    neg = alpha * np.expm1(np.minimum(x, 0.0))
    np.copyto(out, scale * np.where(x > 0, x, neg))
    return out


def _exponential(x: Array, out: Array) -> Array:
    np.exp(x, out=out)
    return out


def _silu(x: Array, out: Array) -> Array:
    s = _sigmoid(x, np.empty_like(x))
    np.multiply(x, s, out=out)
    return out


def _hard_silu(x: Array, out: Array) -> Array:
    s = _hard_sigmoid(x, np.empty_like(x))
    np.multiply(x, s, out=out)
    return out


def _leaky_relu(x: Array, out: Array) -> Array:  # Keras 3 default negative_slope=0.2
    np.copyto(out, np.where(x >= 0, x, 0.2 * x))
    return out


def _erf(x: Array) -> Array:
    """Exact erf via ``math.erf`` (NumPy has none); only Dense heads use it, never the LSTM."""
    import math

    flat = np.asarray(x, dtype=np.float64).ravel()
    res = np.fromiter((math.erf(v) for v in flat), dtype=np.float64, count=flat.size)
    return res.reshape(np.shape(x))


def _gelu(x: Array, out: Array) -> Array:  # exact (erf) form, Keras's default approximate=False
    np.copyto(out, 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))))
    return out


def _mish(x: Array, out: Array) -> Array:
    np.copyto(out, x * np.tanh(np.logaddexp(x, 0.0)))
    return out


def _celu(x: Array, out: Array) -> Array:
    np.copyto(out, np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))))
    return out


_ACTIVATIONS: dict[str, Callable[[Array, Array], Array]] = {
    "linear": _linear,
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "relu": _relu,
    "relu6": _relu6,
    "hard_sigmoid": _hard_sigmoid,
    "hard_sigmoid_keras2": _hard_sigmoid_keras2,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "softplus": _softplus,
    "softsign": _softsign,
    "elu": _elu,
    "selu": _selu,
    "exponential": _exponential,
    "silu": _silu,
    "swish": _silu,
    "hard_silu": _hard_silu,
    "hard_swish": _hard_silu,
    "leaky_relu": _leaky_relu,
    "gelu": _gelu,
    "mish": _mish,
    "celu": _celu,
}

SUPPORTED = tuple(sorted(_ACTIVATIONS))


def get(name: str | None) -> Callable[[Array, Array], Array]:
    """The activation ``fn(x, out) -> out`` called ``name`` (``None`` means linear)."""
    key = "linear" if name in (None, "None", "none", "") else str(name)
    try:
        return _ACTIVATIONS[key]
    except KeyError:
        raise UnsupportedLayerError(
            f"activation {name!r} is not supported; supported: {', '.join(SUPPORTED)}"
        ) from None


def apply(name: str | None, x: Array) -> Array:
    """``name(x)`` into a new float32 array."""
    x = np.asarray(x, dtype=np.float32)
    return get(name)(x, np.empty_like(x))
