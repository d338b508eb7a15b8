"""Lessons: ``.lstmviz-lesson`` files of scripted steps a clicker drives (docs/lessons.md).

A lesson is a JSON object::

    {"format": "lstmviz-lesson", "format_version": 1,
     "title": "How the adder remembers the carry",
     "model": "binary_addition",            # a bundled example, or a path relative to the file
     "input": "1011011 + 0110110",          # the input of every step unless a step sets its own
     "steps": [
       {"t": 2, "layer": "lstm", "units": [2], "view": "diagram",
        "caption": "1 + 1 makes a carry: ...",
        "ask": ["What will the carry be after this step?"],
        "hide_future": true,
        "notes": "for the presenter only",
        "facts": [{"kind": "carry_unit", "unit": 2}]}
     ]}

Reading never evaluates anything; every field is checked and a bad one raises
:class:`LessonError` naming the file, the step and the field. Writing is atomic.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LstmvizError

FORMAT = "lstmviz-lesson"
FORMAT_VERSION = 1
SUFFIX = ".lstmviz-lesson"
VIEWS = ("heatmaps", "diagram", "equations")
#: Machine-checkable facts a caption may state (checked by ``lstmviz.export.lesson.check``).
FACT_KINDS = ("carry_unit", "value", "share", "prediction", "correct", "accuracy")
OPS = ("<", "<=", ">", ">=", "about")
QUANTITY_NAMES = (
    "forget_gate",
    "input_gate",
    "output_gate",
    "candidate",
    "cell",
    "hidden",
    "z_i",
    "z_f",
    "z_c",
    "z_o",
)
MAX_BYTES = 4 * 2**20
MAX_STEPS = 500


class LessonError(LstmvizError):
    """A lesson file is missing, malformed, or names something that does not exist."""


@dataclass
class LessonStep:
    """One step of a lesson: what to show and what to say.

    Attributes
    ----------
    t : int
        The timestep shown.
    caption : str
        What the lecturer says, in plain words (shown under the view).
    view : str
        ``"heatmaps"``, ``"diagram"`` (the cell diagram) or ``"equations"``.
    units : list of int
        Highlighted units (the diagram shows the first, or one per stacked layer).
    layer : str
        The LSTM layer (the first by default).
    input : str
        This step's input text (the lesson's by default).
    ask : list of str
        Questions to ask before revealing the caption and the values.
    hide_future : bool
        Hide the steps after t (outputs and gates) until the lecturer reveals them.
    notes : str
        For the presenter only.
    facts : list of dict
        Claims the caption makes that a test can check against the model (see docs/lessons.md).
    """

    t: int = 0
    caption: str = ""
    view: str = "heatmaps"
    units: list[int] = field(default_factory=list)
    layer: str = ""
    input: str = ""
    ask: list[str] = field(default_factory=list)
    hide_future: bool = False
    notes: str = ""
    facts: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"t": self.t, "view": self.view, "caption": self.caption}
        if self.units:
            d["units"] = list(self.units)
        if self.layer:
            d["layer"] = self.layer
        if self.input:
            d["input"] = self.input
        if self.ask:
            d["ask"] = list(self.ask)
        if self.hide_future:
            d["hide_future"] = True
        if self.notes:
            d["notes"] = self.notes
        if self.facts:
            d["facts"] = [dict(f) for f in self.facts]
        return d


@dataclass
class Lesson:
    """A lesson: a model, a default input and its steps."""

    title: str
    model: str
    steps: list[LessonStep]
    input: str = ""
    description: str = ""
    path: Path | None = None  # where it was read from (model paths are relative to it)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "title": self.title,
            "model": self.model,
        }
        if self.description:
            d["description"] = self.description
        if self.input:
            d["input"] = self.input
        d["steps"] = [s.to_json() for s in self.steps]
        return d

    def model_ref(self) -> tuple[str, str | Path]:
        """``("example", name)`` for a bundled example, else ``("path", absolute path)``
        (relative to the lesson file's folder)."""
        m = self.model
        if "/" not in m and "\\" not in m and not Path(m).suffix:
            return "example", m
        p = Path(m).expanduser()
        if not p.is_absolute() and self.path is not None:
            p = self.path.parent / p
        return "path", p

    def input_of(self, step: LessonStep) -> str:
        """The input text of ``step`` (its own, else the lesson's; may be empty: the
        model's example)."""
        return step.input or self.input


def _where(source: str, k: int | None, key: str) -> str:
    return f"{source}: step {k + 1}, {key!r}" if k is not None else f"{source}: {key!r}"


def _str(d: dict[str, Any], key: str, where: str, default: str = "", limit: int = 20_000) -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise LessonError(f"{where}: {key!r} must be text; found {type(v).__name__} {v!r:.40}")
    if len(v) > limit:
        raise LessonError(f"{where}: {key!r} is {len(v)} characters long; at most {limit}")
    return v


def _int(v: Any, where: str, lo: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise LessonError(f"{where} must be an integer >= {lo}; found {v!r:.40}")
    return v


def _check_fact(f: Any, where: str) -> dict[str, Any]:
    if not isinstance(f, dict):
        raise LessonError(f'{where} must be an object like {{"kind": "carry_unit", ...}}')
    kind = f.get("kind")
    if kind not in FACT_KINDS:
        raise LessonError(
            f"{where}: unknown fact kind {kind!r}; expected one of {', '.join(FACT_KINDS)}"
        )
    out = dict(f)
    if kind in ("carry_unit", "value"):
        _int(f.get("unit"), f"{where}: 'unit'")
    if kind in ("value", "share", "prediction", "correct") and "t" in f:
        _int(f["t"], f"{where}: 't'")
    if kind == "share":
        m = f.get("min")
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m <= 1:
            raise LessonError(f"{where}: 'min' must be a number in [0, 1]; found {m!r:.40}")
    if kind in ("value", "share"):
        if f.get("quantity") not in QUANTITY_NAMES:
            raise LessonError(
                f"{where}: 'quantity' must be one of {', '.join(QUANTITY_NAMES)}; "
                f"found {f.get('quantity')!r:.40}"
            )
        if f.get("op") not in OPS:
            raise LessonError(
                f"{where}: 'op' must be one of {', '.join(OPS)}; found {f.get('op')!r}"
            )
        v = f.get("value")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise LessonError(f"{where}: 'value' must be a number; found {v!r:.40}")
    if kind == "prediction" and not isinstance(f.get("label"), str):
        raise LessonError(f"{where}: 'label' must be text (the model's answer, e.g. \"4\")")
    if kind == "correct" and not isinstance(f.get("is", True), bool):
        raise LessonError(f"{where}: 'is' must be true or false")
    if kind == "accuracy":
        m = f.get("min")
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m <= 1:
            raise LessonError(f"{where}: 'min' must be a number in [0, 1]; found {m!r:.40}")
    return out


def _step(d: Any, k: int, source: str) -> LessonStep:
    where = f"{source}: step {k + 1}"
    if not isinstance(d, dict):
        raise LessonError(f"{where} must be an object; found {type(d).__name__}")
    known = {
        "t",
        "caption",
        "view",
        "units",
        "layer",
        "input",
        "ask",
        "hide_future",
        "notes",
        "facts",
    }
    extra = sorted(set(d) - known)
    if extra:
        raise LessonError(
            f"{where}: unknown field {extra[0]!r}; fields: {', '.join(sorted(known))}"
        )
    t = _int(d.get("t", 0), f"{where}: 't'")
    view = d.get("view", "heatmaps")
    if view not in VIEWS:
        raise LessonError(f"{where}: 'view' must be one of {', '.join(VIEWS)}; found {view!r:.40}")
    units = d.get("units", [])
    if not isinstance(units, list) or len(units) > 64:
        raise LessonError(f"{where}: 'units' must be a list of up to 64 unit numbers")
    units = [_int(u, f"{where}: 'units'") for u in units]
    ask = d.get("ask", [])
    if isinstance(ask, str):
        ask = [ask]
    if not isinstance(ask, list) or not all(isinstance(q, str) for q in ask):
        raise LessonError(f"{where}: 'ask' must be a list of questions (text)")
    hide = d.get("hide_future", False)
    if not isinstance(hide, bool):
        raise LessonError(f"{where}: 'hide_future' must be true or false; found {hide!r:.40}")
    facts = d.get("facts", [])
    if not isinstance(facts, list):
        raise LessonError(f"{where}: 'facts' must be a list")
    return LessonStep(
        t=t,
        caption=_str(d, "caption", where),
        view=view,
        units=units,
        layer=_str(d, "layer", where, limit=200),
        input=_str(d, "input", where),
        ask=list(ask),
        hide_future=hide,
        notes=_str(d, "notes", where),
        facts=[_check_fact(f, f"{where}: fact {j + 1}") for j, f in enumerate(facts)],
    )


def lesson_from_json(d: Any, source: str = "lesson", path: Path | None = None) -> Lesson:
    """A :class:`Lesson` from parsed JSON, every field checked."""
    if not isinstance(d, dict):
        raise LessonError(f"{source}: a lesson is a JSON object; found {type(d).__name__}")
    if d.get("format") != FORMAT:
        raise LessonError(
            f"{source}: not a lesson file: 'format' must be {FORMAT!r}; "
            f"found {d.get('format')!r:.40}"
        )
    v = d.get("format_version")
    if v != FORMAT_VERSION:
        raise LessonError(
            f"{source}: unknown lesson format_version {v!r}; this lstmviz reads version "
            f"{FORMAT_VERSION}"
        )
    model = _str(d, "model", source, limit=4096)
    if not model.strip():
        raise LessonError(
            f"{source}: 'model' is empty; name a bundled example (\"digit_sum\") or a model "
            "file relative to the lesson"
        )
    steps = d.get("steps")
    if not isinstance(steps, list) or not steps:
        raise LessonError(f"{source}: 'steps' must be a non-empty list of steps")
    if len(steps) > MAX_STEPS:
        raise LessonError(f"{source}: {len(steps)} steps; at most {MAX_STEPS}")
    known = {"format", "format_version", "title", "model", "input", "description", "steps"}
    extra = sorted(set(d) - known)
    if extra:
        raise LessonError(
            f"{source}: unknown field {extra[0]!r}; fields: {', '.join(sorted(known))}"
        )
    return Lesson(
        title=_str(d, "title", source, limit=500),
        model=model,
        steps=[_step(s, k, source) for k, s in enumerate(steps)],
        input=_str(d, "input", source),
        description=_str(d, "description", source),
        path=path,
    )


def load_lesson(path: str | os.PathLike[str]) -> Lesson:
    """Read and check a ``.lstmviz-lesson`` file."""
    p = Path(path)
    if not p.is_file():
        raise LessonError(f"{p}: no such lesson file")
    size = p.stat().st_size
    if size > MAX_BYTES:
        raise LessonError(f"{p}: {size} bytes; a lesson file is at most {MAX_BYTES}")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise LessonError(f"{p}: not UTF-8 text ({e})") from None
    except ValueError as e:
        raise LessonError(f"{p}: not valid JSON ({e})") from None
    except OSError as e:
        raise LessonError(f"{p}: cannot read ({e})") from None
    return lesson_from_json(d, str(p), p.resolve())


def save_lesson(lesson: Lesson, path: str | os.PathLike[str]) -> Path:
    """Write ``lesson`` to ``path`` (``.lstmviz-lesson``) atomically; returns the path."""
    from .atomic import atomic_write_text

    p = Path(path)
    if p.suffix != SUFFIX:
        raise LessonError(f"{p}: a lesson is saved as {SUFFIX}; use a file name ending in it")
    d = lesson.to_json()
    lesson_from_json(json.loads(json.dumps(d)), str(p))  # never write what cannot be read
    atomic_write_text(p, json.dumps(d, indent=1, ensure_ascii=False) + "\n")
    return p
