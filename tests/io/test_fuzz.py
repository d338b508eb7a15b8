"""Fuzzing the readers: real .keras, .h5, .lstmviz and .npy files, mutated with a fixed seed.

Every case must either load to a correct result or raise LstmvizError with a message naming
the file; nothing else may escape, hang or crash the interpreter. The cases run in a child
process (so a crash in h5py/HDF5 fails the test instead of killing pytest) with a per-case
alarm and a hard faulthandler timeout. docs/reliability.md documents the criterion.

Run alone: ``python -m pytest tests/io/test_fuzz.py -q``.
"""

from __future__ import annotations

import copy
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SEED = 20261123
MODELS = ("digit_sum", "bidi_concat", "kitchen_sink")
CASE_TIMEOUT = 20  # seconds: a case that takes longer is a hang
ROOT = Path(__file__).resolve().parents[2]

# wrong-typed replacement values for JSON mutations
WRONG = [
    None,
    "x",
    -1,
    10**12,
    1.5,
    [],
    {},
    True,
    False,
    [1, 2, 3],
    {"class_name": "Lambda"},
    "tanh",
    0,
    -(10**18),
    "1e309",
    [[None]],
    {"class_name": 7, "config": []},
]


# ==========================================================================================
# the child process: load every case, report outcomes as JSON lines
# ==========================================================================================
def _arrays_of(obj: Any, out: list[np.ndarray], seen: set[int]) -> None:
    """Every weight array reachable from a layer (LSTMWeights, nested layers, sub-models)."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f":
            out.append(obj)
        return
    if isinstance(obj, (list, tuple)):
        for o in obj:
            _arrays_of(o, out, seen)
        return
    if isinstance(obj, dict):
        for k in sorted(obj, key=str):
            _arrays_of(obj[k], out, seen)
        return
    d = getattr(obj, "__dict__", None)
    if d is None and hasattr(obj, "__dataclass_fields__"):
        d = {k: getattr(obj, k) for k in obj.__dataclass_fields__}
    if d is None:
        return
    if type(obj).__module__.startswith("lstmviz"):
        for k in sorted(d):
            if k not in ("source", "meta") and not k.startswith("_"):  # weights, not caches
                _arrays_of(d[k], out, seen)


def model_arrays(model: Any) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    seen: set[int] = set()
    for name in model.layers:
        _arrays_of(model.layers[name], out, seen)
    return out


def _diff_elements(a: list[np.ndarray], b: list[np.ndarray]) -> int | None:
    """How many weight elements differ; None when the structure differs."""
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b, strict=True)):
        return None
    return int(
        sum(
            np.count_nonzero(~((x == y) | (np.isnan(x) & np.isnan(y))))
            for x, y in zip(a, b, strict=True)
        )
    )


def _outputs_equal(a: Any, b: Any) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return (
            isinstance(a, list)
            and isinstance(b, list)
            and len(a) == len(b)
            and all(_outputs_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


class _Alarm(Exception):
    pass


def run_cases(manifest_path: str, out_path: str) -> None:
    """Child-process entry point: run every case of the manifest, one JSON line each."""
    import faulthandler
    import signal
    import traceback

    import lstmviz
    from lstmviz.io.inputs import read_array
    from lstmviz.io.meta import load_info
    from lstmviz.io.session import Session

    def on_alarm(signum, frame):
        raise _Alarm()

    signal.signal(signal.SIGALRM, on_alarm)
    manifest = json.loads(Path(manifest_path).read_text())
    refs: dict[str, Any] = {}

    def reference(orig: str, kind: str) -> Any:
        if orig not in refs:
            if kind == "model":
                m = lstmviz.load_model(orig)
                x = np.load(orig + ".x.npy")
                refs[orig] = (m, x, model_arrays(m), m.trace(x).output)
            elif kind == "session":
                refs[orig] = Session.load(orig)
            elif kind == "info":
                refs[orig] = load_info(orig[: -len(".lstmviz.json")] + ".keras")
            else:
                refs[orig] = read_array(orig)
        return refs[orig]

    with open(out_path, "w") as out:
        for case in manifest:
            rec: dict[str, Any] = {"id": case["id"]}
            out.write(json.dumps({"id": case["id"], "start": True}) + "\n")
            out.flush()
            faulthandler.dump_traceback_later(CASE_TIMEOUT * 2, exit=True)
            signal.alarm(CASE_TIMEOUT)
            try:
                kind = case["reader"]
                ref = reference(case["orig"], kind)
                if kind == "model":
                    _m0, x, w0, y0 = ref
                    m = lstmviz.load_model(case["path"])
                    rec["outcome"] = "ok"
                    rec["diff"] = _diff_elements(w0, model_arrays(m))
                    try:
                        y = m.trace(x).output
                        rec["trace"] = "ok"
                        rec["same_output"] = _outputs_equal(y0, y)
                    except lstmviz.LstmvizError as e:
                        rec["trace"] = "error"
                        rec["message"] = str(e)
                elif kind == "session":
                    s = Session.load(case["path"])
                    rec["outcome"] = "ok"
                    rec["equal"] = bool(s == ref)
                    rec["valid"] = _session_valid(s)
                    if s.model_bytes is not None:
                        s.model_path = None  # force the embedded copy
                        s.load_model()
                elif kind == "info":
                    info = load_info(case["path"][: -len(".lstmviz.json")] + ".keras")
                    rec["outcome"] = "ok"
                    rec["valid"] = _info_valid(info)
                    rec["equal"] = info == ref
                else:
                    a = read_array(case["path"])
                    rec["outcome"] = "ok"
                    rec["diff"] = _diff_elements(
                        [np.asarray(ref, np.float64)], [np.asarray(a, np.float64)]
                    )
                    ref2 = np.asarray(ref, np.float64)
                    a2 = np.asarray(a, np.float64)
                    # a cut CSV is a shorter CSV: the original's numbers in order, the last
                    # one possibly cut inside ("0.25" -> "0.2"); rows must still agree
                    af, rf = a2.ravel(), ref2.ravel()
                    rec["prefix"] = bool(
                        af.size <= rf.size and np.array_equal(af[:-1], rf[: af.size - 1])
                    )
            except _Alarm:
                rec["outcome"] = "hang"
            except lstmviz.LstmvizError as e:
                rec["outcome"] = "error"
                rec["type"] = type(e).__name__
                rec["message"] = str(e)
            except BaseException as e:  # noqa: BLE001 - the point is to see everything
                rec["outcome"] = "bug"
                rec["type"] = type(e).__name__
                rec["message"] = str(e)[:500]
                rec["traceback"] = traceback.format_exc()[-3000:]
            finally:
                signal.alarm(0)
                faulthandler.cancel_dump_traceback_later()
            out.write(json.dumps(rec) + "\n")
            out.flush()


def _info_valid(info: Any) -> bool:
    return (
        isinstance(info.task, str)
        and isinstance(info.title, str)
        and isinstance(info.token_kind, str)
        and isinstance(info.example, str)
        and isinstance(info.vocab, list)
        and all(isinstance(v, str) for v in info.vocab)
        and isinstance(info.output_labels, list)
        and isinstance(info.extra, dict)
        and isinstance(info.output_kind, str)
    )


def _session_valid(s: Any) -> bool:
    xs = s.input if isinstance(s.input, list) else [s.input] if s.input is not None else []
    return (
        all(isinstance(a, np.ndarray) and a.dtype.kind in "biuf" for a in xs)
        and isinstance(s.batch, int)
        and s.batch >= 0
        and isinstance(s.t, int)
        and s.t >= 0
        and all(isinstance(u, int) for u in s.units)
        and isinstance(s.view, dict)
        and isinstance(s.engine, str)
        and all(isinstance(w, np.ndarray) for snap in s.snapshots for w in snap["weights"])
    )


# ==========================================================================================
# building the corpus (parent process)
# ==========================================================================================
def _json_paths(obj: Any, path: tuple = ()) -> list[tuple]:
    out = [path] if path else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _json_paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _json_paths(v, (*path, i))
    return out


def _get(obj: Any, path: tuple) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def _jtype(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def mutate_json(doc: Any, rng: np.random.Generator) -> tuple[Any, dict[str, Any]]:
    """Delete a key / item, or put a wrongly typed value somewhere in the tree."""
    doc = copy.deepcopy(doc)
    paths = _json_paths(doc)
    path = paths[int(rng.integers(len(paths)))]
    parent = _get(doc, path[:-1])
    key = path[-1]
    old = parent[key]
    if isinstance(parent, dict) and rng.random() < 0.3:
        del parent[key]
        return doc, {"op": "delete", "at": list(map(str, path)), "typed": False}
    new = copy.deepcopy(WRONG[int(rng.integers(len(WRONG)))])
    parent[key] = new
    # "typed": a value of a different JSON type replaced a non-null one; a loader that
    # accepts it must not reinterpret it (checked by the parent: same output or an error)
    typed = old is not None and new is not None and _jtype(old) != _jtype(new)
    return doc, {
        "op": "replace",
        "at": list(map(str, path)),
        "old": repr(old)[:60],
        "new": repr(new)[:60],
        "typed": typed,
    }


def _zip_members(path: Path) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(i, zf.read(i)) for i in zf.infolist()]


def _write_zip(path: Path, members: list[tuple[str, bytes]]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)


def _h5_datasets(f: Any) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return sorted(names)


def mutate_h5_weights(path: Path, rng: np.random.Generator, op: str) -> dict[str, Any]:
    """In place: delete, reshape, blow up, retype a weight dataset, or drop a listed name."""
    import h5py

    with h5py.File(path, "r+") as f:
        names = _h5_datasets(f)
        name = names[int(rng.integers(len(names)))]
        ds = f[name]
        data = ds[()]
        parent, leaf = name.rsplit("/", 1) if "/" in name else ("", name)
        g = f[parent] if parent else f
        del g[leaf]
        if op == "delete":
            pass
        elif op == "reshape":
            flat = np.asarray(data).reshape(-1)
            new = np.concatenate([flat, flat[:1]]) if rng.random() < 0.5 else flat[:-1]
            g.create_dataset(leaf, data=new if new.size else np.zeros(3, np.float32))
        elif op == "transpose":
            a = np.asarray(data)
            g.create_dataset(
                leaf,
                data=a.T.copy()
                if a.ndim == 2 and a.shape[0] != a.shape[1]
                else a.reshape(-1)[:, None],
            )
        elif op == "huge":
            shape = [(10**9, 4), (2**20, 2**20), (3, 10**12), (2**31 + 1,), (2**29, 2), (2**27,)][
                int(rng.integers(6))
            ]
            g.create_dataset(leaf, shape=shape, dtype="f4", chunks=(1,) * len(shape))
        elif op == "string":
            g.create_dataset(leaf, data=np.array([b"not a number"] * 3))
        elif op == "group":
            g.create_group(leaf)
    return {"op": op, "dataset": name}


def _patch_central_sizes(data: bytearray, size: int, which: int) -> None:
    i, k = data.find(b"PK\x01\x02"), 0
    while i >= 0:
        if k == which:
            struct.pack_into("<I", data, i + 24, size)
        i, k = data.find(b"PK\x01\x02", i + 4), k + 1


def build_cases(d: Path, originals: dict[str, Path]) -> list[dict[str, Any]]:
    """Write every mutated file under ``d``; return the manifest."""
    import h5py

    rng = np.random.default_rng(SEED)
    cases: list[dict[str, Any]] = []
    cd = d / "cases"
    cd.mkdir()

    def add(
        orig: Path, reader: str, kind: str, data: bytes | None = None, suffix: str = "", **meta: Any
    ) -> Path:
        p = cd / f"{len(cases):04d}_{kind}{suffix or orig.suffix}"
        if data is not None:
            p.write_bytes(data)
        cases.append(
            {
                "id": len(cases),
                "orig": str(orig),
                "path": str(p),
                "reader": reader,
                "kind": kind,
                **meta,
            }
        )
        return p

    def raw_mutations(orig: Path, reader: str, n_trunc: int, n_flip: int) -> None:
        data = orig.read_bytes()
        n = len(data)
        offsets = sorted(
            {0, 1, 4, 8, n // 2, n - 22, n - 1} | set(rng.integers(1, n, n_trunc - 7).tolist())
        )
        for off in offsets:
            add(orig, reader, "truncate", data[:off], offset=int(off))
        for _ in range(n_flip):
            buf = bytearray(data)
            k = int(rng.integers(1, 4))
            pos = rng.integers(0, n, k)
            for pp in pos:
                buf[pp] ^= 1 << int(rng.integers(8))
            add(orig, reader, "bitflip", bytes(buf), bits=k, offsets=pos.tolist())

    for name, orig in originals.items():
        if name.endswith(".lstmviz.json"):  # a model's info sidecar
            doc0 = json.loads(orig.read_text())
            data = orig.read_bytes()
            for off in sorted(set(rng.integers(0, len(data), 10).tolist()) | {0, 1}):
                add(orig, "info", "truncate", data[:off], suffix=".lstmviz.json")
            for _ in range(10):
                buf = bytearray(data)
                pos = rng.integers(0, len(data), 1)
                buf[pos[0]] ^= 1 << int(rng.integers(8))
                add(
                    orig,
                    "info",
                    "bitflip",
                    bytes(buf),
                    suffix=".lstmviz.json",
                    bits=1,
                    offsets=pos.tolist(),
                )
            for _ in range(40):
                doc, meta = mutate_json(doc0, rng)
                add(orig, "info", "json", json.dumps(doc).encode(), suffix=".lstmviz.json", **meta)
            continue
        reader = {"npy": "array", "csv": "array", "lstmviz": "session"}.get(
            orig.suffix[1:], "model"
        )
        if orig.suffix == ".keras":
            raw_mutations(orig, reader, 25, 25)
            members = _zip_members(orig)
            config = json.loads(dict((i.filename, b) for i, b in members)["config.json"])
            for _ in range(45):
                doc, meta = mutate_json(config, rng)
                out = [
                    (i.filename, json.dumps(doc).encode() if i.filename == "config.json" else b)
                    for i, b in members
                ]
                p = add(orig, reader, "json", None, **meta)
                _write_zip(p, out)
            for op in ("delete", "reshape", "transpose", "huge", "string", "group") * 3:
                tmp = d / "w.h5"
                tmp.write_bytes(dict((i.filename, b) for i, b in members)["model.weights.h5"])
                meta = mutate_h5_weights(tmp, rng, op)
                p = add(orig, reader, "weights", None, **meta)
                _write_zip(
                    p,
                    [
                        (i.filename, tmp.read_bytes() if i.filename == "model.weights.h5" else b)
                        for i, b in members
                    ],
                )
            for which in range(3):  # a central directory claiming 4 GB members
                buf = bytearray(orig.read_bytes())
                _patch_central_sizes(buf, 0xFFFFFFF0, which)
                add(orig, reader, "zipbomb-declared", bytes(buf), member=which)
            # missing members
            for drop in ("config.json", "model.weights.h5", "metadata.json"):
                p = add(orig, reader, "missing-member", None, member=drop)
                _write_zip(p, [(i.filename, b) for i, b in members if i.filename != drop])
        elif orig.suffix == ".h5":
            raw_mutations(orig, reader, 25, 25)
            with h5py.File(orig, "r") as f:
                config = json.loads(f.attrs["model_config"])
            for _ in range(35):
                doc, meta = mutate_json(config, rng)
                p = add(orig, reader, "json", orig.read_bytes(), **meta)
                with h5py.File(p, "r+") as f:
                    f.attrs["model_config"] = json.dumps(doc)
            for op in ("delete", "reshape", "transpose", "huge", "string", "group") * 3:
                p = add(orig, reader, "weights", orig.read_bytes())
                cases[-1].update(mutate_h5_weights(p, rng, op))
            p = add(orig, reader, "weight-names", orig.read_bytes())
            with h5py.File(p, "r+") as f:  # a listed weight that is not there
                g = f["model_weights"][list(f["model_weights"].keys())[1]]
                names = [
                    w.encode() if isinstance(w, str) else bytes(w) for w in g.attrs["weight_names"]
                ]
                g.attrs["weight_names"] = np.array([b"nothing/here:0", *names])
            p = add(orig, reader, "no-config", orig.read_bytes())
            with h5py.File(p, "r+") as f:
                del f.attrs["model_config"]
        elif orig.suffix == ".lstmviz":
            raw_mutations(orig, reader, 20, 20)
            members = _zip_members(orig)
            bym = {i.filename: b for i, b in members}
            doc0 = json.loads(bym["session.json"])
            for _ in range(40):
                doc, meta = mutate_json(doc0, rng)
                p = add(orig, reader, "json", None, **meta)
                _write_zip(
                    p,
                    [
                        (n, json.dumps(doc).encode() if n == "session.json" else b)
                        for n, b in bym.items()
                    ],
                )
            for key, shape, descr in [
                ("input_0", (1, 10**9, 10), "<f4"),
                ("input_0", (10**6, 10**6), "<f4"),
                ("snap_00000_000", (2**30, 2**30), "<f4"),
                ("input_0", (1, 3, 10), "|O"),
                ("input_0", (1, 3, 10), "<U4"),
                ("input_0", (1, 3, 10), "<f8"),
                ("snap_00000_001", (-1, 4), "<f4"),
            ]:
                hdr = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    hdr, {"descr": descr, "fortran_order": False, "shape": shape}
                )
                inner = io.BytesIO()
                with (
                    zipfile.ZipFile(io.BytesIO(bym["arrays.npz"])) as src,
                    zipfile.ZipFile(inner, "w") as dst,
                ):
                    for i in src.infolist():
                        body = src.read(i)
                        dst.writestr(
                            i, hdr.getvalue() + b"\0" * 64 if i.filename == key + ".npy" else body
                        )
                p = add(orig, reader, "npz-header", None, array=key, shape=str(shape), descr=descr)
                _write_zip(
                    p, [(n, inner.getvalue() if n == "arrays.npz" else b) for n, b in bym.items()]
                )
            for which in range(len(members)):
                buf = bytearray(orig.read_bytes())
                _patch_central_sizes(buf, 0xFFFFFFF0, which)
                add(orig, reader, "zipbomb-declared", bytes(buf), member=which)
        elif orig.suffix == ".csv":
            raw_mutations(orig, reader, 12, 12)
        elif orig.suffix == ".npy":
            raw_mutations(orig, reader, 12, 12)
            for shape in [(10**9, 10), (1, 10**9, 2), (10**7 + 1, 1), (2**40,), (-3, 2)]:
                hdr = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    hdr, {"descr": "<f4", "fortran_order": False, "shape": shape}
                )
                add(orig, reader, "npy-header", hdr.getvalue() + b"\0" * 40, shape=str(shape))
    # one real high-ratio bomb per container type: 80 MB of spaces inside the JSON member
    spaces = b" " * (80 * 2**20)
    done: set[str] = set()
    for orig in originals.values():
        if orig.suffix not in (".keras", ".lstmviz") or orig.suffix in done:
            continue
        done.add(orig.suffix)
        members = _zip_members(orig)
        target = "config.json" if orig.suffix == ".keras" else "session.json"
        p = add(orig, "model" if orig.suffix == ".keras" else "session", "zipbomb-ratio")
        with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for i, b in members:
                zf.writestr(i.filename, b[:-1] + spaces + b[-1:] if i.filename == target else b)
    return cases


# ==========================================================================================
# the test
# ==========================================================================================
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    pytest.importorskip("keras")
    return make_corpus(tmp_path_factory.mktemp("fuzz"))


def make_corpus(d: Path) -> tuple[Path, list[dict[str, Any]], Path, dict[str, Path]]:
    """Real model, session and input files in ``d``, and every mutation of them."""
    import keras

    from lstmviz.io.session import Session
    from tests import keras_models as km

    keras.backend.clear_session()  # layer names (lstm, lstm_1...) must not depend on history
    originals: dict[str, Path] = {}
    for i, name in enumerate(MODELS):
        m = km.BUILDERS[name]()
        km.randomize(m, seed=i)
        x = km.x_for(name, m, batch=2, steps=6)
        for ext in (".keras", ".h5"):
            p = d / f"{name}{ext}"
            m.save(p)
            np.save(str(p) + ".x.npy", x)
            originals[f"{name}{ext}"] = p
    keras.backend.clear_session()
    rng = np.random.default_rng(SEED)
    xs = np.eye(10, dtype=np.float32)[rng.integers(0, 10, (2, 6))]
    snaps = [
        {
            "epoch": e,
            "batch": 5,
            "loss": 0.1 * e,
            "weights": [
                rng.normal(size=(10, 40)).astype(np.float32),
                rng.normal(size=(10, 40)).astype(np.float32),
                rng.normal(size=(40,)).astype(np.float32),
            ],
        }
        for e in range(2)
    ]
    s1 = Session(
        model_path=str(originals["digit_sum.keras"]),
        input=xs,
        input_text="3 1 4",
        layer="lstm_digits",
        batch=1,
        units=[1, 3],
        t=4,
        view={"cmap": "viridis", "split": [0.3, 0.7]},
        snapshots=snaps,
    )
    s1.save(d / "plain.lstmviz")
    s2 = Session(
        model_path=str(originals["bidi_concat.h5"]),
        input=np.ones((1, 5), np.int64),
        layer="bidirectional",
        units=[0],
    )
    s2.save(d / "embedded.lstmviz", embed_model=True)
    originals["plain.lstmviz"] = d / "plain.lstmviz"
    originals["embedded.lstmviz"] = d / "embedded.lstmviz"
    np.save(d / "input.npy", xs[0])
    originals["input.npy"] = d / "input.npy"
    np.savetxt(d / "input.csv", rng.normal(size=(6, 3)).round(3), fmt="%.3f", delimiter=",")
    originals["input.csv"] = d / "input.csv"
    (d / "digit_sum.lstmviz.json").write_text(
        json.dumps(  # a model's info sidecar
            {
                "format_version": 1,
                "task": "digit-sum",
                "title": "Digit sum mod 10",
                "description": "sums digits",
                "tokens": {"kind": "digits", "vocab": []},
                "example": "4 7 3 9 1",
                "outputs": {"kind": "classes", "labels": [str(i) for i in range(10)]},
                "extra": {"training": {"epochs": 12, "lr": 0.01}},
            },
            indent=1,
        )
    )
    originals["digit_sum.lstmviz.json"] = d / "digit_sum.lstmviz.json"
    cases = build_cases(d, originals)
    manifest = d / "manifest.json"
    manifest.write_text(json.dumps(cases))
    return d, cases, manifest, originals


def _run_child(manifest: Path, out: Path) -> subprocess.CompletedProcess:
    code = (
        "import sys; from tests.io.test_fuzz import run_cases; run_cases(sys.argv[1], sys.argv[2])"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, str(manifest), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def judge(case: dict[str, Any], rec: dict[str, Any]) -> str | None:
    """Why this outcome is wrong, or None when it is right (the criterion of reliability.md)."""
    out = rec.get("outcome")
    if out in ("bug", "hang", None):
        return f"{out}: {rec.get('type')}: {rec.get('message')}\n{rec.get('traceback', '')}"
    if out == "error":
        msg = rec["message"]
        name = Path(case["path"]).name
        if name not in msg:
            return f"error message does not name the file: {msg!r}"
        if len(msg) < len(case["path"]) + 12:
            return f"error message says too little: {msg!r}"
        return None
    # it loaded: is the result correct?
    if case["reader"] == "session":
        if not rec["valid"]:
            return "loaded a session with wrongly typed fields"
        if case["kind"] in ("truncate", "bitflip") and not rec["equal"]:
            return "a damaged session loaded with different content"
        return None
    if case["reader"] == "info":
        if not rec["valid"]:
            return "loaded model info with wrongly typed fields"
        if case["kind"] == "truncate" and not rec["equal"]:
            return "a truncated model info file loaded with different content"
        return None
    if case["reader"] == "array":
        if case["kind"] == "truncate" and case["path"].endswith(".csv"):
            return None if rec["prefix"] else "a truncated CSV loaded as something else"
        if rec["diff"] is None or rec["diff"] > case.get("bits", 0):
            return f"input array loaded with {rec['diff']} changed elements"
        return None
    if rec.get("trace") == "error":
        if case["kind"] in ("truncate", "weights") or (
            case["kind"] == "bitflip" and rec["diff"] is not None
        ):
            return f"loaded, then the trace failed: {rec['message']}"
        return None
    diff = rec["diff"]
    if case["kind"] == "truncate":
        if diff != 0 or not rec["same_output"]:
            return "a truncated file loaded with different weights or output"
    elif case["kind"] == "bitflip":
        if diff is None or diff > case["bits"]:
            return f"{case['bits']} flipped bits changed {diff} weight elements"
        if diff == 0 and not rec["same_output"] and not case.get("in_config"):
            return "bit flips outside weights and config changed the output"
    elif case["kind"] == "json":
        if case["typed"] and not rec["same_output"]:
            return (
                f"wrongly typed value {case['new']} at {'/'.join(case['at'])} (was "
                f"{case['old']}) was accepted and changed the output"
            )
    elif case["kind"] in (
        "weights",
        "zipbomb-declared",
        "zipbomb-ratio",
        "missing-member",
        "no-config",
        "weight-names",
    ) and not (case["kind"] == "missing-member" and case.get("member") == "metadata.json"):
        return f"{case['kind']} mutation loaded"
    return None


def _mark_config_flips(cases: list[dict[str, Any]]) -> None:
    """Bit flips landing inside an .h5 file's model_config JSON may legitimately change it."""
    import h5py

    spans: dict[str, tuple[int, int]] = {}
    for c in cases:
        if c["kind"] != "bitflip" or not c["orig"].endswith(".h5"):
            continue
        if c["orig"] not in spans:
            data = Path(c["orig"]).read_bytes()
            with h5py.File(c["orig"], "r") as f:
                cfg = f.attrs["model_config"]
            cfg = cfg.encode() if isinstance(cfg, str) else bytes(cfg)
            i = data.find(cfg)
            spans[c["orig"]] = (i, i + len(cfg)) if i >= 0 else (0, len(data))
        lo, hi = spans[c["orig"]]
        c["in_config"] = any(lo <= o < hi for o in c["offsets"])


