"""The Corpus panel driven as a user drives it: real clicks and keys on its buttons and fields."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from lstmviz.analysis import open_corpus, trace_corpus

from .models import char_model, digit_info, digit_model


@pytest.fixture
def panel(qtbot, document):
    from lstmviz.app.analysis.corpus import CorpusPanel

    p = CorpusPanel(document)
    errors: list[str] = []
    p.error.connect(errors.append)
    p.errors = errors
    qtbot.addWidget(p)
    p.resize(1100, 700)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p.shutdown()


def _type(qtbot, edit, text):
    edit.clear()
    qtbot.keyClicks(edit, text)


def test_empty_state_is_a_sentence(panel):
    assert panel.stack.currentWidget() is panel.empty_label
    assert panel.empty_label.isVisible() and not panel.view.isVisible()
    assert "No corpus yet" in panel.empty_label.text()


def test_trace_button_traces_into_the_store_typed(qtbot, panel, document, tmp_path):
    m, info = char_model()
    document.set_model(m, None, info)
    panel.count.setValue(30)
    panel.length.setValue(20)
    out = tmp_path / "c.zarr"
    _type(qtbot, panel.out_edit, str(out))
    qtbot.mouseClick(panel.trace_btn, Qt.MouseButton.LeftButton)
    assert not panel.trace_btn.isEnabled() or panel.store is not None  # busy, or already done
    # (clicked(bool) landing in start(sequences=...) failed here with "'bool' object is not
    # iterable" on every click)
    qtbot.waitUntil(lambda: panel.store is not None or bool(panel.errors), timeout=30000)
    assert panel.errors == []
    st = panel.store
    assert st.location == str(out) and st.n_steps == 600 and st.complete
    assert st.tokenizer["vocab"] == info.vocab  # the manifest carries the vocabulary
    assert panel.stack.currentIndex() == 1 and panel.view.isVisible()
    assert panel.image.image.shape == (16, 80)
    from lstmviz.app.analysis.corpus import random_corpus

    seqs = random_corpus(m, info, 30, 20)  # what "Random inputs" traced (seeded)
    np.testing.assert_allclose(
        st.window(40, 60), m.trace(seqs[2][None]).layer(0).hidden[0], atol=1e-3
    )
    assert panel.trace_btn.isEnabled() and not panel.stop_btn.isEnabled()


def test_trace_without_a_model_says_so(qtbot, panel):
    qtbot.mouseClick(panel.trace_btn, Qt.MouseButton.LeftButton)
    assert panel.errors and "open a model first" in panel.errors[0]


def test_stop_button_keeps_what_was_traced(qtbot, panel, document, tmp_path):
    document.set_model(digit_model(), None, digit_info())
    panel.count.setValue(6000)
    panel.length.setValue(50)
    out = tmp_path / "stopped.zarr"
    _type(qtbot, panel.out_edit, str(out))
    _type(qtbot, panel.scheduler_edit, "sync")  # one task at a time: the stop lands mid-way
    qtbot.mouseClick(panel.trace_btn, Qt.MouseButton.LeftButton)
    w = panel.runner.current
    assert w is not None and panel.stop_btn.isEnabled() and panel.progress.isVisible()
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=30000)
    with qtbot.waitSignal(w.done, timeout=30000):
        qtbot.mouseClick(panel.stop_btn, Qt.MouseButton.LeftButton)
    assert panel.trace_btn.isEnabled() and not panel.stop_btn.isEnabled()
    assert panel.store is None and "Stopped" in panel.info_label.text()
    _type(qtbot, panel.open_edit, str(out))
    qtbot.mouseClick(panel.open_btn, Qt.MouseButton.LeftButton)
    st = panel.store
    assert st is not None and not st.complete and 0 < st.done.sum() < 6000
    assert "incomplete" in panel.info_label.text()


def test_open_by_path_and_url_and_page_through(qtbot, panel, document, tmp_path):
    m, info = char_model()
    seqs = np.random.default_rng(3).integers(0, 28, (200, 50))
    trace_corpus(m, seqs, tmp_path / "local.zarr", info=info)
    url = "memory://corpus-panel-test/c.zarr"
    trace_corpus(m, seqs, url, info=info)
    # a folder, typed and opened with Return
    _type(qtbot, panel.open_edit, str(tmp_path / "local.zarr"))
    qtbot.keyClick(panel.open_edit, Qt.Key.Key_Return)
    assert panel.store is not None and panel.store.n_steps == 10_000 and panel.errors == []
    # a URL: opened in a worker, then its pages are read lazily in a worker too
    _type(qtbot, panel.open_edit, url)
    qtbot.mouseClick(panel.open_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.store is not None and panel.store.location == url, timeout=30000)
    st = panel.store
    assert not st.has_window(5000, 5080)  # only the first page was read
    panel.page_bar.setFocus()
    for _ in range(3):
        qtbot.keyClick(panel.page_bar, Qt.Key.Key_PageDown)
    assert panel.position == 3 * 80 and panel.pos_box.value() == 240
    qtbot.waitUntil(
        lambda: panel.image.mapRectToParent(panel.image.boundingRect()).x() == 240, timeout=30000
    )
    panel.pos_box.setValue(5000)  # a page not read yet
    qtbot.waitUntil(lambda: st.has_window(5000, 5080), timeout=30000)
    qtbot.waitUntil(
        lambda: panel.image.mapRectToParent(panel.image.boundingRect()).x() == 5000,
        timeout=30000,
    )
    np.testing.assert_allclose(panel.image.image, st.window(5000, 5080).T)
    ref = open_corpus(tmp_path / "local.zarr").window(5000, 5080)
    np.testing.assert_array_equal(panel.image.image, ref.T)
    # a wrong location names itself
    _type(qtbot, panel.open_edit, str(tmp_path / "nothing"))
    qtbot.mouseClick(panel.open_btn, Qt.MouseButton.LeftButton)
    assert "does not exist" in panel.errors[-1]


@pytest.mark.parametrize("in_worker", [False, True])
def test_find_button_lists_matches_and_opens_them(
    qtbot, panel, document, tmp_path, monkeypatch, in_worker
):
    m, info = char_model()
    document.set_model(m, None, info)
    seqs = np.random.default_rng(4).integers(0, 28, (100, 40))
    st = trace_corpus(m, seqs, tmp_path / "f.zarr", info=info)
    if in_worker:
        monkeypatch.setattr("lstmviz.app.analysis.corpus.SYNC_FIND_LIMIT", 0)
    _type(qtbot, panel.open_edit, str(tmp_path / "f.zarr"))
    qtbot.mouseClick(panel.open_btn, Qt.MouseButton.LeftButton)
    h = np.asarray(st.array()[:, :])
    unit = int(np.argmax(h[:, 6]))
    panel.region.setRegion((6, 7))
    _type(qtbot, panel.units_edit, str(unit))
    panel.threshold.setValue(float(h[unit, 6]) - 0.01)
    qtbot.mouseClick(panel.find_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.result is not None, timeout=30000)
    assert panel.errors == []
    r = panel.result
    assert r.units == (unit,) and panel.table.rowCount() == len(r.matches) > 0
    assert "[" in panel.table.item(0, 4).text()  # the tokens, the match in brackets
    first = r.matches[0]
    rect = panel.table.visualItemRect(panel.table.item(0, 0))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.position <= first.start < panel.position + 80
    qtbot.mouseDClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert document.t == first.t
    np.testing.assert_array_equal(np.asarray(document.x)[0], seqs[first.sequence])
    # another model's states are not these: refused, named
    other, _ = char_model(seed=9)
    document.set_model(other, None, info)
    qtbot.mouseDClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert "not the one that traced this corpus" in panel.errors[-1]
