"""Built-in signals for unit search, each ``(batch, T)`` float64.

* :func:`position`: the timestep index (counting in processing order on request),
* :func:`carry_in` / :func:`carry_out`: the carry bit of binary addition (inputs
  ``(batch, T, 2)``, least significant bit first),
* :func:`inside_quotes`, :func:`bracket_depth`: for text models, from the tokens as strings,
* :func:`regex`: 1 where a regular expression matches the text of a token,
* :func:`painted`: a user's per-token mask.

Text probes take the tokens as a list of strings per batch item (``tokens[b][t]``); build it
with :func:`tokens_from_ids` and the model's vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..errors import LstmvizError

Tokens = Sequence[Sequence[str]]


def position(batch: int, steps: int, reverse: bool = False) -> np.ndarray:
    """``t`` at every step (``T - 1 - t`` with ``reverse``, e.g. for a ``go_backwards``
    layer): ``(batch, T)``."""
    pos = np.arange(steps, dtype=np.float64)
    if reverse:
        pos = pos[::-1]
    return np.broadcast_to(pos, (batch, steps)).copy()


def _bits(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(x)
    if a.ndim != 3 or a.shape[2] != 2:
        raise LstmvizError(
            f"the carry probe needs binary-addition input (batch, T, 2) with the two numbers' "
            f"bits, least significant first; found shape {a.shape}"
        )
    bits = a > 0.5
    return bits[:, :, 0].astype(np.int64), bits[:, :, 1].astype(np.int64)


def _carries(x: np.ndarray) -> np.ndarray:
    a, b = _bits(x)
    batch, steps = a.shape
    out = np.zeros((batch, steps + 1), np.int64)  # out[:, t] carry into step t
    for t in range(steps):
        out[:, t + 1] = (a[:, t] + b[:, t] + out[:, t]) >= 2
    return out


def carry_out(x: np.ndarray) -> np.ndarray:
    """The carry produced at step t: ``carry_t = (a_t + b_t + carry_{t-1}) >= 2``.

    Parameters
    ----------
    x : array_like, (batch, T, 2)
        The bits of the two numbers, least significant bit first.

    Returns
    -------
    ndarray, (batch, T)
        1.0 where step t carries into step t + 1.
    """
    return _carries(x)[:, 1:].astype(np.float64)


def carry_in(x: np.ndarray) -> np.ndarray:
    """The carry arriving at step t (the carry out of step t - 1; 0 at t = 0): ``(batch, T)``.

    The sum bit at step t is ``a_t XOR b_t XOR carry_in_t``, so a unit that holds the carry
    while reading step t correlates with this one; a unit that already computed the next carry
    correlates with :func:`carry_out`.
    """
    return _carries(x)[:, :-1].astype(np.float64)


def tokens_from_ids(ids: np.ndarray, vocab: Sequence[str]) -> list[list[str]]:
    """Token strings ``[[str] * T] * batch`` from ids ``(batch, T)`` and a vocabulary."""
    a = np.asarray(ids)
    if a.ndim == 1:
        a = a[None]
    return [[vocab[int(i)] if 0 <= int(i) < len(vocab) else "" for i in row] for row in a]


def _check_tokens(tokens: Tokens) -> list[list[str]]:
    if isinstance(tokens, str) or not len(tokens) or isinstance(tokens[0], str):
        raise LstmvizError("tokens must be a list of token-string lists, one per batch item")
    rows = [list(r) for r in tokens]
    if len({len(r) for r in rows}) != 1:
        raise LstmvizError("every batch item needs the same number of tokens")
    return rows


def inside_quotes(tokens: Tokens, quote: str = '"') -> np.ndarray:
    """1 from an opening quote up to (and including) the closing one, else 0: ``(batch, T)``.

    A token containing the quote character toggles the state; the quotes themselves count as
    inside.
    """
    rows = _check_tokens(tokens)
    out = np.zeros((len(rows), len(rows[0])))
    for b, row in enumerate(rows):
        inside = False
        for t, tok in enumerate(row):
            n = tok.count(quote)
            if n:
                out[b, t] = 1.0
                if n % 2:
                    inside = not inside
            elif inside:
                out[b, t] = 1.0
    return out


def bracket_depth(tokens: Tokens, pairs: str = "()[]{}") -> np.ndarray:
    """Nesting depth after each token (opening brackets raise it, closing ones lower it,
    never below 0): ``(batch, T)``."""
    rows = _check_tokens(tokens)
    opening = set(pairs[0::2])
    closing = set(pairs[1::2])
    out = np.zeros((len(rows), len(rows[0])))
    for b, row in enumerate(rows):
        depth = 0
        for t, tok in enumerate(row):
            for ch in tok:
                if ch in opening:
                    depth += 1
                elif ch in closing:
                    depth = max(0, depth - 1)
            out[b, t] = depth
    return out


def regex(tokens: Tokens, pattern: str, flags: int = 0) -> np.ndarray:
    """1 on every token that overlaps a match of ``pattern`` in the joined text: ``(batch, T)``.

    The tokens of a batch item are joined without separators (characters as they are; for
    word tokens put the spaces in the tokens, or use ``r"\\bword\\b"`` on words joined by the
    caller).
    """
    rows = _check_tokens(tokens)
    try:
        rx = re.compile(pattern, flags)
    except re.error as e:
        raise LstmvizError(f"invalid regular expression {pattern!r}: {e}") from None
    out = np.zeros((len(rows), len(rows[0])))
    for b, row in enumerate(rows):
        starts = np.cumsum([0] + [len(t) for t in row])  # token k covers [starts[k], starts[k+1])
        text = "".join(row)
        for m in rx.finditer(text):
            begin, end = m.span()
            if end == begin:
                continue
            first = int(np.searchsorted(starts, begin, side="right")) - 1
            last = int(np.searchsorted(starts, end, side="left")) - 1
            out[b, max(first, 0) : last + 1] = 1.0
    return out


def painted(
    batch: int, steps: int, marks: dict[int, Sequence[int]] | Sequence[int], value: float = 1.0
) -> np.ndarray:
    """A painted mask: ``value`` at the marked steps, 0 elsewhere: ``(batch, T)``.

    ``marks`` is ``{batch item: [t, ...]}``, or a list of steps applied to every batch item.
    """
    out = np.zeros((batch, steps))
    items = marks.items() if isinstance(marks, dict) else [(b, marks) for b in range(batch)]
    for b, ts in items:
        for t in ts:
            if not (0 <= b < batch and 0 <= t < steps):
                raise LstmvizError(f"painted step (b={b}, t={t}) is outside ({batch}, {steps})")
            out[b, t] = value
    return out


#: Probe names shown in the app, with a one-line description.
PROBES = {
    "position": "timestep index t",
    "carry_in": "binary addition: carry arriving at step t",
    "carry_out": "binary addition: carry leaving step t",
    "inside_quotes": 'text: inside "quotes"',
    "bracket_depth": "text: bracket nesting depth",
}


def available(x: np.ndarray, tokens: Tokens | None = None) -> list[str]:
    """The probe names that make sense for input ``x`` (and token strings, if any)."""
    a = np.asarray(x[0] if isinstance(x, list) else x)
    names = ["position"]
    if a.ndim == 3 and a.shape[2] == 2 and np.all((a == 0) | (a == 1)):
        names += ["carry_out", "carry_in"]
    if tokens is not None:
        names += ["inside_quotes", "bracket_depth"]
    return names


def compute(name: str, x: np.ndarray, tokens: Tokens | None = None) -> np.ndarray:
    """Probe ``name`` (one of :data:`PROBES`) for input ``x``: ``(batch, T)``."""
    a = np.asarray(x[0] if isinstance(x, list) else x)
    batch, steps = a.shape[:2]
    if name == "position":
        return position(batch, steps)
    if name == "carry_in":
        return carry_in(a)
    if name == "carry_out":
        return carry_out(a)
    if name in ("inside_quotes", "bracket_depth"):
        if tokens is None:
            raise LstmvizError(f"probe {name!r} needs text tokens (a model with a vocabulary)")
        return inside_quotes(tokens) if name == "inside_quotes" else bracket_depth(tokens)
    raise LstmvizError(f"unknown probe {name!r}; expected one of {', '.join(PROBES)}")