def test_fuzzed_files_load_or_fail_cleanly(corpus):
    d, cases, manifest, _ = corpus
    assert len(cases) >= 500
    _mark_config_flips(cases)
    out = d / "results.jsonl"
    proc = _run_child(manifest, out)
    lines = [json.loads(ln) for ln in out.read_text().splitlines() if ln.strip()]
    done = {r["id"]: r for r in lines if "outcome" in r}
    started = [r["id"] for r in lines if r.get("start")]
    if proc.returncode != 0:
        last = started[-1] if started else None
        pytest.fail(
            f"the fuzz child died (exit {proc.returncode}) in case {last}: "
            f"{cases[last] if last is not None else ''}\n{proc.stderr[-4000:]}"
        )
    assert len(done) == len(cases), "not every case reported"
    failures = []
    for c in cases:
        why = judge(c, done[c["id"]])
        if why:
            failures.append(
                f"case {c['id']} ({c['kind']} of {Path(c['orig']).name}, "
                f"{ {k: v for k, v in c.items() if k not in ('orig', 'path', 'id')} }"
                f"): {why}"
            )
    counts = Counter((Path(c["orig"]).suffix, done[c["id"]]["outcome"]) for c in cases)
    summary = ", ".join(f"{k[0]} {k[1]}: {v}" for k, v in sorted(counts.items()))
    (d / "summary.txt").write_text(f"{len(cases)} cases; {summary}; failures: {len(failures)}\n")
    print(f"\nfuzz: {len(cases)} cases; {summary}; failures: {len(failures)}")
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n\n".join(
        failures[:15]
    )


