"""Does binary addition tell its story every time? The carry unit over 10 training seeds.

Trains the binary-addition task with the defaults of ``lstmviz train`` (or overrides) for
seeds 0..N-1 and reports, per seed, the best |r| between a unit's cell state and the carry bit
(:func:`lstmviz.analysis.story.carry_unit`), the held-out accuracy and the time taken. The goal:
|r| >= 0.99 in at least 9 of 10 seeds.

    python bench/carry_story.py                      # the task's defaults, seeds 0-9
    python bench/carry_story.py --epochs 8 --units 8 --seeds 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (10)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--epochs", type=int)
    p.add_argument("--units", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--steps", type=int, help="batches per epoch")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--threshold", type=float, default=0.99)
    p.add_argument("--json", help="write the per-seed results here")
    a = p.parse_args(argv)

    from lstmviz.analysis.story import carry_unit
    from lstmviz.train.core import train
    from lstmviz.train.snapshot import engine_model_from_keras
    from lstmviz.train.tasks import get_task, with_overrides

    task = get_task("binary-addition")
    rows = []
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        cfg = with_overrides(
            task.defaults,
            epochs=a.epochs,
            units=a.units,
            learning_rate=a.lr,
            steps_per_epoch=a.steps,
            batch_size=a.batch_size,
            seed=seed,
        )
        t0 = time.perf_counter()
        res = train(task, cfg)
        secs = time.perf_counter() - t0
        em = engine_model_from_keras(res.model)
        unit, r = carry_unit(em)
        acc = res.metrics.get("heldout_accuracy", float("nan"))
        rows.append({"seed": seed, "unit": unit, "r": r, "heldout": acc, "seconds": secs})
        print(
            f"seed {seed}: carry unit {unit}, |r| = {abs(r):.4f}, held-out {acc:.4f}, {secs:.1f} s",
            flush=True,
        )
    good = sum(abs(row["r"]) >= a.threshold for row in rows)
    cfg = with_overrides(
        task.defaults,
        epochs=a.epochs,
        units=a.units,
        learning_rate=a.lr,
        steps_per_epoch=a.steps,
        batch_size=a.batch_size,
    )
    mean_s = sum(row["seconds"] for row in rows) / len(rows)
    print(
        f"config: epochs={cfg.epochs} units={cfg.units} lr={cfg.learning_rate} "
        f"steps={cfg.steps_per_epoch} batch={cfg.batch_size}"
    )
    print(f"|r| >= {a.threshold}: {good} of {len(rows)} seeds; mean training time {mean_s:.1f} s")
    if a.json:
        Path(a.json).write_text(json.dumps({"config": cfg.__dict__, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
