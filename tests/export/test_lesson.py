"""Lessons headless: the bundled captions are true for the bundled models; handout and video."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lstmviz.export.cli import main as export_main
from lstmviz.export.lesson import check, export_lesson, prepare
from lstmviz.io.lesson import FORMAT, LessonError, lesson_from_json, load_lesson

LESSONS = Path(__file__).resolve().parents[2] / "lstmviz" / "assets" / "lessons"


@pytest.mark.parametrize("path", sorted(LESSONS.glob("*.lstmviz-lesson")), ids=lambda p: p.stem)
def test_bundled_lesson_captions_are_true(path):
    """Every fact a bundled caption states holds for the bundled model's actual numbers."""
    les = load_lesson(path)
    assert check(les) == []
    views = prepare(les)
    assert len(views) == len(les.steps)
    # the lessons use every view
    assert {s.view for s in les.steps} <= {"heatmaps", "diagram", "equations"}


def test_every_view_is_used_somewhere():
    views = {s.view for p in LESSONS.glob("*.lstmviz-lesson") for s in load_lesson(p).steps}
    assert views == {"heatmaps", "diagram", "equations"}


def test_a_false_caption_is_caught():
    les = load_lesson(LESSONS / "binary_addition.lstmviz-lesson")
    les.steps[1].facts[0]["unit"] = 1  # "unit 1 is the carry unit": it is not
    les.steps[0].facts[0]["label"] = "0"
    les.steps[2].facts[0]["value"] = 0.9999
    les.steps[5].facts.append(
        {"kind": "share", "quantity": "forget_gate", "t": 7, "op": ">", "value": 0.5, "min": 0.9}
    )
    problems = check(les)
    assert any("names unit 1 as the carry unit; the model's is unit 2" in p for p in problems)
    assert any("answers '0' at t = 0; it answers '1'" in p for p in problems)
    assert any("forget_gate of unit 2 at t = 2" in p for p in problems)
    assert any(
        "of the units have forget_gate > 0.5 at t = 7, fewer than 90%" in p for p in problems
    )


def _lesson(**step):
    d = {
        "format": FORMAT,
        "format_version": 1,
        "title": "Small",
        "model": "digit_sum",
        "input": "4 7 3",
        "steps": [
            {
                "t": 1,
                "caption": "4 + 7 = 11: the model says 1.",
                "ask": ["What now?"],
                "hide_future": True,
                **step,
            },
            {"t": 2, "view": "equations", "units": [20], "caption": "Unit 20 as numbers."},
        ],
    }
    return lesson_from_json(d, "small")


@pytest.mark.parametrize(
    ("step", "msg"),
    [
        ({"t": 9}, "'t' = 9 but the input has 3 steps"),
        ({"units": [40]}, "unit 40 does not exist; layer 'lstm' has 32 units"),
        ({"layer": "nope"}, "'layer': no LSTM layer named 'nope'"),
        ({"input": "4 x"}, "input '4 x'"),
    ],
)
def test_prepare_names_the_bad_step(step, msg):
    with pytest.raises(LessonError, match=msg):
        prepare(_lesson(**step))


def test_missing_model(tmp_path):
    les = _lesson()
    les.model = "nothing_bundled"
    with pytest.raises(LessonError, match="no bundled example named 'nothing_bundled'"):
        prepare(les)
    les.model = "models/m.keras"
    les.path = tmp_path / "x.lstmviz-lesson"
    with pytest.raises(LessonError, match="relative to the lesson file"):
        prepare(les)


def test_handout_pdf_one_page_per_step(tmp_path):
    out = export_lesson(_lesson(), tmp_path / "h.pdf")
    data = out.read_bytes()
    assert data[:4] == b"%PDF"
    assert (
        data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") >= 2
        or data.count(b"/Type /Page") - data.count(b"/Type /Pages") == 2
    )


def test_cli_exports_a_lesson_video(tmp_path, capsys):
    p = tmp_path / "small.lstmviz-lesson"
    from lstmviz.io.lesson import save_lesson

    save_lesson(_lesson(), p)
    out = tmp_path / "lesson.mp4"
    assert export_main([str(p), "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    assert "MP4 video" in capsys.readouterr().out
    from tests.export.test_cli import decode_mp4

    frames, info = decode_mp4(out)
    # 1920 x 1080; step 1 asks first (question, then answer), step 2 only answers: 3 x 6 s
    assert "1920x1080" in info
    assert frames.shape[0] == 18
    assert not np.array_equal(frames[0], frames[6])  # the answer is revealed
    with pytest.raises(LessonError, match="exported as a PDF handout"):
        export_main([str(p), "--out", str(tmp_path / "x.png")])
    json.loads(p.read_text())