def test_corpus_is_deterministic(corpus, tmp_path):
    """The same seed writes the same mutated files."""
    _d, cases, _, originals = corpus
    again = build_cases(tmp_path, originals)
    assert [c["kind"] for c in again] == [c["kind"] for c in cases]
    for a, b in zip(cases, again, strict=True):
        if a["kind"] in ("truncate", "bitflip"):
            assert Path(a["path"]).read_bytes() == Path(b["path"]).read_bytes()


def test_input_npy_with_huge_header_refused_before_allocation(tmp_path, monkeypatch):
    """A .npy declaring 10^9 timesteps is refused from its header alone."""
    from lstmviz.errors import InputError
    from lstmviz.io.inputs import read_array

    p = tmp_path / "big.npy"
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        hdr, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 1)}
    )
    p.write_bytes(hdr.getvalue())

    def no_load(*a, **k):
        raise AssertionError("np.load must not be reached")

    monkeypatch.setattr(np, "load", no_load)
    with pytest.raises(InputError, match=r"too large|timesteps"):
        read_array(p)


# ==========================================================================================
# regressions: what the fuzzer found, pinned one by one
# ==========================================================================================
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    keras = pytest.importorskip("keras")
    from tests import keras_models as km

    d = tmp_path_factory.mktemp("regress")
    out = {}
    for name in ("digit_sum", "bidi_concat", "carry_model"):
        m = km.BUILDERS[name]()
        km.randomize(m)
        for ext in (".keras", ".h5"):
            m.save(d / f"{name}{ext}")
            out[f"{name}{ext}"] = d / f"{name}{ext}"
    L = keras.layers
    bn = keras.Sequential([keras.Input((None, 3)), L.BatchNormalization(), L.LSTM(2)])
    km.randomize(bn)
    bn.save(d / "bn.h5")
    out["bn.h5"] = d / "bn.h5"
    return out


