"""Atomic writes: a temporary file in the same directory, flush + fsync, rename.

A kill at any moment leaves either the previous file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..errors import LstmvizError


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask is process-wide)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode(path: str | os.PathLike[str]) -> int:
    """Permissions for a file written at ``path``: those of the file it replaces, else
    ``0o666`` less the umask (what ``open()`` would give; ``mkstemp`` alone gives 0o600)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically."""
    p = Path(path)
    d = p.parent if str(p.parent) else Path(".")
    if not d.is_dir():
        raise LstmvizError(f"{p}: directory {d} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=d)
    except OSError as e:
        raise LstmvizError(f"{p}: cannot write there ({e.strerror})") from None
    ok = False
    try:
        with contextlib.suppress(OSError):  # mkstemp's 0o600 would hide the file from others
            os.chmod(tmp, new_file_mode(p))
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        ok = True
        with contextlib.suppress(OSError):  # make the rename itself durable
            dfd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path`` for writers that want a file name (Qt's
    ``QImage.save``, Keras's ``model.save``); on success it is fsynced and renamed over
    ``path``, so a kill at any moment leaves the previous file or the new one."""
    p = Path(path)
    d = p.parent if str(p.parent) else Path(".")
    if not d.is_dir():
        raise LstmvizError(f"{p}: directory {d} does not exist")
    try:  # keep the extension: writers pick the format from it
        fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix or ".tmp", dir=d)
    except OSError as e:
        raise LstmvizError(f"{p}: cannot write there ({e.strerror})") from None
    os.close(fd)
    ok = False
    try:
        yield Path(tmp)
        with contextlib.suppress(OSError):
            os.chmod(tmp, new_file_mode(p))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        ok = True
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
