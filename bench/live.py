"""Live models: what ``lstmviz.trace(model, x)`` costs next to the framework's own forward pass.

For a PyTorch model (``nn.LSTM(F, U, batch_first=True)`` and a Linear head) and a Keras model
(``Sequential([Input((None, F)), LSTM(U, return_sequences=True), Dense(4)])``), same sizes,
in one process, the rounds interleaved so that load from elsewhere hits all columns alike:

* ``torch``            ``model(x)`` under ``torch.no_grad()``: the framework alone;
* ``lstmviz.trace``    ``lstmviz.trace(model, x)``: torch runs the same forward pass with the
                       hooks, then the engine recomputes every gate and checks h and c;
* ``keras predict``    ``model.predict(x, batch_size=B, verbose=0)`` (a compiled graph);
* ``keras model(x)``   the eager call;
* ``lstmviz.trace``    for the Keras model: Keras runs the model, its LSTM layer compiled
                       (long inputs; short ones run eagerly, each step recorded).

Each figure is the best of ``--repeat`` rounds after a warm-up (the median is printed too);
ratios are taken within the run. ``--threads 0`` (the default) leaves every library at its
default thread count (what a user gets); ``--threads 1`` pins NumPy's BLAS, torch and
TensorFlow to one thread.

    python bench/live.py                          # 256 units x 1000 steps, batch 1 and 32
    python bench/live.py --threads 1              # pinned
    python bench/live.py --no-keras --repeat 7    # torch only
    python bench/live.py --markdown               # a table for docs/benchmarks.md
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
    p.add_argument("--markdown", action="store_true")
    a = p.parse_args()
    if a.threads:
        pin_threads(a.threads)
        os.environ["LSTMVIZ_THREADS"] = str(a.threads)  # the bridge's block workers
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

    import numpy as np
    import torch

    import lstmviz

    if a.threads:
        torch.set_num_threads(a.threads)
    print(machine())
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"units {a.units}, steps {a.steps}, features {a.features}, "
        f"threads {'default' if not a.threads else a.threads}"
    )
    rows = []

    def timed(fn, n):
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return ts

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

        def live(net=net, x=x):
            return lstmviz.trace(net, x)

        fwd(), live()  # warm-up
        res = {"torch": [], "trace": []}
        for _ in range(a.repeat):
            res["torch"] += timed(fwd, 1)
            res["trace"] += timed(live, 1)
        tr = live()
        dh = float(np.abs(tr.layer("rnn").hidden - fwd_h(net, x)).max())
        rows.append(("torch", b, res["torch"], res["trace"], dh))

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

            def eager(km=km, xk=xk):
                return km(xk, training=False)

            def predict(km=km, xk=xk, b=b):
                return km.predict(xk, batch_size=b, verbose=0)

            def klive(km=km, xk=xk):
                return lstmviz.trace(km, xk)

            predict(), eager(), klive()
            res = {"eager": [], "predict": [], "trace": []}
            for _ in range(a.keras_repeat):
                res["predict"] += timed(predict, 1)
                res["eager"] += timed(eager, 1)
                res["trace"] += timed(klive, 1)
            rows.append(("keras", b, res["eager"], res["trace"], None, res["predict"]))

    print()
    head = "| model | batch | the framework alone (ms) | `lstmviz.trace` (ms) | trace / framework |"
    lines = [head, "|---|---|---|---|---|"]

    def row(fw, b, label, base, ours):
        return (
            f"| {fw} | {b} | {min(base) * 1e3:.1f} {label} (median {np.median(base) * 1e3:.1f}) "
            f"| {min(ours) * 1e3:.1f} (median {np.median(ours) * 1e3:.1f}) "
            f"| **{min(ours) / min(base):.2f}×** (medians {np.median(ours) / np.median(base):.2f}×)"
            " |"
        )

    for r in rows:
        fw, b, base, ours = r[0], r[1], r[2], r[3]
        if fw == "torch":
            lines.append(row(fw, b, "`model(x)`", base, ours))
            print(f"torch batch {b}: max |h_trace - h_torch| = {r[4]:.2g}")
        else:
            lines.append(row(fw, b, "`predict`", r[5], ours))
            lines.append(row(fw, b, "eager `model(x)`", base, ours))
    print("\n".join(lines))


def fwd_h(net, x):
    import torch

    with torch.no_grad():
        y, _ = net.rnn(x)
    return y.numpy()


if __name__ == "__main__":
    main()
