"""Checks every reader runs before it trusts a path or an HDF5 file.

- :func:`regular_file` refuses what is not a regular file -- missing, a directory, a FIFO, a
  character or block device, a socket -- *before* anything opens it: ``open()`` on a FIFO
  blocks until a writer comes, and ``/dev/zero`` never ends.
- :func:`check_h5` refuses an HDF5 file that would make lstmviz read *other* files or objects
  it did not ask for: datasets with external storage (``H5Pset_external``: the raw data lives
  in another file, e.g. ``/etc/passwd``), virtual datasets (mapped from other files),
  external links (a link to an object in another file), soft links and user-defined links.
  Keras never writes any of these; a model file that has one was made to read elsewhere.
- :func:`check_global_heaps` walks every HDF5 global heap collection in a file before HDF5
  does: a damaged one (an object whose size runs past its collection, a free-space object of
  size 0) sends HDF5's own reader into an endless loop that no timeout in Python can stop --
  reading a variable-length string attribute (a legacy ``.h5``'s ``model_config``) with one
  flipped bit in its heap spins forever.
- :func:`safe_file_name` turns a name taken from a file (an embedded model's name) into one
  that can be created in a directory: no separators, no ``..``, no NUL, at most 255 bytes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from ..errors import LstmvizError, ModelFileError

#: HDF5 files with more links than this are not Keras models (a model has a few per layer).
MAX_H5_LINKS = 200_000
#: Bytes in one path component on Linux, macOS and Windows file systems.
NAME_MAX = 255


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def regular_file(
    path: str | os.PathLike[str],
    what: str = "file",
    error: type[LstmvizError] = ModelFileError,
    allow_empty: bool = False,
) -> int:
    """Check that ``path`` is an existing regular file (symlinks followed); return its size.

    Raises ``error`` naming the path and what it is instead (a FIFO, a device, a directory),
    without opening it.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise error(f"{p}: no such file") from None
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        reason = getattr(e, "strerror", None) or str(e)
        raise error(f"{p}: cannot read the {what} ({reason})") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{p}: is {_kind(st.st_mode)}, not a {what}; lstmviz reads regular files only")
    if st.st_size == 0 and not allow_empty:
        raise error(f"{p}: the file is empty")
    return int(st.st_size)


def check_h5(h5: Any, source: str) -> None:
    """Refuse an open ``h5py.File`` (or group) that links or maps to anything outside it.

    Every link in the file is visited once (HDF5's ``H5Lvisit``, which does not follow soft or
    external links); every dataset is checked for external storage and virtual layout. Raises
    :class:`~lstmviz.errors.ModelFileError` naming the file and the object.
    """
    import h5py

    count = 0
    problem: list[str] = []
    damaged: list[str] = []

    def visit(name: str, link: Any) -> Any:
        nonlocal count
        count += 1
        if count > MAX_H5_LINKS:
            problem.append(f"holds more than {MAX_H5_LINKS} objects; not a model file")
            return True
        if isinstance(link, h5py.ExternalLink):
            problem.append(
                f"{name!r} is an external link to {link.filename!r}:{link.path!r}; lstmviz "
                "never reads other files through a model file"
            )
            return True
        if isinstance(link, h5py.SoftLink):
            problem.append(
                f"{name!r} is a soft link to {link.path!r}; Keras never writes links, and "
                "lstmviz refuses them"
            )
            return True
        if not isinstance(link, h5py.HardLink):
            problem.append(f"{name!r} is a link of an unknown kind ({type(link).__name__})")
            return True
        try:
            obj = h5[name]
            virtual = isinstance(obj, h5py.Dataset) and obj.is_virtual
            ext = obj.external if isinstance(obj, h5py.Dataset) else None
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as e:
            damaged.append(f"object {name!r} cannot be read ({e})")
            return True
        if virtual:
            problem.append(
                f"dataset {name!r} is a virtual dataset (its data is mapped from other "
                "files); lstmviz never reads other files through a model file"
            )
            return True
        if ext:
            files = ", ".join(repr(os.fsdecode(e[0])) for e in ext[:3])
            problem.append(
                f"dataset {name!r} stores its data in external file(s) {files}; lstmviz "
                "never reads other files through a model file"
            )
            return True
        return None

    try:
        h5.visititems_links(visit)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, SystemError) as e:
        # SystemError: h5py's lock wrapper re-raising an HDF5 error from inside the visit
        if not problem and not damaged:
            damaged.append(str(e))
    if problem:
        raise ModelFileError(f"{source}: refused: {problem[0]}")
    if damaged:
        raise ModelFileError(f"{source}: damaged HDF5 file: {damaged[0]}")


