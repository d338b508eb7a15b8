"""Fuzz the readers at scale: mutated files of every format lstmviz owns, each loaded in a
memory-capped worker; plus SIGKILLs during saves. The figures go in docs/reliability.md.

    python bench/fuzz.py                       # 3000 cases, 100 kills (about 10 minutes)
    python bench/fuzz.py --cases 300 --kills 10 --seed 1

Formats and their mutators (seeded, reproducible):

- ``.lstmviz`` sessions: a JSON value replaced (any JSON type, huge numbers) or deleted
  anywhere in ``session.json``; an ``.npy`` header in ``arrays.npz`` rewritten (dtype, order,
  shape up to 2**40); members dropped, duplicated or renamed; 1-4 bit flips; truncation;
- ``.keras``: a config value replaced or deleted anywhere; a weight dataset replaced by one of
  another shape/dtype, a group, an external link, a soft link, external storage or a virtual
  dataset; bit flips; truncation;
- legacy ``.h5``: ``model_config`` mutated like a ``.keras`` config; weights as above;
- ``.csv`` and ``.npy`` inputs: random text, random headers, bit flips;
- model-info sidecars (``.lstmviz.json``): JSON mutations, deep nesting.

Every case must load or raise an :class:`lstmviz.errors.LstmvizError`; anything else (another
exception, a crash, a hang, a raw ``MemoryError`` at the cap) is a bug. Workers run batches
of cases under ``RLIMIT_AS`` (baseline + ``--cap-mb``) with ``LSTMVIZ_MEMORY_BUDGET`` at a
quarter of it; the report gives each format's outcomes and the workers' peak RSS.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from tests.io import hostile as H  # noqa: E402

WRONG: list[Any] = [
    None,
    "x",
    -1,
    0,
    1.5,
    10**12,
    -(10**18),
    2**64,
    [],
    {},
    True,
    [[None]],
    {"class_name": 7},
    {"class_name": "Lambda", "config": {}},
    "../../etc/passwd",
    "a\x00b",
    "x" * 300,
]


# ------------------------------------------------------------------------------------------
# mutators
# ------------------------------------------------------------------------------------------
def json_paths(obj: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += json_paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += json_paths(v, (*path, i))
    return out


def mutate_json(doc: Any, rng: np.random.Generator) -> Any:
    paths = json_paths(doc)
    path = paths[int(rng.integers(len(paths)))]
    if not path:
        return WRONG[int(rng.integers(len(WRONG)))]
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if rng.random() < 0.3:
        del parent[path[-1]]
    else:
        parent[path[-1]] = WRONG[int(rng.integers(len(WRONG)))]
    return doc


def flip(data: bytes, rng: np.random.Generator) -> bytes:
    raw = bytearray(data)
    for _ in range(int(rng.integers(1, 5))):
        i = int(rng.integers(len(raw)))
        raw[i] ^= 1 << int(rng.integers(8))
    return bytes(raw)


def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(len(data)))]


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def zipped(m: dict[str, bytes], stored: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in m.items():
            ct = zipfile.ZIP_STORED if k in stored else zipfile.ZIP_DEFLATED
            z.writestr(k, v, compress_type=ct)
    return buf.getvalue()


def npy_header(rng: np.random.Generator) -> bytes:
    descr = ["<f4", "|O", "<U3", "<c8", "|b1", "V8", "<i8", ">f8"][int(rng.integers(8))]
    shape = tuple(
        int(rng.choice([0, 1, 3, 7, 2**20, 2**31, 2**40, -1]))
        for _ in range(int(rng.integers(0, 4)))
    )
    h = repr({"descr": descr, "fortran_order": bool(rng.random() < 0.3), "shape": shape}).encode()
    h += b" " * ((-len(h) - 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h


def mutate_session(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    op = ["json", "json", "npy_header", "member", "flip", "truncate"][int(rng.integers(6))]
    if op == "flip":
        return op, flip(data, rng)
    if op == "truncate":
        return op, truncate(data, rng)
    m = members(data)
    if op == "json":
        m["session.json"] = json.dumps(mutate_json(json.loads(m["session.json"]), rng)).encode()
    elif op == "npy_header":
        inner = members(m["arrays.npz"])
        k = sorted(inner)[int(rng.integers(len(inner)))]
        inner[k] = npy_header(rng) + inner[k][128:] * int(rng.integers(0, 3))
        m["arrays.npz"] = zipped(inner)
    else:
        k = sorted(m)[int(rng.integers(len(m)))]
        what = int(rng.integers(3))
        if what == 0:
            del m[k]
        elif what == 1:
            m[k.replace("/", "_") + "_copy"] = m[k]
        else:
            m["model/" + ["..", "a\x00b", "x" * 300, "/etc/passwd"][int(rng.integers(4))]] = m[k]
    return op, zipped(m, stored=("arrays.npz",))


def h5_trick(rng: np.random.Generator, secret: Path) -> Any:
    import h5py

    kind = ["shape", "dtype", "group", "external_link", "soft_link", "external", "virtual", "huge"][
        int(rng.integers(8))
    ]

    def hook(f: Any) -> None:
        names: list[str] = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        if not names:
            return
        n = names[int(rng.integers(len(names)))]
        shape = f[n].shape
        del f[n]
        if kind == "shape":
            f.create_dataset(
                n, data=np.zeros(tuple(int(rng.integers(0, 9)) for _ in shape) or (3,), np.float32)
            )
        elif kind == "dtype":
            f.create_dataset(
                n, data=np.zeros(shape, ["i1", "f8", "u2", "S3", "c8"][int(rng.integers(5))])
            )
        elif kind == "group":
            f.create_group(n)
        elif kind == "external_link":
            f[n] = h5py.ExternalLink(str(secret.with_suffix(".h5")), "/data")
        elif kind == "soft_link":
            f[n] = h5py.SoftLink("/nowhere/at/all")
        elif kind == "external":
            f.create_dataset(
                n,
                shape=shape or (1,),
                dtype="f4",
                external=[(str(secret), 0, 4 * max(1, int(np.prod(shape))))],
            )
        elif kind == "virtual":
            layout = h5py.VirtualLayout(shape=(64, 64), dtype="f4")
            layout[:] = h5py.VirtualSource(str(secret.with_suffix(".h5")), "data", shape=(64, 64))
            f.create_virtual_dataset(n, layout)
        else:
            f.create_dataset(n, shape=(2**20, 2**12), dtype="f4", chunks=(1, 2**12))

    return kind, hook


# ------------------------------------------------------------------------------------------
# building the cases
# ------------------------------------------------------------------------------------------
def build(d: Path, n: int, seed: int) -> list[dict[str, Any]]:
    from lstmviz.io.session import Session

    rng = np.random.default_rng(seed)
    files = H.digit_lstm_files(d)
    secret = H.secret_file(d)
    import h5py

    with h5py.File(secret.with_suffix(".h5"), "w") as f:
        f.create_dataset("data", data=np.full((64, 64), 7.0, np.float32))
    session = Session(
        model_path=str(files["keras"]),
        input=np.ones((2, 5, 3), np.float32),
        input_text="1 2 3",
        layer="lstm",
        units=[1, 2],
        t=2,
        view={"unit_filter": ["all", None]},
        snapshots=[
            {"epoch": 1, "batch": 3, "weights": [np.ones((3, 16), np.float32)], "loss": 0.5}
        ],
        unknown={"": {"x_later": {"a": [1, 2]}}},
    ).save(d / "base.lstmviz", embed_model=True)
    base = {
        "session": session.read_bytes(),
        "keras": files["keras"].read_bytes(),
        "h5": files["h5"].read_bytes(),
    }
    cases: list[dict[str, Any]] = []
    fmts = ["session", "session", "keras", "keras", "h5", "csv", "npy", "info"]
    for i in range(n):
        fmt = fmts[i % len(fmts)]
        sub = rng.integers(1 << 30)
        r = np.random.default_rng(int(sub))
        if fmt == "session":
            op, data = mutate_session(base["session"], r)
            name = f"c{i}.lstmviz"
        elif fmt in ("keras", "h5"):
            op = ["config", "config", "weights", "flip", "truncate"][int(r.integers(5))]
            name = f"c{i}.{fmt}"
            if op == "flip":
                data = flip(base[fmt], r)
            elif op == "truncate":
                data = truncate(base[fmt], r)
            elif op == "weights":
                kind, hook = h5_trick(r, secret)
                op = f"weights:{kind}"
                p = d / name
                if fmt == "keras":
                    H.write_keras(p, files["layers"], files["v3"], hook=hook)
                else:
                    H.write_legacy_h5(p, files["layers"], files["legacy"], hook=hook)
                data = p.read_bytes()
            else:
                cfg = {
                    "class_name": "Sequential",
                    "config": {"name": "m", "layers": json.loads(json.dumps(files["layers"]))},
                }
                cfg = mutate_json(cfg, r)
                p = d / name
                if fmt == "keras":
                    m = members(base["keras"])
                    m["config.json"] = json.dumps(cfg).encode()
                    data = zipped(m, stored=("model.weights.h5",))
                else:
                    p.write_bytes(base["h5"])
                    with h5py.File(p, "r+") as f:
                        f.attrs["model_config"] = json.dumps(cfg)
                    data = p.read_bytes()
        elif fmt == "csv":
            op = ["text", "flip"][int(r.integers(2))]
            good = b"0.5, 1, 2\n3, 4, 5e-3\n-1, 2, 3\n"
            if op == "flip":
                data = flip(good, r)
            else:
                alphabet = [*b"0123456789.,; \t\n-+eEnaif#x", 0xFF, 0xC3]
                data = bytes(r.choice(alphabet, int(r.integers(0, 300))).tolist())
            name = f"c{i}.csv"
        elif fmt == "npy":
            op = ["header", "flip"][int(r.integers(2))]
            buf = io.BytesIO()
            np.save(buf, np.ones((1, 4, 3), np.float32))
            data = npy_header(r) + bytes(48) if op == "header" else flip(buf.getvalue(), r)
            name = f"c{i}.npy"
        else:
            op = ["json", "deep", "flip"][int(r.integers(3))]
            good = {
                "format_version": 1,
                "task": "t",
                "tokens": {"kind": "chars", "vocab": ["a", "b"]},
                "outputs": {"kind": "classes", "labels": ["x"]},
            }
            if op == "json":
                data = json.dumps(mutate_json(good, r)).encode()
            elif op == "deep":
                depth = int(r.integers(500, 200_000))
                data = (b"[" * depth) + (b"]" * depth)
            else:
                data = flip(json.dumps(good).encode(), r)
            name = f"c{i}.lstmviz.json"
        path = d / name
        path.write_bytes(data)
        cases.append({"i": i, "format": fmt, "op": op, "path": str(path)})
    return cases


# ------------------------------------------------------------------------------------------
# the worker
# ------------------------------------------------------------------------------------------
WORKER = r"""
import json, os, resource, signal, sys, traceback
sys.path.insert(0, sys.argv[3])
import numpy as np, h5py
import lstmviz
from lstmviz.io import load_model
from lstmviz.io.session import Session
from lstmviz.io.inputs import read_array
from lstmviz.io.meta import load_info
cases = json.load(open(sys.argv[1]))
start = int(sys.argv[2])
def vm():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
cap = vm() + int(sys.argv[4]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
class Alarm(BaseException):
    pass
def on_alarm(*a):
    raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
for c in cases[start:]:
    print(json.dumps({"i": c["i"], "started": True}), flush=True)
    out = {"i": c["i"]}
    signal.alarm(30)
    try:
        p = c["path"]
        f = c["format"]
        if f == "session":
            s = Session.load(p)
            try:
                s.load_model()
            except lstmviz.LstmvizError:
                pass
        elif f in ("keras", "h5"):
            m = load_model(p)
            x = np.zeros((1, 4, 3), np.float32)
            try:
                m.trace(x)
            except lstmviz.LstmvizError:
                pass
        elif f in ("csv", "npy"):
            read_array(p)
        else:
            load_info(p[: -len(".lstmviz.json")] + ".keras")
        out["outcome"] = "loaded"
    except lstmviz.LstmvizError as e:
        out["outcome"] = "refused"
        out["error"] = type(e).__name__
    except Alarm:
        out["outcome"] = "bug"
        out["error"] = "hang (30 s)"
    except BaseException as e:
        out["outcome"] = "bug"
        out["error"] = f"{type(e).__name__}: {str(e)[:200]}"
    signal.alarm(0)
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out), flush=True)
"""


def run(cases: list[dict[str, Any]], d: Path, cap_mb: int) -> list[dict[str, Any]]:
    manifest = d / "cases.json"
    manifest.write_text(json.dumps(cases))
    results: dict[int, dict[str, Any]] = {}
    start = 0
    env = {
        **os.environ,
        "LSTMVIZ_MEMORY_BUDGET": f"{cap_mb // 4}MiB",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    while start < len(cases):
        proc = subprocess.run(
            [sys.executable, "-c", WORKER, str(manifest), str(start), str(ROOT), str(cap_mb)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        last_started = None
        for line in proc.stdout.splitlines():
            rec = json.loads(line)
            if rec.get("started"):
                last_started = rec["i"]
            else:
                results[rec["i"]] = rec
        if len(results) >= len(cases):
            break
        # the worker died on a case (a crash): record it and go on after it
        dead = last_started if last_started is not None else start
        results[dead] = {"i": dead, "outcome": "bug", "error": f"crash (exit {proc.returncode})"}
        start = dead + 1
    return [results[c["i"]] for c in cases]


# ------------------------------------------------------------------------------------------
# kills
# ------------------------------------------------------------------------------------------
SAVER = r"""
import sys
import numpy as np
sys.path.insert(0, sys.argv[3])
from lstmviz import Session
path, v = sys.argv[1], int(sys.argv[2])
big = np.empty((64, 1024), np.float32)
while True:
    big.fill(v)
    Session(input=np.full((1, 8, 3), v, np.float32), t=v, layer=f"v{v}",
            snapshots=[{"epoch": v, "batch": i, "weights": [big]} for i in range(4)]).save(path)
    print(v, flush=True)
    v += 1
