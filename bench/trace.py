"""Trace speed: lstmviz's engine against Keras, PyTorch and the NumPy floor, same weights.

For every size (units x timesteps x batch) one random LSTM (Keras initialisation scales) runs
through, in one process and on the same weights and input:

* ``ours``        ``lstmviz.engine.run_lstm``: the full six-quantity trace (pre-activations,
                  i, f, g, o, c, h at every step), default engine (the compiled kernel when
                  built, see ``lstmviz/engine/_accel.py``), output buffers allocated per call;
* ``numpy loop``  the same with ``accelerate=False``: the pure-NumPy reference loop;
* ``floor``       the NumPy floor: ``T`` products ``np.matmul(h, U, out=z)`` with ``h``
                  ``(B, U)``, ``U`` ``(U, 4U)`` and a preallocated ``z`` -- nothing else;
                  all three 64-byte aligned (``common.aligned``: up to 1.27x faster than
                  NumPy's 16-byte alignment, and the same in every run);
* ``ours out=``   the same trace written into the buffers of the previous one
                  (``run_lstm(x, w, out=previous)``): no allocation, no page faults;
* ``input GEMM``  the input projection alone, ``x W + b`` for every step into a preallocated
                  ``(T, B, 4U)`` buffer: the part of every trace the floor leaves out;
* ``cheap gates`` ``ours out=`` with hard-sigmoid gates and a ReLU candidate/output: the same
                  trace without exp/tanh, so ``ours out=`` minus it is the transcendental math;
* ``touch``       the memory floor: allocate the trace's bytes and write them once
                  (``np.empty(n).fill(0.5)``): the page faults any new trace pays;
* ``write``       the bandwidth floor: write the trace's bytes into memory that is already
                  mapped (``buf.fill(0.5)``): what storing a trace costs even with ``out=``;
* ``keras``       ``model.predict(x, batch_size=B, verbose=0)`` of
                  ``Sequential([Input((None, F)), LSTM(U, return_sequences=True)])``
                  (h only, no gates), and ``model(x)`` (the direct call);
* ``gate layer``  ``lstmviz.train.gate_lstm``'s GateLSTM (Keras, returns every gate) in a
                  ``keras.Model``, ``predict``;
* ``torch``       ``torch.nn.LSTM`` under ``torch.no_grad()`` (h only, no gates).

Each column is the best of ``--repeat`` rounds after one warm-up call (the median is kept
too); the rounds interleave the columns so that load from elsewhere on the machine hits all
alike.  ``--rest S`` idles S seconds before each timed call: OpenBLAS, OpenMP (torch) and
TensorFlow leave their worker threads spinning for a while after a call, and back to back
(the default) each column runs beside the spinning threads of the column before it -- a
two-thread column loses a core to them.

Threads.  By default (``--threads default``) every library runs as a user gets it: OpenBLAS,
torch and TensorFlow choose their own thread counts, lstmviz uses every core
(``lstmviz.engine.get_threads``).  For each size a child process then measures the same
columns with every library on one thread (``--threads 1``: OpenBLAS / OpenMP env vars,
``torch.set_num_threads(1)``, TensorFlow's intra/inter-op pools, ``lstmviz.engine.set_threads``),
and the two sets are printed side by side (``--no-one-thread``: skip it).  The **bound** is the
least any full trace must do at those threads: floor + min(input GEMM, F/U x floor) + write.

    python bench/trace.py                  # --quick: units 32/256/1024 x T 100/1000 x B 1/32
    python bench/trace.py --full           # adds T = 10000 (sizes above --max-gb skipped)
    python bench/trace.py --units 256 --steps 1000 --batch 1 --repeat 5
    python bench/trace.py --markdown       # also print Markdown tables (docs/benchmarks.md)
    python bench/trace.py --threads 1      # only the one-thread figures

Prints one summary line per size and thread setting; ``--json PATH`` saves every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # before NumPy: pins the BLAS thread count


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="T 100/1000 (default)")
    mode.add_argument("--full", action="store_true", help="T 100/1000/10000")
    p.add_argument("--units", type=int, nargs="+", default=[32, 256, 1024])
    p.add_argument("--steps", type=int, nargs="+", default=None)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    p.add_argument("--features", type=int, default=16, help="input features F (default 16)")
    p.add_argument("--repeat", type=int, default=3, help="timed rounds per size (best of)")
    p.add_argument(
        "--openblas-coretype",
        metavar="NAME",
        help="set OPENBLAS_CORETYPE (e.g. Haswell) before NumPy loads",
    )
    p.add_argument(
        "--threads",
        default="default",
        help="'default' (every library chooses; then a child process adds the one-thread "
        "figures) or a number for every library",
    )
    p.add_argument(
        "--no-one-thread",
        action="store_true",
        help="with --threads default: skip the one-thread figures",
    )
    p.add_argument(
        "--max-gb",
        type=float,
        default=3.5,
        help="skip sizes whose trace needs more memory (default 3.5 GB)",
    )
    p.add_argument("--no-keras", action="store_true")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-gate-layer", action="store_true")
    p.add_argument(
        "--call-max-steps",
        type=int,
        default=100,
        help="time Keras's eager model(x) only up to this T (default 100: it runs "
        "op by op, 10-20 s at T=1000)",
    )
    p.add_argument(
        "--rest",
        type=float,
        default=0.0,
        help="seconds of idle before each timed call (default 0: back to back). OpenBLAS, "
        "OpenMP and TensorFlow keep their worker threads spinning for a while after a call: "
        "back to back, each column runs beside the spinning threads of the one before it",
    )
    p.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    p.add_argument("--json", help="write all figures to this JSON file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.steps is None:
        a.steps = [100, 1000, 10000] if a.full else [100, 1000]
    return a


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    pinned = a.threads != "default"
    if pinned:
        a.threads = int(a.threads)
        common.pin_threads(a.threads, a.openblas_coretype)
    elif a.openblas_coretype:
        os.environ["OPENBLAS_CORETYPE"] = a.openblas_coretype
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import numpy as np

    from lstmviz.engine import LSTMWeights, _accel, run_lstm, set_threads

    if pinned:
        set_threads(a.threads)
    if not a.child:
        print(f"machine: {common.machine()}")
    label = f"{a.threads} thread(s) per library" if pinned else "default threads"
    print(f"[{label}] engine: {_accel.describe()}; BLAS: {common.blas_threads()}; F = {a.features}")
    print(
        f"each timed call after {a.rest:g} s of idle (the libraries' spinning threads asleep)"
        if a.rest > 0
        else "timed calls back to back (each beside the threads the one before left spinning)"
    )
    keras = torch = gate_cls = None
    notes = []
    if not a.no_keras:
        try:
            import tensorflow as tf

            if pinned:
                tf.config.threading.set_intra_op_parallelism_threads(a.threads)
                tf.config.threading.set_inter_op_parallelism_threads(a.threads)
            import keras

            print(f"keras {keras.__version__} (TensorFlow {tf.__version__})")
        except ImportError as e:
            notes.append(f"keras columns skipped: {e}")
    if keras is not None and not a.no_gate_layer:
        try:
            from lstmviz.train.gate_lstm import gate_lstm_class

            gate_cls = gate_lstm_class()
        except ImportError as e:
            notes.append(f"gate-layer column skipped: lstmviz.train.gate_lstm unavailable ({e})")
    if not a.no_torch:
        try:
            import torch

            if pinned:
                torch.set_num_threads(a.threads)
            print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
        except ImportError:
            notes.append("torch column skipped: torch is not installed")
    for n in notes:
        print("note:", n)

    rows = []
    for units in a.units:
        for steps in a.steps:
            for batch in a.batch:
                row = _one(
                    np,
                    LSTMWeights,
                    run_lstm,
                    _accel,
                    keras,
                    gate_cls,
                    torch,
                    units,
                    steps,
                    batch,
                    a,
                )
                if not pinned and not a.no_one_thread and "skipped" not in row:
                    row["one_thread"] = _one_thread(a, units, steps, batch)
                rows.append(row)
    if a.markdown:
        print()
        print(markdown(rows))
        if any("one_thread" in r for r in rows):
            print()
            print(markdown_threads(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(
                {
                    "machine": common.machine(),
                    "engine": _accel.describe(),
                    "threads": a.threads,
                    "features": a.features,
                    "rows": rows,
                },
                f,
                indent=1,
            )
    return 0


def _one_thread(a: argparse.Namespace, units: int, steps: int, batch: int) -> dict:
    """The same size with every library on one thread, in a child process (OpenBLAS and
    TensorFlow read their thread counts when they load)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "one.json")
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--threads",
            "1",
            "--child",
            *("--units", str(units), "--steps", str(steps), "--batch", str(batch)),
            *("--features", str(a.features), "--repeat", str(a.repeat)),
            *("--max-gb", str(a.max_gb), "--call-max-steps", str(a.call_max_steps)),
            *("--rest", str(a.rest), "--json", out),
        ]
        cmd += [
            f"--{k}"
            for k in ("no-keras", "no-torch", "no-gate-layer")
            if getattr(a, k.replace("-", "_"))
        ]
        if a.openblas_coretype:
            cmd += ["--openblas-coretype", a.openblas_coretype]
        subprocess.run(cmd, check=True)
        with open(out) as f:
            return json.load(f)["rows"][0]


