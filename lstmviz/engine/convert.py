"""Weight-layout converters: every other LSTM layout to and from Keras's.

=========  =====================================  ===========================================
layout     gate order                             arrays
=========  =====================================  ===========================================
Keras      i, f, c, o                             kernel (F, 4U), recurrent_kernel (U, 4U),
                                                  bias (4U,)
PyTorch    i, f, g, o  (the same order as Keras)  weight_ih (4H, F), weight_hh (4H, H),
                                                  bias_ih (4H,), bias_hh (4H,)
TF1        i, j, f, o  (j = candidate)            kernel over [x, h]: (F + U, 4U), bias (4U,);
                                                  ``forget_bias`` added to f at run time
ONNX       i, o, f, c                             W (dirs, 4H, F), R (dirs, 4H, H),
                                                  B (dirs, 8H) = [Wb, Rb]
=========  =====================================  ===========================================

Every conversion checks shapes first, like minGPT's ``from_pretrained``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFileError
from .cell import LSTMWeights

Arr = np.ndarray


def _blocks(a: Arr, axis: int, units: int) -> list[Arr]:
    return [np.take(a, np.arange(k * units, (k + 1) * units), axis=axis) for k in range(4)]


def _reorder(a: Arr, axis: int, units: int, src: str, dst: str) -> Arr:
    """Reorder the four gate blocks of ``a`` along ``axis`` from order ``src`` to ``dst``
    (each a 4-letter string over the same gate letters)."""
    bl = dict(zip(src, _blocks(a, axis, units), strict=True))
    return np.concatenate([bl[g] for g in dst], axis=axis)


def _expect(name: str, a: Arr, shape: tuple[int, ...], layout: str) -> None:
    if tuple(a.shape) != tuple(shape):
        raise ModelFileError(f"{layout} LSTM: {name} has shape {tuple(a.shape)}; expected {shape}")


def _f32(a: object) -> Arr:
    return np.asarray(a, dtype=np.float32)


# ---------------------------------------------------------------------------- PyTorch
def from_torch(
    weight_ih: Arr, weight_hh: Arr, bias_ih: Arr | None = None, bias_hh: Arr | None = None
) -> LSTMWeights:
    """``torch.nn.LSTM`` weights of one layer and direction -> Keras layout."""
    weight_ih, weight_hh = _f32(weight_ih), _f32(weight_hh)
    if weight_hh.ndim != 2 or weight_hh.shape[0] % 4:
        raise ModelFileError(
            f"PyTorch LSTM: weight_hh has shape {weight_hh.shape}; expected (4*hidden, hidden)"
        )
    h4 = weight_hh.shape[0]
    h = h4 // 4
    _expect("weight_hh", weight_hh, (h4, weight_hh.shape[1]), "PyTorch")
    if weight_ih.ndim != 2 or weight_ih.shape[0] != h4:
        raise ModelFileError(
            f"PyTorch LSTM: weight_ih has shape {weight_ih.shape}; expected ({h4}, input_size)"
        )
    if weight_hh.shape[1] != h:
        raise ModelFileError(
            f"PyTorch LSTM: weight_hh has shape {weight_hh.shape}; expected ({h4}, {h}) "
            "(a proj_size LSTM needs from_torch_proj)"
        )
    bias = None
    if bias_ih is not None or bias_hh is not None:
        bi = _f32(bias_ih) if bias_ih is not None else np.zeros(h4, np.float32)
        bh = _f32(bias_hh) if bias_hh is not None else np.zeros(h4, np.float32)
        _expect("bias_ih", bi, (h4,), "PyTorch")
        _expect("bias_hh", bh, (h4,), "PyTorch")
        bias = bi + bh
    return LSTMWeights(weight_ih.T, weight_hh.T, bias)


def from_torch_proj(
    weight_ih: Arr,
    weight_hh: Arr,
    weight_hr: Arr,
    bias_ih: Arr | None = None,
    bias_hh: Arr | None = None,
) -> LSTMWeights:
    """``torch.nn.LSTM(proj_size=P)`` weights of one layer and direction -> Keras layout with
    ``projection`` (PyTorch proj_size): weight_ih (4H, F), weight_hh (4H, P), weight_hr (P, H)."""
    weight_ih, weight_hh, weight_hr = _f32(weight_ih), _f32(weight_hh), _f32(weight_hr)
    if weight_hr.ndim != 2:
        raise ModelFileError(
            f"PyTorch LSTM: weight_hr has shape {weight_hr.shape}; expected (proj_size, hidden)"
        )
    p, h = weight_hr.shape
    _expect("weight_hh", weight_hh, (4 * h, p), "PyTorch")
    if weight_ih.ndim != 2 or weight_ih.shape[0] != 4 * h:
        raise ModelFileError(
            f"PyTorch LSTM: weight_ih has shape {weight_ih.shape}; expected ({4 * h}, input_size)"
        )
    bias = None
    if bias_ih is not None or bias_hh is not None:
        bi = _f32(bias_ih) if bias_ih is not None else np.zeros(4 * h, np.float32)
        bh = _f32(bias_hh) if bias_hh is not None else np.zeros(4 * h, np.float32)
        _expect("bias_ih", bi, (4 * h,), "PyTorch")
        _expect("bias_hh", bh, (4 * h,), "PyTorch")
        bias = bi + bh
    return LSTMWeights(weight_ih.T, weight_hh.T, bias, projection=weight_hr.T)


def to_torch(w: LSTMWeights) -> dict[str, Arr]:
    """Keras layout -> ``{"weight_ih", "weight_hh", "bias_ih", "bias_hh"}`` (bias_hh zero)."""
    u4 = 4 * w.units
    b = w.bias if w.bias is not None else np.zeros(u4, np.float32)
    return {
        "weight_ih": np.ascontiguousarray(w.kernel.T),
        "weight_hh": np.ascontiguousarray(w.recurrent_kernel.T),
        "bias_ih": b.copy(),
        "bias_hh": np.zeros(u4, np.float32),
    }


# ---------------------------------------------------------------------------- TF1
def from_tf1(
    kernel: Arr,
    bias: Arr | None,
    units: int | None = None,
    forget_bias: float = 1.0,
    input_dim: int | None = None,
) -> LSTMWeights:
    """TF1 ``BasicLSTMCell``/``LSTMCell``: one kernel over ``[x, h]`` (F + U, 4U), gates
    i, j, f, o, and ``forget_bias`` added to f -> Keras layout (forget_bias folded into b_f)."""
    kernel = _f32(kernel)
    if kernel.ndim != 2 or kernel.shape[1] % 4:
        raise ModelFileError(
            f"TF1 LSTM cell: kernel has shape {kernel.shape}; expected (input + units, 4*units)"
        )
    u = kernel.shape[1] // 4
    if units is not None and units != u:
        raise ModelFileError(
            f"TF1 LSTM cell: kernel has {kernel.shape[1]} columns; expected 4*{units} = {4 * units}"
        )
    f = kernel.shape[0] - u
    if f <= 0 or (input_dim is not None and f != input_dim):
        raise ModelFileError(
            f"TF1 LSTM cell: kernel has {kernel.shape[0]} rows; expected input + units = "
            f"{'?' if input_dim is None else input_dim} + {u}"
        )
    k = _reorder(kernel, 1, u, "icfo", "ifco")  # TF1's j is the candidate, c here
    b = np.zeros(4 * u, np.float32) if bias is None else _f32(bias)
    _expect("bias", b, (4 * u,), "TF1")
    b = _reorder(b, 0, u, "icfo", "ifco").copy()
    b[u : 2 * u] += np.float32(forget_bias)
    return LSTMWeights(k[:f], k[f:], b)


def to_tf1(w: LSTMWeights, forget_bias: float = 1.0) -> dict[str, Arr]:
    """Keras layout -> TF1 ``{"kernel" (F + U, 4U), "bias" (4U,)}`` for a cell that adds
    ``forget_bias`` to f."""
    u = w.units
    k = np.concatenate([w.kernel, w.recurrent_kernel], axis=0)
    b = (w.bias if w.bias is not None else np.zeros(4 * u, np.float32)).copy()
    b[u : 2 * u] -= np.float32(forget_bias)
    return {
        "kernel": np.ascontiguousarray(_reorder(k, 1, u, "ifco", "icfo")),
        "bias": _reorder(b, 0, u, "ifco", "icfo"),
    }


# ---------------------------------------------------------------------------- ONNX
def from_onnx(W: Arr, R: Arr, B: Arr | None = None, direction: int = 0) -> LSTMWeights:
    """ONNX ``LSTM`` W (dirs, 4H, F), R (dirs, 4H, H), B (dirs, 8H), gates i, o, f, c ->
    Keras layout for one direction."""
    W, R = _f32(W), _f32(R)
    if W.ndim != 3 or R.ndim != 3 or R.shape[1] % 4 or R.shape[1] != 4 * R.shape[2]:
        raise ModelFileError(
            f"ONNX LSTM: W {W.shape} / R {R.shape}; expected (dirs, 4H, F) and (dirs, 4H, H)"
        )
    h = R.shape[2]
    if W.shape[:2] != R.shape[:2]:
        raise ModelFileError(f"ONNX LSTM: W {W.shape} and R {R.shape} disagree")
    if not 0 <= direction < W.shape[0]:
        raise ModelFileError(f"ONNX LSTM: direction {direction} of {W.shape[0]}")
    k = _reorder(W[direction], 0, h, "iofc", "ifco").T
    r = _reorder(R[direction], 0, h, "iofc", "ifco").T
    b = None
    if B is not None:
        B = _f32(B)
        _expect("B", B, (W.shape[0], 8 * h), "ONNX")
        b = _reorder(B[direction, : 4 * h] + B[direction, 4 * h :], 0, h, "iofc", "ifco")
    return LSTMWeights(k, r, b)


def to_onnx(*ws: LSTMWeights) -> dict[str, Arr]:
    """Keras layout (one weights per direction) -> ONNX ``{"W", "R", "B"}``."""
    out_w, out_r, out_b = [], [], []
    for w in ws:
        u = w.units
        out_w.append(_reorder(w.kernel.T, 0, u, "ifco", "iofc"))
        out_r.append(_reorder(w.recurrent_kernel.T, 0, u, "ifco", "iofc"))
        b = w.bias if w.bias is not None else np.zeros(4 * u, np.float32)
        out_b.append(
            np.concatenate([_reorder(b, 0, u, "ifco", "iofc"), np.zeros(4 * u, np.float32)])
        )
    return {"W": np.stack(out_w), "R": np.stack(out_r), "B": np.stack(out_b)}


# ---------------------------------------------------------------------------- Keras
def from_keras(
    kernel: Arr,
    recurrent_kernel: Arr,
    bias: Arr | None = None,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
) -> LSTMWeights:
    """Keras layout (checked) -> :class:`LSTMWeights`."""
    return LSTMWeights(kernel, recurrent_kernel, bias, activation, recurrent_activation)


def to_keras(w: LSTMWeights) -> list[Arr]:
    """:class:`LSTMWeights` -> ``[kernel, recurrent_kernel, bias]`` for ``layer.set_weights``."""
    out = [w.kernel.copy(), w.recurrent_kernel.copy()]
    if w.bias is not None:
        out.append(w.bias.copy())
    return out