_GCOL = b"GCOL"
_GCOL_HEADER = 16  # signature, version, 3 reserved bytes, collection size (8 bytes)
_GOBJ_HEADER = 16  # object index (2), reference count (2), reserved (4), object size (8)


def check_global_heaps(raw: Any, size: int, source: str) -> None:
    """Refuse an HDF5 file (``raw``: a seekable binary file of ``size`` bytes) holding a
    global heap collection HDF5 would loop on forever.

    Every ``GCOL`` block (signature, version 1, zero reserved bytes) is walked as HDF5 walks
    it: each object must fit in its collection, and the free-space object (index 0) must have
    a size of at least its own header. Raises :class:`~lstmviz.errors.ModelFileError`.
    """
    chunk = 1 << 20
    keep = len(_GCOL) - 1  # a signature may straddle two reads: the last bytes stay in front
    buf = bytearray(chunk + keep)
    view = memoryview(buf)
    offset = 0
    have = 0  # bytes kept from the previous read, at the front of buf
    found: list[int] = []
    raw.seek(0)
    # read into one buffer (no per-read copies: the window's GUI thread shares the GIL with
    # this scan of a model file of any size)
    while offset < size:
        want = min(chunk, size - offset)
        if hasattr(raw, "readinto"):
            got = raw.readinto(view[have : have + want]) or 0
        else:  # pragma: no cover - every caller passes a file with readinto
            data = raw.read(want)
            got = len(data)
            buf[have : have + got] = data
        if not got:
            break
        end = have + got
        base = offset - have
        i = buf.find(_GCOL, 0, end)
        while i != -1:
            found.append(base + i)
            i = buf.find(_GCOL, i + 1, end)
        k = min(keep, end)
        buf[:k] = buf[end - k : end]
        have = k
        offset += got
    for start in sorted(set(found)):
        raw.seek(start)
        head = raw.read(_GCOL_HEADER)
        if len(head) < _GCOL_HEADER or head[4] != 1 or head[5:8] != b"\0\0\0":
            continue  # not a collection header: bytes that happen to spell GCOL
        total = int.from_bytes(head[8:16], "little")
        if total < _GCOL_HEADER or start + total > size:
            raise ModelFileError(
                f"{source}: damaged HDF5 file: a global heap at byte {start} declares "
                f"{total} bytes (the file has {size - start} from there)"
            )
        body = raw.read(total - _GCOL_HEADER)
        p = 0
        while p + _GOBJ_HEADER <= len(body):
            index = int.from_bytes(body[p : p + 2], "little")
            n = int.from_bytes(body[p + 8 : p + 16], "little")
            need = n if index == 0 else _GOBJ_HEADER + ((n + 7) & ~7)
            if need < _GOBJ_HEADER or p + need > len(body):
                raise ModelFileError(
                    f"{source}: damaged HDF5 file: object {index} of the global heap at byte "
                    f"{start} declares {n} bytes, which do not fit in its collection (HDF5 "
                    "would read it forever)"
                )
            if index == 0:
                break  # the free space runs to the end of the collection
            p += need
    raw.seek(0)


def safe_file_name(name: Any, default: str = "model") -> str:
    """``name`` as one path component that can be created anywhere: its last component,
    without NUL or separators, not ``.``/``..``, at most :data:`NAME_MAX` bytes in UTF-8
    (its extension kept). Falls back to ``default`` when nothing usable is left."""
    s = str(name) if isinstance(name, (str, os.PathLike)) else ""
    s = os.fspath(s).replace("\x00", "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if s in ("", ".", ".."):
        s = default
    if len(s.encode("utf-8", "surrogateescape")) > NAME_MAX:
        stem, dot, ext = s.rpartition(".")
        ext = f".{ext}" if dot and stem and len(ext) <= 16 else ""
        room = NAME_MAX - len(ext.encode("utf-8", "surrogateescape"))
        head = (stem if ext else s).encode("utf-8", "surrogateescape")[:room]
        s = head.decode("utf-8", "ignore") + ext
    return s
