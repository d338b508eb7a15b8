"""The causal panels need lstmviz's own engine: on a live model they say how to get one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lstmviz.app.analysis.targets import engine_model
from lstmviz.errors import LstmvizError


def test_a_live_model_is_refused_with_the_route_to_the_engine():
    live = SimpleNamespace(model=object(), x=None)  # any model lstmviz's engine does not run
    with pytest.raises(LstmvizError) as e:
        engine_model(live)
    msg = str(e.value)
    assert "lstmviz.bridge.as_model(model, x)" in msg
    assert ".pt2" not in msg  # the causal analyses refuse exported programs
    with pytest.raises(LstmvizError, match="open a model first"):
        engine_model(SimpleNamespace(model=None, x=None))
