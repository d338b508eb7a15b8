"""Sessions: everything a user set up, in one ``.lstmviz`` file.

A session file is a zip holding

- ``session.json``: ``format_version``, the model reference (path, path relative to the
  session file, SHA-256 of the model file's bytes), input text, layer, batch item, unit
  selection, timestep, view settings, engine and the training snapshots' metadata;
- ``arrays.npz``: the input array(s) and the snapshots' weight arrays (plain ``.npy``
  members, read with ``allow_pickle=False``);
- optionally ``model/<file name>``: the model file's bytes, embedded.

Nothing in it is ever unpickled or evaluated. Reading is bounded: member sizes are checked in
the zip's central directory and every array's header before anything large is allocated.
Writing is atomic (:mod:`lstmviz.io.atomic`): a kill at any moment leaves the previous file.

>>> s = Session(model_path="digit_sum.keras", input=x, layer="lstm", t=3)
>>> s.save("work.lstmviz")
>>> Session.load("work.lstmviz") == s
True
"""

from __future__ import annotations

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import LstmvizError, ModelFileError
from .atomic import atomic_open
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
        raise LstmvizError(
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
        plus any JSON-valued extras (``"loss"``, ``"metrics"``...).

    Attributes
    ----------
    warnings : list of str
        Set by :meth:`load_model`: e.g. the model file changed since the session was saved.
    source : str
        The file this session was loaded from ("" when made in memory).
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
    )

    def __post_init__(self) -> None:
        if self.model_path is not None:
            self.model_path = os.fspath(self.model_path)
        self.input = _as_input(self.input)
        self.units = [int(u) for u in self.units]
        self.batch = int(self.batch)
        self.t = int(self.t)
        self.view = dict(self.view or {})
        self.snapshots = [dict(s) for s in self.snapshots]
        if self.model_bytes is not None:
            self.model_bytes = bytes(self.model_bytes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Session):
            return NotImplemented
        return all(_arrays_equal(getattr(self, f), getattr(other, f)) for f in self._FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable

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
        from . import load_model

        assert self.model_bytes is not None
        name = (
            Path(
                self.model_name
                or (Path(self.model_path).name if self.model_path else "model.keras")
            ).name
            or "model.keras"
        )
        d = tempfile.mkdtemp(prefix="lstmviz-session-")
        try:
            p = Path(d) / name
            p.write_bytes(self.model_bytes)
            model = load_model(p)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        model.source = self.model_path or name
        model.meta["embedded"] = True
        return model

    # ---- writing ---------------------------------------------------------------------------
    def to_json(self, base: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The ``session.json`` document (arrays are referenced by name)."""
        from .. import __version__

        if self.engine and not isinstance(self.engine, str):
            raise LstmvizError(f"session: engine must be a string; got {self.engine!r}")
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
                raise LstmvizError(f"session: snapshot #{i} must be a dict; got {type(s).__name__}")
            ws = s.get("weights", [])
            if not isinstance(ws, (list, tuple)):
                raise LstmvizError(f"session: snapshot #{i}: weights must be a list of arrays")
            extra = {
                k: _to_jsonable(v) for k, v in s.items() if k not in ("epoch", "batch", "weights")
            }
            _check_json_value(extra, f"snapshot #{i}")
            snaps.append(
                {
                    "epoch": int(s.get("epoch", 0)),
                    "batch": int(s.get("batch", 0)),
                    "weights": [f"snap_{i:05d}_{j:03d}" for j in range(len(ws))],
                    "extra": extra,
                }
            )
        return {
            "format_version": FORMAT_VERSION,
            "kind": KIND,
            "lstmviz_version": __version__,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": {
                "path": os.path.abspath(self.model_path) if self.model_path else None,
                "relpath": relpath,
                "sha256": self.model_sha256,
                "name": self.model_name
                or (Path(self.model_path).name if self.model_path else None),
                "embedded": None,
            },
            "input": None if inputs is None else {"arrays": inputs, "list": is_list},
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
        for k, a in out.items():
            if a.dtype.kind not in _ARRAY_DTYPE_KINDS:
                raise LstmvizError(
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
                raise LstmvizError(
                    f"{p}: cannot embed the model: {self.model_path or '(no path)'} does not exist"
                )
            try:
                model_bytes = Path(str(self.model_path)).read_bytes()
            except OSError as e:
                raise LstmvizError(
                    f"{self.model_path}: cannot read the model to embed it ({e.strerror})"
                ) from None
            # the hash describes what is stored: the file as it is now
            self.model_sha256 = hashlib.sha256(model_bytes).hexdigest()
        if model_bytes is not None:
            if self.model_sha256 is None:
                self.model_sha256 = hashlib.sha256(model_bytes).hexdigest()
        elif on_disk and self.model_sha256 is None:
            self.model_sha256 = file_sha256(str(self.model_path))
        doc = self.to_json(base=p.parent)
        if model_bytes is not None:
            name = doc["model"]["name"] or "model.keras"
            doc["model"]["embedded"] = MODEL_DIR + Path(name).name
        arrays = self._arrays()
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        text = json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False)
        try:
            with atomic_open(p, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
                zf.writestr(JSON_MEMBER, text, compress_type=zipfile.ZIP_DEFLATED)
                zf.writestr(ARRAYS_MEMBER, buf.getbuffer(), compress_type=zipfile.ZIP_STORED)
                if model_bytes is not None:
                    zf.writestr(
                        doc["model"]["embedded"], model_bytes, compress_type=zipfile.ZIP_STORED
                    )
        except OSError as e:  # disk full, permissions: the previous file is left as it was
            raise LstmvizError(f"{p}: cannot write the session ({e.strerror or e})") from None
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
    def read(self) -> Session:
        p = self.path
        if not p.exists():
            raise self.fail("no such session file")
        if p.is_dir():
            raise self.fail("is a directory, not a session file")
        try:
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
            return self._read_zip(zf)

    def _read_zip(self, zf: zipfile.ZipFile) -> Session:
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
        arrays = self._arrays(zf, by_name)
        return self._build(doc, arrays, zf, by_name)

    def _member(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
        """A member's bytes, reading at most its declared size."""
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
    def _arrays(
        self, zf: zipfile.ZipFile, by_name: dict[str, zipfile.ZipInfo]
    ) -> dict[str, np.ndarray]:
        if ARRAYS_MEMBER not in by_name:
            return {}
        raw = self._member(zf, by_name[ARRAYS_MEMBER])
        where = f"{ARRAYS_MEMBER}"
        try:
            inner = zipfile.ZipFile(io.BytesIO(raw))
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            OSError,
            EOFError,
            ValueError,
            NotImplementedError,
        ) as e:
            raise self.fail(f"{where} is damaged, not a readable .npz ({e})") from None
        out: dict[str, np.ndarray] = {}
        with inner:
            infos = inner.infolist()
            if len(infos) > MAX_ARRAY_MEMBERS:
                raise self.fail(f"{where} holds {len(infos)} arrays; refused")
            total = sum(i.file_size for i in infos)
            if total > MAX_ARRAYS_BYTES:
                raise self.fail(
                    f"{where} declares {total} bytes of arrays; the limit is {MAX_ARRAYS_BYTES}"
                )
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
                out[key] = self._npy(self._member(inner, info), f"{where}: array {key!r}", key)
        return out

    def _npy(self, data: bytes, where: str, key: str) -> np.ndarray:
        fh = io.BytesIO(data)
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except (ValueError, OSError, EOFError, TypeError, SyntaxError, tokenize.TokenError) as e:
            raise self.fail(f"{where} has a damaged header ({e})") from None
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
        have = len(data) - fh.tell()
        if need != have:
            raise self.fail(
                f"{where}: its header declares shape {shape} of {dtype} ({need} "
                f"bytes) but {have} bytes follow"
            )
        try:
            a = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError, TypeError) as e:
            raise self.fail(f"{where} cannot be read ({e})") from None
        return np.asarray(a)

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

        def index(obj: dict[str, Any], key: str, where: str = "") -> int:
            v = typed(obj, key, (int,), "an integer >= 0", 0, where)
            if not 0 <= v < MAX_INT:
                raise self.fail(f"{j}: {where}{key!r} must be an integer >= 0; found {v!r}")
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
            snap = {"epoch": index(s, "epoch", w), "batch": index(s, "batch", w), "weights": ws}
            for k, val in extra.items():
                if k not in snap:
                    snap[k] = val
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
        s.source = self.src
        return s
