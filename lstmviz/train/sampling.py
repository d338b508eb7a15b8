"""Generate text from a language model at a temperature (NumPy engine; no TensorFlow).

>>> from lstmviz.train.sampling import generate
>>> generate(model, info, "Shall I ", n=40, temperature=0.5)      # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import LstmvizError


def next_token_probs(
    model: Any, x: np.ndarray, state: dict[str, Any] | None = None
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Run ``x`` ``(1, T)`` token ids from ``state``; returns the distribution over the next
    token ``(V,)`` and every LSTM's final ``(h, c)`` (to continue from)."""
    tr = model.trace(x, initial_state=state, step_outputs=False)
    out = np.asarray(tr.output)
    probs = out[0, -1] if out.ndim == 3 else out[0]  # (V,)
    new_state = {}
    for lt in tr.layers:
        if lt.go_backwards:
            raise LstmvizError(
                f"text generation needs a forward LSTM; this model has a backward layer {lt.name!r}"
            )
        new_state[lt.name] = (np.array(lt.h[-1]), np.array(lt.c[-1]))  # (1, U) each
    return probs.astype(np.float64), new_state


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``p_i^(1/T)`` renormalised; T -> 0 is the argmax, T = 1 the model's own distribution."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, None)
    if temperature <= 0:
        q = np.zeros_like(p)
        q[np.argmax(p)] = 1.0
        return q
    logp = np.log(p) / float(temperature)
    logp -= logp.max()
    q = np.exp(logp)
    return q / q.sum()


def generate(
    model: Any,
    info: Any,
    seed_text: str,
    n: int = 100,
    temperature: float = 0.7,
    rng: np.random.Generator | int | None = 0,
) -> str:
    """Append ``n`` sampled tokens to ``seed_text`` (characters or words, as ``info`` says).

    Parameters
    ----------
    model : lstmviz.engine.Model
        A language model over token ids (Embedding first, softmax over the vocabulary).
    info : lstmviz.io.meta.ModelInfo
        Its vocabulary and token kind (``"chars"`` or ``"words"``).
    seed_text : str
        Text to start from (tokens outside the vocabulary are an error).
    n : int
        Tokens to generate.
    temperature : float
        0 always takes the likeliest token; 1 samples the model's distribution; higher is
        wilder.
    rng : numpy Generator or int, optional
        Seeds the sampling.
    """
    from ..io.inputs import encode_text

    if info is None or info.token_kind not in ("chars", "words") or not info.vocab:
        raise LstmvizError(
            "text generation needs a model with a character or word vocabulary (its .lstmviz.json)"
        )
    if not model.takes_tokens:
        raise LstmvizError("text generation needs a model that reads token ids (Embedding)")
    if temperature < 0:
        raise LstmvizError(f"temperature must be >= 0; got {temperature}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    x = encode_text(model, seed_text, info)  # (1, T)
    probs, state = next_token_probs(model, x)
    out: list[str] = []
    sep = "" if info.token_kind == "chars" else " "
    for _ in range(int(n)):
        q = apply_temperature(probs, temperature)
        tok = int(rng.choice(len(q), p=q))
        out.append(info.vocab[tok])
        probs, state = next_token_probs(model, np.array([[tok]], np.int64), state)
    return seed_text + (sep if out and sep else "") + sep.join(out)
