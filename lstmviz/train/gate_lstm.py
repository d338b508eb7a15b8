"""A Keras LSTM layer that also returns its gates, and the "Keras engine" trace built on it.

:func:`gate_lstm_class` returns ``GateLSTM``, a ``keras.layers.Layer`` with exactly the weights
of ``keras.layers.LSTM`` -- ``kernel (F, 4U)``, ``recurrent_kernel (U, 4U)``, ``bias (4U,)``,
gate order i, f, c, o -- so ``set_weights(lstm.get_weights())`` moves weights both ways. Called
on ``(batch, T, F)`` it returns the hidden sequence and every internal sequence::

    h, i, f, g, o, c = GateLSTM(units)(x)            # each (batch, T, units)

(with ``return_preactivations=True`` also ``z`` ``(batch, T, 4U)``, Keras order i, f, c, o).
Sequences are indexed by input position, also with ``go_backwards``.

:func:`keras_trace` computes an :class:`lstmviz.engine.Trace` with this layer instead of the
NumPy engine (``trace.engine == "keras"``): the app's "Keras engine" choice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LstmvizError

_CLASS: Any = None


def gate_lstm_class() -> Any:
    """The ``GateLSTM`` Keras layer class (built on first use: it imports Keras)."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    from .backend import keras_module

    keras: Any = keras_module()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="lstmviz")
    class GateLSTM(keras.layers.Layer):
        """``keras.layers.LSTM``'s math and weights, returning every gate.

        Parameters
        ----------
        units : int
        activation, recurrent_activation : str
            As in ``keras.layers.LSTM`` (``"tanh"``, ``"sigmoid"``; ``None`` is linear).
        use_bias, unit_forget_bias : bool
        go_backwards : bool
            Process the sequence from its end (outputs still indexed by input position).
        return_preactivations : bool
            Also return ``z = x W + h_tm1 U + b`` ``(batch, T, 4U)``.
        """

        def __init__(
            self,
            units: int,
            activation: Any = "tanh",
            recurrent_activation: Any = "sigmoid",
            use_bias: bool = True,
            unit_forget_bias: bool = True,
            go_backwards: bool = False,
            return_preactivations: bool = False,
            kernel_initializer: Any = "glorot_uniform",
            recurrent_initializer: Any = "orthogonal",
            **kwargs: Any,
        ) -> None:
            super().__init__(**kwargs)
            self.units = int(units)
            self.activation = keras.activations.get(activation)
            self.recurrent_activation = keras.activations.get(recurrent_activation)
            self._act_cfg = activation
            self._rec_cfg = recurrent_activation
            self.use_bias = bool(use_bias)
            self.unit_forget_bias = bool(unit_forget_bias)
            self.go_backwards = bool(go_backwards)
            self.return_preactivations = bool(return_preactivations)
            self.kernel_initializer = keras.initializers.get(kernel_initializer)
            self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
            self.supports_masking = True

        def build(self, input_shape: Any) -> None:
            feats = int(input_shape[-1])
            u = self.units
            self.kernel = self.add_weight(
                shape=(feats, 4 * u), name="kernel", initializer=self.kernel_initializer
            )
            self.recurrent_kernel = self.add_weight(
                shape=(u, 4 * u), name="recurrent_kernel", initializer=self.recurrent_initializer
            )
            if self.use_bias:
                fb = self.unit_forget_bias

                def bias_init(shape: Any, dtype: Any = None) -> Any:
                    b = np.zeros(shape, np.float32)
                    if fb:
                        b[u : 2 * u] = 1.0  # the forget gate starts open, as in Keras
                    return ops.convert_to_tensor(b, dtype=dtype)

                self.bias = self.add_weight(shape=(4 * u,), name="bias", initializer=bias_init)
            else:
                self.bias = None

        def call(self, inputs: Any, initial_state: Any = None, mask: Any = None) -> Any:
            u = self.units
            x = ops.convert_to_tensor(inputs, dtype="float32")  # (B, T, F)
            zx = ops.matmul(x, self.kernel)  # (B, T, 4U): the input part, all steps at once
            if self.bias is not None:
                zx = zx + self.bias
            zx = ops.transpose(zx, (1, 0, 2))  # (T, B, 4U)
            batch = ops.shape(x)[0]
            if initial_state is None:
                h0 = ops.zeros((batch, u), dtype="float32")
                c0 = ops.zeros((batch, u), dtype="float32")
            else:
                h0 = ops.convert_to_tensor(initial_state[0], dtype="float32")
                c0 = ops.convert_to_tensor(initial_state[1], dtype="float32")
            if mask is None:
                m = ops.ones(ops.shape(zx)[:2], dtype="bool")  # (T, B)
            else:
                m = ops.transpose(ops.cast(mask, "bool"), (1, 0))  # (T, B)
            sig = self.recurrent_activation
            act = self.activation
            rec = self.recurrent_kernel

            import tensorflow as tf  # the train extra's backend; tf.scan takes any outputs

            def step(acc: Any, xs: Any) -> Any:
                h_tm1, c_tm1, _ = acc
                zx_t, m_t = xs
                z = zx_t + ops.matmul(h_tm1, rec)  # (B, 4U)
                z_i, z_f, z_c, z_o = z[:, :u], z[:, u : 2 * u], z[:, 2 * u : 3 * u], z[:, 3 * u :]
                i = sig(z_i)  # input gate
                f = sig(z_f)  # forget gate
                g = act(z_c)  # candidate
                o = sig(z_o)  # output gate
                c = f * c_tm1 + i * g  # cell state
                h = o * act(c)  # hidden state
                keep = ops.expand_dims(m_t, -1)  # (B, 1): a masked step carries the state
                c = ops.where(keep, c, c_tm1)
                h = ops.where(keep, h, h_tm1)
                # one (B, 10U) row per step: z (4U), i, f, g, o, c, h
                return h, c, ops.concatenate([z, i, f, g, o, c, h], axis=-1)

            row0 = ops.zeros((batch, 10 * u), dtype="float32")
            _, _, seq = tf.scan(
                step, (zx, m), initializer=(h0, c0, row0), reverse=self.go_backwards
            )  # (T, B, 10U), input order
            z = seq[..., : 4 * u]  # (T, B, 4U)
            i, f, g, o, c, h = (seq[..., (4 + k) * u : (5 + k) * u] for k in range(6))
            bm = lambda a: ops.transpose(a, (1, 0, 2))  # noqa: E731  (T, B, n) -> (B, T, n)
            out: tuple[Any, ...] = (bm(h), bm(i), bm(f), bm(g), bm(o), bm(c))
            if self.return_preactivations:
                out = (*out, bm(z))
            return out

        def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
            return None

        def compute_output_shape(self, input_shape: Any) -> Any:
            seq = (input_shape[0], input_shape[1], self.units)
            out: tuple[tuple[Any, Any, int], ...] = (seq,) * 6
            if self.return_preactivations:
                out = (*out, (input_shape[0], input_shape[1], 4 * self.units))
            return out

        def get_config(self) -> dict[str, Any]:
            cfg = super().get_config()
            cfg.update(
                units=self.units,
                activation=self._act_cfg,
                recurrent_activation=self._rec_cfg,
                use_bias=self.use_bias,
                unit_forget_bias=self.unit_forget_bias,
                go_backwards=self.go_backwards,
                return_preactivations=self.return_preactivations,
            )
            return cfg

        @classmethod
        def from_lstm(cls, lstm: Any, **kwargs: Any) -> Any:
            """A ``GateLSTM`` with the configuration and weights of a built
            ``keras.layers.LSTM``."""
            c = lstm.get_config()
            layer = cls(
                c["units"],
                activation=c.get("activation"),
                recurrent_activation=c.get("recurrent_activation"),
                use_bias=c.get("use_bias", True),
                go_backwards=c.get("go_backwards", False),
                **kwargs,
            )
            w = lstm.get_weights()
            layer.build((None, None, w[0].shape[0]))
            layer.set_weights(w)
            return layer

    _CLASS = GateLSTM
    return GateLSTM


