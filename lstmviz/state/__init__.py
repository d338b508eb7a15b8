"""The viewer's typed, Qt-free, evented state (:class:`ViewerState`): what the app shows,
which sessions save and export reads. See :mod:`lstmviz.state.viewer`."""

from .viewer import (
    TokenScores,
    TraceableModel,
    UnitFilter,
    ViewerEvents,
    ViewerState,
    ViewOptions,
    run_now,
)

__all__ = [
    "TokenScores",
    "TraceableModel",
    "UnitFilter",
    "ViewOptions",
    "ViewerEvents",
    "ViewerState",
    "run_now",
]
