"""Short ``repr`` for results shown in a notebook: arrays as their dtype and shape.

A :class:`~lstmviz.engine.trace.Trace` or an analysis result holds arrays of every gate at
every step; the dataclass ``repr`` printed all of them (85,000 characters for a trace of
12 steps of a 2-layer LSTM of 24 units), burying what the object is. Here arrays show as
``<float32 (1, 12, 24)>``, traces by their layers, long lists by their first items.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

#: A value's repr longer than this is cut, ending in "...".
MAX_VALUE = 80
#: Lists and dicts longer than this show their first items and their length.
MAX_ITEMS = 6


def short(v: Any) -> str:
    """A one-line summary of ``v``: arrays by dtype and shape, traces by layer, the rest cut."""
    if isinstance(v, np.generic):
        return repr(v.item())
    if isinstance(v, np.ndarray):
        if v.ndim == 0:
            return repr(v.item())
        return f"<{v.dtype} {tuple(v.shape)}>"
    if hasattr(v, "layer_names") and hasattr(v, "layers"):  # a Trace
        return f"<Trace {list(v.layer_names)}>"
    if hasattr(v, "hidden") and hasattr(v, "go_backwards") and hasattr(v, "name"):
        return f"<LayerTrace {v.name!r}>"
    if isinstance(v, (list, tuple)):
        items = [short(a) for a in v[:MAX_ITEMS]]
        if len(v) > MAX_ITEMS:
            items.append(f"... {len(v)} items")
        body = ", ".join(items)
        return f"({body}{',' if len(v) == 1 else ''})" if isinstance(v, tuple) else f"[{body}]"
    if isinstance(v, dict):
        keys = list(v)[:MAX_ITEMS]
        body = ", ".join(f"{k!r}: {short(v[k])}" for k in keys)
        return "{" + body + (f", ... {len(v)} items" if len(v) > MAX_ITEMS else "") + "}"
    r = repr(v)
    return r if len(r) <= MAX_VALUE else r[: MAX_VALUE - 3] + "..."


def dataclass_repr(obj: Any) -> str:
    """``Name(field=<summary>, ...)`` for a dataclass instance (the fields with ``repr``)."""
    parts = [f"{f.name}={short(getattr(obj, f.name))}" for f in dataclasses.fields(obj) if f.repr]
    return f"{type(obj).__name__}({', '.join(parts)})"
