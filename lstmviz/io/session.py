"""Sessions: everything a user set up, in one ``.lstmviz`` file.

A session file is a zip holding

- ``session.json``: ``format_version``, the model reference (path, path relative to the
  session file, SHA-256 of the model file's bytes), input text, layer, batch item, unit
  selection, timestep, view settings, engine and the training snapshots' metadata;
- ``arrays.npz``: the input array(s) and the snapshots' weight arrays (plain ``.npy``
  members, read with ``allow_pickle=False``);
- optionally ``model/<file name>``: the model file's bytes, embedded.

Nothing in it is ever unpickled or evaluated. Reading is bounded: member sizes are checked in
the zip's central directory and every array's header before anything large is allocated, and
against the memory budget (:mod:`lstmviz.budget`); arrays are read straight from the file.
Writing is atomic (:mod:`lstmviz.io.atomic`): a kill at any moment leaves the previous file.

Compatibility: ``format_version`` is the major version. A later lstmviz that only *adds*
fields, arrays or members keeps it (and may count its additions in ``format_minor``); this
one reads such a file, and keeps everything it does not know -- JSON fields at the top level,
in ``model``, ``input`` and each snapshot, arrays nothing it knows refers to, extra members --
so re-saving it loses nothing (:attr:`Session.unknown`).

>>> s = Session(model_path="digit_sum.keras", input=x, layer="lstm", t=3)
>>> s.save("work.lstmviz")
>>> Session.load("work.lstmviz") == s
True
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import time
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, overload

import numpy as np

from .. import budget
from ..errors import ArgumentError, LstmvizError, MemoryBudgetError, ModelFileError, WriteError
from .atomic import atomic_open
from .checks import regular_file, safe_file_name
from .inputs import MAX_INPUT_ELEMENTS, MAX_TIMESTEPS

if TYPE_CHECKING:
    from ..engine.model import Model

FORMAT_VERSION = 1
SUFFIX = ".lstmviz"
KIND = "lstmviz-session"

JSON_MEMBER = "session.json"
ARRAYS_MEMBER = "arrays.npz"
MODEL_DIR = "model/"

# Bounds checked before anything is decompressed or allocated.
MAX_MEMBERS = 16
MAX_JSON_BYTES = 16 * 2**20
MAX_ARRAYS_BYTES = 2 * 2**30
MAX_MODEL_BYTES = 2 * 2**30
MAX_ARRAY_MEMBERS = 200_000
MAX_SNAPSHOT_ELEMENTS = 2**28  # one weight array
MAX_COMPRESSION_RATIO = 200  # JSON compresses ~10x; refuse members that claim far more
MAX_UNITS = 1_000_000
MAX_INT = 2**53  # anything larger in an index field is not a real value
_CHUNK = 1 << 20
_ARRAY_DTYPE_KINDS = "biuf"
# the JSON fields this version reads; anything else is kept as a later version's
_TOP_KEYS = {
    "format_version",
    "kind",
    "lstmviz_version",
    "saved_at",
    "model",
    "input",
    "input_text",
    "layer",
    "batch",
    "units",
    "t",
    "view",
    "engine",
    "snapshots",
}
_MODEL_KEYS = {"path", "relpath", "sha256", "name", "embedded"}
_INPUT_KEYS = {"arrays", "list"}
_SNAPSHOT_KEYS = {"epoch", "batch", "weights", "extra"}
#: a snapshot's ``batch`` before the first batch of its epoch: the weights before training
BEFORE_FIRST_BATCH = -1


class SessionFileError(LstmvizError):
    """A session file cannot be read: damaged, too large, of an unknown version."""


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _arrays_equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return (
            a.shape == b.shape
            and a.dtype == b.dtype
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        )
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_arrays_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_arrays_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _as_input(x: Any) -> np.ndarray | list[np.ndarray] | None:
    if x is None:
        return None
    if isinstance(x, (list, tuple)) and x and all(isinstance(v, np.ndarray) for v in x):
        return [np.asarray(v) for v in x]
    return np.asarray(x)


def _check_json_value(value: Any, where: str) -> None:
    """Refuse what JSON cannot store faithfully (arrays, NaN, objects)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ArgumentError(
            f"session: {where} must hold only JSON values (numbers, strings, lists, dicts); {e}"
        ) from None


def _to_jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {str(k): _to_jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_to_jsonable(x) for x in v]
    return v