def _weights(np, LSTMWeights, feats, units, seed=0):
    """Keras's default initialisation scales: glorot_uniform kernel, orthogonal recurrent
    kernel, unit forget bias."""
    rng = np.random.default_rng(seed)
    lim = np.sqrt(6.0 / (feats + 4 * units))
    kernel = rng.uniform(-lim, lim, (feats, 4 * units))
    q, _ = np.linalg.qr(rng.standard_normal((4 * units, units)))  # (4U, U) orthonormal cols
    rec = q.T  # (U, 4U)
    bias = np.zeros(4 * units)
    bias[units : 2 * units] = 1.0
    return LSTMWeights(kernel, rec, bias)


def _one(np, LSTMWeights, run_lstm, _accel, keras, gate_cls, torch, units, steps, batch, a):
    feats = a.features
    size = f"U={units} T={steps} B={batch}"
    trace_bytes = steps * batch * (10 * units + feats) * 4
    row = {
        "units": units,
        "steps": steps,
        "batch": batch,
        "trace_gb": trace_bytes / 1e9,
        "threads": a.threads,
    }
    if trace_bytes > a.max_gb * 1e9:
        row["skipped"] = f"trace needs {trace_bytes / 1e9:.1f} GB > --max-gb {a.max_gb:g}"
        print(f"trace {size}: skipped ({row['skipped']})", flush=True)
        return row
    w = _weights(np, LSTMWeights, feats, units)
    x = np.random.default_rng(1).standard_normal((batch, steps, feats), dtype=np.float32)
    rec = common.aligned(w.recurrent_kernel)  # the floor at its fastest (common.aligned)
    h = common.aligned(
        np.random.default_rng(2).standard_normal((batch, units), dtype=np.float32) * 0.1
    )
    z = common.aligned(np.empty((batch, 4 * units), np.float32))

    def floor():
        for _ in range(steps):
            np.matmul(h, rec, out=z)  # (B, U) @ (U, 4U)

    out = {}

    def ours():
        out.pop("ours", None)  # free the previous trace first, as an app retracing would
        out["ours"] = run_lstm(x, w)

    def ours_out():
        prev = out.get("ours out=")
        out["ours out="] = run_lstm(x, w, out=prev) if prev is not None else run_lstm(x, w)

    w_cheap = LSTMWeights(
        w.kernel, w.recurrent_kernel, w.bias, activation="relu", recurrent_activation="hard_sigmoid"
    )

    def cheap_gates():
        prev = out.get("cheap gates")
        out["cheap gates"] = run_lstm(x, w_cheap, out=prev)

    kernel_i, _, bias_i = w._internal()  # the engine's gate order, as run_lstm uses them
    pre_buf = np.zeros((steps, batch, 4 * units), np.float32)

    def input_gemm():
        if _accel.available():
            _accel.project(x, kernel_i, bias_i, pre_buf)
        else:
            for b in range(batch):
                np.matmul(x[b], kernel_i, out=pre_buf[:, b, :])
            np.add(pre_buf, bias_i, out=pre_buf)

    n_trace = trace_bytes // 4
    mapped = np.zeros(n_trace, np.float32)  # written once: its pages are mapped

    def touch():  # the memory floor: allocate the trace's bytes and write them once
        np.empty(n_trace, np.float32).fill(0.5)

    def write():  # the bandwidth floor: the same bytes into memory already mapped
        mapped.fill(0.5)

    def numpy_loop():
        run_lstm(x, w, accelerate=False)

    fns = {
        "floor": floor,
        "touch": touch,
        "write": write,
        "input GEMM": input_gemm,
        "ours": ours,
        "ours out=": ours_out,
        "cheap gates": cheap_gates,
        "numpy loop": numpy_loop,
    }
    if keras is not None:
        model = keras.Sequential(
            [keras.Input((None, feats)), keras.layers.LSTM(units, return_sequences=True)]
        )
        model.layers[-1].set_weights([w.kernel, w.recurrent_kernel, w.bias])
        fns["keras predict"] = lambda: out.__setitem__(
            "keras", model.predict(x, batch_size=batch, verbose=0)
        )
        if steps <= a.call_max_steps:
            fns["keras model(x)"] = lambda: model(x)
        else:
            row["keras model(x) skipped"] = f"T > --call-max-steps {a.call_max_steps}"
        if gate_cls is not None and trace_bytes * 3 <= a.max_gb * 1e9:
            inp = keras.Input((None, feats))
            layer = gate_cls(units, return_preactivations=True)
            gmodel = keras.Model(inp, layer(inp))
            layer.set_weights([w.kernel, w.recurrent_kernel, w.bias])
            fns["gate layer"] = lambda: gmodel.predict(x, batch_size=batch, verbose=0)
        elif gate_cls is not None:
            row["gate layer skipped"] = "memory (its outputs and scan buffers ~3x the trace)"
    if torch is not None:
        from lstmviz.engine.convert import to_torch

        lstm = torch.nn.LSTM(feats, units, batch_first=True)
        sd = {f"{k}_l0": torch.from_numpy(v) for k, v in to_torch(w).items()}
        lstm.load_state_dict(sd)
        xt = torch.from_numpy(x)

        def run_torch():
            with torch.no_grad():
                out["torch"] = lstm(xt)[0]

        fns["torch"] = run_torch

    # a warm-up round (timed too), then --repeat rounds; 2 for sizes where a round takes
    # more than 30 s
    t_warm = common.interleaved(fns, 1, warmup=True, rest=a.rest)
    repeat = a.repeat if sum(t_warm.values()) < 30.0 else min(a.repeat, 2)
    times = common.interleaved_times(fns, repeat, warmup=False, rest=a.rest)
    row["rest"] = a.rest
    row.update({k: min(min(v), t_warm[k]) for k, v in times.items()})
    row["median"] = {k: float(np.median(v)) for k, v in times.items()}
    row["rounds"] = repeat + 1
    # the least any full trace must do: the floor's products, the input's part of the
    # product (a separate GEMM, or F more rows of K), and writing the trace
    row["bound"] = (
        row["floor"] + min(row["input GEMM"], feats / units * row["floor"]) + row["write"]
    )
    row["engine"] = out["ours"].meta.get("engine")
    row["path"] = out["ours"].meta.get("path")
    row["ours threads"] = out["ours"].meta.get("threads")
    ref_h = out["ours"].hidden  # (B, T, U)
    if "keras" in out:
        row["max_dh_keras"] = float(np.abs(np.asarray(out["keras"]) - ref_h).max())
    if "torch" in out:
        row["max_dh_torch"] = float(np.abs(out["torch"].numpy() - ref_h).max())
    if "ours out=" in out:
        row["max_d_out"] = float(np.abs(out["ours out="].hidden - ref_h).max())
    out.clear()
    mapped = pre_buf = None  # free the floor's buffers before the next size
    print(summary(size, row), flush=True)
    return row


