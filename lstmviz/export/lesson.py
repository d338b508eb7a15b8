"""Lessons, headless: run each step on its model, check what the captions claim, and export
a PDF handout (one page per step) or an MP4 (each step's question, then its answer).

    lstmviz export LESSON.lstmviz-lesson --out handout.pdf
    lstmviz export LESSON.lstmviz-lesson --out lesson.mp4

The app (presentation mode, the clicker) reads the same :class:`LessonStepView` objects:
:func:`prepare` resolves the model, the input and the trace of every step once.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LstmvizError
from ..io.lesson import Lesson, LessonError, LessonStep, load_lesson
from .formats import ExportCancelled

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]

#: a handout page: A4 landscape (inches)
PAGE = (11.69, 8.27)
#: a video frame: 1920 x 1080 at 150 dpi
FRAME = (12.8, 7.2)
FRAME_DPI = 150


@dataclass(frozen=True, eq=False)
class LessonStepView:
    """One step resolved: its model, input, trace and the layer to show."""

    index: int
    step: LessonStep
    model: Any
    info: Any
    model_name: str
    x: Any
    trace: Any
    layer: str
    labels: list[str] | None

    @property
    def layer_trace(self) -> Any:
        return self.trace.layer(self.layer)


def _load_model(lesson: Lesson) -> tuple[Any, Any, str]:
    from ..examples import get_example
    from ..io import load_model
    from ..io.meta import load_info

    kind, ref = lesson.model_ref()
    if kind == "example":
        try:
            ex = get_example(str(ref))
        except LstmvizError as e:
            raise LessonError(f"{lesson.path or 'lesson'}: 'model': {e}") from None
        return load_model(ex.path), ex.info, ex.name
    p = Path(ref)
    if not p.exists():
        raise LessonError(
            f"{lesson.path or 'lesson'}: 'model' {lesson.model!r} not found (looked for {p}); "
            "paths are relative to the lesson file"
        )
    return load_model(p), load_info(p), p.stem


def prepare(lesson: Lesson) -> list[LessonStepView]:
    """Load the lesson's model once and trace each distinct input; check every step's t,
    layer and units against the trace (a :class:`LessonError` names the step)."""
    from ..io.inputs import encode_text, example_input, token_labels

    model, info, name = _load_model(lesson)
    traces: dict[str, tuple[Any, Any]] = {}
    out = []
    src = lesson.path or "lesson"
    for k, step in enumerate(lesson.steps):
        text = lesson.input_of(step)
        if text not in traces:
            try:
                x = encode_text(model, text, info) if text else example_input(model, info)
            except LstmvizError as e:
                raise LessonError(f"{src}: step {k + 1}: input {text!r}: {e}") from None
            traces[text] = (x, model.trace(x))
        x, tr = traces[text]
        if not tr.layers:
            raise LessonError(f"{src}: the model {lesson.model!r} has no LSTM layer")
        layer = step.layer or tr.layers[0].name
        try:
            lt = tr.layer(layer)
        except LstmvizError as e:
            raise LessonError(f"{src}: step {k + 1}: 'layer': {e}") from None
        if step.t >= lt.timesteps:
            raise LessonError(
                f"{src}: step {k + 1}: 't' = {step.t} but the input has {lt.timesteps} steps "
                f"(0..{lt.timesteps - 1})"
            )
        bad = [u for u in step.units if u >= lt.units]
        if bad:
            raise LessonError(
                f"{src}: step {k + 1}: unit {bad[0]} does not exist; layer {lt.name!r} has "
                f"{lt.units} units (0..{lt.units - 1})"
            )
        try:
            labels = token_labels(model, x, info)
        except (IndexError, ValueError, TypeError):
            labels = None
        if labels is not None and len(labels) != lt.timesteps:
            labels = None
        out.append(LessonStepView(k, step, model, info, name, x, tr, lt.name, labels))
    return out


# --- facts -------------------------------------------------------------------------------------
def check(lesson: Lesson | str | os.PathLike[str]) -> list[str]:
    """Check every fact the lesson's captions state against its model; returns the problems
    (an empty list when every fact holds)."""
    from ..analysis.ground_truth import ground_truth, predictions
    from ..analysis.story import carry_unit

    les = lesson if isinstance(lesson, Lesson) else load_lesson(lesson)
    problems: list[str] = []
    carry: tuple[int, float] | None = None
    for sv in prepare(les):
        lt = sv.layer_trace
        for f in sv.step.facts:
            kind = f["kind"]
            where = f"step {sv.index + 1} ({kind})"
            t = int(f.get("t", sv.step.t))
            if t >= lt.timesteps:
                problems.append(f"{where}: t = {t} is past the input's {lt.timesteps} steps")
                continue
            if kind == "carry_unit":
                if carry is None:
                    carry = carry_unit(sv.model)
                unit, r = carry
                if unit != f["unit"] or abs(r) < float(f.get("min_r", 0.99)):
                    problems.append(
                        f"{where}: the caption names unit {f['unit']} as the carry unit; the "
                        f"model's is unit {unit} (|r| = {abs(r):.3f})"
                    )
            elif kind == "share":
                a = np.asarray(lt.get(f["quantity"])[0, t], dtype=np.float64)  # (units,)
                ref = float(f["value"])
                hit = {
                    "<": a < ref,
                    "<=": a <= ref,
                    ">": a > ref,
                    ">=": a >= ref,
                    "about": np.abs(a - ref) <= float(f.get("tol", 0.05)),
                }[f["op"]]
                share = float(hit.mean())
                if share < float(f["min"]):
                    problems.append(
                        f"{where}: {share:.0%} of the units have {f['quantity']} {f['op']} "
                        f"{ref:g} at t = {t}, fewer than {float(f['min']):.0%}"
                    )
            elif kind == "value":
                if f["unit"] >= lt.units:
                    problems.append(f"{where}: unit {f['unit']} does not exist")
                    continue
                v = float(lt.get(f["quantity"])[0, t, f["unit"]])
                ref = float(f["value"])
                ok = {
                    "<": v < ref,
                    "<=": v <= ref,
                    ">": v > ref,
                    ">=": v >= ref,
                    "about": abs(v - ref) <= float(f.get("tol", 0.05)),
                }[f["op"]]
                if not ok:
                    problems.append(
                        f"{where}: {f['quantity']} of unit {f['unit']} at t = {t} is {v:.4g}, "
                        f"not {f['op']} {ref:g}"
                    )
            else:
                so = sv.trace.step_output
                if so is None:
                    problems.append(f"{where}: the model has no per-step output")
                    continue
                if kind == "prediction":
                    ids, _ = predictions(so)
                    from .rows import _class_labels

                    labels = _class_labels(sv.info, np.asarray(so).shape[-1])
                    said = labels[int(ids[0, t])]
                    if said != f["label"]:
                        problems.append(
                            f"{where}: the caption says the model answers {f['label']!r} at "
                            f"t = {t}; it answers {said!r}"
                        )
                    continue
                gt = ground_truth(sv.info, sv.x)
                agree = gt.compare(so)
                if kind == "correct":
                    want = bool(f.get("is", True))
                    got = bool(agree.correct[0, t])
                    if not agree.checked[0, t] or got != want:
                        problems.append(
                            f"{where}: the caption says the model is "
                            f"{'right' if want else 'wrong'} at t = {t}; {agree.text(t)}"
                        )
                elif kind == "accuracy":
                    acc = agree.accuracy()
                    if acc is None or acc < float(f["min"]):
                        problems.append(
                            f"{where}: accuracy over the input is {acc}, below {f['min']}"
                        )
    return problems


# --- rendering -----------------------------------------------------------------------------------
def _view_image(
    sv: LessonStepView, size: tuple[float, float], dpi: float, hidden: bool
) -> np.ndarray:
    """The step's view as an RGB image ``size`` inches at ``dpi``."""
    st = sv.step
    if st.view == "diagram":
        from .diagram import DiagramFigure, stacked_layers

        names = [x.name for x in stacked_layers(sv.trace)]
        layers = names[names.index(sv.layer) :] if sv.layer in names else [sv.layer]
        unit: int | None = st.units[0] if st.units else None
        fig = DiagramFigure(
            sv.trace,
            t=st.t,
            units=unit,
            layers=layers[:1] if unit is not None else layers,
            style="slide",
            labels=sv.labels,
            model_name=sv.model_name,
            size=size,
            dpi=dpi,
        )
        return fig.rgb()
    if st.view == "equations":
        return _equations_image(sv, size, dpi)
    from .api import Source, step_rows
    from .figure import GridFigure

    source = Source(model=sv.model, info=sv.info)
    above, below = step_rows(sv.trace, source, 0, sv.labels, sv.layer_trace.timesteps)
    if hidden and st.hide_future:
        # the question is asked before the answer at step t is shown
        from .rows import StepRow

        below = [
            StepRow(
                r.name,
                tuple("?" if k >= st.t else s for k, s in enumerate(r.labels)),
                r.colours and tuple("black" if k >= st.t else c for k, c in enumerate(r.colours)),
            )
            for r in below
        ]
    grid = GridFigure(
        sv.trace,
        layer=sv.layer,
        step=st.t,
        units=st.units or None,
        style="slide",
        labels=sv.labels,
        model_name=sv.model_name,
        size=size,
        dpi=dpi,
        rows_above=above,
        rows_below=below,
        hide_future=hidden and st.hide_future,
    )
    return grid.rgb()