def _edit_keras_config(src: Path, dst: Path, edit) -> Path:
    members = _zip_members(src)
    cfg = json.loads(dict((i.filename, b) for i, b in members)["config.json"])
    edit(cfg)
    _write_zip(
        dst,
        [
            (i.filename, json.dumps(cfg).encode() if i.filename == "config.json" else b)
            for i, b in members
        ],
    )
    return dst


def test_unknown_activation_names_the_file(small, tmp_path):
    from lstmviz import LstmvizError, load_model

    def edit(cfg):
        cfg["config"]["layers"][1]["config"]["recurrent_activation"] = "sigmohd"

    p = _edit_keras_config(small["digit_sum.keras"], tmp_path / "act.keras", edit)
    with pytest.raises(
        LstmvizError,
        match=r"act.keras: layer 'lstm_digits' \(LSTM\): .*"
        r"'sigmohd' is not supported",
    ):
        load_model(p)


def test_wrongly_typed_flag_is_refused_not_reinterpreted(small, tmp_path):
    from lstmviz import LstmvizError, load_model

    def edit(cfg):
        cfg["config"]["layers"][1]["config"]["go_backwards"] = 1.5

    p = _edit_keras_config(small["digit_sum.keras"], tmp_path / "m.keras", edit)
    with pytest.raises(LstmvizError, match=r"'go_backwards' must be true or false; found 1.5"):
        load_model(p)


