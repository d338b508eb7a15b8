"""``lstmviz corpus``: trace a corpus into a Zarr store and search it, without a window.

    lstmviz corpus trace MODEL --input X.npy --out STORE.zarr [--scheduler ADDRESS]
    lstmviz corpus find STORE.zarr --range A:B --threshold V [--units 3,17,40-42]
    lstmviz corpus stats STORE.zarr [--threshold V]
    lstmviz corpus info STORE.zarr
    lstmviz corpus convert OLD_FOLDER --out STORE.zarr

``STORE.zarr`` may be a local folder or an fsspec URL (``s3://bucket/c.zarr``). With
``--scheduler tcp://HOST:8786`` the tasks run on that ``dask.distributed`` cluster (its
workers need lstmviz installed and must reach the store: a shared folder or a bucket).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError, LstmvizError
from ._common import parse_unit_list


class _Progress:
    """``progress(i, n)`` printed to stderr at most every 2 s (and at the end). A job in
    phases (index, then search) restarts from 0: each phase gets the next label."""

    def __init__(self, *labels: str, unit: str) -> None:
        self.labels, self.unit = list(labels), unit
        self.what = self.labels.pop(0)
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.prev = -1

    def __call__(self, i: int, n: int) -> None:
        now = time.perf_counter()
        if i < self.prev and self.labels:  # a new phase
            self.what = self.labels.pop(0)
            self.t0, self.last = now, 0.0
        self.prev = i
        if (now - self.last < 2.0 and i < n) or n <= 0:
            return
        self.last = now
        el = now - self.t0
        rate = f", {i / el:,.0f} {self.unit}/s" if el > 0 and i else ""
        print(
            f"{self.what}: {i:,} / {n:,} {self.unit} ({100 * i / n:.0f}%){rate}",
            file=sys.stderr,
            flush=True,
        )


def parse_range(text: str) -> tuple[int, int]:
    """``"120:135"`` -> ``(120, 135)``."""
    m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", text or "")
    if not m or int(m.group(1)) >= int(m.group(2)):
        raise LstmvizError(
            f"--range: expected A:B with A < B, positions in the token stream (e.g. 120:135); "
            f"found {text!r}"
        )
    return int(m.group(1)), int(m.group(2))


def _resolve_model(name: str) -> Path:
    p = Path(name).expanduser()
    if p.exists() or p.suffix:
        return p
    from ...examples import get_example

    return get_example(name).path


def load_sequences(path: str, seq_len: int | None) -> Any:
    """The corpus of ``--input``: ``(n, T)`` ids / ``(n, T, F)`` features, memory-mapped;
    with ``--seq-len``, a 1-D id stream or ``(N, F)`` features cut into sequences."""
    p = Path(path).expanduser()
    if p.suffix.lower() != ".npy":
        raise InputError(f"--input {path}: expected a .npy array; found {p.suffix or 'no'} suffix")
    if not p.is_file():
        raise InputError(f"--input {path}: no such file")
    try:
        x = np.load(p, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"--input {path}: not a readable .npy array ({e})") from None
    if seq_len is None:
        return x
    if seq_len < 1:
        raise InputError(f"--seq-len: expected at least 1; found {seq_len}")
    n = x.shape[0]
    return [x[a : a + seq_len] for a in range(0, n, seq_len)]


def _token_text(tokenizer: dict[str, Any] | None, ids: np.ndarray, lo: int, hi: int) -> str:
    """The tokens of ``ids`` with ``ids[lo:hi]`` in brackets (empty without a vocabulary)."""
    if not tokenizer or not tokenizer.get("vocab") or ids.ndim != 1:
        return ""
    vocab = tokenizer["vocab"]
    toks = [vocab[int(i)] if 0 <= int(i) < len(vocab) else "?" for i in ids]
    sep = "" if tokenizer.get("kind") == "chars" else " "
    text = sep.join(toks[:lo]) + "[" + sep.join(toks[lo:hi]) + "]" + sep.join(toks[hi:])
    return text.replace("\n", "⏎")


# ------------------------------------------------------------------------------ commands
def _trace(a: argparse.Namespace) -> int:
    from ...io import load_model
    from ...io.meta import load_info
    from .tracing import trace_corpus

    model_path = _resolve_model(a.model)
    seqs = load_sequences(a.input, a.seq_len)
    model = load_model(model_path)
    info = load_info(model_path)
    quantities = [q.strip() for q in a.quantities.split(",") if q.strip()]
    layers = [s.strip() for s in a.layers.split(",")] if a.layers else None
    t0 = time.perf_counter()
    store = trace_corpus(
        model,
        seqs,
        a.out,
        _Progress("traced", unit="token-steps"),
        quantities=quantities,
        layers=layers,
        dtype=a.dtype,
        scheduler=a.scheduler,
        info=info,
        block_steps=a.block_steps,
    )
    dt = time.perf_counter() - t0
    print(store.describe())
    print(
        f"traced {store.n_steps:,} token-steps in {dt:.1f} s ({store.n_steps / max(dt, 1e-9):,.0f}"
        f" token-steps/s) on {store.manifest.get('scheduler', 'dask')}"
    )
    return 0


def _find(a: argparse.Namespace) -> int:
    from .index import get_index
    from .search import find_pattern
    from .store import open_corpus

    t0_, t1_ = parse_range(a.range)
    units = parse_unit_list(" ".join(a.units) if a.units else None)
    store = open_corpus(a.store)
    t = time.perf_counter()
    # the on/off index is built once per layer, quantity and threshold, then reused
    get_index(
        store,
        a.layer,
        a.quantity,
        a.threshold,
        scheduler=a.scheduler,
        progress=_Progress("indexed", unit="positions"),
    )
    res = find_pattern(
        store,
        units,
        t0_,
        t1_,
        a.threshold,
        layer=a.layer,
        quantity=a.quantity,
        max_matches=a.max_matches,
        scheduler=a.scheduler,
        progress=_Progress("searched", unit="positions"),
        rank=a.rank,
    )
    dt = time.perf_counter() - t
    if not res.units:
        print(
            f"no unit is >= {a.threshold:g} over the whole range {t0_}:{t1_}; lower the "
            "threshold, narrow the range or give --units"
        )
        return 1
    print(
        f"units {', '.join(map(str, res.units))} >= {res.threshold:g}: {res.n_matches:,} "
        f"matching ranges, on at {100 * res.on_fraction:.2f}% of {store.n_steps:,} positions "
        f"({dt:.2f} s)"
    )
    tok = getattr(store, "tokenizer", None)
    print(f"{'rank':>4} {'sequence':>9} {'t':>6} {'length':>6} {'mean':>7}  {'positions':<15} text")
    for k, m in enumerate(res.matches):
        lo = max(0, m.start - 3)
        text = _token_text(tok, store.tokens(lo, m.stop + 3), m.start - lo, m.stop - lo)
        print(
            f"{k + 1:>4} {m.sequence:>9} {m.t:>6} {m.length:>6} {m.mean:>7.3f}  "
            f"{f'{m.start}:{m.stop}':<15} {text}"
        )
    return 0


def _stats(a: argparse.Namespace) -> int:
    from .stats import unit_stats
    from .store import open_corpus

    store = open_corpus(a.store)
    st = unit_stats(
        store,
        a.layer,
        a.quantity,
        threshold=a.threshold,
        scheduler=a.scheduler,
        progress=_Progress("read", unit="chunks"),
    )
    print(f"{st.layer} {st.quantity} over {st.n_positions:,} traced positions")
    head = f"{'unit':>5} {'mean':>8} {'std':>8} {'min':>8} {'max':>8}"
    if st.on_fraction is not None:
        head += f" {'on':>7}"
    print(head)
    for u in range(len(st.mean)):
        line = f"{u:>5} {st.mean[u]:>8.4f} {st.std[u]:>8.4f} {st.min[u]:>8.4f} {st.max[u]:>8.4f}"
        if st.on_fraction is not None:
            line += f" {100 * st.on_fraction[u]:>6.2f}%"
        print(line)
    return 0


def _info(a: argparse.Namespace) -> int:
    from .store import manifest_json, open_corpus

    store = open_corpus(a.store)
    print(store.describe())
    if a.manifest:
        print(manifest_json(store))
    return 0


def _convert(a: argparse.Namespace) -> int:
    from .legacy import convert_corpus

    store = convert_corpus(a.source, a.out, _Progress("converted", unit="positions"))
    print(store.describe())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lstmviz corpus",
        description="Trace a corpus into a Zarr store (Dask: this machine's threads or a "
        "cluster) and search it like LSTMVis.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  lstmviz corpus trace char_textgen --input ids.npy --out corpus.zarr\n"
        "  lstmviz corpus trace lm.keras --input ids.npy --out s3://bucket/c.zarr "
        "--scheduler tcp://10.0.0.5:8786\n"
        "  lstmviz corpus find corpus.zarr --range 120:135 --threshold 0.3\n"
        "  lstmviz corpus find corpus.zarr --range 120:135 --threshold 0.3 --units 3,17,40-42",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sched_help = "Dask scheduler address (tcp://HOST:8786); default: this machine's threads"

    t = sub.add_parser("trace", help="trace every sequence into a Zarr store")
    t.add_argument("model", help="model file or the name of a bundled example")
    t.add_argument(
        "--input",
        required=True,
        metavar="X.npy",
        help="(n, T) token ids or (n, T, F) features; with --seq-len a 1-D id stream or "
        "(N, F) features cut into sequences",
    )
    t.add_argument("--out", required=True, metavar="STORE.zarr", help="folder or fsspec URL")
    t.add_argument("--scheduler", metavar="ADDRESS", help=sched_help)
    t.add_argument("--seq-len", type=int, metavar="T", help="cut the input into sequences of T")
    t.add_argument("--quantities", default="hidden,cell", metavar="Q,...")
    t.add_argument("--layers", metavar="NAME,...", help="LSTM layers to keep (default: all)")
    t.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    t.add_argument(
        "--block-steps", type=int, metavar="N", help="positions per task (a power of two)"
    )
    t.set_defaults(run=_trace)

    f = sub.add_parser("find", help="find where a set of units is on (LSTMVis match)")
    f.add_argument("store", metavar="STORE.zarr")
    f.add_argument(
        "--range", required=True, metavar="A:B", help="the selected positions (token stream)"
    )
    f.add_argument("--threshold", required=True, type=float, metavar="V")
    f.add_argument(
        "--units",
        nargs="+",
        metavar="U,...",
        help="units (3,17,40-42 or 3 17 40-42); default: every unit on over A:B",
    )
    f.add_argument("--layer", help="stored LSTM layer (default: the first)")
    f.add_argument("--quantity", default="hidden")
    f.add_argument("--max-matches", type=int, default=20, metavar="K")
    f.add_argument(
        "--rank",
        default="mean",
        choices=["mean", "position"],
        help="order of matches as close in length to the range: by the units' mean "
        "(default) or by position (faster for a common pattern: reads the index alone)",
    )
    f.add_argument("--scheduler", metavar="ADDRESS", help=sched_help)
    f.set_defaults(run=_find)

    s = sub.add_parser("stats", help="per-unit mean, std, min, max (and share on)")
    s.add_argument("store", metavar="STORE.zarr")
    s.add_argument("--layer")
    s.add_argument("--quantity", default="hidden")
    s.add_argument("--threshold", type=float, metavar="V")
    s.add_argument("--scheduler", metavar="ADDRESS", help=sched_help)
    s.set_defaults(run=_stats)

    i = sub.add_parser("info", help="what a store holds")
    i.add_argument("store", metavar="STORE.zarr")
    i.add_argument("--manifest", action="store_true", help="also print the manifest (JSON)")
    i.set_defaults(run=_info)

    c = sub.add_parser("convert", help="rewrite an older memory-mapped corpus folder as Zarr")
    c.add_argument("source", metavar="OLD_FOLDER")
    c.add_argument("--out", required=True, metavar="STORE.zarr")
    c.set_defaults(run=_convert)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``lstmviz corpus``; raises :class:`LstmvizError` for bad input."""
    a = build_parser().parse_args(argv)
    return int(a.run(a))
