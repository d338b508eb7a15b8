"""One memory budget for everything a file or an input makes lstmviz allocate.

Every allocation whose size comes from outside (a tensor in a model file, a zip member, the
trace buffers of a long input, a constant an ONNX graph folds) is checked here *before* it
happens::

    from lstmviz import budget
    budget.check(n_values * itemsize, what=f"{path}: tensor {name!r}")

A request over the budget raises :class:`~lstmviz.errors.MemoryBudgetError` naming what was
asked for, how much, and the budget -- never a raw ``MemoryError`` and never a swapping
machine. The default budget is a fraction of the memory available when lstmviz starts; set
it with :func:`set_budget` or the ``LSTMVIZ_MEMORY_BUDGET`` environment variable (bytes, or
with a unit: ``"2GiB"``, ``"500MB"``, or a fraction of available memory: ``"0.25"``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

from .errors import LstmvizError, MemoryBudgetError

#: Share of available memory one request may take when nothing else is set.
DEFAULT_FRACTION = 0.5
#: Used when available memory cannot be read (no /proc, no sysconf).
FALLBACK_BYTES = 4 * 2**30

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}

_budget: int | None = None


def available_memory() -> int:
    """Bytes of memory available to this process now (``MemAvailable``), or a fallback."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return FALLBACK_BYTES


def parse_size(text: str) -> int:
    """``"2GiB"`` / ``"500 MB"`` / ``"1000000"`` -> bytes; ``"0.25"`` -> that share of
    available memory. Raises :class:`LstmvizError` for anything else."""
    s = str(text).strip().lower()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?", s)
    if not m:
        raise LstmvizError(
            f"memory budget: expected bytes ('2000000000'), a size with a unit ('2GiB', "
            f"'500MB') or a fraction of available memory ('0.25'); found {text!r}"
        )
    value = float(m.group(1))
    unit = m.group(2) or ""
    if not unit and value < 1:
        if value <= 0:
            raise LstmvizError(f"memory budget: a fraction must be above 0; found {text!r}")
        return int(value * available_memory())
    return int(value * _UNITS[unit])


def user_budget() -> int | None:
    """The budget the user chose (:func:`set_budget` or ``LSTMVIZ_MEMORY_BUDGET``), or None
    when lstmviz uses its default."""
    if _budget is not None:
        return _budget
    env = os.environ.get("LSTMVIZ_MEMORY_BUDGET")
    return parse_size(env) if env else None


def get_budget() -> int:
    """The budget in bytes: what :func:`set_budget` set, else ``LSTMVIZ_MEMORY_BUDGET``, else
    :data:`DEFAULT_FRACTION` of the memory available now."""
    if _budget is not None:
        return _budget
    env = os.environ.get("LSTMVIZ_MEMORY_BUDGET")
    if env:
        return parse_size(env)
    return int(DEFAULT_FRACTION * available_memory())


def set_budget(size: int | str | None) -> None:
    """Set the budget: bytes, a size string (``"2GiB"``), a fraction (``"0.25"``), or None
    for the default."""
    global _budget
    if size is None:
        _budget = None
    elif isinstance(size, str):
        _budget = parse_size(size)
    elif isinstance(size, int) and not isinstance(size, bool) and size > 0:
        _budget = size
    else:
        raise LstmvizError(f"memory budget: expected a positive number of bytes; found {size!r}")


@contextlib.contextmanager
def budget_set_to(size: int | str | None) -> Iterator[None]:
    """Temporarily use another budget (tests, one big job the user asked for)."""
    global _budget
    old = _budget
    set_budget(size)
    try:
        yield
    finally:
        _budget = old


def format_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def check(nbytes: int | float, what: str, hint: str = "") -> None:
    """Raise :class:`MemoryBudgetError` if allocating ``nbytes`` for ``what`` would exceed
    the budget. ``hint`` says what to do instead (a shorter input, the corpus route)."""
    limit = get_budget()
    if nbytes > limit or nbytes < 0:
        raise MemoryBudgetError(
            f"{what} would need {format_bytes(float(nbytes))}, over lstmviz's memory budget of "
            f"{format_bytes(limit)}"
            + (f"; {hint}" if hint else "")
            + " (set LSTMVIZ_MEMORY_BUDGET to change the budget)",
            nbytes=int(nbytes) if nbytes >= 0 else -1,
            budget=limit,
        )


def check_array(
    shape: tuple[int, ...] | list[int], itemsize: int, what: str, hint: str = ""
) -> None:
    """:func:`check` for an array of ``shape`` and ``itemsize`` bytes per value, computed
    without overflow (dims whose product exceeds int64 are refused, not wrapped)."""
    n = itemsize
    for d in shape:
        d = int(d)
        if d < 0:
            raise MemoryBudgetError(f"{what}: negative dimension {d} in shape {tuple(shape)}")
        n *= d
    check(n, what, hint)