def _equations_image(sv: LessonStepView, size: tuple[float, float], dpi: float) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .diagram import unit_values
    from .figure import safe_label

    st = sv.step
    lt = sv.layer_trace
    u = st.units[0] if st.units else 0
    v = unit_values(lt, st.t, 0, u, sv.labels)
    lines = [
        f"unit {u} of layer {lt.name} at t = {st.t}"
        + (f" (input {sv.labels[st.t]})" if sv.labels else ""),
        "",
        v["z_f"].formula,
        v["f"].formula,
        "",
        v["z_i"].formula,
        v["i"].formula,
        "",
        v["z_c"].formula,
        v["g"].formula,
        "",
        v["z_o"].formula,
        v["o"].formula,
        "",
        v["c"].formula,
        v["h"].formula,
    ]
    fig = Figure(figsize=size, dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    n = len(lines)
    fs = min(20.0, size[1] * 72 / (n * 1.5))
    for k, line in enumerate(lines):
        fig.text(
            0.04,
            1 - (k + 1) / (n + 1),
            safe_label(line, limit=200),
            fontsize=fs,
            family="DejaVu Sans Mono",
            fontweight="bold" if k == 0 else "normal",
        )
    canvas.draw()
    return np.array(np.asarray(canvas.buffer_rgba())[:, :, :3], copy=True)


def page(
    lesson: Lesson,
    sv: LessonStepView,
    n_steps: int,
    size: tuple[float, float] = PAGE,
    dpi: float = FRAME_DPI,
    reveal: bool = True,
) -> Any:
    """One page (a matplotlib Figure): the lesson title and step, the questions, the view,
    and (``reveal``) the caption."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .figure import safe_label

    st = sv.step
    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    w, h = size
    fs = max(11.0, h * 2.0)  # 16-17 pt on a page 8 in tall
    fig.text(
        0.03,
        0.965,
        safe_label(lesson.title, limit=120),
        fontsize=fs * 1.25,
        fontweight="bold",
        va="top",
    )
    fig.text(
        0.97,
        0.965,
        f"step {sv.index + 1} of {n_steps}",
        fontsize=fs,
        va="top",
        ha="right",
        color="#555555",
    )
    chars = int(w * 72 / (fs * 0.55))
    y = 0.90
    for q in st.ask:
        for line in textwrap.wrap("Ask first: " + q, chars):
            fig.text(
                0.03,
                y,
                safe_label(line, limit=400),
                fontsize=fs,
                va="top",
                color="#0072B2",
                fontweight="bold",
            )
            y -= fs * 1.45 / 72 / h
    cap_lines = textwrap.wrap(st.caption, chars) if reveal else []
    bottom = 0.03 + len(cap_lines) * fs * 1.45 / 72 / h
    view_h = max(0.2, y - bottom - 0.02)
    img = _view_image(sv, (w * 0.94, h * view_h), dpi, hidden=not reveal)
    ax = fig.add_axes((0.03, bottom + 0.01, 0.94, view_h))
    ax.imshow(img, interpolation="lanczos")
    ax.axis("off")
    yy = bottom
    for line in cap_lines:
        fig.text(0.03, yy, safe_label(line, limit=400), fontsize=fs, va="top")
        yy -= fs * 1.45 / 72 / h
    if not reveal:
        fig.text(
            0.5, 0.02, "(answer on the next slide)", fontsize=fs * 0.9, ha="center", color="#777777"
        )
    return fig


def write_handout(
    lesson: Lesson,
    out: str | os.PathLike[str],
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> Path:
    """A PDF with one page per step: questions, the view, the caption (atomic)."""
    from matplotlib.backends.backend_pdf import PdfPages

    from .._version import __version__
    from ..io.atomic import atomic_open

    views = prepare(lesson)
    p = Path(out)
    meta = {"Title": lesson.title, "Creator": f"lstmviz {__version__}", "CreationDate": None}
    with atomic_open(p, "wb") as fh, PdfPages(fh, metadata=meta) as pdf:
        for k, sv in enumerate(views):
            if should_stop is not None and should_stop():
                raise ExportCancelled(f"handout cancelled at page {k + 1}; nothing was written")
            pdf.savefig(page(lesson, sv, len(views)))
            if progress is not None:
                progress(k + 1, len(views))
    return p


def lesson_frames(
    lesson: Lesson,
    seconds: float = 6.0,
    fps: float = 1.0,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> Iterator[np.ndarray]:
    """1920 x 1080 frames: each step's question page (when it asks one), then its answer,
    ``seconds`` each."""
    views = prepare(lesson)
    n = max(1, round(seconds * fps))
    for k, sv in enumerate(views):
        for reveal in [False, True] if sv.step.ask else [True]:
            if should_stop is not None and should_stop():
                raise ExportCancelled(f"video cancelled at step {k + 1}; nothing was written")
            fig = page(lesson, sv, len(views), FRAME, FRAME_DPI, reveal=reveal)
            fig.canvas.draw()
            img = np.array(np.asarray(fig.canvas.buffer_rgba())[:, :, :3], copy=True)
            for _ in range(n):
                yield img
        if progress is not None:
            progress(k + 1, len(views))


def write_lesson_video(
    lesson: Lesson,
    out: str | os.PathLike[str],
    seconds: float = 6.0,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> Path:
    """An MP4 of the lesson (1920 x 1080, each step's question, then its answer)."""
    from .animation import write_mp4_frames

    return write_mp4_frames(out, lesson_frames(lesson, seconds, 1.0, progress, should_stop), 1.0)


def export_lesson(
    lesson: str | os.PathLike[str] | Lesson,
    out: str | os.PathLike[str],
    *,
    force: bool = False,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> Path:
    """``lstmviz export LESSON.lstmviz-lesson --out handout.pdf|lesson.mp4``."""
    from .formats import check_output

    les = lesson if isinstance(lesson, Lesson) else load_lesson(lesson)
    path, fmt = check_output(out, force=force)
    if fmt == "pdf":
        return write_handout(les, path, progress, should_stop)
    if fmt == "mp4":
        return write_lesson_video(les, path, progress=progress, should_stop=should_stop)
    raise LessonError(
        f"{path}: a lesson is exported as a PDF handout (.pdf) or a video (.mp4), not .{fmt}"
    )