def _activation_for_keras(name: str) -> Any:
    return {"linear": None, "hard_sigmoid_keras2": "hard_sigmoid"}.get(name, name)


def run_gate_lstm(
    x: np.ndarray,
    weights: Any,
    *,
    h0: Any = None,
    c0: Any = None,
    mask: Any = None,
    go_backwards: bool = False,
) -> dict[str, np.ndarray]:
    """Run ``GateLSTM`` with engine :class:`~lstmviz.engine.cell.LSTMWeights` on ``x``
    ``(B, T, F)``; returns NumPy ``{"z", "i", "f", "g", "o", "c", "h"}``, batch-major."""
    cls = gate_lstm_class()
    if (
        weights.activation == "hard_sigmoid_keras2"
        or weights.recurrent_activation == "hard_sigmoid_keras2"
    ):
        raise LstmvizError(
            "the Keras engine cannot run Keras 2's hard_sigmoid; use the NumPy "
            "engine for this model"
        )
    layer = cls(
        weights.units,
        activation=_activation_for_keras(weights.activation),
        recurrent_activation=_activation_for_keras(weights.recurrent_activation),
        use_bias=weights.use_bias,
        go_backwards=go_backwards,
        return_preactivations=True,
    )
    x = np.asarray(x, np.float32)
    layer.build(x.shape)
    ws = [weights.kernel, weights.recurrent_kernel]
    if weights.use_bias:
        ws.append(weights.bias)
    layer.set_weights(ws)
    state = None
    if h0 is not None or c0 is not None:
        b, u = x.shape[0], weights.units
        hh = np.zeros((b, u), np.float32) if h0 is None else np.broadcast_to(h0, (b, u))
        cc = np.zeros((b, u), np.float32) if c0 is None else np.broadcast_to(c0, (b, u))
        state = (np.ascontiguousarray(hh, np.float32), np.ascontiguousarray(cc, np.float32))
    out = layer(x, initial_state=state, mask=None if mask is None else np.asarray(mask, bool))
    h, i, f, g, o, c, z = (np.asarray(a, np.float32) for a in out)
    return {"z": z, "i": i, "f": f, "g": g, "o": o, "c": c, "h": h}


