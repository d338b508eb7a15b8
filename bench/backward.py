"""Backward-pass speed: lstmviz's NumPy BPTT against torch.autograd on the same weights.

For every size (units x timesteps x batch) one ``torch.nn.LSTM`` + ``nn.Linear`` head (per
step) is saved as a state_dict, loaded with lstmviz's PyTorch loader, and both compute the
gradient of ``<seed, output>`` with respect to the input and every weight:

* ``ours``      ``lstmviz.engine.backward``: ``record`` (the engine's forward trace, every
                gate kept) + ``backward`` (input, every recorded quantity, every weight);
* ``ours, no weights`` the same with ``params=False`` (what saliency and IG need);
* ``bwd only``  ``backward`` alone on an already recorded pass;
* ``torch``     ``y = net(x); (y * seed).sum().backward()`` (autograd through the fused
                ``nn.LSTM``: forward + backward, gradients for the input and every weight).

The gradients are checked equal (1e-4 relative to the largest entry) before timing. Each
column is the best of ``--repeat`` rounds after three warm-up calls, rounds interleaved. Figures are
taken at the default threads (NumPy's BLAS and torch both use every core, what users get) and
with ``--threads 1`` (both pinned to one thread).

    python bench/backward.py                       # default threads
    python bench/backward.py --threads 1           # one thread each
    python bench/backward.py --markdown            # also a Markdown table
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # before NumPy: pins the BLAS thread count


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--units", type=int, nargs="+", default=[32, 256])
    p.add_argument("--steps", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    p.add_argument("--features", type=int, default=16)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="pin every library (0: default)")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--json", metavar="PATH")
    return p.parse_args(argv)


def best(fns: dict, repeat: int) -> dict[str, float]:
    for f in fns.values():  # warm up (torch builds its kernels in the first few calls)
        for _ in range(3):
            f()
    times = {k: float("inf") for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k] = min(times[k], time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    if a.threads:
        common.pin_threads(a.threads)
    import numpy as np
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    import lstmviz
    from lstmviz.engine.backward import backward, record

    print(common.machine())
    print(f"threads: {a.threads or 'default'} (torch {torch.get_num_threads()})")
    rows = []
    tmp = Path(tempfile.mkdtemp())
    for u in a.units:
        for t in a.steps:
            for b in a.batch:
                torch.manual_seed(0)

                class Net(torch.nn.Module):
                    def __init__(self) -> None:
                        super().__init__()
                        self.rnn = torch.nn.LSTM(a.features, u, batch_first=True)
                        self.fc = torch.nn.Linear(u, 8)

                    def forward(self, x):  # type: ignore[no-untyped-def]
                        return self.fc(self.rnn(x)[0])

                net = Net().eval()
                path = tmp / f"net_{u}.pt"
                torch.save(net.state_dict(), path)
                model = lstmviz.load_model(path)
                rng = np.random.default_rng(0)
                x = rng.normal(size=(b, t, a.features)).astype(np.float32)
                seed = rng.normal(size=(b, t, 8)).astype(np.float32)
                tx = torch.from_numpy(x).requires_grad_(True)
                ts = torch.from_numpy(seed)

                def run_torch() -> None:
                    net.zero_grad()
                    tx.grad = None
                    (net(tx) * ts).sum().backward()

                def run_ours() -> None:
                    backward(record(model, x), seed)

                def run_ours_inputs() -> None:
                    backward(record(model, x), seed, params=False)

                tape = record(model, x)

                def run_bwd() -> None:
                    backward(tape, seed)

                run_torch()
                g = backward(tape, seed)
                ref = tx.grad.numpy()
                err = float(np.abs(g.inputs[0] - ref).max() / np.abs(ref).max())
                wref = net.rnn.weight_hh_l0.grad.numpy()
                werr = float(
                    np.abs(g.params["lstm_l0"]["recurrent_kernel"].T - wref).max()
                    / np.abs(wref).max()
                )
                assert err < 1e-4 and werr < 1e-4, (err, werr)
                times = best(
                    {
                        "ours": run_ours,
                        "ours_inputs": run_ours_inputs,
                        "bwd_only": run_bwd,
                        "torch": run_torch,
                    },
                    a.repeat,
                )
                row = {"units": u, "steps": t, "batch": b, **times, "rel_err": max(err, werr)}
                rows.append(row)
                print(
                    f"U={u:<5} T={t:<5} B={b:<3} ours {1e3 * times['ours']:8.2f} ms  "
                    f"no weights {1e3 * times['ours_inputs']:8.2f}  bwd only "
                    f"{1e3 * times['bwd_only']:8.2f}  torch {1e3 * times['torch']:8.2f} ms  "
                    f"ours/torch {times['ours'] / times['torch']:5.2f}x  (max rel diff "
                    f"{max(err, werr):.1e})",
                    flush=True,
                )
    if a.markdown:
        print()
        print(
            "| units | T | batch | ours (fwd+bwd) | ours, no weights | bwd only | torch "
            "| ours / torch |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r['units']} | {r['steps']} | {r['batch']} | {1e3 * r['ours']:.2f} ms | "
                f"{1e3 * r['ours_inputs']:.2f} ms | {1e3 * r['bwd_only']:.2f} ms | "
                f"{1e3 * r['torch']:.2f} ms | {r['ours'] / r['torch']:.2f}x |"
            )
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
