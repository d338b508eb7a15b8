"""What to export: layer, batch item, quantities, units, step -- parsed and checked once.

Every check names the argument, what was expected and what was found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..engine.trace import QUANTITIES
from ..errors import LstmvizError

if TYPE_CHECKING:
    from ..engine.trace import LayerTrace, Trace

ALIASES = {
    "f": "forget_gate",
    "forget": "forget_gate",
    "i": "input_gate",
    "input": "input_gate",
    "o": "output_gate",
    "output": "output_gate",
    "g": "candidate",
    "c~": "candidate",
    "candidate_gate": "candidate",
    "c": "cell",
    "cell_state": "cell",
    "h": "hidden",
    "hidden_state": "hidden",
}


def parse_quantities(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"forget_gate,input_gate"`` (or aliases ``f,i,o,g,c,h``) -> names; None -> all six."""
    if spec is None:
        return QUANTITIES
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    items = [s for s in items if s]
    if not items:
        raise LstmvizError(
            f"--quantities is empty; expected a comma-separated list of {', '.join(QUANTITIES)}"
        )
    out: list[str] = []
    for s in items:
        q = ALIASES.get(s.lower(), s.lower())
        if q not in QUANTITIES:
            raise LstmvizError(
                f"unknown quantity {s!r} in --quantities; expected one of {', '.join(QUANTITIES)}"
            )
        if q not in out:
            out.append(q)
    return tuple(out)


def parse_units(spec: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """``"0,3,7"`` or ``"0-7"`` ranges -> unit indices; None -> all units."""
    if spec is None:
        return None
    if not isinstance(spec, str):
        return tuple(int(u) for u in spec)
    out: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1) if not part.startswith("-") else (part, "")
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise LstmvizError(
                f"--units: {part!r} is not a unit index or range like 0-7; "
                "expected e.g. --units 0,3,7"
            ) from None
    if not out:
        raise LstmvizError("--units is empty; expected unit indices like 0,3,7")
    return tuple(dict.fromkeys(out))


def check_units(units: Sequence[int] | None, lt: LayerTrace) -> tuple[int, ...]:
    """All units of ``lt`` when None; else ``units``, each checked against the layer size."""
    if units is None:
        return tuple(range(lt.units))
    bad = [u for u in units if not 0 <= u < lt.units]
    if bad:
        raise LstmvizError(
            f"unit {bad[0]} is out of range for layer {lt.name!r}, which has "
            f"{lt.units} units (0..{lt.units - 1})"
        )
    return tuple(int(u) for u in units)


def pick_layer(trace: Trace, name: str | None) -> LayerTrace:
    """The layer trace by name (first LSTM layer when None); the error lists the layers."""
    if not trace.layers:
        raise LstmvizError("the trace has no LSTM layer")
    if name is None:
        return trace.layers[0]
    return trace.layer(name)


def check_batch(b: int | None, trace: Trace) -> int:
    """Batch index ``b`` (0 when None), checked against the trace's batch size."""
    n = trace.batch_size
    if b is None:
        return 0
    if not -n <= b < n:
        raise LstmvizError(
            f"--batch-index {b} is out of range: the input has batch size {n} (0..{n - 1})"
        )
    return b % n


def check_step(t: int | None, timesteps: int) -> int | None:
    """Timestep ``t`` (negative counts from the end), checked; None stays None."""
    if t is None:
        return None
    if not -timesteps <= t < timesteps:
        raise LstmvizError(
            f"--step {t} is out of range: the input has {timesteps} timesteps (0..{timesteps - 1})"
        )
    return t % timesteps