def _to_internal(keras_blocks: list[np.ndarray]) -> np.ndarray:
    """Batch-major blocks in the engine's internal order -> ``(T, B, 4U)`` time-major."""
    return np.ascontiguousarray(np.concatenate(keras_blocks, axis=-1).transpose(1, 0, 2))


def _load_keras_model(model: Any) -> Any:
    """The Keras model behind an engine model (its ``.keras``/``.h5`` file, or the config +
    weights of a training snapshot); None when there is none."""
    from .backend import keras_module

    keras = keras_module()
    spec = model.meta.get("training_spec") if hasattr(model, "meta") else None
    if spec is not None:
        spec_obj, weights = spec
        km = keras.models.model_from_json(json.dumps(spec_obj.config))
        from .core import _set_weights

        _set_weights(km, weights)
        return km
    src = getattr(model, "source", "")
    if src and Path(src).suffix in (".keras", ".h5") and Path(src).is_file():
        try:
            return keras.saving.load_model(src, compile=False, safe_mode=True)
        except (ValueError, TypeError, OSError):
            return None
    return None


def _lstm_inputs(km: Any, names: list[str], x: Any) -> dict[str, np.ndarray]:
    """Each named layer's input, computed by Keras (a probe model on ``km``'s graph)."""
    keras = __import__("keras")
    layers = []
    for n in names:
        try:
            layers.append(km.get_layer(n))
        except ValueError:
            return {}
    try:
        probe = keras.Model(km.inputs, [lay.input for lay in layers])
        outs = probe(x, training=False)
    except (ValueError, TypeError, AttributeError):
        return {}
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    return {n: np.asarray(o, np.float32) for n, o in zip(names, outs, strict=True)}


def keras_trace(model: Any, x: Any, initial_state: dict[str, Any] | None = None) -> Any:
    """A :class:`lstmviz.engine.Trace` whose LSTM internals are computed by Keras.

    Parameters
    ----------
    model : lstmviz.engine.Model or str or Path
        An engine model (from :func:`lstmviz.load_model` or a training snapshot) or a model
        file.
    x : array_like
        The model's input, as for :meth:`lstmviz.engine.Model.trace`.
    initial_state : dict, optional
        ``{lstm name: (h0, c0)}`` as for the NumPy engine.

    Every LSTM layer (and each half of a Bidirectional) runs in :func:`gate_lstm_class`'s
    layer with the model's weights. When the Keras model itself is available (a ``.keras`` /
    ``.h5`` file, or a training snapshot), each LSTM's input sequence and the model output
    come from Keras's own forward pass; otherwise (models from PyTorch, ONNX, ...) the LSTM
    inputs come from the NumPy engine and only the recurrences run in Keras. Masks, states
    wired from other layers and ``step_output`` are taken from the NumPy trace.
    """
    from ..engine.trace import LayerTrace, Trace

    if isinstance(model, (str, Path)):
        from ..io import load_model

        model = load_model(model)
    ref = model.trace(x, initial_state=initial_state)
    km = _load_keras_model(model)
    inputs: dict[str, np.ndarray] = {}
    output = ref.output
    if km is not None:
        names = sorted({lt.layer_name for lt in ref.layers})
        inputs = _lstm_inputs(km, names, ref.inputs)
        feed = ref.inputs if isinstance(ref.inputs, list) else [ref.inputs]
        out = km(feed if len(km.inputs) > 1 else feed[0], training=False)
        output = [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else np.asarray(out)
    layers = []
    for lt in ref.layers:
        xin = inputs.get(lt.layer_name, lt.x)
        if xin.shape != lt.x.shape:
            xin = lt.x
        r = run_gate_lstm(
            xin, lt.weights, h0=lt.h0, c0=lt.c0, mask=lt.mask, go_backwards=lt.go_backwards
        )
        u = lt.units
        z = r["z"]  # (B, T, 4U), Keras order i, f, c, o
        pre = _to_internal([z[..., :u], z[..., u : 2 * u], z[..., 3 * u :], z[..., 2 * u : 3 * u]])
        act = _to_internal([r["i"], r["f"], r["o"], r["g"]])
        layers.append(
            LayerTrace(
                name=lt.name,
                weights=lt.weights,
                pre=pre,
                act=act,
                c=np.ascontiguousarray(r["c"].transpose(1, 0, 2)),
                h=np.ascontiguousarray(r["h"].transpose(1, 0, 2)),
                h0=np.array(lt.h0, copy=True),
                c0=np.array(lt.c0, copy=True),
                x=np.array(xin, np.float32, copy=True),
                mask=lt.mask,
                go_backwards=lt.go_backwards,
                layer_name=lt.layer_name,
                direction=lt.direction,
                meta={**lt.meta, "engine": "keras"},
            )
        )
    return Trace(
        output=output,
        layers=tuple(layers),
        inputs=ref.inputs,
        engine="keras",
        step_output=ref.step_output,
        layer_outputs=ref.layer_outputs,
    )
