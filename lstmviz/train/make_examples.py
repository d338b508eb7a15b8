"""Regenerate the bundled example models in ``lstmviz/assets/examples/`` deterministically.

``python -m lstmviz.train.make_examples [--only NAME ...] [--out DIR]``

Every model is trained by :func:`lstmviz.train.core.train` with a fixed configuration and
seed (``keras.utils.set_random_seed`` plus TensorFlow's deterministic ops), checked (held-out
accuracy, < 1 MB, loads with :func:`lstmviz.load_model` and traces to Keras's own output) and
saved with its sidecar ``<name>.lstmviz.json``. CPU only; a few minutes in all.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LstmvizError
from ..io.meta import ModelInfo
from .flipflop import fixed_point_check
from .tasks import TrainConfig, get_task

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
MAX_BYTES = 1_000_000


@dataclass(frozen=True)
class Recipe:
    """One bundled example: which task, with which configuration, and what it must reach."""

    name: str
    task: str
    config: TrainConfig | None
    min_accuracy: float
    check: Callable[[Any, Any], dict[str, float]] | None = None
    #: task attributes that differ from the task's current ones (an example trained before
    #: the task changed keeps the recipe that made it)
    task_attrs: dict[str, Any] | None = None


def carry_correlation(model: Any) -> tuple[int, float]:
    """The LSTM unit whose cell state follows the carry of a binary addition best:
    ``(unit, Pearson r)`` as :func:`lstmviz.analysis.story.carry_unit` measures it (the story
    metric the Train panel and ``lstmviz train`` report)."""
    from ..analysis.story import carry_unit

    return carry_unit(model)


def _adder_check(engine_model: Any, result: Any) -> dict[str, float]:
    unit, r = carry_correlation(engine_model)
    if abs(r) < 0.9:
        raise LstmvizError(
            f"binary_addition: no cell unit tracks the carry (best: unit {unit}, "
            f"r = {r:.3f}); choose another seed"
        )
    from .tasks import binary_addition_data

    b = binary_addition_data(np.random.default_rng(6), 50, 200)
    acc = float(((engine_model.trace(b.x).output > 0.5) == b.y).mean())
    return {"carry_unit": unit, "carry_r": r, "accuracy_200_bits": acc}


RECIPES: list[Recipe] = [
    Recipe(
        "digit_sum",
        "digit-sum",
        TrainConfig(
            epochs=12, batch_size=64, learning_rate=0.01, units=32, steps_per_epoch=100, seed=0
        ),
        0.99,
    ),
    Recipe(
        "binary_addition",
        "binary-addition",
        # seed 4 gives a unit whose cell state is the carry (unit 2, r = 0.997), for the
        # analysis; the model predates the case-code front-end and the L1 on the recurrent
        # kernel of the task's defaults, and the lessons and docs name its units, so its
        # recipe keeps the random front-end
        TrainConfig(
            epochs=8, batch_size=64, learning_rate=0.02, units=4, steps_per_epoch=100, seed=4
        ),
        0.99,
        _adder_check,
        {
            "case_code_scale": None,
            "recurrent_init_std": None,
            "recurrent_l1": 0.0,
            "keep_runs": 0.0,
            "activity_l2": 0.0,
        },
    ),
    Recipe(
        "toy_classification",
        "toy-classification",
        TrainConfig(
            epochs=6, batch_size=64, learning_rate=0.01, units=16, steps_per_epoch=60, seed=0
        ),
        0.99,
    ),
    Recipe(
        "char_textgen",
        "char-textgen",
        TrainConfig(
            epochs=14, batch_size=32, learning_rate=0.005, units=96, steps_per_epoch=100, seed=0
        ),
        0.0,
    ),
    Recipe(
        "word_lm",
        "word-lm",
        TrainConfig(
            epochs=12, batch_size=32, learning_rate=0.01, units=48, steps_per_epoch=80, seed=0
        ),
        0.0,
    ),
    Recipe("stacked_lstm", "", None, 0.0),
    Recipe("flip_flop", "flip-flop", get_task("flip-flop").defaults, 0.99, fixed_point_check),
]

STACKED_INFO = ModelInfo(
    task="",
    title="Stacked LSTM, 4 -> 5 units (untrained)",
    description=(
        "A stacked LSTM: six input features per step feed a first LSTM of 4 units, whose "
        "whole hidden sequence feeds a second LSTM of 5 units (both return_sequences). Its "
        "weights are random -- it has learned nothing, so there is no right answer to show -- "
        "which is the point: it shows how layers stack (the 4 hidden values of layer 1 are "
        "the 4 inputs of layer 2) and what the gates of a fresh network look like: input and "
        "output gates near 0.5, forget gates near 0.73 (Keras starts the forget bias at 1, "
        "and sigmoid(1) = 0.73), small cell states. The input is a sample sequence of three "
        "steps: [1 2 3 4 3 2], [1 2 1 1 1 2], [1 2 2 2 2 2]. Parameters: "
        "4*4*(6+4+1) = 176 and 4*5*(4+5+1) = 200."
    ),
    token_kind="floats",
    example="1 2 3 4 3 2; 1 2 1 1 1 2; 1 2 2 2 2 2",
    output_kind="",
)


def _deterministic() -> None:
    from .backend import keras_module

    keras_module()
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def build_stacked(seed: int = 3) -> Any:
    """The stacked example: LSTM 4 -> LSTM 5 units on 6 features, random weights."""
    from .backend import keras_module, set_seed

    keras = keras_module()
    set_seed(seed)
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((None, 6), name="features"),
            L.LSTM(4, return_sequences=True, name="lstm_1"),
            L.LSTM(5, return_sequences=True, name="lstm_2"),
        ],
        name="stacked_lstm",
    )


def verify(path: Path, keras_model: Any, x: Any) -> float:
    """Load ``path`` with lstmviz and compare its trace output to Keras's; returns the max
    absolute difference (raises when it is above 1e-4)."""
    from ..io import load_model

    m = load_model(path)
    ours = np.asarray(m.trace(x).output)
    theirs = np.asarray(keras_model(x, training=False))
    diff = float(np.abs(ours - theirs).max())
    if diff > 1e-4:
        raise LstmvizError(f"{path}: lstmviz's trace differs from Keras by {diff:g}")
    if path.stat().st_size > MAX_BYTES:
        raise LstmvizError(
            f"{path}: {path.stat().st_size} bytes; bundled models must stay under {MAX_BYTES}"
        )
    return diff


def make(recipe: Recipe, out: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (or build) one example, check it, save it; returns its figures."""
    from ..io.inputs import encode_text
    from ..io.meta import save_info
    from .core import _readable, save_model, train
    from .snapshot import engine_model_from_keras

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{recipe.name}.keras"
    t0 = time.monotonic()
    if recipe.config is None:
        km = build_stacked()
        tmp = path.with_name(f".{path.stem}.tmp.keras")
        km.save(tmp)
        tmp.replace(path)
        _readable(path, save_info(path, STACKED_INFO))
        em = engine_model_from_keras(km)
        x = encode_text(em, STACKED_INFO.example, STACKED_INFO)
        diff = verify(path, km, x)
        return {
            "name": recipe.name,
            "seconds": time.monotonic() - t0,
            "max_diff": diff,
            "bytes": path.stat().st_size,
        }
    task = get_task(recipe.task)
    if recipe.task_attrs:
        task = copy.copy(task)
        for k, v in recipe.task_attrs.items():
            if not hasattr(task, k):
                raise LstmvizError(f"{recipe.name}: the {task.name} task has no {k!r}")
            setattr(task, k, v)
    result = train(task, recipe.config)
    figures: dict[str, Any] = {"name": recipe.name, **result.metrics}
    em = engine_model_from_keras(result.model)
    if recipe.check is not None:
        figures.update(recipe.check(em, result))
    acc = result.metrics.get("heldout_accuracy", 0.0)
    if acc < recipe.min_accuracy:
        raise LstmvizError(
            f"{recipe.name}: held-out accuracy {acc:.4f} is below {recipe.min_accuracy}"
        )
    info = task.info(recipe.config, result.metrics)
    checks = {k: v for k, v in figures.items() if k not in result.metrics and k != "name"}
    if checks:
        info.extra["checks"] = {
            k: round(v, 5) if isinstance(v, float) else v for k, v in checks.items()
        }
    if "carry_unit" in checks:
        info.description += (
            f" In this model it is unit {checks['carry_unit']} (its cell "
            f"state has correlation r = {checks['carry_r']:.3f} with the "
            "carry bit)."
        )
    save_model(result, str(path), info)
    x = encode_text(em, task.example, info)
    figures["max_diff"] = verify(path, result.model, x)
    figures["bytes"] = path.stat().st_size
    figures["seconds"] = time.monotonic() - t0
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lstmviz.train.make_examples",
        description="Regenerate the bundled example models.",
    )
    p.add_argument(
        "--only",
        nargs="*",
        metavar="NAME",
        help=f"only these examples ({', '.join(r.name for r in RECIPES)})",
    )
    p.add_argument("--out", default=str(EXAMPLES), help="output folder (default: %(default)s)")
    a = p.parse_args(argv)
    names = {r.name for r in RECIPES}
    for n in a.only or []:
        if n not in names:
            raise LstmvizError(f"unknown example {n!r}; examples: {', '.join(sorted(names))}")
    _deterministic()
    for r in RECIPES:
        if a.only and r.name not in a.only:
            continue
        print(f"== {r.name}", flush=True)
        figs = make(r, Path(a.out))
        print(
            "   "
            + ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figs.items()
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LstmvizError as e:
        print(f"make_examples: error: {e}", file=sys.stderr)
        sys.exit(2)
