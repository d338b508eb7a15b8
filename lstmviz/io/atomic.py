"""Atomic writes: a temporary file in the same directory, flush + fsync, rename.

A kill at any moment leaves either the previous file or the new one, never a torn one.

The temporary file is named ``.<name>.lvtmp-<host>-<pid>-<random><ext>`` and cut so the whole
name fits in 255 bytes (``NAME_MAX``): a target of 243-255 characters saves like any other.
While it is written the writer holds an exclusive ``flock`` on it. A kill leaves it behind;
the next atomic write to the same folder removes every such file whose writer is gone
(:func:`clean_stale_temps`): same host and the process is dead, or nobody holds its lock and
it is over an hour old (a writer on another machine sharing the folder).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, TextIO, overload

from ..errors import WriteError

NAME_MAX = 255
#: A temporary file nobody holds a lock on is stale after this long even if its writer's
#: process id is alive (another machine, or a reused process id).
STALE_AFTER_S = 3600.0
_MARK = ".lvtmp-"
_TEMP_RE = re.compile(r"^\..*\.lvtmp-([0-9a-f]{4})-(\d+)-([0-9a-f]{8})(\.[^.]*)?$", re.DOTALL)


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:4]


_HOST = _host_tag()


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


def temp_name(target: str, ext: str = ".tmp") -> str:
    """The name of a temporary file for ``target`` (a file name), at most 255 bytes."""
    tag = f"{_MARK}{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"
    if len(ext.encode("utf-8", "surrogateescape")) > 32 or "." in ext[1:]:
        ext = ".tmp"
    fixed = len(f".{tag}{ext}".encode("utf-8", "surrogateescape")) + 1
    head = target.encode("utf-8", "surrogateescape")[: NAME_MAX - fixed]
    return f".{head.decode('utf-8', 'ignore')}.{tag}{ext}"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def clean_stale_temps(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary files of atomic writes in ``directory`` whose writer is gone.

    A file is removed only when nobody holds its lock and either its writer ran on this host
    and is dead, or it is older than :data:`STALE_AFTER_S`. Returns the removed paths.
    Errors (a read-only folder) are ignored: cleaning never stops a save.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m is None:
            continue
        host, pid = m.group(1), int(m.group(2))
        if host == _HOST and pid == os.getpid():
            continue  # this process writes it (another thread), or will rename it
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if not os.path.samestat(os.fstat(fd), entry.stat(follow_symlinks=False)):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a writer holds it
            age = now - os.fstat(fd).st_mtime
            if (host == _HOST and not _pid_alive(pid)) or age > STALE_AFTER_S:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed


def _directory(p: Path) -> Path:
    d = p.parent if str(p.parent) else Path(".")
    if not d.is_dir():
        raise WriteError(f"{p}: directory {d} does not exist")
    if not p.name or p.name in (".", ".."):
        raise WriteError(f"{p}: not a file name to write to")
    if len(p.name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise WriteError(
            f"{p}: the file name is {len(p.name.encode('utf-8', 'surrogateescape'))} bytes "
            f"long; file systems allow at most {NAME_MAX}: choose a shorter name"
        )
    return d


def _create_temp(p: Path, d: Path, ext: str) -> tuple[int, str]:
    """Create (O_EXCL) and lock a temporary file beside ``p``; returns (fd, path)."""
    clean_stale_temps(d)
    for _ in range(16):
        tmp = str(d / temp_name(p.name, ext))
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        except OSError as e:
            raise WriteError(f"{p}: cannot write there ({e.strerror})") from None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with contextlib.suppress(OSError):  # 0o600 would hide the file from others
            os.chmod(tmp, new_file_mode(p))
        return fd, tmp
    raise WriteError(f"{p}: cannot create a temporary file beside it")  # pragma: no cover


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


@overload
def atomic_open(
    path: str | os.PathLike[str], mode: Literal["wb"] = "wb"
) -> AbstractContextManager[BinaryIO]: ...
@overload
def atomic_open(
    path: str | os.PathLike[str], mode: Literal["w"]
) -> AbstractContextManager[TextIO]: ...
@overload
def atomic_open(path: str | os.PathLike[str], mode: str) -> AbstractContextManager[IO[Any]]: ...
@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    ``"wb"`` gives a binary file, ``"w"`` a text file (the overloads above tell a type checker).
    """
    p = Path(path)
    d = _directory(p)
    fd, tmp = _create_temp(p, d, ".tmp")
    ok = False
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
            os.replace(tmp, p)  # while the lock is held: nobody cleans it away
        ok = True
        _fsync_dir(d)
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise WriteError(f"{p}: the path is too long for the file system") from None
        raise
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
    d = _directory(p)
    fd, tmp = _create_temp(p, d, p.suffix or ".tmp")  # keep the extension: writers pick
    ok = False  # the format from it
    try:
        yield Path(tmp)
        with contextlib.suppress(OSError):
            os.chmod(tmp, new_file_mode(p))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        ok = True
        _fsync_dir(d)
    finally:
        os.close(fd)
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
