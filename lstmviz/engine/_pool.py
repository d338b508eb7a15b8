"""Recycled memory for the trace buffers of one layer.

A fresh trace writes every byte of memory the operating system has just mapped, and mapping
costs: at 256 units x 1000 steps x batch 32 the four buffers hold 330 MB and the page faults
took 60 of the trace's 160 ms (bench/trace.py, "ours" against "ours out="). A trace that is
freed gives its memory back here instead; the next trace of a similar size takes it, already
mapped. That is what torch's caching allocator does for its tensors.

How memory comes back: :func:`empty` returns arrays whose base is a small :class:`_Block`
holding the real buffer. NumPy keeps the block alive as long as any view of the arrays lives
(``arr.base``, slices, ``memoryview``, ``torch.from_numpy``); when the last one goes the
block's ``__del__`` puts the buffer in the pool. Nothing that still references the memory can
see it reused.

Bounds: the pool keeps at most :data:`MAX_BLOCKS` buffers and :data:`MAX_BYTES` bytes (the
most recently freed win) and hands a buffer out only for a request of at least half its size,
so it never holds more than one trace's worth of memory that nobody uses -- nor more than the
memory budget the user set (``LSTMVIZ_MEMORY_BUDGET``); :func:`clear` empties it
(``lstmviz.engine.release_memory()``).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .. import budget
from ..errors import LstmvizError

#: buffers kept for reuse, and their bytes at most: a sixteenth of the memory available when
#: lstmviz started (~300 MB on a laptop with 5 GB free, 1.4 GB with 23 GB free: there the four
#: buffers of a 1024-unit x 1000-step x batch-32 trace, 1.3 GB, are kept). Fresh memory costs
#: more than its page faults: NumPy asks for transparent huge pages, and where free memory is
#: fragmented (after other big arrays came and went) the kernel compacts memory on each fault
#: -- writing 1.3 GB afresh took 0.2-3 s on the benchmark machine, into kept buffers 0.16 s.
MAX_BLOCKS = 8
MAX_BYTES = budget.available_memory() // 16
#: requests under this many bytes use np.empty (mapping small buffers costs little)
MIN_BYTES = 4 * 2**20

_free: list[np.ndarray] = []  # uint8 buffers, most recently freed last
_lock = threading.Lock()
_stats = {"reused": 0, "fresh": 0}


#: where the buffers start: a cache line (the kernel streams its stores to whole lines)
ALIGN = 64


class _Block:
    """The owner of a pooled buffer: the base of the arrays :func:`empty` returns, which
    start at its first 64-byte boundary."""

    __slots__ = ("raw",)

    def __init__(self, raw: np.ndarray) -> None:
        self.raw = raw

    @property
    def __array_interface__(self) -> dict[str, Any]:
        start = self.raw.ctypes.data
        skip = -start % ALIGN
        return {
            "version": 3,
            "shape": (self.raw.nbytes - skip,),
            "typestr": "|u1",
            "data": (start + skip, False),
        }

    def __del__(self) -> None:
        _give_back(self.raw)


def _limit() -> int:
    """The pool's bound in bytes: :data:`MAX_BYTES`, or less when the user set a smaller
    memory budget."""
    try:
        user = budget.user_budget()
    except LstmvizError:  # a malformed LSTMVIZ_MEMORY_BUDGET is reported where it is checked
        user = None
    return MAX_BYTES if user is None else min(MAX_BYTES, user)


def _give_back(raw: np.ndarray) -> None:
    # may run in any thread, and inside a garbage collection started while _take holds
    # the lock: never wait for it (a buffer that cannot be kept is simply freed)
    limit = _limit()
    if raw.nbytes > limit + ALIGN or not _lock.acquire(blocking=False):
        return
    try:
        _free.append(raw)
        while len(_free) > MAX_BLOCKS or sum(b.nbytes for b in _free) > limit:
            _free.pop(0)  # the least recently freed goes
    finally:
        _lock.release()


def _take(nbytes: int) -> np.ndarray | None:
    nbytes += ALIGN  # room to start on a boundary
    with _lock:
        best = -1
        for i, raw in enumerate(_free):
            if nbytes <= raw.nbytes <= 2 * nbytes and (best < 0 or raw.nbytes < _free[best].nbytes):
                best = i
        return _free.pop(best) if best >= 0 else None


def empty(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array, on recycled memory when the pool has some; from
    :data:`MIN_BYTES` on it starts on a 64-byte boundary."""
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dt)
    raw = _take(nbytes) if nbytes <= _limit() else None  # larger: aligned, never kept
    if raw is None:
        raw = np.empty(nbytes + ALIGN, np.uint8)
        _stats["fresh"] += 1
    else:
        _stats["reused"] += 1
    flat: np.ndarray = np.asarray(_Block(raw))  # base: the block (returns raw when freed)
    out: np.ndarray = flat[:nbytes].view(dt).reshape(shape)
    return out


def owns(a: np.ndarray) -> bool:
    """Whether ``a`` is a whole buffer of its own: an array that owns its data, or one that
    :func:`empty` made (not a view into somebody else's array)."""
    if a.flags.owndata:
        return True
    b = a.base
    return (
        isinstance(b, np.ndarray)
        and isinstance(b.base, _Block)
        and a.ctypes.data == b.ctypes.data
        and a.flags.c_contiguous
    )


def clear() -> int:
    """Free every buffer the pool keeps; returns the bytes released."""
    with _lock:
        n = sum(b.nbytes for b in _free)
        _free.clear()
    return n


def pooled_bytes() -> int:
    """Bytes the pool keeps for reuse now."""
    with _lock:
        return sum(b.nbytes for b in _free)


def stats() -> dict[str, int]:
    """How many buffers :func:`empty` took from the pool and how many it mapped afresh."""
    return dict(_stats)
