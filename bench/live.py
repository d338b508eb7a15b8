"""Live models: what ``lstmviz.trace(model, x)`` costs next to the framework's own forward pass.

For a PyTorch model (``nn.LSTM(F, U, batch_first=True)`` and a Linear head) and a Keras model
(``Sequential([Input((None, F)), LSTM(U, return_sequences=True), Dense(4)])``), same sizes,
in one process, the rounds interleaved so that load from elsewhere hits all columns alike:

* ``torch``            ``model(x)`` under ``torch.no_grad()``: the framework alone;
* ``trace full``       ``lstmviz.trace(model, x, verify="full")``: torch runs the same forward
                       pass with the hooks, then the engine recomputes every gate from torch's
                       h and checks h and c at every step;
* ``trace spot``       ``lstmviz.trace(model, x, verify="spot")``: the engine runs the LSTM in
                       torch's place (one pass records every gate), torch runs the head on its
                       h, and torch's own LSTM spot-checks 4 windows of 16 steps;
* ``keras predict``    ``model.predict(x, batch_size=B, verbose=0)`` (a compiled graph);
* ``keras model(x)``   the eager call;
* ``trace full/spot``  the same two routes for the Keras model (on the full route Keras runs
                       its LSTM layer compiled for long inputs; short ones run eagerly, each
                       step recorded).

``verify="auto"`` (the default) takes the spot route from ``SPOT_MIN_BATCH`` (2) sequences
on, the full route for one; the "auto" column repeats the route it picks.

Each figure is the best of ``--repeat`` rounds after a warm-up (the median is printed too);
ratios are taken within the run. ``--threads 0`` (the default) leaves every library at its
default thread count (what a user gets); ``--threads 1`` pins NumPy's BLAS, torch and
TensorFlow to one thread.

    python bench/live.py                          # 256 units x 1000 steps, batch 1 and 32
    python bench/live.py --threads 1              # pinned
    python bench/live.py --no-keras --repeat 7    # torch only
    python bench/live.py --batch 1 4 8 16 32 --no-keras   # where the spot route pays off
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import machine, pin_threads


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", type=int, default=256)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--features", type=int, default=16)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="0: each library's default")
    p.add_argument("--no-keras", action="store_true")
    p.add_argument("--keras-repeat", type=int, default=2, help="rounds for the slow eager call")
    p.add_argument("--no-eager", action="store_true", help="skip Keras's eager model(x)")
    a = p.parse_args()
    if a.threads:
        pin_threads(a.threads)
        os.environ["LSTMVIZ_THREADS"] = str(a.threads)  # the bridge's block workers
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

    import numpy as np
    import torch

    import lstmviz
    from lstmviz.bridge import SPOT_MIN_BATCH

    if a.threads:
        torch.set_num_threads(a.threads)
    print(machine())
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"units {a.units}, steps {a.steps}, features {a.features}, "
        f"threads {'default' if not a.threads else a.threads}, "
        f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    rows = []

    def timed(fn):
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    def rounds(fns, n):
        """Every function once per round, interleaved: load from elsewhere hits all alike."""
        res = {k: [] for k in fns}
        for _ in range(n):
            for k, fn in fns.items():
                res[k].append(timed(fn))
        return res

    for b in a.batch:
        torch.manual_seed(0)

        class Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.rnn = torch.nn.LSTM(a.features, a.units, batch_first=True)
                self.head = torch.nn.Linear(a.units, 4)

            def forward(self, x):
                y, _ = self.rnn(x)
                return self.head(y)

        net = Net().eval()
        x = torch.randn(b, a.steps, a.features)

        def fwd(net=net, x=x):
            with torch.no_grad():
                return net(x)

        fns = {
            "framework": fwd,
            "full": lambda net=net, x=x: lstmviz.trace(net, x, verify="full"),
            "spot": lambda net=net, x=x: lstmviz.trace(net, x, verify="spot"),
        }
        for fn in fns.values():
            fn()  # warm-up
        res = rounds(fns, a.repeat)
        y = fwd().numpy()
        errs = []
        for v in ("full", "spot"):
            tr = fns[v]()
            assert tr.layer("rnn").meta["verified"] == v
            errs.append(float(np.abs(tr.output - y).max()))
        rows.append(("torch", b, "`model(x)`", res, errs))

    if not a.no_keras:
        import keras

        if a.threads:
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(a.threads)
            tf.config.threading.set_inter_op_parallelism_threads(a.threads)
        for b in a.batch:
            keras.utils.set_random_seed(0)
            km = keras.Sequential(
                [
                    keras.Input((None, a.features)),
                    keras.layers.LSTM(a.units, return_sequences=True, name="lstm"),
                    keras.layers.Dense(4),
                ]
            )
            xk = np.random.default_rng(0).normal(size=(b, a.steps, a.features)).astype("float32")

            def predict(km=km, xk=xk, b=b):
                return km.predict(xk, batch_size=b, verbose=0)

            fns = {
                "framework": predict,
                "full": lambda km=km, xk=xk: lstmviz.trace(km, xk, verify="full"),
                "spot": lambda km=km, xk=xk: lstmviz.trace(km, xk, verify="spot"),
            }
            for fn in fns.values():
                fn()
            res = rounds(fns, a.keras_repeat)
            y = predict()
            errs = [float(np.abs(fns[v]().output - y).max()) for v in ("full", "spot")]
            rows.append(("keras", b, "`predict`", res, errs))
            if not a.no_eager:
                eager = {"framework": lambda km=km, xk=xk: km(xk, training=False)}
                eager["framework"]()
                res_e = rounds(eager, a.keras_repeat)
                rows.append(("keras", b, "eager `model(x)`", {**res, **res_e}, errs))

    print()
    lines = [
        '| model | batch | the framework alone (ms) | trace, `verify="full"` (ms) '
        '| trace, `verify="spot"` (ms) | full / framework | spot / framework '
        '| `"auto"` / framework |',
        "|---|---|---|---|---|---|---|---|",
    ]

    def ms(ts):
        return f"{min(ts) * 1e3:.1f} (median {np.median(ts) * 1e3:.1f})"

    def ratio(ours, base):
        return f"{min(ours) / min(base):.2f}× ({np.median(ours) / np.median(base):.2f}×)"

    for fw, b, label, res, errs in rows:
        base = res["framework"]
        auto = "spot" if b >= SPOT_MIN_BATCH else "full"
        lines.append(
            f"| {fw} | {b} | {ms(base)} {label} | {ms(res['full'])} | {ms(res['spot'])} "
            f"| {ratio(res['full'], base)} | {ratio(res['spot'], base)} "
            f"| **{min(res[auto]) / min(base):.2f}×** ({auto}) |"
        )
        print(
            f"{fw} batch {b}: max |trace.output - framework output| full {errs[0]:.2g}, "
            f"spot {errs[1]:.2g}"
        )
    print("best of the rounds (median in brackets); ratios: best / best (median / median)")
    print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
