"""The 3-bit flip-flop (Sussillo & Barak 2013): a network that must remember three bits.

Three input channels receive brief pulses of +1 or -1 at random times; each output holds the
sign of the last pulse its channel received (as a bit: 1 for +1, 0 for -1) until the next
pulse flips it. The only way to do this is to have 2³ = 8 stable states -- fixed points of the
network's state map under zero input -- one per combination of the three bits, and pulses that
kick the state from one to another. :func:`lstmviz.analysis.fixed_points` finds them.

The data side is NumPy; Keras is imported only in :meth:`FlipFlop.build_model`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .tasks import Batch, Task, TrainConfig, _keras, adam

BITS = 3


def flip_flop_data(
    rng: np.random.Generator, n: int, length: int, p: float = 0.05, bits: int = BITS
) -> Batch:
    """``n`` sequences of ``length`` steps: ``x`` ``(n, T, bits)`` pulses in {-1, 0, +1}, ``y``
    ``(n, T, bits)`` the bit each output holds (1 after a +1 pulse, 0 after a -1 pulse).

    Every channel gets a pulse at t = 0, so every output is defined from the first step; later
    pulses come with probability ``p`` per channel and step.
    """
    signs = rng.choice(np.array([-1.0, 1.0], np.float32), size=(n, length, bits))
    pulse = rng.random((n, length, bits)) < p
    pulse[:, 0] = True
    x = np.where(pulse, signs, 0.0).astype(np.float32)
    state = np.zeros((n, bits), np.float32)
    y = np.zeros((n, length, bits), np.int64)
    for t in range(length):
        state = np.where(pulse[:, t], signs[:, t], state)
        y[:, t] = state > 0
    return Batch(x, y, y[:, -1].copy())


class FlipFlop(Task):
    name: str = "flip-flop"
    example_name = "flip_flop"
    title = "3-bit flip-flop (fixed points)"
    description = (
        "Sussillo & Barak's 3-bit flip-flop: three input channels get brief +1 or -1 pulses at "
        "random times; each of the three outputs must hold the sign of the last pulse on its "
        "channel (1 for +1, 0 for -1) until the next one flips it. Remembering three bits needs "
        "8 stable states: with no input the LSTM's state map has 8 stable fixed points, one per "
        "combination of the bits, and a pulse moves the state from one to another. "
        "`lstmviz fixed-points flip_flop` finds them (lstmviz.analysis.fixed_points) and draws "
        "them on the PCA of the hidden state with the input's trajectory; saddle points sit "
        "between them."
    )
    loss_kind = "binary"
    token_kind = "floats"
    output_kind = "bits"
    # every channel set, then one bit flipped at a time in Gray-code order: the state visits
    # all 8 memories (000, 001, 011, 010, 110, 111, 101, 100)
    example = (
        "-1 -1 -1; 0 0 0; 0 0 0; 0 0 1; 0 0 0; 0 0 0; 0 1 0; 0 0 0; 0 0 0; 0 0 -1; 0 0 0; "
        "0 0 0; 1 0 0; 0 0 0; 0 0 0; 0 0 1; 0 0 0; 0 0 0; 0 -1 0; 0 0 0; 0 0 0; 0 0 -1; "
        "0 0 0; 0 0 0"
    )
    defaults = TrainConfig(
        epochs=10, batch_size=64, learning_rate=0.01, units=16, steps_per_epoch=100, seed=0
    )
    train_length = 60
    heldout_length = 200
    pulse_probability = 0.05
    heldout_note = "per bit and step, on unseen 200-step sequences; trained on 60 steps"

    @property
    def output_labels(self) -> list[str]:
        return [f"bit {k + 1}" for k in range(BITS)]

    @property
    def input_features(self) -> int:
        return BITS

    def batch(self, rng: np.random.Generator, batch_size: int, step: int = 0) -> Batch:
        return flip_flop_data(rng, batch_size, self.train_length, self.pulse_probability)

    def heldout(self) -> list[Batch]:
        rng = np.random.default_rng(50_000)
        return [flip_flop_data(rng, 200, self.heldout_length, self.pulse_probability)]

    def _hits(self, out: np.ndarray, b: Batch) -> tuple[int, int]:
        assert b.y is not None
        pred = np.asarray(out).reshape(b.y.shape) > 0.5
        return int((pred == b.y).sum()), int(b.y.size)

    def build_model(self, config: TrainConfig) -> tuple[Any, Any]:
        keras = _keras()
        L = keras.layers
        m = keras.Sequential(
            [
                keras.Input((None, BITS), name="pulses"),
                L.LSTM(config.units, return_sequences=True, name="lstm"),
                L.Dense(BITS, activation="sigmoid", name="bits"),
            ],
            name="flip_flop",
        )
        m.compile(
            optimizer=adam(keras, config), loss="binary_crossentropy", metrics=["binary_accuracy"]
        )
        return m, m


def fixed_point_check(engine_model: Any, result: Any = None) -> dict[str, float]:
    """The bundled example's check: the state map under zero input has 8 stable fixed points,
    and each one's output is a different combination of the three bits."""
    from ..analysis.dynamics import fixed_points
    from ..errors import LstmvizError

    rng = np.random.default_rng(7)
    x = flip_flop_data(rng, 64, 100).x
    pts = fixed_points(engine_model, "lstm", n_init=256, inits=x, seed=0)
    stable = [p for p in pts if p.stable]
    codes = set()
    for p in stable:
        y = engine_model.layers["bits"]
        out = 1 / (1 + np.exp(-(p.h @ y.kernel + y.bias)))
        codes.add(tuple(int(v > 0.5) for v in out))
    if len(stable) != 8 or len(codes) != 8:
        raise LstmvizError(
            f"flip_flop: found {len(stable)} stable fixed points with {len(codes)} distinct "
            "outputs; expected 8 and 8 -- choose another seed"
        )
    return {"stable_fixed_points": len(stable), "fixed_points": len(pts)}