def _ratio(row, a, b):
    return row[a] / row[b] if a in row and b in row else None


def summary(size: str, row: dict) -> str:
    f = common.fmt_ms
    parts = [
        f"trace {size} [{row.get('threads', '?')} threads]: ours {f(row['ours'])} ms "
        f"[{row.get('path')}, {row.get('ours threads')} thread(s)]",
        f"bound {f(row['bound'])} ms -> {common.fmt_ratio(_ratio(row, 'ours', 'bound'))} bound",
        f"numpy loop {f(row['numpy loop'])} ms",
        f"floor {f(row['floor'])} ms -> {common.fmt_ratio(_ratio(row, 'ours', 'floor'))} floor",
        f"ours out= {f(row['ours out='])} ms -> "
        f"{common.fmt_ratio(_ratio(row, 'ours out=', 'floor'))} floor",
        f"input GEMM {f(row['input GEMM'])} ms",
        f"write {f(row['write'])} ms",
        f"cheap gates {f(row['cheap gates'])} ms",
        f"touch {f(row['touch'])} ms",
    ]
    if "keras predict" in row:
        parts.append(
            f"keras predict {f(row['keras predict'])} ms "
            f"({common.fmt_ratio(_ratio(row, 'keras predict', 'ours'))} ours, "
            f"{common.fmt_ratio(_ratio(row, 'keras predict', 'floor'))} floor), "
            f"model(x) {f(row.get('keras model(x)'))} ms"
        )
    if "gate layer" in row:
        parts.append(
            f"gate layer {f(row['gate layer'])} ms "
            f"({common.fmt_ratio(_ratio(row, 'gate layer', 'ours'))} ours)"
        )
    if "torch" in row:
        parts.append(
            f"torch {f(row['torch'])} ms -> {common.fmt_ratio(_ratio(row, 'ours', 'torch'))} torch"
        )
    dh = [f"{k[7:]} {row[k]:.1e}" for k in ("max_dh_keras", "max_dh_torch") if k in row]
    if dh:
        parts.append("max|dh| " + ", ".join(dh))
    if row.get("max_d_out"):  # out= must write exactly what a fresh trace holds
        parts.append(f"out= differs from a fresh trace by {row['max_d_out']:.1e}")
    return " | ".join(parts)


