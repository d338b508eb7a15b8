"""The layers around the LSTMs, in NumPy, with Keras's semantics (inference mode).

Every layer is called as ``layer(inputs, masks, ctx) -> (outputs, masks)`` on lists, so layers
with several inputs (Concatenate) or outputs (an LSTM with ``return_state``) fit one graph.
Arrays are float32 except token ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import budget
from ..errors import InputError, ModelFileError
from . import activations
from .cell import LSTMWeights, run_lstm
from .trace import LayerTrace

Arr = np.ndarray
#: What a layer call returns: its outputs and their masks.
Outputs = tuple[list[Arr], list["Arr | None"]]

#: Float32 values one LSTM direction records per unit, batch item and step: the pre-
#: activations and activations of the four gates (4 + 4), the cell and hidden state (1 + 1).
TRACE_VALUES_PER_UNIT = 10
#: What to do instead when a trace is too large for memory.
CORPUS_HINT = (
    "trace a shorter input, fewer batch items, or trace it in chunks with `lstmviz corpus "
    "trace MODEL --input X.npy --out STORE.zarr`, which keeps memory bounded"
)


def trace_nbytes(batch: int, steps: int, units: int, features: int = 0) -> int:
    """Bytes the trace buffers of one LSTM direction take: ``batch x T x units x`` the
    :data:`TRACE_VALUES_PER_UNIT` recorded quantities, plus its copy of the input."""
    return 4 * batch * steps * (TRACE_VALUES_PER_UNIT * units + features)


@dataclass
class Context:
    """What a forward pass collects on its way: the LSTM traces and initial states.

    ``reuse`` and ``out`` map LSTM trace names to the layer traces handed to
    :func:`~lstmviz.engine.cell.run_lstm` as ``reuse=`` / ``out=`` (see ``Model.trace``).
    ``allocated`` adds up the bytes of the trace buffers recorded so far, so every further
    layer is checked against the memory budget together with them.
    """

    initial_states: dict[str, Any] = field(default_factory=dict)
    layer_traces: list[LayerTrace] = field(default_factory=list)
    record: bool = True
    reuse: dict[str, Any] = field(default_factory=dict)
    out: dict[str, Any] = field(default_factory=dict)
    allocated: int = 0
    source: str = ""


def check_output(layer: Layer, shape: tuple[int, ...], ctx: Context | None = None) -> None:
    """Check a float32 array of ``shape`` that ``layer`` is about to allocate against the
    memory budget (with what the trace holds already)."""
    n = 4
    for d in shape:
        n *= int(d)
    held = ctx.allocated if ctx is not None else 0
    src = f"{ctx.source}: " if ctx is not None and ctx.source else ""
    budget.check(
        n + held,
        what=f"{src}layer {layer.name!r} ({layer.kind}): an output of shape {tuple(shape)}"
        + (f" next to the {budget.format_bytes(held)} traced so far" if held else ""),
        hint=CORPUS_HINT,
    )


class Layer:
    """Base class: a named layer with Keras's class name."""

    kind = "Layer"
    supports_masking = True

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(
        self, inputs: list[Arr], masks: list[Arr | None], ctx: Context, **kwargs: Any
    ) -> tuple[list[Arr], list[Arr | None]]:
        y = self.call(inputs[0])
        return [y], [masks[0] if self.supports_masking else None]

    def call(self, x: Arr) -> Arr:  # pragma: no cover - overridden
        raise NotImplementedError

    def describe(self) -> str:
        return self.kind

    @property
    def n_params(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"{self.kind}(name={self.name!r})"


def _f32(a: Any) -> Arr:
    return np.ascontiguousarray(a, dtype=np.float32)


def _check_last(layer: Layer, x: Arr, expected: int) -> None:
    if x.shape[-1] != expected:
        raise InputError(
            f"layer {layer.name!r} ({layer.kind}) expects {expected} input features on the last "
            f"axis; found shape {x.shape}"
        )


class InputLayer(Layer):
    kind = "InputLayer"

    def __init__(
        self, name: str, batch_shape: tuple[int | None, ...] | None = None, dtype: str = "float32"
    ) -> None:
        super().__init__(name)
        self.batch_shape = tuple(batch_shape) if batch_shape is not None else None
        self.dtype = dtype

    def call(self, x: Arr) -> Arr:
        return x


class Identity(Layer):
    """Dropout, SpatialDropout1D, GaussianNoise, ...: identity at inference."""

    def __init__(self, name: str, kind: str = "Dropout"):
        super().__init__(name)
        self.kind = kind

    def call(self, x: Arr) -> Arr:
        return x


class Embedding(Layer):
    kind = "Embedding"

    def __init__(self, name: str, embeddings: Arr, mask_zero: bool = False):
        super().__init__(name)
        self.embeddings = _f32(embeddings)
        if self.embeddings.ndim != 2:
            raise ModelFileError(
                f"layer {name!r} (Embedding): embeddings must be 2-D (vocab, dim); found shape "
                f"{self.embeddings.shape}"
            )
        self.mask_zero = bool(mask_zero)

    @property
    def input_dim(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def n_params(self) -> int:
        return int(self.embeddings.size)

    def __call__(
        self, inputs: list[Arr], masks: list[Arr | None], ctx: Context, **kwargs: Any
    ) -> Outputs:
        ids = inputs[0]
        ids = check_token_ids(ids, self.input_dim, self.name)
        check_output(self, (*ids.shape, self.embeddings.shape[1]), ctx)
        y = self.embeddings[ids]
        mask = (ids != 0) if self.mask_zero else masks[0]
        return [y], [mask]


def check_token_ids(ids: Any, vocab: int, name: str) -> Arr:
    """Validate token ids for an Embedding of ``vocab`` rows; returns int64 ids."""
    a = np.asarray(ids)
    if a.dtype.kind in "f":
        if not np.all(np.isfinite(a)):
            raise InputError(f"Embedding {name!r}: token ids contain NaN or inf")
        if not np.all(np.equal(np.mod(a, 1), 0)):
            bad = a[np.mod(a, 1) != 0].ravel()[0]
            raise InputError(
                f"Embedding {name!r} takes integer token ids; "
                f"found non-integer value {float(bad)!r}"
            )
    elif a.dtype.kind not in "iub":
        raise InputError(f"Embedding {name!r} takes integer token ids; found dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.size:
        lo, hi = int(a.min()), int(a.max())
        if lo < 0:
            raise InputError(f"Embedding {name!r}: token id {lo} is negative")
        if hi >= vocab:
            raise InputError(
                f"Embedding {name!r}: token id {hi} is out of the vocabulary (ids 0..{vocab - 1})"
            )
    return a


class Dense(Layer):
    kind = "Dense"

    def __init__(self, name: str, kernel: Arr, bias: Arr | None, activation: str | None):
        super().__init__(name)
        self.kernel = _f32(kernel)
        self.bias = None if bias is None else _f32(bias)
        self.activation = activation or "linear"
        activations.get(self.activation)

    @property
    def n_params(self) -> int:
        return int(self.kernel.size + (0 if self.bias is None else self.bias.size))

    @property
    def units(self) -> int:
        return int(self.kernel.shape[-1])

    def __call__(
        self, inputs: list[Arr], masks: list[Arr | None], ctx: Context, **kwargs: Any
    ) -> Outputs:
        x = inputs[0]
        check_output(self, (*x.shape[:-1], self.kernel.shape[-1]), ctx)
        return [self.call(x)], [masks[0]]

    def call(self, x: Arr) -> Arr:
        _check_last(self, x, self.kernel.shape[0])
        y = x @ self.kernel
        if self.bias is not None:
            y += self.bias
        return activations.get(self.activation)(y, y)


class TimeDistributed(Layer):
    kind = "TimeDistributed"

    def __init__(self, name: str, inner: Layer):
        super().__init__(name)
        self.inner = inner

    @property
    def n_params(self) -> int:
        return self.inner.n_params

    def __call__(
        self, inputs: list[Arr], masks: list[Arr | None], ctx: Context, **kwargs: Any
    ) -> Outputs:
        x = inputs[0]
        b, t = x.shape[:2]
        flat = x.reshape((b * t, *x.shape[2:]))
        (y,), _ = self.inner([flat], [None], ctx)
        return [y.reshape((b, t, *y.shape[1:]))], [masks[0]]


class Activation(Layer):
    kind = "Activation"

    def __init__(self, name: str, activation: str | None):
        super().__init__(name)
        self.activation = activation or "linear"
        activations.get(self.activation)

    def call(self, x: Arr) -> Arr:
        return activations.apply(self.activation, x)


class Conv1D(Layer):
    kind = "Conv1D"
    supports_masking = False

    def __init__(
        self,
        name: str,
        kernel: Arr,
        bias: Arr | None,
        strides: int = 1,
        padding: str = "valid",
        dilation_rate: int = 1,
        groups: int = 1,
        activation: str | None = None,
    ):
        super().__init__(name)
        self.kernel = _f32(kernel)  # (k, Cin/groups, Cout)
        if self.kernel.ndim != 3:
            raise ModelFileError(
                f"layer {name!r} (Conv1D): kernel must be 3-D (size, in, out); found "
                f"{self.kernel.shape}"
            )
        self.bias = None if bias is None else _f32(bias)
        self.strides = _positive(name, "strides", strides)
        self.padding = padding
        self.dilation = _positive(name, "dilation_rate", dilation_rate)
        self.groups = _positive(name, "groups", groups)
        cout = self.kernel.shape[2]
        if cout % self.groups:
            raise ModelFileError(
                f"layer {name!r} (Conv1D): {cout} filters cannot be split into {self.groups} groups"
            )
        self.activation = activation or "linear"
        activations.get(self.activation)
        if padding not in ("valid", "same", "causal"):
            raise ModelFileError(f"layer {name!r} (Conv1D): unsupported padding {padding!r}")

    def __call__(
        self, inputs: list[Arr], masks: list[Arr | None], ctx: Context, **kwargs: Any
    ) -> Outputs:
        x = inputs[0]
        k, _cin_g, cout = self.kernel.shape
        b, t = x.shape[0], x.shape[1] if x.ndim > 1 else 0
        span = self.dilation * (k - 1) + 1
        padded = t + (span - 1 if self.padding != "valid" else 0)
        if self.padding != "valid":  # the padded copy of the input
            check_output(self, (b, padded, *x.shape[2:]), ctx)
        check_output(self, (b, max(-(-t // self.strides), 0), cout), ctx)
        return [self.call(x)], [None]

    @property
    def n_params(self) -> int:
        return int(self.kernel.size + (0 if self.bias is None else self.bias.size))

    def call(self, x: Arr) -> Arr:
        k, cin_g, cout = self.kernel.shape
        _check_last(self, x, cin_g * self.groups)
        b, t, _cin = x.shape
        d, s = self.dilation, self.strides
        span = d * (k - 1) + 1
        if self.padding == "causal":
            x = np.pad(x, ((0, 0), (span - 1, 0), (0, 0)))
        elif self.padding == "same":
            out_len = -(-t // s)
            total = max((out_len - 1) * s + span - t, 0)
            x = np.pad(x, ((0, 0), (total // 2, total - total // 2), (0, 0)))
        tp = x.shape[1]
        n_out = (tp - span) // s + 1
        if n_out <= 0:
            raise InputError(
                f"layer {self.name!r} (Conv1D): sequence of length {t} is shorter than the "
                f"receptive field {span}"
            )
        y = np.zeros((b, n_out, cout), np.float32)
        cout_g = cout // self.groups
        for j in range(k):  # sum over kernel taps: one GEMM each
            start = j * d
            xs = x[:, start : start + s * (n_out - 1) + 1 : s, :]  # (B, n_out, Cin)
            if self.groups == 1:
                y += xs @ self.kernel[j]
            else:
                for gi in range(self.groups):
                    y[:, :, gi * cout_g : (gi + 1) * cout_g] += (
                        xs[:, :, gi * cin_g : (gi + 1) * cin_g]
                        @ self.kernel[j][:, gi * cout_g : (gi + 1) * cout_g]
                    )
        if self.bias is not None:
            y += self.bias
        return activations.get(self.activation)(y, y)


def _positive(name: str, key: str, value: Any) -> int:
    """A size from a layer's config: an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ModelFileError(
            f"layer {name!r} (Conv1D): {key} must be an integer >= 1; found {value!r:.40}"
        )
    return int(value)


class Flatten(Layer):
    kind = "Flatten"
    supports_masking = False

    def call(self, x: Arr) -> Arr:
        return x.reshape(x.shape[0], -1)


class Reshape(Layer):
    kind = "Reshape"
    supports_masking = False

    def __init__(self, name: str, target_shape: tuple[int, ...]) -> None:
        super().__init__(name)
        self.target_shape = tuple(int(v) for v in target_shape)

    def call(self, x: Arr) -> Arr:
        try:
            return x.reshape((x.shape[0], *self.target_shape))
        except ValueError:
            raise InputError(
                f"layer {self.name!r} (Reshape): cannot reshape {x.shape[1:]} to "
                f"{self.target_shape}"
            ) from None


class Permute(Layer):
    kind = "Permute"
    supports_masking = False

    def __init__(self, name: str, dims: tuple[int, ...]) -> None:
        super().__init__(name)
        self.dims = tuple(int(d) for d in dims)

    def call(self, x: Arr) -> Arr:
        return np.ascontiguousarray(x.transpose((0, *self.dims)))


class RepeatVector(Layer):
    kind = "RepeatVector"
    supports_masking = False

    def __init__(self, name: str, n: int):
        super().__init__(name)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ModelFileError(
                f"layer {name!r} (RepeatVector): n must be an integer >= 1; found {n!r:.40}"
            )
        self.n = int(n)

    def __call__(
        self, inputs: list[Arr], masks: list[Arr | None], ctx: Context, **kwargs: Any
    ) -> Outputs:
        x = inputs[0]
        check_output(self, (x.shape[0], self.n, *x.shape[1:]), ctx)
        return [self.call(x)], [None]

    def call(self, x: Arr) -> Arr:
        return np.repeat(x[:, None, :], self.n, axis=1)


class LayerNormalization(Layer):
    kind = "LayerNormalization"

    def __init__(
        self,
        name: str,
        gamma: Arr | None,
        beta: Arr | None,
        epsilon: float = 1e-3,
        axis: Any = -1,
        rms_scaling: bool = False,
    ):
        super().__init__(name)
        self.gamma = None if gamma is None else _f32(gamma)
        self.beta = None if beta is None else _f32(beta)
        self.epsilon = float(epsilon)
        self.axis = tuple(axis) if isinstance(axis, (list, tuple)) else (int(axis),)
        self.rms_scaling = bool(rms_scaling)

    @property
    def n_params(self) -> int:
        return sum(int(a.size) for a in (self.gamma, self.beta) if a is not None)

    def call(self, x: Arr) -> Arr:
        axes = tuple(a if a >= 0 else x.ndim + a for a in self.axis)
        if self.rms_scaling:
            var = np.mean(np.square(x), axis=axes, keepdims=True)
            y = x / np.sqrt(var + self.epsilon)
        else:
            mean = np.mean(x, axis=axes, keepdims=True)
            var = np.mean(np.square(x - mean), axis=axes, keepdims=True)
            y = (x - mean) / np.sqrt(var + self.epsilon)
        if self.gamma is not None:
            y = y * self.gamma
        if self.beta is not None and not self.rms_scaling:
            y = y + self.beta
        return np.asarray(y, dtype=np.float32)


class BatchNormalization(Layer):
    kind = "BatchNormalization"

    def __init__(
        self,
        name: str,
        gamma: Arr | None,
        beta: Arr | None,
        moving_mean: Arr,
        moving_variance: Arr,
        epsilon: float = 1e-3,
        axis: int = -1,
    ):
        super().__init__(name)
        self.gamma = None if gamma is None else _f32(gamma)
        self.beta = None if beta is None else _f32(beta)
        self.mean = _f32(moving_mean)
        self.var = _f32(moving_variance)
        self.epsilon = float(epsilon)
        self.axis = int(axis)

    @property
    def n_params(self) -> int:
        return sum(
            int(a.size) for a in (self.gamma, self.beta, self.mean, self.var) if a is not None
        )

    def call(self, x: Arr) -> Arr:
        axis = self.axis if self.axis >= 0 else x.ndim + self.axis
        shape = [1] * x.ndim
        shape[axis] = -1
        inv = 1.0 / np.sqrt(self.var + self.epsilon)
        if self.gamma is not None:
            inv = inv * self.gamma
        y = (x - self.mean.reshape(shape)) * inv.reshape(shape)
        if self.beta is not None:
            y = y + self.beta.reshape(shape)
        return np.asarray(y, dtype=np.float32)


class Masking(Layer):
    kind = "Masking"

    def __init__(self, name: str, mask_value: float = 0.0):
        super().__init__(name)
        self.mask_value = float(mask_value)

    def __call__(
        self, inputs: list[Arr], masks: list[Arr | None], ctx: Context, **kwargs: Any
    ) -> Outputs:
        x = inputs[0]
        keep = np.any(x != self.mask_value, axis=-1)
        return [x * keep[..., None].astype(np.float32)], [keep]


class GlobalPooling1D(Layer):
    supports_masking = False

    def __init__(self, name: str, kind: str):
        super().__init__(name)
        self.kind = kind

    def __call__(
        self, inputs: list[Arr], masks: list[Arr | None], ctx: Context, **kwargs: Any
    ) -> Outputs:
        x, m = inputs[0], masks[0]
        if self.kind == "GlobalAveragePooling1D":
            if m is None:
                y = x.mean(axis=1)
            else:
                w = m[..., None].astype(np.float32)
                y = (x * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-7)
        else:
            y = x.max(axis=1) if m is None else np.where(m[..., None], x, -np.inf).max(axis=1)
        return [y.astype(np.float32)], [None]


class Merge(Layer):
    """Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum."""

    supports_masking = False

    def __init__(self, name: str, kind: str, axis: int = -1):
        super().__init__(name)
        self.kind = kind
        self.axis = axis

    def __call__(
        self, inputs: list[Arr], masks: list[Arr | None], ctx: Context, **kwargs: Any
    ) -> Outputs:
        k = self.kind
        if k == "Concatenate":
            y = np.concatenate(inputs, axis=self.axis)
        elif k == "Add":
            y = np.sum(inputs, axis=0)
        elif k == "Subtract":
            y = inputs[0] - inputs[1]
        elif k == "Multiply":
            y = np.prod(inputs, axis=0)
        elif k == "Average":
            y = np.mean(inputs, axis=0)
        elif k == "Maximum":
            y = np.max(inputs, axis=0)
        else:
            y = np.min(inputs, axis=0)
        ms = [m for m in masks if m is not None]
        mask = np.logical_and.reduce(ms) if ms else None
        return [y.astype(np.float32)], [mask]


class LSTM(Layer):
    """keras.layers.LSTM: returns ``[output]`` or ``[output, h_T, c_T]`` (``return_state``)."""

    kind = "LSTM"

    def __init__(
        self,
        name: str,
        weights: LSTMWeights,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        zero_output_for_mask: bool = False,
        stateful: bool = False,
    ):
        super().__init__(name)
        self.weights = weights
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.stateful = bool(stateful)

    @property
    def units(self) -> int:
        return self.weights.units

    @property
    def n_params(self) -> int:
        return self.weights.n_params

    def run(
        self,
        x: Arr,
        mask: Arr | None,
        ctx: Context,
        initial_state: Any = None,
        trace_name: str | None = None,
        layer_name: str | None = None,
        direction: str = "forward",
        go_backwards: bool | None = None,
    ) -> LayerTrace:
        name = trace_name or self.name
        h0 = c0 = None
        state = initial_state if initial_state is not None else ctx.initial_states.get(name)
        if state is None and layer_name is not None:
            state = ctx.initial_states.get(layer_name)
        if state is not None:
            h0, c0 = state[0], state[1]
        if x.ndim == 3 and name not in ctx.out:  # new trace buffers: checked before run_lstm
            # allocates them (with out= it writes into buffers that exist already)
            b, steps, feats = (int(v) for v in x.shape)
            need = trace_nbytes(b, steps, self.weights.units, feats)
            src = f"{ctx.source}: " if ctx.source else ""
            budget.check(
                ctx.allocated + need,
                what=f"{src}the trace of LSTM {name!r} ({b} x {steps} steps x "
                f"{self.weights.units} units x {TRACE_VALUES_PER_UNIT} values)"
                + (
                    f" next to the {budget.format_bytes(ctx.allocated)} traced before it"
                    if ctx.allocated
                    else ""
                ),
                hint=CORPUS_HINT,
            )
            ctx.allocated += need
        lt = run_lstm(
            x,
            self.weights,
            h0=h0,
            c0=c0,
            mask=mask,
            go_backwards=self.go_backwards if go_backwards is None else go_backwards,
            name=name,
            layer_name=layer_name or self.name,
            direction=direction,
            reuse=ctx.reuse.get(name) if self.weights.projection is None else None,
            out=ctx.out.get(name) if self.weights.projection is None else None,
        )
        if ctx.record:
            ctx.layer_traces.append(lt)
        return lt

    def outputs_from(self, lt: LayerTrace, mask: Arr | None) -> list[Arr]:
        """Keras's outputs of this layer, given its trace."""
        h = lt.h  # (T, B, U) input order
        steps = h.shape[0]
        last = 0 if self.go_backwards else steps - 1
        h_last, c_last = lt.h[last], lt.c[last]
        if self.return_sequences:
            seq = h[::-1] if self.go_backwards else h  # Keras returns processing order
            out = seq.transpose(1, 0, 2)  # a read-only view of the trace: no copy
            if mask is not None and self.zero_output_for_mask:
                m = mask[:, ::-1] if self.go_backwards else mask
                out = out * m[..., None].astype(np.float32)
        else:
            out = np.array(h_last)
        if self.return_state:
            return [out, np.array(h_last), np.array(c_last)]
        return [out]

    def __call__(
        self,
        inputs: list[Arr],
        masks: list[Arr | None],
        ctx: Context,
        initial_state: Any = None,
        **kwargs: Any,
    ) -> Outputs:
        x, mask = inputs[0], masks[0]
        lt = self.run(x, mask, ctx, initial_state=initial_state)
        outs = self.outputs_from(lt, mask)
        out_mask = None
        if self.return_sequences and mask is not None:
            out_mask = mask[:, ::-1] if self.go_backwards else mask
        return outs, [out_mask] + [None] * (len(outs) - 1)

    def describe(self) -> str:
        w = self.weights
        return (
            f"LSTM({w.units}) activation={w.activation} "
            f"recurrent_activation={w.recurrent_activation} use_bias={w.use_bias}"
        )


class Bidirectional(Layer):
    kind = "Bidirectional"

    def __init__(self, name: str, forward: LSTM, backward: LSTM, merge_mode: str | None):
        super().__init__(name)
        self.forward = forward
        self.backward = backward
        # Keras forces this on both halves of a Bidirectional that returns sequences
        forward.zero_output_for_mask = backward.zero_output_for_mask = forward.return_sequences
        self.merge_mode = merge_mode
        self.return_sequences = forward.return_sequences
        self.return_state = forward.return_state

    @property
    def n_params(self) -> int:
        return self.forward.n_params + self.backward.n_params

    def merge(self, yf: Arr, yb: Arr, dtype: Any) -> list[Arr]:
        """Keras's merge of the two directions' outputs (``merge_mode``), both in input order."""
        if self.return_sequences:  # both back to input order
            if self.backward.go_backwards:
                yb = yb[:, ::-1]
            if self.forward.go_backwards:
                yf = yf[:, ::-1]
        mm = self.merge_mode
        if mm == "concat":
            ys = [np.concatenate([yf, yb], axis=-1)]
        elif mm == "sum":
            ys = [yf + yb]
        elif mm == "mul":
            ys = [yf * yb]
        elif mm == "ave":
            ys = [(yf + yb) / 2]
        elif mm in (None, "None", "none"):
            ys = [yf, yb]
        else:
            raise ModelFileError(f"Bidirectional {self.name!r}: unknown merge_mode {mm!r}")
        return [np.ascontiguousarray(y, dtype=dtype) for y in ys]

    def __call__(
        self,
        inputs: list[Arr],
        masks: list[Arr | None],
        ctx: Context,
        initial_state: Any = None,
        **kwargs: Any,
    ) -> Outputs:
        x, mask = inputs[0], masks[0]
        fs = bs = None
        if initial_state is not None:
            fs, bs = initial_state[:2], initial_state[2:4]
        lf = self.forward.run(
            x,
            mask,
            ctx,
            initial_state=fs,
            trace_name=f"{self.name}/forward",
            layer_name=self.name,
            direction="forward",
        )
        lb = self.backward.run(
            x,
            mask,
            ctx,
            initial_state=bs,
            trace_name=f"{self.name}/backward",
            layer_name=self.name,
            direction="backward",
        )
        of = self.forward.outputs_from(lf, mask)
        ob = self.backward.outputs_from(lb, mask)
        ys = self.merge(of[0], ob[0], np.float32)
        if self.return_state:
            ys += of[1:] + ob[1:]
        out_mask = mask if (self.return_sequences and mask is not None) else None
        return ys, [out_mask] * len(ys)
