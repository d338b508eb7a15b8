"""PySide6-Essentials 6.12.0 + pyqtgraph 0.14.0 abort on the first paint of an axis
(``Fatal Python error: none_dealloc`` in ``AxisItem.drawPicture``). This test really paints
plots with axes, an image and a colour bar -- in a subprocess, so an abort fails the test
instead of killing the suite."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PAINT = textwrap.dedent(
    """
    import os
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    import numpy as np
    import pyqtgraph as pg
    from PySide6 import QtWidgets, QtCore
    app = QtWidgets.QApplication([])
    w = pg.GraphicsLayoutWidget(size=(600, 400))
    p = w.addPlot(title="forget gate f")
    p.setLabel("bottom", "timestep"); p.setLabel("left", "unit")
    img = pg.ImageItem(np.random.default_rng(0).random((8, 20)), axisOrder="row-major")
    p.addItem(img)
    bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"))
    bar.setImageItem(img, insert_in=p)
    p2 = w.addPlot(row=1, col=0)
    p2.plot(np.sin(np.linspace(0, 6, 100)), pen=pg.mkPen(width=3))
    w.show()
    app.processEvents()
    qimg = w.grab().toImage()
    assert qimg.width() > 100 and qimg.height() > 100
    # the pixels are not all one colour: something was really drawn
    colours = {
        qimg.pixel(x, y) for x in range(0, qimg.width(), 7) for y in range(0, qimg.height(), 7)
    }
    assert len(colours) > 10, len(colours)
    import PySide6
    print("painted", PySide6.__version__, pg.__version__)
    # tear down in order (widgets before the application): PySide6 segfaults at interpreter
    # exit now and then when Python's garbage collector destroys them in the wrong order
    w.close(); w.deleteLater(); del w, p, p2, img, bar
    import gc; gc.collect(); app.processEvents()
    app.shutdown()
    """
)


def test_axes_really_paint():
    r = subprocess.run([sys.executable, "-c", PAINT], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (
        f"painting a pyqtgraph plot crashed (exit {r.returncode}); PySide6 6.12.0 + pyqtgraph "
        f"0.14.0 is known to abort here -- install the pinned versions.\n{r.stderr[-3000:]}"
    )
    assert "painted" in r.stdout
