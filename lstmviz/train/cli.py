"""``lstmviz train TASK [--epochs N] [--units N] [--seed S] [--batch-size B] [--lr LR]
[--steps N] --out MODEL.keras``: train an example model headless, with a progress bar."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, TextIO

from ..errors import LstmvizError
from .tasks import TASK_NAMES, Task, get_task, with_overrides

if TYPE_CHECKING:
    from .core import TrainResult


def _fmt_time(s: float) -> str:
    s = max(0, round(s))
    return f"{s // 60:d}:{s % 60:02d}"


class ProgressBar:
    """A one-line text progress bar with loss, accuracy and ETA (redrawn at most 10x/s)."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self._last = 0.0
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(
        self, step: int, total: int, epoch: int, loss: float, acc: float, elapsed: float, eta: float
    ) -> None:
        now = time.monotonic()
        final = step >= total
        if not final and now - self._last < (0.1 if self.tty else 5.0):
            return
        self._last = now
        frac = step / max(total, 1)
        n = int(frac * self.width)
        bar = "#" * n + "-" * (self.width - n)
        line = (
            f"[{bar}] {step}/{total} epoch {epoch + 1} loss {loss:.4f} acc {acc:.4f} "
            f"{_fmt_time(elapsed)} elapsed, ETA {_fmt_time(eta)}"
        )
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def story_verdict(task: Task, result: TrainResult) -> str:
    """What the trained model shows of its example's story, in one line: the task's story
    metric (:mod:`lstmviz.analysis.story`) on the final weights, and for a run without the
    story the bundled model that has it ("" for a task without a story metric)."""
    from .story import StoryTracker

    tracker = StoryTracker(task)
    if not tracker.available or not result.snapshots:
        return ""
    s = tracker.add(result.snapshots[-1])
    if s is None:
        return ""
    if s.present:
        return s.sentence
    text = tracker.verdict(finished=True)
    from ..examples import EXAMPLES_DIR

    bundled = EXAMPLES_DIR / f"{task.example_name}.keras" if task.example_name else None
    if bundled is not None and bundled.is_file():
        text += f" The bundled model has it: lstmviz {bundled}"
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lstmviz train",
        description="Train one of the example tasks and save the model as .keras (with its "
        ".lstmviz.json sidecar). Needs TensorFlow: pip install lstmviz[train].",
        epilog="tasks: " + ", ".join(TASK_NAMES),
    )
    p.add_argument("task", help="the task to learn: " + ", ".join(TASK_NAMES))
    p.add_argument("--epochs", type=int, help="epochs (default: the task's)")
    p.add_argument("--units", type=int, help="LSTM units (default: the task's)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--batch-size", type=int, help="sequences per batch")
    p.add_argument("--lr", type=float, help="Adam's learning rate")
    p.add_argument("--steps", type=int, help="batches per epoch")
    p.add_argument("--out", required=True, metavar="MODEL.keras", help="where to save the model")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``lstmviz train``; returns the exit status."""
    a = build_parser().parse_args(argv)
    task = get_task(a.task)
    if not a.out.endswith(".keras"):
        raise LstmvizError(f"--out {a.out!r}: the model is saved as .keras; use a .keras name")
    config = with_overrides(
        task.defaults,
        epochs=a.epochs,
        units=a.units,
        seed=a.seed,
        batch_size=a.batch_size,
        learning_rate=a.lr,
        steps_per_epoch=a.steps,
    )
    from .backend import keras_module

    out = sys.stderr
    if not a.quiet:
        print("loading TensorFlow...", file=out, flush=True)
    t0 = time.monotonic()
    keras_module()
    from .core import BatchLog, train

    if not a.quiet:
        print(
            f"training {task.name}: {config.epochs} epochs x {config.steps_per_epoch} batches "
            f"of {config.batch_size}, {config.units} units, lr {config.learning_rate:g}, "
            f"seed {config.seed}",
            file=out,
            flush=True,
        )
    bar = ProgressBar(out)

    def on_batch(b: BatchLog) -> None:
        if not a.quiet:
            bar.update(b.step, b.total, b.epoch, b.loss, b.accuracy, b.elapsed, b.eta)

    try:
        result = train(task, config, on_batch=on_batch)
    except KeyboardInterrupt:
        print("\ninterrupted; nothing saved", file=out)
        return 130
    path = result.save(a.out)
    wall = time.monotonic() - t0
    m = result.metrics
    parts = [f"held-out accuracy {m['heldout_accuracy']:.4f} ({task.heldout_note})"]
    if "train_accuracy" in m:
        parts.append(f"training-text accuracy {m['train_accuracy']:.4f}")
    print(
        f"{task.name}: " + ", ".join(parts) + f"; {wall:.1f} s in all "
        f"({result.seconds:.1f} s training)",
        flush=True,
    )
    print(f"saved {path} (open it with: lstmviz {path})", flush=True)
    verdict = story_verdict(task, result)
    if verdict:
        print(f"story: {verdict}", flush=True)
    if task.token_kind in ("chars", "words"):
        from ..io import load_model
        from .sampling import generate

        info = task.info(config, result.metrics)
        text = generate(
            load_model(path), info, task.example, n=60, temperature=0.7, rng=config.seed
        )
        print(f"sample at temperature 0.7: {text!r}", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
