"""A :class:`~lstmviz.io.session.Session` from a :class:`ViewerState`, and back.

The session file format lives in :mod:`lstmviz.io.session`; this module is the one place
that knows which fields of the viewer state a session keeps::

    session = session_from_state(state, snapshots=timeline)
    session.save("work.lstmviz")
    ...
    apply_session(Session.load("work.lstmviz"), other_state)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import LstmvizError
from ..io.session import Session
from .viewer import TraceableModel, ViewerState

#: Typed inputs longer than this are kept as the array only, not also as text.
MAX_INPUT_TEXT = 100_000


def session_from_state(
    state: ViewerState,
    view: dict[str, Any] | None = None,
    snapshots: Sequence[dict[str, Any]] | None = None,
) -> Session:
    """What ``state`` shows, as a session: the model's path, the input (array, and the text
    it was typed as when short), layer, batch item, selected units, step, unit filter and
    view options. ``view`` adds window-level entries (dock layout, ...); ``snapshots`` is a
    training timeline."""
    model = state.model
    path = state.model_path
    source = str(getattr(model, "source", "") or "") if model is not None else ""
    if path is None and source:
        path = source
    if path and not Path(path).is_file():
        path = None
    text: str | None = None
    try:
        text = state.input_text_within(MAX_INPUT_TEXT) if state.model is not None else None
    except (LstmvizError, ValueError, IndexError, TypeError):
        text = None
    mode, arg = state.unit_filter
    options = state.options
    v: dict[str, Any] = {
        "unit_filter": [mode, list(arg) if isinstance(arg, (list, tuple)) else arg],
        "all_layers": bool(options.all_layers),
        "lock_levels": bool(options.lock_levels),
        "hide_future": bool(options.hide_future),
    }
    if state.interventions:
        v["interventions"] = [iv.to_dict() for iv in state.interventions]
    v.update(view or {})
    return Session(
        model_path=str(path) if path else None,
        input=state.x,
        input_text=text or None,
        layer=state.layer or None,
        batch=state.batch,
        units=list(state.selected_units),
        t=state.t,
        view=v,
        engine=str(state.engine or "numpy").lower(),
        snapshots=list(snapshots or []),
    )


def apply_session(
    session: Session, state: ViewerState, model: TraceableModel | None = None
) -> list[str]:
    """Show ``session`` in ``state``: model (default: :meth:`Session.load_model`), input,
    layer, batch item, units, step, unit filter and view options.

    What no longer fits the model (a layer that is gone, a unit past the end) is left at its
    default; the returned list says what, in words for the user. Tiny traces are computed at
    once; for a larger one the selection is applied when the trace arrives.
    """
    if model is None:
        model = session.load_model()
    from ..io.inputs import load_input
    from ..io.meta import load_info

    info = None
    try:
        info = load_info(session.model_path) if session.model_path else None
    except LstmvizError:
        info = None
    x = session.input
    if x is None:
        x = load_input(model, text=session.input_text, info=info)
    path = session.model_path if session.model_path and Path(session.model_path).is_file() else None
    problems: list[str] = []
    view = session.view or {}
    for name in ("all_layers", "lock_levels", "hide_future"):
        if isinstance(view.get(name), bool):
            setattr(state.options, name, view[name])

    def select() -> None:
        problems.extend(apply_selection(session, state))

    if state.trace is not None and state.model is model:
        state.set_input(x)
    else:
        state.set_model(model, path=path, info=info, x=x)
    if state.trace is not None and not state.busy:
        select()
    else:

        def once() -> None:
            state.events.trace.disconnect(once)
            select()

        state.events.trace.connect(once)
    return problems


def apply_selection(session: Session, state: ViewerState) -> list[str]:
    """Layer, batch item, units, unit filter, step and interventions of ``session`` on
    ``state``'s trace; returns what could not be restored."""
    problems: list[str] = []
    if session.layer:
        try:
            state.set_layer(session.layer)
        except LstmvizError:
            problems.append(f"layer {session.layer!r} is not in the model")
    try:
        state.set_batch(session.batch)
    except LstmvizError:
        problems.append(f"batch item {session.batch} is not in the input")
    if session.units:
        try:
            state.set_units(list(session.units))
        except LstmvizError:
            problems.append(f"units {session.units} are not all in layer {state.layer!r}")
    flt = (session.view or {}).get("unit_filter")
    if isinstance(flt, (list, tuple)) and len(flt) == 2 and flt[0] != "all":
        try:
            state.set_unit_filter(str(flt[0]), flt[1])
        except (LstmvizError, TypeError, ValueError):
            problems.append(f"unit filter {flt!r} does not fit the layer")
    state.set_t(session.t)
    problems.extend(apply_interventions(session, state))
    return problems


def apply_interventions(session: Session, state: ViewerState) -> list[str]:
    """The session's interventions on units (``view["interventions"]``: their
    :meth:`~lstmviz.engine.intervene.Intervention.to_dict`) on ``state``; each that cannot be
    read or does not fit the model is left out and named in the returned list."""
    from ..engine.intervene import Intervention

    saved = (session.view or {}).get("interventions")
    if not saved:
        if state.interventions:
            state.clear_interventions()
        return []
    if not isinstance(saved, list):
        return [f"interventions: expected a list; found {type(saved).__name__}"]
    problems: list[str] = []
    kept: list[Intervention] = []
    for k, d in enumerate(saved):
        try:
            iv = Intervention.from_dict(d)
            state.check_intervention(iv)
        except LstmvizError as e:
            problems.append(f"intervention {k + 1} left out: {e}")
            continue
        kept.append(iv)
    state.set_interventions(kept)
    return problems