@pytest.mark.parametrize(
    "history", [[], [None], ["embedding", 0, {}], ["embedding", True, 0], "embedding"]
)
def test_malformed_tensor_reference(small, tmp_path, history):
    from lstmviz import LstmvizError, load_model

    def edit(cfg):
        arg = cfg["config"]["layers"][2]["inbound_nodes"][0]["args"][0]
        arg["config"]["keras_history"] = history

    p = _edit_keras_config(small["bidi_concat.keras"], tmp_path / "m.keras", edit)
    with pytest.raises(LstmvizError, match=r"malformed tensor reference|malformed inbound"):
        load_model(p)


def test_node_without_inputs_and_bad_kwargs(small, tmp_path):
    from lstmviz import LstmvizError, load_model

    def no_inputs(cfg):
        cfg["config"]["layers"][2]["inbound_nodes"][0]["args"] = [[None]]

    p = _edit_keras_config(small["bidi_concat.keras"], tmp_path / "a.keras", no_inputs)
    with pytest.raises(LstmvizError, match="has no input tensors"):
        load_model(p)

    def bad_kwargs(cfg):
        cfg["config"]["layers"][2]["inbound_nodes"][0]["kwargs"] = "tanh"

    p = _edit_keras_config(small["bidi_concat.keras"], tmp_path / "b.keras", bad_kwargs)
    with pytest.raises(LstmvizError, match="kwargs an object"):
        load_model(p)