# ------------------------------------------------------------------------------------------
# the session
# ------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Session:
    """Everything a user set up: model, input, selection, view, training timeline.

    Parameters
    ----------
    model_path : str or None
        The model file (stored absolute, and relative to the session file).
    model_sha256 : str or None
        SHA-256 of the model file's bytes when the session was made; computed from
        ``model_path`` on save when not given.
    model_bytes : bytes or None
        The model file itself, embedded with ``save(..., embed_model=True)``.
    input : ndarray, list of ndarray or None
        The input fed to the model: ``(batch, T, F)`` floats or ``(batch, T)`` token ids;
        a list for models with several inputs.
    input_text : str or None
        The text the input was typed as, when it was typed.
    layer : str or None
        The LSTM layer shown.
    batch : int
        The batch item shown.
    units : list of int
        The selected units.
    t : int
        The current timestep.
    view : dict
        View settings (JSON values only).
    engine : str
        The trace engine (``"numpy"``).
    snapshots : list of dict
        The training timeline: ``{"epoch": int, "batch": int, "weights": [ndarray, ...]}``
        plus any JSON-valued extras (``"loss"``, ``"metrics"``...); ``batch`` is -1 for the
        weights before the first batch (the "before training" snapshot).

    Attributes
    ----------
    warnings : list of str
        Set by :meth:`load_model`: e.g. the model file changed since the session was saved.
    source : str
        The file this session was loaded from ("" when made in memory).
    unknown : dict
        What a later lstmviz wrote that this one does not know, kept for re-saving:
        ``{"": {top-level fields}, "model": {...}, "input": {...}}``, ``unknown_arrays``
        (arrays nothing known refers to) and ``unknown_members`` (extra zip members).
        Unknown fields of a snapshot stay in that snapshot's dict under ``"_unknown"``.
    """

    model_path: str | None = None
    model_sha256: str | None = None
    model_bytes: bytes | None = field(default=None, repr=False)
    input: np.ndarray | list[np.ndarray] | None = None
    input_text: str | None = None
    layer: str | None = None
    batch: int = 0
    units: list[int] = field(default_factory=list)
    t: int = 0
    view: dict[str, Any] = field(default_factory=dict)
    engine: str = "numpy"
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    model_name: str | None = None  # file name of the model (for the embedded member)
    model_relpath: str | None = field(default=None, repr=False)  # relative to the session file
    warnings: list[str] = field(default_factory=list, repr=False)
    source: str = field(default="", repr=False)
    unknown: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    unknown_arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    unknown_members: dict[str, bytes] = field(default_factory=dict, repr=False)

    _FIELDS = (
        "model_path",
        "model_sha256",
        "model_bytes",
        "input",
        "input_text",
        "layer",
        "batch",
        "units",
        "t",
        "view",
        "engine",
        "snapshots",
        "unknown",
        "unknown_arrays",
        "unknown_members",
    )

    def __post_init__(self) -> None:
        def bad(name: str, expected: str, value: Any) -> ArgumentError:
            return ArgumentError(
                f"Session: {name} must be {expected}; found {type(value).__name__} {value!r:.60}"
            )

        def index(name: str, value: Any) -> int:
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, np.integer))
                or not 0 <= value < MAX_INT
            ):
                raise bad(name, f"an integer 0..{MAX_INT - 1}", value)
            return int(value)

        def text(name: str, value: Any) -> str | None:
            if value is not None and not isinstance(value, str):
                raise bad(name, "a string or None", value)
            return value

        if self.model_path is not None:
            if not isinstance(self.model_path, (str, os.PathLike)):
                raise bad("model_path", "a file path or None", self.model_path)
            self.model_path = os.fspath(self.model_path)
            if not isinstance(self.model_path, str):
                raise bad("model_path", "a str path", self.model_path)
        if self.model_sha256 is not None and not (
            isinstance(self.model_sha256, str)
            and len(self.model_sha256) == 64
            and all(c in "0123456789abcdef" for c in self.model_sha256.lower())
        ):
            raise bad("model_sha256", "64 hex digits or None", self.model_sha256)
        if self.model_bytes is not None:
            if not isinstance(self.model_bytes, (bytes, bytearray, memoryview)):
                raise bad("model_bytes", "bytes or None", self.model_bytes)
            self.model_bytes = bytes(self.model_bytes)
        try:
            self.input = _as_input(self.input)
        except (ValueError, TypeError) as e:
            raise ArgumentError(
                f"Session: input must be an array or a list of arrays ({e})"
            ) from None
        for name in ("input_text", "layer", "model_name", "model_relpath"):
            setattr(self, name, text(name, getattr(self, name)))
        if not isinstance(self.engine, str):
            raise bad("engine", "a string", self.engine)
        self.engine = self.engine or "numpy"
        self.batch = index("batch", self.batch)
        self.t = index("t", self.t)
        try:
            if isinstance(self.units, (str, bytes, dict)):
                raise TypeError
            units = list(self.units)
        except TypeError:
            raise bad("units", "a list of unit indices", self.units) from None
        self.units = [index("units[]", u) for u in units]
        if self.view is None:
            self.view = {}
        if not isinstance(self.view, dict):
            raise bad("view", "a dict of JSON values", self.view)
        self.view = dict(self.view)
        if not isinstance(self.snapshots, (list, tuple)) or not all(
            isinstance(x, dict) for x in self.snapshots
        ):
            raise bad("snapshots", "a list of dicts", self.snapshots)
        self.snapshots = [dict(x) for x in self.snapshots]
        for name in ("unknown", "unknown_arrays", "unknown_members"):
            if not isinstance(getattr(self, name), dict):
                raise bad(name, "a dict", getattr(self, name))
        for place, fields in self.unknown.items():
            if not isinstance(fields, dict):
                raise bad(f"unknown[{place!r}]", "a dict of JSON values", fields)
        self.unknown = {k: dict(v) for k, v in self.unknown.items() if v}
        for i, snap in enumerate(self.snapshots):
            if not isinstance(snap.get("_unknown", {}), dict):
                raise bad(f"snapshots[{i}]['_unknown']", "a dict", snap["_unknown"])

    def __eq__(self, other: object) -> bool:
        """Equal fields (arrays by value and dtype); model paths compare as the absolute
        paths :meth:`save` stores."""
        if not isinstance(other, Session):
            return NotImplemented

        def path(s: Session) -> str | None:
            return os.path.abspath(s.model_path) if s.model_path else s.model_path

        return path(self) == path(other) and all(
            _arrays_equal(getattr(self, f), getattr(other, f))
            for f in self._FIELDS
            if f != "model_path"
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    # ---- a model that came embedded ---------------------------------------------------
    def keep_embedded(self, model: Any) -> bool:
        """If ``model`` was loaded from a session's embedded copy (:meth:`load_model` puts
        bytes, name, SHA-256 and path in ``model.meta["embedded_model"]``), carry that copy
        into this session, so saving it embeds the model again -- it may exist nowhere else.
        Returns True when it did."""
        embedded = getattr(model, "meta", {}).get("embedded_model")
        if not isinstance(embedded, dict) or not isinstance(embedded.get("bytes"), bytes):
            return False
        self.model_bytes = embedded["bytes"]
        self.model_sha256 = embedded.get("sha256") or hashlib.sha256(self.model_bytes).hexdigest()
        self.model_name = embedded.get("name") or self.model_name
        if embedded.get("path"):
            self.model_path = str(embedded["path"])
        return True

    # ---- the model ---------------------------------------------------------------------
    def model_status(self, base: str | os.PathLike[str] | None = None) -> str:
        """``"ok"`` (file found, hash matches), ``"changed"``, ``"missing"``, ``"none"``."""
        p = self._find_model(base)
        if p is None:
            return "missing" if self.model_path else "none"
        if self.model_sha256 and file_sha256(p) != self.model_sha256:
            return "changed"
        return "ok"

    def _find_model(self, base: str | os.PathLike[str] | None = None) -> Path | None:
        if not self.model_path:
            return None
        p = Path(self.model_path)
        if p.is_file():
            return p
        rel = self.model_relpath
        here = Path(base) if base else (Path(self.source).parent if self.source else None)
        for cand in ([here / rel] if here and isinstance(rel, str) else []) + (
            [here / p.name] if here else []
        ):
            if cand.is_file():
                return cand
        return None

    def load_model(self) -> Model:
        """The session's model.

        The model file when it is there and its SHA-256 matches; else the embedded copy; else
        the file as it is now, with a warning in :attr:`warnings`. Raises
        :class:`~lstmviz.LstmvizError` when neither file nor embedded copy exists.
        """
        from . import load_model

        self.warnings = []
        p = self._find_model()
        if p is not None and p != Path(self.model_path or ""):
            self.warnings.append(f"the model was not at {self.model_path}; using {p}")
        status = (
            "missing"
            if p is None
            else ("changed" if self.model_sha256 and file_sha256(p) != self.model_sha256 else "ok")
        )
        if status == "ok" and p is not None:
            return load_model(p)
        if self.model_bytes is not None:
            if status == "changed":
                self.warnings.append(
                    f"{p} changed since the session was saved; using the copy "
                    "embedded in the session"
                )
            elif self.model_path:
                self.warnings.append(
                    f"{self.model_path} is missing; using the copy embedded in the session"
                )
            return self._load_embedded()
        if status == "changed" and p is not None:
            self.warnings.append(
                f"{p} changed since the session was saved (its SHA-256 differs) and the session "
                "has no embedded copy: showing the model as it is now"
            )
            return load_model(p)
        where = f" ({self.source})" if self.source else ""
        raise ModelFileError(
            f"session{where}: its model {self.model_path or '(none)'} is missing and the "
            "session has no embedded copy; save sessions with the model embedded to move them "
            "between machines"
        )

    def _load_embedded(self) -> Model:
        """Load the embedded model from a private temporary file named safely (the name in
        a session file may be anything: ``..``, a NUL, 300 characters). Errors name the
        session and the embedded model, not the temporary path."""
        from . import load_model

        assert self.model_bytes is not None
        raw_name = self.model_name or (Path(self.model_path).name if self.model_path else "")
        name = safe_file_name(raw_name, "model.keras")
        where = f"{self.source or 'session'}: embedded model {raw_name or name!r}"
        budget.check(len(self.model_bytes), what=where)
        d = tempfile.mkdtemp(prefix="lstmviz-session-")
        try:
            p = Path(d) / name
            try:
                p.write_bytes(self.model_bytes)
            except OSError as e:
                raise ModelFileError(f"{where}: cannot be unpacked ({e.strerror})") from None
            try:
                model = load_model(p)
            except LstmvizError as e:
                msg = str(e).replace(str(p), where).replace(d, "(temporary folder)")
                err = type(e).__new__(type(e))
                Exception.__init__(err, msg)
                err.__dict__.update(e.__dict__)
                raise err from None
        finally:
            shutil.rmtree(d, ignore_errors=True)
        model.source = self.model_path or name
        model.meta["embedded"] = True
        model.meta["embedded_model"] = {
            "bytes": self.model_bytes,
            "name": self.model_name or name,
            "sha256": self.model_sha256 or hashlib.sha256(self.model_bytes).hexdigest(),
            "path": self.model_path,
        }
        return model

    # ---- writing ---------------------------------------------------------------------------
    def to_json(self, base: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The ``session.json`` document (arrays are referenced by name)."""
        from .._version import __version__

        if self.engine and not isinstance(self.engine, str):
            raise ArgumentError(f"session: engine must be a string; got {self.engine!r}")
        _check_json_value(self.view, "view")
        relpath = None
        if self.model_path and base is not None:
            try:
                relpath = os.path.relpath(os.path.abspath(self.model_path), os.path.abspath(base))
            except ValueError:  # another drive on Windows
                relpath = None
        inputs = None
        is_list = isinstance(self.input, list)
        if self.input is not None:
            n = len(self.input) if isinstance(self.input, list) else 1
            inputs = [f"input_{i}" for i in range(n)]
        snaps = []
        for i, s in enumerate(self.snapshots):
            if not isinstance(s, dict):
                raise ArgumentError(
                    f"session: snapshot #{i} must be a dict; got {type(s).__name__}"
                )
            ws = s.get("weights", [])
            if not isinstance(ws, (list, tuple)):
                raise ArgumentError(f"session: snapshot #{i}: weights must be a list of arrays")
            extra = {
                k: _to_jsonable(v)
                for k, v in s.items()
                if k not in ("epoch", "batch", "weights", "_unknown")
            }
            _check_json_value(extra, f"snapshot #{i}")
            unknown = s.get("_unknown") or {}
            _check_json_value(unknown, f"snapshot #{i} (fields of a later lstmviz)")
            for key, least in (("epoch", 0), ("batch", BEFORE_FIRST_BATCH)):
                v = s.get(key, 0)
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
                    raise ArgumentError(
                        f"session: snapshot #{i}: {key} must be an integer >= {least}; "
                        f"found {v!r:.40}"
                    )
            snaps.append(
                {
                    **{k: v for k, v in unknown.items() if k not in _SNAPSHOT_KEYS},
                    "epoch": int(s.get("epoch", 0)),
                    "batch": int(s.get("batch", 0)),
                    "weights": [f"snap_{i:05d}_{j:03d}" for j in range(len(ws))],
                    "extra": extra,
                }
            )
        unknown = self.unknown or {}
        _check_json_value(unknown, "the fields of a later lstmviz")
        top = {k: v for k, v in (unknown.get("") or {}).items() if k not in _TOP_KEYS}
        model_extra = {
            k: v for k, v in (unknown.get("model") or {}).items() if k not in _MODEL_KEYS
        }
        input_extra = {
            k: v for k, v in (unknown.get("input") or {}).items() if k not in _INPUT_KEYS
        }
        return {
            **top,
            "format_version": FORMAT_VERSION,
            "kind": KIND,
            "lstmviz_version": __version__,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": {
                **model_extra,
                "path": os.path.abspath(self.model_path) if self.model_path else None,
                "relpath": relpath,
                "sha256": self.model_sha256,
                "name": self.model_name
                or (Path(self.model_path).name if self.model_path else None),
                "embedded": None,
            },
            "input": None if inputs is None else {**input_extra, "arrays": inputs, "list": is_list},
            "input_text": self.input_text,
            "layer": self.layer,
            "batch": int(self.batch),
            "units": [int(u) for u in self.units],
            "t": int(self.t),
            "view": dict(self.view),
            "engine": self.engine,
            "snapshots": snaps,
        }

    def _arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if self.input is not None:
            xs = self.input if isinstance(self.input, list) else [self.input]
            for i, a in enumerate(xs):
                out[f"input_{i}"] = np.asarray(a)
        for i, s in enumerate(self.snapshots):
            for j, w in enumerate(s.get("weights", [])):
                out[f"snap_{i:05d}_{j:03d}"] = np.asarray(w)
        for k, a in self.unknown_arrays.items():  # a later lstmviz's: kept as they were
            out.setdefault(str(k), np.asarray(a))
        for k, a in out.items():
            if a.dtype.kind not in _ARRAY_DTYPE_KINDS:
                raise ArgumentError(
                    f"session: array {k} has dtype {a.dtype}; only numbers are "
                    "stored (object arrays would need pickle)"
                )
        return out

    def save(self, path: str | os.PathLike[str], embed_model: bool = False) -> Path:
        """Write the session to ``path`` (a ``.lstmviz`` zip), atomically.

        Parameters
        ----------
        path : path-like
            Where to write; ``.lstmviz`` is the usual suffix.
        embed_model : bool
            Also store the model file's bytes (from ``model_bytes``, else read from
            ``model_path``), so the session opens where the model file is not.

        Returns
        -------
        Path
            ``path``.
        """
        p = Path(path)
        model_bytes = self.model_bytes
        on_disk = bool(self.model_path) and Path(str(self.model_path)).is_file()
        if embed_model and model_bytes is None:
            if not on_disk:
                raise ModelFileError(
                    f"{p}: cannot embed the model: {self.model_path or '(no path)'} does not exist"
                )
            try:
                model_bytes = Path(str(self.model_path)).read_bytes()
            except OSError as e:
                raise ModelFileError(
                    f"{self.model_path}: cannot read the model to embed it ({e.strerror})"
                ) from None
            # the hash describes what is stored: the file as it is now
            self.model_sha256 = hashlib.sha256(model_bytes).hexdigest()
        if model_bytes is not None:  # the hash describes the bytes stored
            self.model_sha256 = hashlib.sha256(model_bytes).hexdigest()
        elif on_disk and self.model_sha256 is None:
            self.model_sha256 = file_sha256(str(self.model_path))
        doc = self.to_json(base=p.parent)
        if model_bytes is not None:
            name = safe_file_name(doc["model"]["name"], "model.keras")
            doc["model"]["embedded"] = MODEL_DIR + name
        arrays = self._arrays()
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub: allow_pickle
        try:
            text = json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False)
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate in a string: escape it, it round-trips
            text = json.dumps(doc, indent=1, ensure_ascii=True, allow_nan=False)
        try:
            with atomic_open(p, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
                zf.writestr(JSON_MEMBER, text, compress_type=zipfile.ZIP_DEFLATED)
                zf.writestr(ARRAYS_MEMBER, buf.getbuffer(), compress_type=zipfile.ZIP_STORED)
                if model_bytes is not None:
                    zf.writestr(
                        doc["model"]["embedded"], model_bytes, compress_type=zipfile.ZIP_STORED
                    )
                written = {JSON_MEMBER, ARRAYS_MEMBER, doc["model"]["embedded"]}
                for name, data in self.unknown_members.items():
                    if name not in written and not name.startswith(MODEL_DIR):
                        zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
        except OSError as e:  # disk full, permissions: the previous file is left as it was
            raise WriteError(f"{p}: cannot write the session ({e.strerror or e})") from None
        if model_bytes is not None and embed_model:
            self.model_bytes = model_bytes
        return p

    # ---- reading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Session:
        """Read a ``.lstmviz`` session file.

        Raises :class:`~lstmviz.LstmvizError` naming the file and what is wrong for anything
        that is not a session this lstmviz can read: not a zip, damaged, an unknown
        ``format_version``, wrong types, arrays of an absurd size.
        """
        return _Reader(Path(path)).read()

    @classmethod
    def peek(cls, path: str | os.PathLike[str]) -> dict[str, Any]:
        """What a session file holds, from its ``session.json`` only (no arrays, no model):
        ``{"model_name", "model_path", "saved_at", "snapshots", "embedded"}``. For listing
        sessions (File ▸ Recover) without reading them whole. Raises like :meth:`load`."""
        doc = _Reader(Path(path)).read(json_only=True)
        m = doc.get("model")
        model: dict[str, Any] = m if isinstance(m, dict) else {}
        mpath = model.get("path") if isinstance(model.get("path"), str) else None
        name = model.get("name") if isinstance(model.get("name"), str) else None
        snaps = doc.get("snapshots")
        saved = doc.get("saved_at")
        return {
            "model_name": name or (Path(mpath).name if mpath else None),
            "model_path": mpath,
            "saved_at": saved if isinstance(saved, str) else None,
            "snapshots": len(snaps) if isinstance(snaps, list) else 0,
            "embedded": isinstance(model.get("embedded"), str),
        }


# ------------------------------------------------------------------------------------------
# reading, bounded
# ------------------------------------------------------------------------------------------
class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.src = str(path)

    def fail(self, msg: str) -> SessionFileError:
        return SessionFileError(f"{self.src}: {msg}")

    # the zip -----------------------------------------------------------------------------
    @overload
    def read(self, json_only: Literal[False] = False) -> Session: ...
    @overload
    def read(self, json_only: Literal[True]) -> dict[str, Any]: ...
    def read(self, json_only: bool = False) -> Session | dict[str, Any]:
        p = self.path
        regular_file(p, "session file", SessionFileError, allow_empty=True)  # a FIFO would
        try:  # block open() forever; a device never ends
            size = p.stat().st_size
            with open(p, "rb") as fh:
                head = fh.read(4)
                fh.seek(max(size - 22, 0))
                tail = fh.read(4)
        except OSError as e:
            raise self.fail(f"cannot read ({e.strerror})") from None
        if size == 0:
            raise self.fail("the file is empty")
        if head != b"PK\x03\x04":
            raise self.fail(
                "not an lstmviz session (a .lstmviz file is a zip archive; this "
                "one does not start like one)"
            )
        if tail != b"PK\x05\x06":
            # lstmviz writes no zip comment: the directory's end record closes the file. A
            # truncated file may still hold one -- of the model zip embedded inside.
            raise self.fail(
                "damaged session file: it does not end with a zip directory (truncated?)"
            )
        try:
            zf = zipfile.ZipFile(p)
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            OSError,
            EOFError,
            ValueError,
            NotImplementedError,
        ) as e:
            raise self.fail(f"damaged session file, not a readable zip ({e})") from None
        with zf:
            try:
                return self._read_zip(zf, json_only)
            except MemoryError:  # the last line of defence: sizes are checked first
                raise MemoryBudgetError(
                    f"{self.src}: ran out of memory reading the session (set "
                    "LSTMVIZ_MEMORY_BUDGET lower so such files are refused before reading)"
                ) from None
            except RecursionError:
                raise self.fail(f"{JSON_MEMBER} is nested too deeply") from None

    def _read_zip(self, zf: zipfile.ZipFile, json_only: bool = False) -> Session | dict[str, Any]:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise self.fail(f"holds {len(infos)} members; a session has at most {MAX_MEMBERS}")
        by_name = {i.filename: i for i in infos}
        limits = {JSON_MEMBER: MAX_JSON_BYTES, ARRAYS_MEMBER: MAX_ARRAYS_BYTES}
        for info in infos:
            limit = limits.get(info.filename, MAX_MODEL_BYTES)
            if info.file_size > limit:
                raise self.fail(
                    f"member {info.filename!r} declares {info.file_size} bytes; the "
                    f"limit is {limit}: refused"
                )
            if info.file_size > 2**20 and info.file_size > MAX_COMPRESSION_RATIO * max(
                info.compress_size, 1
            ):
                raise self.fail(
                    f"member {info.filename!r} declares {info.file_size} bytes from "
                    f"{info.compress_size} compressed: refused as a likely zip bomb"
                )
        if JSON_MEMBER not in by_name:
            raise self.fail(
                f"no {JSON_MEMBER} inside: not an lstmviz session (members: "
                f"{', '.join(sorted(by_name)[:8]) or 'none'})"
            )
        raw = self._member(zf, by_name[JSON_MEMBER])
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise self.fail(f"{JSON_MEMBER} is not valid JSON ({e})") from None
        if not isinstance(doc, dict):
            raise self.fail(f"{JSON_MEMBER} must be a JSON object; found {type(doc).__name__}")
        if doc.get("kind", KIND) != KIND:
            raise self.fail(f"{JSON_MEMBER} is a {doc.get('kind')!r}, not an lstmviz session")
        v = doc.get("format_version")
        if v is None:
            raise self.fail(f"{JSON_MEMBER} has no format_version")
        if v != FORMAT_VERSION or isinstance(v, bool):
            raise self.fail(
                f"unknown session format_version {v!r}; this lstmviz reads version "
                f"{FORMAT_VERSION} (a newer lstmviz may have written it)"
            )
        if json_only:
            return doc
        arrays = self._arrays(zf, by_name)
        return self._build(doc, arrays, zf, by_name)

    def _member(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
        """A member's bytes, reading at most its declared size (checked against the memory
        budget first)."""
        budget.check(info.file_size, what=f"{self.src}: member {info.filename!r}")
        out = bytearray()
        try:
            with zf.open(info) as fh:
                while len(out) <= info.file_size:
                    chunk = fh.read(min(_CHUNK, info.file_size + 1 - len(out)))
                    if not chunk:
                        break
                    out += chunk
        except (
            zipfile.BadZipFile,
            OSError,
            EOFError,
            ValueError,
            RuntimeError,
            NotImplementedError,
            zlib.error,
        ) as e:
            raise self.fail(f"member {info.filename!r} is damaged ({e})") from None
        if len(out) != info.file_size:
            raise self.fail(
                f"member {info.filename!r} holds {len(out)} bytes; its header "
                f"declares {info.file_size}"
            )
        return bytes(out)

    # the arrays --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _open_arrays(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[IO[bytes]]:
        """``arrays.npz`` as a seekable file without holding it whole: lstmviz stores it
        uncompressed, read in place; a compressed one is inflated into a temporary file."""
        try:
            if info.compress_type == zipfile.ZIP_STORED:
                with zf.open(info) as fh:
                    yield fh
                return
            with tempfile.TemporaryFile() as tmp, zf.open(info) as fh:
                copied = 0
                while chunk := fh.read(min(_CHUNK, info.file_size + 1 - copied)):
                    copied += len(chunk)
                    if copied > info.file_size:
                        raise self.fail(f"member {info.filename!r} holds more than it declares")
                    tmp.write(chunk)
                tmp.seek(0)
                yield tmp
        except (
            zipfile.BadZipFile,
            EOFError,
            RuntimeError,
            NotImplementedError,
            zlib.error,
        ) as e:
            raise self.fail(f"member {info.filename!r} is damaged ({e})") from None

    def _arrays(
        self, zf: zipfile.ZipFile, by_name: dict[str, zipfile.ZipInfo]
    ) -> dict[str, np.ndarray]:
        if ARRAYS_MEMBER not in by_name:
            return {}
        where = f"{ARRAYS_MEMBER}"
        out: dict[str, np.ndarray] = {}
        with self._open_arrays(zf, by_name[ARRAYS_MEMBER]) as raw:
            try:
                inner = zipfile.ZipFile(raw)
            except (
                zipfile.BadZipFile,
                zipfile.LargeZipFile,
                OSError,
                EOFError,
                ValueError,
                NotImplementedError,
            ) as e:
                raise self.fail(f"{where} is damaged, not a readable .npz ({e})") from None
            with inner:
                infos = inner.infolist()
                if len(infos) > MAX_ARRAY_MEMBERS:
                    raise self.fail(f"{where} holds {len(infos)} arrays; refused")
                total = sum(i.file_size for i in infos)
                if total > MAX_ARRAYS_BYTES:
                    raise self.fail(
                        f"{where} declares {total} bytes of arrays; the limit is {MAX_ARRAYS_BYTES}"
                    )
                budget.check(total, what=f"{self.src}: the arrays of the session ({where})")
                for info in infos:
                    if info.file_size > 2**20 and info.file_size > MAX_COMPRESSION_RATIO * max(
                        info.compress_size, 1
                    ):
                        raise self.fail(
                            f"{where}: array {info.filename!r} declares "
                            f"{info.file_size} bytes from {info.compress_size} "
                            "compressed: refused as a likely zip bomb"
                        )
                    name = info.filename
                    if not name.endswith(".npy"):
                        raise self.fail(f"{where}: unexpected member {name!r} (arrays only)")
                    key = name[:-4]
                    out[key] = self._npy(inner, info, f"{where}: array {key!r}", key)
        return out

    def _npy(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, key: str) -> np.ndarray:
        """One ``.npy`` member: its header checked, then its data read into a new array
        (never through pickle, never more than the header declares)."""
        try:
            with zf.open(info) as fh:
                assert isinstance(fh, zipfile.ZipExtFile)  # a member opened for reading
                try:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                    elif version in ((2, 0), (3, 0)):
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                    else:
                        raise ValueError(f"unsupported .npy version {version}")
                except (
                    ValueError,
                    OSError,
                    EOFError,
                    TypeError,
                    SyntaxError,
                    tokenize.TokenError,
                ) as e:
                    raise self.fail(f"{where} has a damaged header ({e})") from None
                header = fh.tell()
                a = self._allocate(shape, dtype, where, key, info.file_size - header)
                view = memoryview(a.reshape(-1).view(np.uint8).data) if a.size else memoryview(b"")
                got = 0
                while got < len(view):
                    n = fh.readinto(view[got:])
                    if not n:
                        break
                    got += n
                if got != len(view) or fh.read(1):
                    raise self.fail(f"{where}: its data does not match its header")
        except (
            zipfile.BadZipFile,
            OSError,
            EOFError,
            RuntimeError,
            NotImplementedError,
            zlib.error,
        ) as e:
            raise self.fail(f"{where} is damaged ({e})") from None
        if fortran and a.ndim > 1:
            a = a.reshape(shape[::-1]).T
        return a

    def _allocate(self, shape: Any, dtype: np.dtype, where: str, key: str, have: int) -> np.ndarray:
        """An empty array for a header, after every check: numeric dtype, sane shape, input
        and weight bounds, the size matching the bytes that follow, the memory budget."""
        if dtype.hasobject or dtype.kind not in _ARRAY_DTYPE_KINDS:
            raise self.fail(
                f"{where} has dtype {dtype}; only numeric arrays are read (never pickled objects)"
            )
        if any(not isinstance(d, int) or d < 0 for d in shape):
            raise self.fail(f"{where} declares an invalid shape {shape}")
        n = math.prod(shape)
        if key.startswith("input_"):
            if len(shape) >= 2 and shape[1] > MAX_TIMESTEPS:
                raise self.fail(
                    f"{where}: input of shape {shape} has {shape[1]} timesteps; the "
                    f"limit is {MAX_TIMESTEPS}"
                )
            if n > MAX_INPUT_ELEMENTS:
                raise self.fail(
                    f"{where}: input of shape {shape} ({n} elements) is too large; "
                    f"the limit is {MAX_INPUT_ELEMENTS} elements"
                )
        elif n > MAX_SNAPSHOT_ELEMENTS:
            raise self.fail(f"{where}: weight array of shape {shape} is too large to be real")
        need = n * dtype.itemsize
        if need != have:
            raise self.fail(
                f"{where}: its header declares shape {shape} of {dtype} ({need} "
                f"bytes) but {have} bytes follow"
            )
        budget.check(need, what=f"{self.src}: {where} of shape {tuple(shape)}")
        return np.empty(n, dtype=dtype).reshape(shape)

    # the document ------------------------------------------------------------------------
    def _build(
        self,
        doc: dict[str, Any],
        arrays: dict[str, np.ndarray],
        zf: zipfile.ZipFile,
        by_name: dict[str, zipfile.ZipInfo],
    ) -> Session:
        j = JSON_MEMBER

        def typed(
            obj: dict[str, Any],
            key: str,
            types: tuple[type, ...],
            what: str,
            default: Any = None,
            where: str = "",
        ) -> Any:
            if key not in obj:
                return default
            v = obj[key]
            if v is None and default is None:
                return None
            if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
                raise self.fail(f"{j}: {where}{key!r} must be {what}; found {v!r:.60}")
            return v

        def index(obj: dict[str, Any], key: str, where: str = "", least: int = 0) -> int:
            v = typed(obj, key, (int,), f"an integer >= {least}", 0, where)
            if not least <= v < MAX_INT:
                raise self.fail(f"{j}: {where}{key!r} must be an integer >= {least}; found {v!r}")
            return int(v)

        model = typed(doc, "model", (dict,), "an object", {})
        mpath = typed(model, "path", (str,), "a string (a file path)", None, "model.")
        rel = typed(model, "relpath", (str,), "a string (a file path)", None, "model.")
        sha = typed(model, "sha256", (str,), "a hex string", None, "model.")
        if sha is not None and (
            len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower())
        ):
            raise self.fail(f"{j}: model.sha256 must be 64 hex digits; found {sha!r:.80}")
        mname = typed(model, "name", (str,), "a string", None, "model.")
        emb = typed(model, "embedded", (str,), "a member name", None, "model.")
        mbytes = None
        if emb is not None:
            if emb not in by_name:
                raise self.fail(f"{j}: model.embedded names {emb!r}, which is not in the file")
            mbytes = self._member(zf, by_name[emb])
            if sha is not None and hashlib.sha256(mbytes).hexdigest() != sha.lower():
                raise self.fail(
                    f"the embedded model {emb!r} does not match its SHA-256: the file is damaged"
                )
        inp = typed(doc, "input", (dict,), "an object or null", None)
        x: np.ndarray | list[np.ndarray] | None = None
        if inp is not None:
            names = typed(inp, "arrays", (list,), "a list of array names", None, "input.")
            as_list = typed(inp, "list", (bool,), "true or false", False, "input.")
            if not names or not all(isinstance(n, str) for n in names):
                raise self.fail(f"{j}: input.arrays must be a non-empty list of array names")
            xs = []
            for n in names:
                if n not in arrays:
                    raise self.fail(f"{j}: input array {n!r} is missing from {ARRAYS_MEMBER}")
                xs.append(arrays[n])
            if not as_list and len(xs) != 1:
                raise self.fail(f"{j}: input names {len(xs)} arrays but is not a list")
            x = xs if as_list else xs[0]
        text = typed(doc, "input_text", (str,), "a string or null", None)
        layer = typed(doc, "layer", (str,), "a layer name (string) or null", None)
        batch = index(doc, "batch")
        t = index(doc, "t")
        units = typed(doc, "units", (list,), "a list of unit indices", [])
        if len(units) > MAX_UNITS or not all(
            isinstance(u, int) and not isinstance(u, bool) and 0 <= u < MAX_INT for u in units
        ):
            raise self.fail(f"{j}: 'units' must be a list of integers >= 0")
        view = typed(doc, "view", (dict,), "an object", {})
        engine = typed(doc, "engine", (str,), "a string", "numpy") or "numpy"
        snaps_raw = typed(doc, "snapshots", (list,), "a list", [])
        snaps = []
        for i, s in enumerate(snaps_raw):
            w = f"snapshots[{i}]."
            if not isinstance(s, dict):
                raise self.fail(f"{j}: snapshots[{i}] must be an object; found {s!r:.60}")
            names = typed(s, "weights", (list,), "a list of array names", [], w)
            ws = []
            for n in names:
                if not isinstance(n, str) or n not in arrays:
                    raise self.fail(
                        f"{j}: {w}weights names {n!r:.60}, which is missing from {ARRAYS_MEMBER}"
                    )
                ws.append(arrays[n])
            extra = typed(s, "extra", (dict,), "an object", {}, w)
            snap = {
                "epoch": index(s, "epoch", w),
                "batch": index(s, "batch", w, least=BEFORE_FIRST_BATCH),
                "weights": ws,
            }
            for k, val in extra.items():
                if k not in snap:
                    snap[k] = val
            later = {k: v for k, v in s.items() if k not in _SNAPSHOT_KEYS}
            if later:
                snap["_unknown"] = later
            snaps.append(snap)
        s = Session(
            model_path=mpath,
            model_sha256=sha.lower() if sha else None,
            model_bytes=mbytes,
            input=x,
            input_text=text,
            layer=layer,
            batch=batch,
            units=list(units),
            t=t,
            view=view,
            engine=engine,
            snapshots=snaps,
            model_name=mname,
            model_relpath=rel,
        )
        # what a later lstmviz wrote: kept, so re-saving loses nothing
        unknown = {"": {k: v for k, v in doc.items() if k not in _TOP_KEYS}}
        unknown["model"] = {k: v for k, v in model.items() if k not in _MODEL_KEYS}
        if inp is not None:
            unknown["input"] = {k: v for k, v in inp.items() if k not in _INPUT_KEYS}
        s.unknown = {k: v for k, v in unknown.items() if v}
        used = {n for n in (inp or {}).get("arrays", [])} | {
            n for snap in snaps_raw for n in snap.get("weights", [])
        }
        s.unknown_arrays = {k: a for k, a in arrays.items() if k not in used}
        known = {JSON_MEMBER, ARRAYS_MEMBER, emb}
        s.unknown_members = {
            name: self._member(zf, info)
            for name, info in by_name.items()
            if name not in known and not name.endswith("/") and not name.startswith(MODEL_DIR)
        }
        s.source = self.src
        return s