def markdown_threads(rows: list[dict]) -> str:
    """Default threads beside one thread per library (times in ms; ratios within a setting)."""
    f, r = common.fmt_ms, common.fmt_ratio
    head = (
        "| units | T | B | ours | torch | keras predict | floor | bound | ours / torch | "
        "ours / floor | ours / bound | predict / ours | ours 1t | torch 1t | keras 1t | "
        "floor 1t | ours / torch 1t | predict / ours 1t |"
    )
    lines = [head, "|" + "---|" * 18]
    for row in rows:
        one = row.get("one_thread")
        if "skipped" in row or not one:
            continue
        lines.append(
            f"| {row['units']} | {row['steps']} | {row['batch']} | {f(row['ours'])} | "
            f"{f(row.get('torch'))} | {f(row.get('keras predict'))} | {f(row['floor'])} | "
            f"{f(row['bound'])} | {r(_ratio(row, 'ours', 'torch'))} | "
            f"{r(_ratio(row, 'ours', 'floor'))} | {r(_ratio(row, 'ours', 'bound'))} | "
            f"{r(_ratio(row, 'keras predict', 'ours'))} | {f(one['ours'])} | "
            f"{f(one.get('torch'))} | {f(one.get('keras predict'))} | {f(one['floor'])} | "
            f"{r(_ratio(one, 'ours', 'torch'))} | {r(_ratio(one, 'keras predict', 'ours'))} |"
        )
    return "\n".join(lines)