def test_h5_config_with_invalid_utf8(small, tmp_path):
    from lstmviz import LstmvizError, load_model

    data = bytearray(small["digit_sum.h5"].read_bytes())
    i = data.find(b'"class_name": "Sequential"')
    data[i + 3] = 0xAC  # not UTF-8
    p = tmp_path / "m.h5"
    p.write_bytes(bytes(data))
    with pytest.raises(LstmvizError, match="model_config is not valid JSON"):
        load_model(p)


@pytest.mark.parametrize(
    ("name", "dataset", "message"),
    [
        ("carry_model.h5", "bias", "bias has shape"),  # the first Conv1D's bias
        ("bn.h5", "gamma", "gamma has shape"),
    ],
)
def test_mis_shaped_weights_refused_at_load(small, tmp_path, name, dataset, message):
    import h5py

    from lstmviz import LstmvizError, load_model

    p = tmp_path / name
    p.write_bytes(small[name].read_bytes())
    with h5py.File(p, "r+") as f:
        g = f["model_weights"]
        dataset = next(
            n
            for n in _h5_datasets(g)
            if n.endswith("/" + dataset) and ("conv" in n or "batch" in n)
        )
        a = g[dataset][()]
        del g[dataset]
        g.create_dataset(dataset, data=np.concatenate([a, a])[:, None])
    with pytest.raises(LstmvizError, match=message):
        load_model(p)