"""


def kills(d: Path, n: int, seed: int) -> dict[str, int]:
    from lstmviz import Session

    rng = np.random.default_rng(seed)
    path = d / "work.lstmviz"
    nxt, mid, ok, stale_max = 0, 0, 0, 0
    for _ in range(n):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(path), str(nxt), str(ROOT)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()
        time.sleep(float(rng.uniform(0, 0.25)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reported = [int(x) for x in (first + proc.stdout.read()).split()]
        proc.stdout.close()
        s = Session.load(path)
        ok += s.t in (reported[-1], reported[-1] + 1) and s.layer == f"v{s.t}"
        temps = [p for p in d.iterdir() if p.name.startswith(".") and ".lvtmp-" in p.name]
        mid += bool(temps)
        stale_max = max(stale_max, len(temps))
        nxt = s.t + 1
    return {"kills": n, "loaded_intact": ok, "mid_write": mid, "max_temp_files": stale_max}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--cap-mb", type=int, default=1024)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lstmviz-fuzz-") as tmp:
        d = Path(tmp)
        t0 = time.time()
        cases = build(d, a.cases, a.seed)
        res = run(cases, d, a.cap_mb)
        elapsed = time.time() - t0
        table: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        bugs = []
        peak = 0.0
        for c, r in zip(cases, res, strict=True):
            table[c["format"]][r["outcome"]] += 1
            if r["outcome"] == "refused":
                table[c["format"]]["refused:" + r["error"]] += 1
            if r["outcome"] == "bug":
                bugs.append((c, r))
            peak = max(peak, float(r.get("rss_mb", 0)))
        print(
            f"{a.cases} cases (seed {a.seed}) in {elapsed:.0f} s; worker cap {a.cap_mb} MiB "
            f"above imports, lstmviz budget {a.cap_mb // 4} MiB; peak worker RSS {peak:.0f} MB"
        )
        print("| format | cases | loaded | refused | bugs | refusals by class |")
        print("|---|---|---|---|---|---|")
        for fmt, cnt in sorted(table.items()):
            total = cnt["loaded"] + cnt["refused"] + cnt["bug"]
            kinds = ", ".join(
                f"{k[8:]} {v}" for k, v in sorted(cnt.items()) if k.startswith("refused:")
            )
            print(
                f"| {fmt} | {total} | {cnt['loaded']} | {cnt['refused']} | {cnt['bug']} | {kinds} |"
            )
        for c, r in bugs[:20]:
            print("BUG", c["format"], c["op"], c["path"], r["error"])
        if a.kills:
            k = kills(d, a.kills, a.seed)
            print(
                f"kills: {k['kills']} SIGKILLs during saves; the file loaded intact "
                f"{k['loaded_intact']} times; {k['mid_write']} landed mid-write; at most "
                f"{k['max_temp_files']} temporary file(s) at any time (the next save cleans them)"
            )
        sys.exit(1 if bugs else 0)


if __name__ == "__main__":
    main()
