"""Does binary addition tell its story every time? The carry unit over 10 training seeds.

Trains the binary-addition task with the defaults of ``lstmviz train`` (or overrides) for
seeds 0..N-1 and reports, per seed, the best |r| between one unit's cell state and the carry
bit (:func:`lstmviz.analysis.story.carry_unit`, the story metric the Train panel and
``lstmviz train`` show), the first snapshot at which it reached the threshold, the held-out
accuracy and the training time. The goal: |r| >= 0.99 in at least 9 of 10 seeds.

    python bench/carry_story.py                      # the task's defaults, seeds 0-9
    python bench/carry_story.py --curve              # and |r| after every epoch
    python bench/carry_story.py --epochs 8 --units 8 --seeds 10 --json out.json
    python bench/carry_story.py --units 4 --task-attr keep_runs=0   # one change at a time
"""

from __future__ import annotations

import argparse
import copy
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
    p.add_argument(
        "--task-attr",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="set a BinaryAddition attribute, e.g. recurrent_l1=0.003, keep_runs=0, "
        "case_code_scale=null (repeatable)",
    )
    p.add_argument("--threshold", type=float, default=0.99)
    p.add_argument("--curve", action="store_true", help="print |r| after every epoch")
    p.add_argument("--json", help="write the per-seed results here")
    a = p.parse_args(argv)

    from lstmviz.analysis.story import carry_unit
    from lstmviz.train.core import train
    from lstmviz.train.tasks import get_task, with_overrides

    task = copy.copy(get_task("binary-addition"))
    for item in a.task_attr:
        name, _, value = item.partition("=")
        if not hasattr(task, name):
            p.error(f"--task-attr {item!r}: the task has no attribute {name!r}")
        setattr(task, name, json.loads(value))
    overrides = {
        "epochs": a.epochs,
        "units": a.units,
        "learning_rate": a.lr,
        "steps_per_epoch": a.steps,
        "batch_size": a.batch_size,
    }
    cfg = with_overrides(task.defaults, **overrides)
    attrs = ("case_code_scale", "recurrent_init_std", "recurrent_l1", "keep_runs")
    print(
        f"config: epochs={cfg.epochs} units={cfg.units} lr={cfg.learning_rate} "
        f"steps={cfg.steps_per_epoch} batch={cfg.batch_size}; "
        + " ".join(f"{k}={getattr(task, k)}" for k in attrs),
        flush=True,
    )
    rows = []
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        t0 = time.perf_counter()
        res = train(task, with_overrides(cfg, seed=seed))
        secs = time.perf_counter() - t0
        # every snapshot: before training, then after each epoch (the last = the model)
        curve = [abs(carry_unit(s.engine_model())[1]) for s in res.snapshots]
        unit, r = carry_unit(res.snapshots[-1].engine_model())
        first = next((i for i, v in enumerate(curve) if v >= a.threshold), None)
        acc = res.metrics.get("heldout_accuracy", float("nan"))
        rows.append(
            {
                "seed": seed,
                "unit": unit,
                "r": r,
                "first_epoch": first,
                "heldout": acc,
                "seconds": secs,
                "curve": curve,
            }
        )
        when = f"from epoch {first}" if first is not None else "never"
        print(
            f"seed {seed}: carry unit {unit}, |r| = {abs(r):.4f} (>= {a.threshold}: {when}), "
            f"held-out {acc:.4f}, {secs:.1f} s",
            flush=True,
        )
        if a.curve:
            print("  |r| per epoch (0 = before training): " + " ".join(f"{v:.3f}" for v in curve))
    good = sum(abs(row["r"]) >= a.threshold for row in rows)
    mean_s = sum(row["seconds"] for row in rows) / len(rows)
    print(f"|r| >= {a.threshold}: {good} of {len(rows)} seeds; mean training time {mean_s:.1f} s")
    print("| seed | " + " | ".join(str(row["seed"]) for row in rows) + " |")
    print("|---|" + "---|" * len(rows))
    print("| carry unit | " + " | ".join(str(row["unit"]) for row in rows) + " |")
    print("| best \\|r\\| | " + " | ".join(f"{abs(row['r']):.3f}" for row in rows) + " |")
    print("| held-out accuracy | " + " | ".join(f"{row['heldout']:.3f}" for row in rows) + " |")
    if a.json:
        Path(a.json).write_text(json.dumps({"config": cfg.__dict__, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
