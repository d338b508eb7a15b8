"""What lstmviz knows about a model beyond its weights: its vocabulary and example input.

Stored beside the model as ``<model>.lstmviz.json`` (e.g. ``digit_sum.keras`` ->
``digit_sum.lstmviz.json``)::

    {"format_version": 1,
     "task": "digit-sum",
     "title": "Digit sum mod 10",
     "description": "...",
     "tokens": {"kind": "digits" | "bits" | "chars" | "words" | "ids" | "floats",
                "vocab": ["a", "b", ...]},          # chars/words: id -> token
     "example": "4 7 3",                            # text for the input strip
     "outputs": {"kind": "classes" | "bits" | "next-token", "labels": [...]}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LstmvizError

FORMAT_VERSION = 1
TOKEN_KINDS = ("digits", "bits", "chars", "words", "ids", "floats")


@dataclass
class ModelInfo:
    task: str = ""
    title: str = ""
    description: str = ""
    token_kind: str = "floats"
    vocab: list[str] = field(default_factory=list)
    example: str = ""
    output_kind: str = ""
    output_labels: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "task": self.task,
            "title": self.title,
            "description": self.description,
            "tokens": {"kind": self.token_kind, "vocab": list(self.vocab)},
            "example": self.example,
            "outputs": {"kind": self.output_kind, "labels": list(self.output_labels)},
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, d: Any, source: str = "") -> ModelInfo:
        if not isinstance(d, dict):
            raise LstmvizError(f"{source}: model info must be a JSON object")
        v = d.get("format_version", 1)
        if v != FORMAT_VERSION:
            raise LstmvizError(
                f"{source}: unknown model info format_version {v!r} (this "
                f"lstmviz reads {FORMAT_VERSION})"
            )
        tok = d.get("tokens") or {}
        out = d.get("outputs") or {}
        for key, val in (("tokens", tok), ("outputs", out), ("extra", d.get("extra") or {})):
            if not isinstance(val, dict):
                raise LstmvizError(f"{source}: {key!r} must be a JSON object; found {val!r:.60}")
        labels = out.get("labels") or []
        if not isinstance(labels, list):
            raise LstmvizError(f"{source}: outputs.labels must be a list; found {labels!r:.60}")
        kind = tok.get("kind", "floats")
        if kind not in TOKEN_KINDS:
            raise LstmvizError(
                f"{source}: unknown token kind {kind!r}; expected one of {', '.join(TOKEN_KINDS)}"
            )
        vocab = tok.get("vocab") or []
        if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
            raise LstmvizError(f"{source}: tokens.vocab must be a list of strings")
        return cls(
            task=str(d.get("task", "")),
            title=str(d.get("title", "")),
            description=str(d.get("description", "")),
            token_kind=kind,
            vocab=vocab,
            example=str(d.get("example", "")),
            output_kind=str(out.get("kind", "")),
            output_labels=[str(x) for x in labels],
            extra=dict(d.get("extra") or {}),
        )


def info_path(model_path: str | os.PathLike[str]) -> Path:
    p = Path(model_path)
    return p.with_name(p.stem + ".lstmviz.json")


def load_info(model_path: str | os.PathLike[str] | None) -> ModelInfo | None:
    """The sidecar of ``model_path``, or None when there is none."""
    if model_path is None:
        return None
    p = info_path(model_path)
    if not p.is_file():
        return None
    if p.stat().st_size > 16 * 2**20:
        raise LstmvizError(f"{p}: model info file is too large")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
        return ModelInfo.from_json(d, str(p))
    except (OSError, ValueError) as e:
        raise LstmvizError(f"{p}: not valid JSON ({e})") from None
    except RecursionError:
        raise LstmvizError(
            f"{p}: the model info is nested too deeply; expected a flat JSON object"
        ) from None


def save_info(model_path: str | os.PathLike[str], info: ModelInfo) -> Path:
    from .atomic import atomic_write_text

    p = info_path(model_path)
    atomic_write_text(p, json.dumps(info.to_json(), indent=1, ensure_ascii=False))
    return p