def markdown(rows: list[dict]) -> str:
    """The table kept in docs/benchmarks.md (times in ms)."""
    f, r = common.fmt_ms, common.fmt_ratio
    head = (
        "| units | T | B | floor | ours | ours / floor | ours out= | out= / floor | "
        "input GEMM | write | cheap gates | touch | numpy loop | keras predict | "
        "predict / ours | predict / floor | keras model(x) | gate layer | torch | "
        "ours / torch |"
    )
    lines = [head, "|" + "---|" * 20]
    for row in rows:
        lead = f"| {row['units']} | {row['steps']} | {row['batch']} |"
        if "skipped" in row:
            lines.append(lead + f" skipped: {row['skipped']} |" + " |" * 16)
            continue
        lines.append(
            lead + f" {f(row['floor'])} | {f(row['ours'])} | "
            f"{r(_ratio(row, 'ours', 'floor'))} | {f(row['ours out='])} | "
            f"{r(_ratio(row, 'ours out=', 'floor'))} | {f(row['input GEMM'])} | "
            f"{f(row['write'])} | {f(row['cheap gates'])} | {f(row['touch'])} | "
            f"{f(row['numpy loop'])} | {f(row.get('keras predict'))} | "
            f"{r(_ratio(row, 'keras predict', 'ours'))} | "
            f"{r(_ratio(row, 'keras predict', 'floor'))} | {f(row.get('keras model(x)'))} | "
            f"{f(row.get('gate layer'))} | {f(row.get('torch'))} | "
            f"{r(_ratio(row, 'ours', 'torch'))} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
