"""``lstmviz`` entry point: arguments, screenshots of the real window, the xcb hint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lstmviz.app import main as app_main
from lstmviz.errors import LstmvizError


@pytest.fixture(scope="module")
def keras_digit_model(tmp_path_factory):
    """A real Keras digit-sum model saved as .keras with its sidecar (TF work once)."""
    pytest.importorskip("keras")
    from lstmviz.io.meta import save_info
    from tests.keras_models import digit_sum, randomize

    from .models import digit_info

    d = tmp_path_factory.mktemp("keras_app")
    m = digit_sum(units=12)
    randomize(m, seed=1)
    path = d / "digit_sum.keras"
    m.save(path)
    save_info(path, digit_info())
    x = np.eye(10, dtype=np.float32)[[[4, 7, 3, 9, 1, 2]]]
    return path, np.asarray(m(x))


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_parse_args():
    a = app_main.parse_args(["m.keras", "--step", "3", "--size", "800x600", "--layer", "x"])
    assert (a.model, a.step, a.width, a.height, a.layer) == ("m.keras", 3, 800, 600, "x")
    with pytest.raises(LstmvizError, match=r"--size must look like 1600x900"):
        app_main.parse_args(["--size", "big"])
    with pytest.raises(LstmvizError, match="either --input or --text"):
        app_main.parse_args(["m.keras", "--input", "a.npy", "--text", "1 2"])
    with pytest.raises(LstmvizError, match=r"must name a \.png"):
        app_main.parse_args(["m.keras", "--screenshot", "a.jpg"])


def test_missing_files_are_named(tmp_path):
    with pytest.raises(LstmvizError, match=r"nope\.keras: no such file"):
        app_main.main([str(tmp_path / "nope.keras"), "--screenshot", str(tmp_path / "a.png")])


def test_xcb_hint(monkeypatch, capsys):
    monkeypatch.setattr(app_main, "_have_library", lambda name, soname: False)
    monkeypatch.setattr(app_main, "_missing_xcb_libraries", lambda: None)
    env = {"DISPLAY": ":0"}
    assert "sudo apt-get install libxcb-cursor0 " in app_main.xcb_problem(env)
    monkeypatch.setattr(
        app_main,
        "_missing_xcb_libraries",
        lambda: ["libxcb-icccm.so.4", "libxcb-cursor.so.0", "libfoo-bar.so.2"],
    )
    hint = app_main.xcb_problem(env)
    assert "missing: libxcb-icccm.so.4, libxcb-cursor.so.0, libfoo-bar.so.2." in hint
    assert "sudo apt-get install libxcb-icccm4 libxcb-cursor0 libfoo-bar2" in hint
    monkeypatch.setattr(app_main, "_missing_xcb_libraries", lambda: [])
    assert app_main.xcb_problem(env) is None
    monkeypatch.setattr(app_main, "_missing_xcb_libraries", lambda: ["libxcb-cursor.so.0"])
    assert app_main.xcb_problem({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}) is None
    assert "no display to open a window on" in app_main.xcb_problem({})
    assert app_main.xcb_problem({"WAYLAND_DISPLAY": "wayland-0"}) is None
    monkeypatch.setattr(os, "environ", {"DISPLAY": ":0", "PATH": os.environ.get("PATH", "")})
    assert app_main.main([]) == 3
    assert "libxcb-cursor0" in capsys.readouterr().err


def test_screenshot_in_process(qtbot, keras_digit_model, tmp_path):
    path, _ = keras_digit_model
    out = tmp_path / "shot.png"
    assert (
        app_main.main([str(path), "--step", "2", "--size", "1200x700", "--screenshot", str(out)])
        == 0
    )
    assert _png_size(out) == (1200, 700)


def test_screenshot_bad_layer_is_an_error(qtbot, keras_digit_model, tmp_path):
    path, _ = keras_digit_model
    with pytest.raises(LstmvizError, match="no LSTM layer named 'nope'"):
        app_main.main([str(path), "--layer", "nope", "--screenshot", str(tmp_path / "a.png")])
    with pytest.raises(LstmvizError, match=r"--step 50 is past the end"):
        app_main.main([str(path), "--step", "50", "--screenshot", str(tmp_path / "a.png")])


def test_window_opens_keras_file(window, qtbot, keras_digit_model):
    path, keras_out = keras_digit_model
    with qtbot.waitSignal(window.state.events.trace, timeout=20000):
        window.open_model(path)
    doc = window.state
    assert doc.layer == "lstm_digits"
    assert doc.token_labels() == ["4", "7", "3", "9", "1", "2"]
    np.testing.assert_allclose(doc.trace.output, keras_out, rtol=1e-4, atol=1e-5)
    assert str(Path(path).resolve()) in window.recent_files()
    assert "Digit sum" in window.windowTitle()


def test_cli_screenshot_subprocess_without_tensorflow(keras_digit_model, tmp_path):
    """The real command, headless; TensorFlow is never imported on the way."""
    path, _ = keras_digit_model
    out = tmp_path / "cli.png"
    code = (
        "import sys; from lstmviz.cli import main; "
        f"rc = main([{str(path)!r}, '--text', '1 2 3 4', '--step', '3', '--presentation', "
        f"'--screenshot', {str(out)!r}]); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'; sys.exit(rc)"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert _png_size(out) == (1600, 900)


def test_screenshot_with_input_file(qtbot, keras_digit_model, tmp_path):
    path, _ = keras_digit_model
    x = tmp_path / "digits.csv"
    x.write_text(
        "\n".join(",".join("1" if j == d else "0" for j in range(10)) for d in (3, 1, 4, 1, 5))
    )
    out = tmp_path / "in.png"
    assert (
        app_main.main(
            [
                str(path),
                "--input",
                str(x),
                "--step",
                "4",
                "--size",
                "1280x800",
                "--screenshot",
                str(out),
            ]
        )
        == 0
    )
    assert _png_size(out) == (1280, 800)


def test_no_bundled_model_shows_the_welcome_page(qtbot, tmp_path, monkeypatch):
    import lstmviz.examples

    monkeypatch.setattr(lstmviz.examples, "default_example", lambda: None)
    monkeypatch.setattr(lstmviz.examples, "list_examples", lambda: [])
    out = tmp_path / "welcome.png"
    assert app_main.main(["--screenshot", str(out)]) == 0
    assert _png_size(out) == (1600, 900)
