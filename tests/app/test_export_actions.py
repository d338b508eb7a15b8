"""File -> Export and right-click export in the real main window (headless, no dialogs)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from lstmviz.engine.trace import QUANTITIES

from .models import digit_info, digit_model

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def exp(window):
    """(window, ExportActions) with a digit model of 10 units and 6 timesteps."""
    window.build_actions()
    ext = window.export_actions
    window.state.set_model(digit_model(), None, digit_info())
    window.state.set_t(2)
    yield window, ext
    ext.shutdown()


def wait(qtbot, worker, timeout=60000):
    """Wait for a worker to end; returns what it finished with (or raises its error)."""
    results, errors = [], []
    worker.finished.connect(results.append)
    worker.failed.connect(errors.append)
    with qtbot.waitSignal(worker.done, timeout=timeout):
        pass
    assert not errors, errors
    return results[0] if results else None


def gif_frames(path):
    import imageio.v3 as iio

    return iio.imread(path, index=None)


def test_menu_submenu_and_enabling(window):
    window.build_actions()
    ext = window.export_actions
    try:
        file = window.menu("File")
        sub = next(a.menu() for a in file.actions() if a.menu() is ext.menu)
        texts = [a.text() for a in sub.actions()]
        assert texts == [
            "&Figure (PNG, SVG, PDF)…",
            "&Animation (GIF, MP4)…",
            "Trace &data (NPZ, CSV, JSON)…",
        ]
        assert ext.figure_action.shortcut().toString() == "Ctrl+E"
        assert not ext.figure_action.isEnabled()  # nothing to export yet
        ext.ask("figure")
        assert "Open a model first" in window.last_error
        window.error_dialog.close()
        window.state.set_model(digit_model(), None, digit_info())
        assert all(a.isEnabled() for a in ext.actions_)
    finally:
        ext.shutdown()


def test_grid_figure_pdf_svg_png(exp, qtbot, tmp_path):
    from PIL import Image

    from lstmviz.app.export_actions import export_figure

    window, _ext = exp
    pdf = wait(qtbot, export_figure(window, tmp_path / "g.pdf", style="slide"))
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert b"/FontFile2" in data
    svg = wait(qtbot, export_figure(window, tmp_path / "g.svg"))
    texts = " ".join("".join(t.itertext()) for t in ET.parse(svg).getroot().iter(f"{SVG}text"))
    assert "forget gate f" in texts
    assert "t = 2" in texts
    assert "digit_sum" in texts
    png = wait(qtbot, export_figure(window, tmp_path / "g.png", size=(6, 3), dpi=50))
    with Image.open(png) as im:
        assert im.size == (300, 150)
    assert window.last_status.startswith("Exported")


def test_window_figure_svg_pdf_png(exp, tmp_path):
    from PIL import Image

    from lstmviz.app.export_actions import export_figure

    window, _ = exp
    svg = export_figure(window, tmp_path / "w.svg", what="window")
    root = ET.parse(svg).getroot()
    assert len(list(root.iter(f"{SVG}text"))) > 10  # real text from every panel
    pdf = export_figure(window, tmp_path / "w.pdf", what="window", dpi=72)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", data)) == 1
    png = export_figure(window, tmp_path / "w.png", what="window", size=(8, 4.5), dpi=100)
    with Image.open(png) as im:
        assert im.size == (800, 450)
        a = np.asarray(im.convert("RGB"), np.float64)
    assert a.std() > 10


def test_grid_animation_gif_and_mp4(exp, qtbot, tmp_path):
    from lstmviz.app.export_actions import export_animation

    window, ext = exp
    T = window.state.timesteps
    seen = []
    w = export_animation(window, tmp_path / "a.gif", dpi=40)
    w.progress.connect(lambda i, n: seen.append((i, n)))
    assert ext.progress_dialog is not None  # progress with Cancel
    wait(qtbot, w)
    assert gif_frames(tmp_path / "a.gif").shape[0] == T
    assert ext.progress_dialog is None
    w = export_animation(window, tmp_path / "a.mp4", dpi=40, fps=10)
    wait(qtbot, w)
    from tests.export.test_cli import decode_mp4

    frames, info = decode_mp4(tmp_path / "a.mp4")
    assert frames.shape[0] == T
    assert "h264" in info


def test_cancel_an_animation(exp, qtbot, tmp_path):
    from lstmviz.app.export_actions import export_animation

    window, ext = exp
    w = export_animation(window, tmp_path / "a.mp4", dpi=40)
    ext.progress_dialog.canceled.emit()  # what the Cancel button sends
    with qtbot.waitSignal(w.done, timeout=60000):
        pass
    assert not (tmp_path / "a.mp4").exists()
    assert list(tmp_path.iterdir()) == []
    assert "cancelled" in window.last_status


def test_window_animation_restores_t(exp, tmp_path):
    from lstmviz.app.export_actions import export_animation

    window, _ = exp
    out = export_animation(window, tmp_path / "w.gif", what="window", size=(4, 2.25), dpi=60)
    frames = gif_frames(out)
    assert frames.shape[0] == window.state.timesteps
    assert frames.shape[1:3] == (136, 240)  # even sizes
    assert not np.array_equal(frames[0], frames[-1])
    assert window.state.t == 2


def test_trace_data(exp, qtbot, tmp_path):
    from lstmviz.app.export_actions import export_data

    window, _ = exp
    doc = window.state
    lt = doc.layer_trace
    npz = wait(qtbot, export_data(window, tmp_path / "t.npz"))
    with np.load(npz, allow_pickle=False) as z:
        for q in QUANTITIES:
            np.testing.assert_array_equal(z[f"{lt.name}/{q}"], lt.get(q))
        np.testing.assert_array_equal(z["output"], doc.trace.output)
    csv = wait(qtbot, export_data(window, tmp_path / "t.csv"))
    rows = csv.read_text(encoding="utf-8").splitlines()
    assert len(rows) - 1 == lt.batch_size * lt.timesteps * lt.units * len(QUANTITIES)
    js = wait(qtbot, export_data(window, tmp_path / "t.json", values=True))
    doc_json = json.loads(js.read_text(encoding="utf-8"))
    assert doc_json["input"]["source"] == "app"
    assert doc_json["extra"]["t"] == 2
    np.testing.assert_array_equal(
        np.asarray(doc_json["values"][lt.name]["cell"], np.float32), lt.cell
    )


def test_export_one_plot(exp, qtbot, tmp_path):
    from PIL import Image

    from lstmviz.app.export_actions import export_plot

    window, _ = exp
    svg = wait(qtbot, export_plot(window, "heatmap_cell", tmp_path / "c.svg"))
    root = ET.parse(svg).getroot()
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert "cell state c" in texts
    assert "forget gate f" not in texts
    png = export_plot(window, "unit_lines", tmp_path / "u.png", style="screen", dpi=96)
    with Image.open(png) as im:
        assert im.size[0] > 50
        assert im.size[1] > 30
        assert np.asarray(im.convert("RGB")).std() > 3
    pdf = export_plot(window, "bars", tmp_path / "b.pdf", style="screen")
    assert pdf.read_bytes().startswith(b"%PDF-")
    svg2 = export_plot(window, "heatmap_forget_gate", tmp_path / "f.svg", style="screen")
    assert list(ET.parse(svg2).getroot().iter(f"{SVG}text"))
    gif = export_plot(window, "output", tmp_path / "o.gif", style="screen", dpi=48)
    assert gif_frames(gif).shape[0] == window.state.timesteps
    wgif = wait(qtbot, export_plot(window, "heatmap_hidden", tmp_path / "h.gif", dpi=40))
    assert gif_frames(wgif).shape[0] == window.state.timesteps
    with pytest.raises(Exception, match="no plot named"):
        export_plot(window, "nope", tmp_path / "n.png")


def test_right_click_menus(exp, qtbot):
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QContextMenuEvent
    from PySide6.QtWidgets import QApplication

    window, ext = exp
    hm = window.heatmaps
    key = next(iter(hm.maps))
    pos = hm.scene_pos_of(key, 1, 1)
    name = ext.plot_at(hm.scene(), pos)
    assert name == f"heatmap_{key}"
    menu = ext.context_menu(name)
    assert [a.text() for a in menu.actions()][:2] == [
        "Export this plot…",
        "Export the six heatmaps…",
    ]
    menu.close()
    opened = []
    ext.context_menu = lambda n: opened.append(n) or _Menu()
    strip = window.plot_widgets()["token_strip"]
    QApplication.sendEvent(
        strip,
        QContextMenuEvent(
            QContextMenuEvent.Reason.Mouse, QPoint(5, 5), strip.mapToGlobal(QPoint(5, 5))
        ),
    )
    assert opened == ["token_strip"]
    # a real right click on a heatmap opens its menu and leaves the timestep alone
    from PySide6.QtCore import Qt

    t0 = window.state.t
    vpos = hm.mapFromScene(hm.scene_pos_of(key, 4, 1))
    qtbot.mouseClick(hm.viewport(), Qt.MouseButton.RightButton, pos=vpos)
    qtbot.waitUntil(lambda: len(opened) == 2, timeout=3000)
    assert opened[1] == f"heatmap_{key}"
    assert window.state.t == t0


class _Menu:
    def popup(self, *_):
        pass


def test_dialog_options_and_run(exp, qtbot, tmp_path):
    from lstmviz.app.export_actions import ExportDialog

    window, ext = exp
    dlg = ExportDialog("figure", window)
    qtbot.addWidget(dlg)
    assert dlg.path.text().endswith(".pdf")
    assert dlg.dpi.value() == 300
    assert dlg.width_in.value() == pytest.approx(7.0)
    assert "2100 \u00d7 1170" in dlg.pixels.text()
    dlg.style.setCurrentIndex(1)  # slide
    assert dlg.dpi.value() == 150
    dlg.default_size.setChecked(False)
    dlg.width_in.setValue(5)
    dlg.height_in.setValue(2.5)
    dlg.dpi.setValue(40)
    dlg.path.setText(str(tmp_path / "d.png"))
    o = dlg.options()
    assert (o.what, o.style, o.size, o.dpi) == ("grid", "slide", (5.0, 2.5), 40.0)
    dlg.path.setText(str(tmp_path / "d.mp4"))  # not a figure format: refused
    assert not dlg.isVisible() or dlg.result() == 0
    w = ext.run("figure", o)
    wait(qtbot, w)
    assert (tmp_path / "d.png").is_file()

    ddlg = ExportDialog("data", window)
    qtbot.addWidget(ddlg)
    ddlg.all_batch.setChecked(False)
    ddlg.values.setChecked(True)
    o = ddlg.options()
    assert (o.all_layers, o.all_batch, o.values) == (True, False, True)
    pdlg = ExportDialog("plot", window, "unit_lines")
    qtbot.addWidget(pdlg)
    assert [pdlg.style.itemData(i) for i in range(pdlg.style.count())] == ["screen"]


def test_colour_maps_are_the_apps():
    """Exported figures use the colour maps the app shows."""
    from lstmviz.app.style import GATE_CMAP, SIGNED_CMAP
    from lstmviz.export.style import COLORMAPS, cet_table

    for q in ("input_gate", "forget_gate", "output_gate"):
        assert COLORMAPS[q] == GATE_CMAP
    for q in ("candidate", "cell", "hidden"):
        assert COLORMAPS[q] == SIGNED_CMAP
    table = cet_table(SIGNED_CMAP)
    assert table is not None  # read from pyqtgraph's table, not the fallback
    import pyqtgraph as pg

    lut = pg.colormap.get(SIGNED_CMAP).getLookupTable(nPts=len(table)) / 255.0
    np.testing.assert_allclose(lut[:, :3], table, atol=2 / 255)


def test_menu_action_dialog_save_runs_the_export(exp, qtbot, tmp_path):
    from PySide6.QtWidgets import QDialogButtonBox

    from lstmviz.app.export_actions import ExportDialog

    window, ext = exp
    ext.data_action.trigger()
    dialogs = window.findChildren(ExportDialog)
    assert len(dialogs) == 1  # the dialog the menu action opened
    dlg = dialogs[0]
    assert dlg.isVisible()
    assert dlg.windowTitle() == "Export trace data"
    box = dlg.findChild(QDialogButtonBox)
    dlg.path.setText(str(tmp_path / "from_menu.npz"))
    box.button(QDialogButtonBox.StandardButton.Save).click()
    qtbot.waitUntil(lambda: (tmp_path / "from_menu.npz").is_file(), timeout=30000)
    qtbot.waitUntil(lambda: not ext.runner.is_running(), timeout=30000)
    assert ext.last_path == tmp_path / "from_menu.npz"
    with np.load(tmp_path / "from_menu.npz", allow_pickle=False) as z:
        assert "output" in z.files