def test_declared_but_unstored_dataset_refused(small, tmp_path):
    import h5py

    from lstmviz import LstmvizError, load_model

    p = tmp_path / "m.h5"
    p.write_bytes(small["digit_sum.h5"].read_bytes())
    with h5py.File(p, "r+") as f:
        # the Dense layer's group (named dense, dense_1... after other Keras models were built)
        top = next(k for k in f["model_weights"] if k.startswith("dense"))
        g = f["model_weights"][top]
        names = _h5_datasets(g)
        del g[names[0]]
        g.create_dataset(names[0], shape=(2**29, 2), dtype="f4", chunks=(1, 2))
    with pytest.raises(LstmvizError, match="the file stores 0: refused"):
        load_model(p)


def test_npy_with_unparsable_header(tmp_path):
    from lstmviz.errors import InputError
    from lstmviz.io.inputs import read_array

    p = tmp_path / "x.npy"
    np.save(p, np.zeros((3, 2), np.float32))
    data = bytearray(p.read_bytes())
    data[data.find(b"}")] = ord("(")  # the header's dict never closes
    p.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"not a readable \.npy"):
        read_array(p)


def test_two_dimensional_input_timesteps_bounded(tmp_path):
    from lstmviz.errors import InputError
    from lstmviz.io.inputs import read_array

    p = tmp_path / "long.npy"
    with open(p, "wb") as fh:  # (10^7 + 1 timesteps, 1 feature), header only
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (10**7 + 1, 1)}
        )
    with pytest.raises(InputError, match="timesteps"):
        read_array(p)


