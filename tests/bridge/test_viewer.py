"""lstmviz.show on a live model: the real window, driven through the Viewer handle and by
the keys and buttons a user presses; a new input runs the framework again."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402

import lstmviz  # noqa: E402
from lstmviz.errors import InputError, LstmvizError  # noqa: E402


class Counted(torch.nn.Module):
    """An LSTM with a Linear head that counts its forward calls."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.rnn = torch.nn.LSTM(3, 5, num_layers=2, batch_first=True)
        self.head = torch.nn.Linear(5, 4)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        y, _ = self.rnn(x)
        return self.head(y)


@pytest.fixture
def viewer(qtbot):
    model = Counted().eval()
    v = lstmviz.show(model, torch.randn(2, 9, 3), block=False, size=(1600, 900))
    qtbot.addWidget(v.window)
    yield v
    v.close()


def _cursor(v):
    return v.window.heatmaps.maps[next(iter(v.window.heatmaps.maps))].cursor_t()


def test_show_returns_a_handle_that_drives_the_window(viewer, qtbot):
    assert viewer.window.isVisible()
    # the status bar names what computed the trace: the framework, not the NumPy engine
    assert viewer.window.state.engine == "torch (live)"
    assert "engine: torch (live)" in viewer.window.engine_label.text()
    # a batch of two takes the spot-checked route by default; verify= chooses
    assert viewer.trace.layers[0].meta["verified"] == "spot"
    assert viewer.layers == ["rnn_l0", "rnn_l1"]
    viewer.t = 5
    assert viewer.window.state.t == 5 and _cursor(viewer) == 5
    viewer.layer = "rnn_l1"
    assert viewer.window.state.layer == "rnn_l1"
    viewer.layer = 0
    assert viewer.layer == "rnn_l0"
    viewer.batch = 1
    assert viewer.window.state.batch == 1
    viewer.units = [4, 2]
    assert viewer.window.state.selected_units == [4, 2]
    qtbot.keyClick(viewer.window, Qt.Key.Key_Right)  # the user steps on from t = 5
    assert viewer.t == 6 and _cursor(viewer) == 6
    qtbot.mouseClick(viewer.window.transport.back_button, Qt.MouseButton.LeftButton)
    assert viewer.t == 5
    with pytest.raises(InputError, match="out of range"):
        viewer.t = 9
    viewer.t = -1
    assert viewer.t == 8
    full = lstmviz.show(Counted().eval(), torch.randn(2, 9, 3), block=False, verify="full")
    qtbot.addWidget(full.window)
    assert full.trace.layers[0].meta["verified"] == "full"
    full.close()


def test_a_new_input_calls_the_live_model_again(viewer):
    model = viewer.model.module
    before = model.calls
    x2 = torch.randn(1, 14, 3)
    viewer.set_input(x2)
    assert model.calls == before + 1
    tr = viewer.trace
    assert tr.timesteps == 14 and tr.batch_size == 1
    with torch.no_grad():
        np.testing.assert_array_equal(tr.output, model(x2).numpy())
    with pytest.raises(InputError, match="features"):
        viewer.set_input(torch.randn(1, 4, 2))
    assert viewer.trace is tr  # the failed input changed nothing


def test_typing_an_input_in_the_window_runs_the_model(viewer, qtbot):
    model = viewer.model.module
    before = model.calls
    editor = viewer.window.editor
    editor.edit.clear()
    qtbot.keyClicks(editor.edit, "0.5 1 -1; 0 0 2; 1 1 1; -2 0 0")  # 4 steps of 3 numbers
    qtbot.mouseClick(editor.apply_button, Qt.MouseButton.LeftButton)
    assert model.calls == before + 1
    assert viewer.trace.timesteps == 4
    want = np.array([[[0.5, 1, -1], [0, 0, 2], [1, 1, 1], [-2, 0, 0]]], np.float32)
    with torch.no_grad():
        np.testing.assert_array_equal(viewer.trace.output, model(torch.from_numpy(want)).numpy())


def test_keras_encoder_decoder_in_the_window(qtbot):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    enc_in = keras.Input((None, 5), name="encoder_inputs")
    _, h, c = keras.layers.LSTM(6, return_state=True, name="encoder")(enc_in)
    dec_in = keras.Input((None, 4), name="decoder_inputs")
    dec = keras.layers.LSTM(6, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    model = keras.Model([enc_in, dec_in], keras.layers.Dense(4, activation="softmax")(dec))
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(1, 7, 5)), rng.normal(size=(1, 3, 4))]
    xs = [a.astype("float32") for a in xs]
    v = lstmviz.show(model, xs, block=False)
    qtbot.addWidget(v.window)
    assert v.layers == ["encoder", "decoder"]
    v.layer = "decoder"
    assert v.window.state.timesteps == 3
    qtbot.keyClick(v.window, Qt.Key.Key_End)
    assert v.t == 2
    v.set_input([xs[0][:, :4], rng.normal(size=(1, 5, 4)).astype("float32")])
    assert v.trace.layer("encoder").timesteps == 4 and v.trace.layer("decoder").timesteps == 5
    v.close()


def test_screenshot(viewer, tmp_path):
    viewer.t = 3
    img = viewer.screenshot(tmp_path / "shot.png")
    assert img.shape == (900, 1600, 4) and img.dtype == np.uint8
    assert (tmp_path / "shot.png").stat().st_size > 10_000
    assert img[..., :3].std() > 10  # something was drawn
    with pytest.raises(InputError, match="png"):
        viewer.screenshot(tmp_path / "shot.jpg")


def test_show_a_model_file_and_refusals(qtbot, tmp_path):
    from lstmviz.examples import default_example

    ex = default_example()
    if ex is None:
        pytest.skip("no bundled example")
    v = lstmviz.show(str(ex.path), block=False, t=2)
    qtbot.addWidget(v.window)
    assert v.t == 2 and v.trace is not None
    v.close()
    with pytest.raises(InputError, match="example input"):
        lstmviz.show(Counted(), block=False)
    with pytest.raises(LstmvizError, match=r"torch\.nn\.Module"):
        lstmviz.show(42, block=False)


def test_show_blocks_until_its_window_is_closed(qtbot):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    closed = []

    def close_it():
        for w in QApplication.topLevelWidgets():
            if type(w).__name__ == "MainWindow" and w.isVisible():
                w.close()  # the user closes the window (its title bar button)
                closed.append(w)

    QTimer.singleShot(1500, close_it)
    v = lstmviz.show(Counted().eval(), torch.randn(1, 5, 3), block=True)
    assert closed and not v.window.isVisible()  # it returned because its window closed


def test_no_display_is_refused_with_the_inline_route(monkeypatch):
    import lstmviz.app.viewer as viewer_mod
    from lstmviz.app import main

    monkeypatch.setattr(main, "xcb_problem", lambda env=None: "lstmviz: error: no display")
    monkeypatch.setattr("PySide6.QtWidgets.QApplication.instance", staticmethod(lambda: None))
    with pytest.raises(LstmvizError, match=r"no display[\s\S]*trace\.plot"):
        viewer_mod._application()
