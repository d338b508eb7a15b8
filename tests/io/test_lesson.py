"""The .lstmviz-lesson format: reading, checking, writing, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstmviz.io.lesson import (
    FORMAT,
    VIEWS,
    Lesson,
    LessonError,
    LessonStep,
    lesson_from_json,
    load_lesson,
    save_lesson,
)

LESSONS = Path(__file__).resolve().parents[2] / "lstmviz" / "assets" / "lessons"


def _minimal(**kw):
    d = {
        "format": FORMAT,
        "format_version": 1,
        "title": "t",
        "model": "digit_sum",
        "steps": [{"t": 0, "caption": "hello"}],
    }
    d.update(kw)
    return d


def test_every_bundled_lesson_reads():
    names = sorted(p.stem for p in LESSONS.glob("*.lstmviz-lesson"))
    assert names == [
        "binary_addition",
        "char_textgen",
        "digit_sum",
        "stacked_lstm",
        "toy_classification",
        "word_lm",
    ]
    for p in LESSONS.glob("*.lstmviz-lesson"):
        les = load_lesson(p)
        assert les.steps and les.title
        assert les.model_ref() == ("example", p.stem)
        assert all(s.caption for s in les.steps)


def test_model_paths_are_relative_to_the_lesson(tmp_path):
    p = tmp_path / "sub" / "a.lstmviz-lesson"
    p.parent.mkdir()
    p.write_text(json.dumps(_minimal(model="../models/m.keras")))
    les = load_lesson(p)
    kind, ref = les.model_ref()
    assert kind == "path"
    assert Path(ref).resolve() == (tmp_path / "models" / "m.keras").resolve()


@pytest.mark.parametrize(
    ("d", "msg"),
    [
        ([], "JSON object"),
        ({"format": "x"}, "not a lesson file"),
        (_minimal(format_version=2), "unknown lesson format_version 2"),
        (_minimal(model=""), "'model' is empty"),
        (_minimal(model=3), "'model' must be text"),
        (_minimal(steps=[]), "non-empty list"),
        (_minimal(extra=1), "unknown field 'extra'"),
        (_minimal(steps=[{"t": -1}]), "step 1: 't' must be an integer >= 0"),
        (_minimal(steps=[{"t": True}]), "'t' must be an integer"),
        (_minimal(steps=[{"view": "movie"}]), "'view' must be one of"),
        (_minimal(steps=[{"units": "2"}]), "'units' must be a list"),
        (_minimal(steps=[{"units": [1, -2]}]), "'units' must be an integer"),
        (_minimal(steps=[{"ask": [1]}]), "'ask' must be a list of questions"),
        (_minimal(steps=[{"hide_future": "yes"}]), "'hide_future' must be true or false"),
        (_minimal(steps=[{"caption": 5}]), "'caption' must be text"),
        (_minimal(steps=[{"colour": 5}]), "unknown field 'colour'"),
        (_minimal(steps=[{"facts": [{"kind": "magic"}]}]), "unknown fact kind 'magic'"),
        (_minimal(steps=[{"facts": [{"kind": "carry_unit"}]}]), "'unit' must be an integer"),
        (
            _minimal(steps=[{"facts": [{"kind": "value", "unit": 0, "quantity": "q"}]}]),
            "'quantity' must be one of",
        ),
        (
            _minimal(
                steps=[{"facts": [{"kind": "value", "unit": 0, "quantity": "cell", "op": "="}]}]
            ),
            "'op' must be one of",
        ),
        (_minimal(steps=[{"facts": [{"kind": "prediction"}]}]), "'label' must be text"),
        (_minimal(steps=[{"facts": [{"kind": "accuracy", "min": 2}]}]), "'min' must be a number"),
        (_minimal(steps=[{"facts": "x"}]), "'facts' must be a list"),
    ],
)
def test_bad_lessons_name_the_problem(d, msg):
    with pytest.raises(LessonError, match=msg):
        lesson_from_json(d, "x.lstmviz-lesson")


def test_bad_files(tmp_path):
    with pytest.raises(LessonError, match="no such lesson file"):
        load_lesson(tmp_path / "none.lstmviz-lesson")
    p = tmp_path / "a.lstmviz-lesson"
    p.write_text("{not json")
    with pytest.raises(LessonError, match="not valid JSON"):
        load_lesson(p)
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(LessonError, match="UTF-8"):
        load_lesson(p)
    les = lesson_from_json(_minimal())
    with pytest.raises(LessonError, match="ending in"):
        save_lesson(les, tmp_path / "a.json")


def test_save_is_atomic_and_keeps_the_old_file_on_error(tmp_path, monkeypatch):
    p = tmp_path / "a.lstmviz-lesson"
    les = lesson_from_json(_minimal())
    save_lesson(les, p)
    before = p.read_bytes()
    les.steps[0].view = "not a view"  # would write an unreadable file: refused, nothing written
    with pytest.raises(LessonError, match="'view'"):
        save_lesson(les, p)
    assert p.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.lstmviz-lesson"]


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_fact = st.one_of(
    st.fixed_dictionaries({"kind": st.just("carry_unit"), "unit": st.integers(0, 9)}),
    st.fixed_dictionaries(
        {
            "kind": st.just("value"),
            "unit": st.integers(0, 9),
            "t": st.integers(0, 20),
            "quantity": st.sampled_from(["cell", "forget_gate", "z_o"]),
            "op": st.sampled_from(["<", ">", "about"]),
            "value": st.floats(-100, 100, allow_nan=False),
        }
    ),
    st.fixed_dictionaries({"kind": st.just("prediction"), "t": st.integers(0, 9), "label": _text}),
    st.fixed_dictionaries({"kind": st.just("accuracy"), "min": st.floats(0, 1)}),
)
_step = st.builds(
    LessonStep,
    t=st.integers(0, 1000),
    caption=_text,
    view=st.sampled_from(VIEWS),
    units=st.lists(st.integers(0, 500), max_size=4),
    layer=_text,
    input=_text,
    ask=st.lists(_text, max_size=3),
    hide_future=st.booleans(),
    notes=_text,
    facts=st.lists(_fact, max_size=3),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    title=_text,
    model=st.sampled_from(["digit_sum", "models/m.keras", "/abs/m.h5"]),
    inp=_text,
    steps=st.lists(_step, min_size=1, max_size=5),
)
def test_round_trip(tmp_path, title, model, inp, steps):
    les = Lesson(title=title, model=model, steps=steps, input=inp)
    p = save_lesson(les, tmp_path / "r.lstmviz-lesson")
    again = load_lesson(p)
    assert again.to_json() == les.to_json()
    assert again.path == p.resolve()