def test_engine_layer_that_does_not_fit_names_the_layer():
    from lstmviz.engine import layers as L
    from lstmviz.engine.cell import LSTMWeights
    from lstmviz.engine.model import Model, Node
    from lstmviz.errors import ModelFileError

    rng = np.random.default_rng(0)
    inp = L.InputLayer("x", [None, None, 5])
    seven = np.ones(7, np.float32)  # 7 channels of statistics for 5 features
    bn = L.BatchNormalization("norm", seven, seven, seven, seven, 1e-3, -1)
    lstm = L.LSTM("lstm", LSTMWeights(rng.normal(size=(5, 8)), rng.normal(size=(2, 8))))
    m = Model(
        "m",
        [Node(inp, 0, []), Node(bn, 0, [("x", 0, 0)]), Node(lstm, 0, [("norm", 0, 0)])],
        [("x", 0, 0)],
        [("lstm", 0, 0)],
        source="m.keras",
    )
    with pytest.raises(
        ModelFileError, match=r"m.keras: layer 'norm' \(BatchNormalization\) cannot run"
    ):
        m.trace(rng.normal(size=(1, 3, 5)))


def test_weights_that_do_not_fit_their_layers_refused_at_load(small, tmp_path):
    """An LSTM kernel for 9 features behind an input of 10: Keras refuses such a file; so do
    we, at load time (a dry-run trace), naming the file -- not later, mid-trace."""
    import h5py

    from lstmviz import LstmvizError, load_model

    p = tmp_path / "m.h5"
    p.write_bytes(small["digit_sum.h5"].read_bytes())
    with h5py.File(p, "r+") as f:
        g = f["model_weights"]
        n = next(
            k
            for k in _h5_datasets(g)
            if k.endswith("/kernel") and "lstm" in k and "recurrent" not in k
        )
        a = g[n][()]
        del g[n]
        g.create_dataset(n, data=a[:-1])  # (9, 40)
    with pytest.raises(LstmvizError, match=r"m.h5: the weights do not fit the model's layers"):
        load_model(p)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("tokens", 5, "'tokens' must be a JSON object"),
        ("outputs", [1], "'outputs' must be a JSON object"),
        ("extra", -1, "'extra' must be a JSON object"),
        ("outputs", {"labels": 3}, "outputs.labels must be a list"),
    ],
)
def test_model_info_with_wrong_types(tmp_path, key, value, message):
    from lstmviz import LstmvizError
    from lstmviz.io.meta import load_info

    (tmp_path / "m.lstmviz.json").write_text(json.dumps({"format_version": 1, key: value}))
    with pytest.raises(LstmvizError, match=message) as ei:
        load_info(tmp_path / "m.keras")
    assert "m.lstmviz.json" in str(ei.value)
