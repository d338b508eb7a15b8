"""Look and feel: themes (normal and presentation), colour maps, colours per quantity.

Colour maps are colour-blind safe: ``viridis`` (sequential) for the gates on [0, 1], the
diverging ``CET-D1A`` (blue - grey - red) for signed values on [-1, 1] (candidate, hidden) and
for the cell state (symmetric around 0 over the trace). Colours of the six quantities and of
unit curves come from the Okabe-Ito palette.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Small SVG icons the style sheet draws controls with (check marks, spin-box arrows):
#: without them a dark style sheet leaves Qt's indicators invisible.
ICONS = Path(__file__).with_name("icons")

#: The look of an empty state: a sentence saying what to do, no axes.
#: the object name of an empty state's sentence (styled in :func:`stylesheet`: grey, a
#: little larger than the type around it, in every theme)
EMPTY_STATE = "emptyState"

GATE_CMAP = "viridis"
SIGNED_CMAP = "CET-D1A"

#: Okabe-Ito: distinguishable with every common colour-vision deficiency.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#FFFFFF")

QUANTITY_COLORS = {
    "forget_gate": "#E69F00",  # orange
    "input_gate": "#009E73",  # bluish green
    "output_gate": "#CC79A7",  # reddish purple
    "candidate": "#56B4E9",  # sky blue
    "cell": "#F0E442",  # yellow
    "hidden": "#FF7F50",  # coral (vermillion, lightened for dark backgrounds)
}

#: What each quantity means, for titles a newcomer can read.
MEANINGS = {
    "forget_gate": "how much of the old cell state is kept",
    "input_gate": "how much of the candidate is written",
    "output_gate": "how much of the cell goes out as h",
    "candidate": "new values proposed for the cell",
    "cell": "the memory, carried step to step",
    "hidden": "the layer's output at each step",
}

#: The same, shorter, for presentation mode's large fonts.
SHORT_MEANINGS = {
    "forget_gate": "keeps old memory",
    "input_gate": "lets new memory in",
    "output_gate": "lets memory out",
    "candidate": "proposed new memory",
    "cell": "the memory",
    "hidden": "the output",
}

SHORT_TITLES = {
    "forget_gate": "forget gate f",
    "input_gate": "input gate i",
    "output_gate": "output gate o",
    "candidate": "candidate g",
    "cell": "cell state c",
    "hidden": "hidden state h",
}


@dataclass(frozen=True)
class Theme:
    name: str
    bg: str  # window background
    panel: str  # plot background
    fg: str  # text
    muted: str  # secondary text, axes
    accent: str  # current timestep
    font_px: int  # base font size in pixels
    title_px: int
    tick_px: int
    mono_px: int
    line_width: float
    max_unit_labels: int
    cursor_width: float
    dim_alpha: int  # 0..255 darkening of the not-yet-reached part


NORMAL = Theme(
    "normal",
    bg="#17191e",
    panel="#0f1115",
    fg="#e8e8ea",
    muted="#9aa0a6",
    accent="#ffffff",
    font_px=14,
    title_px=15,
    tick_px=12,
    mono_px=15,
    line_width=2.0,
    max_unit_labels=12,
    cursor_width=2.5,
    dim_alpha=150,
)
PRESENTATION = Theme(
    "presentation",
    bg="#000000",
    panel="#000000",
    fg="#ffffff",
    muted="#d0d0d0",
    accent="#ffffff",
    # no text below 28 px at 1080p: legible from the back of a lecture hall
    font_px=28,
    title_px=32,
    tick_px=28,
    mono_px=30,
    line_width=4.0,
    max_unit_labels=8,
    cursor_width=4.5,
    dim_alpha=170,
)


def stylesheet(theme: Theme) -> str:
    """The Qt style sheet of the widgets around the plots."""
    ind = max(14, theme.font_px + 2)  # check box indicators grow with the type
    icons = ICONS.as_posix()
    return f"""
    QWidget {{ background: {theme.bg}; color: {theme.fg}; font-size: {theme.font_px}px; }}
    QLabel#{EMPTY_STATE} {{ color: #9aa0a6; font-size: {theme.font_px + 1}px; padding: 24px; }}
    QMainWindow::separator {{ background: #2a2d35; width: 3px; height: 3px; }}
    QDockWidget::title {{ background: #22252d; padding: 4px 8px; font-weight: bold; }}
    QGroupBox {{ border: 1px solid #2f333c; border-radius: 6px; margin-top: 1.1em;
                padding: 6px; font-weight: bold; }}
    QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 4px; }}
    QLineEdit, QComboBox, QSpinBox, QPlainTextEdit {{ background: #0f1115;
                border: 1px solid #3a3f4b; border-radius: 4px; padding: 3px 6px; }}
    QLineEdit:focus {{ border: 1px solid #56B4E9; }}
    QPushButton, QToolButton {{ background: #262a33; border: 1px solid #3a3f4b;
                border-radius: 5px; padding: 4px 10px; }}
    QPushButton:hover, QToolButton:hover {{ background: #323743; }}
    QPushButton:pressed, QToolButton:pressed, QToolButton:checked {{ background: #0072B2; }}
    QSlider::groove:horizontal {{ height: 6px; background: #2f333c; border-radius: 3px; }}
    QSlider::sub-page:horizontal {{ background: #56B4E9; border-radius: 3px; }}
    QSlider::handle:horizontal {{ background: #ffffff; width: 16px; margin: -6px 0;
                border-radius: 8px; }}
    QMenuBar {{ background: #1d2026; }}
    QMenuBar::item:selected, QMenu::item:selected {{ background: #0072B2; }}
    QMenu {{ background: #1d2026; border: 1px solid #3a3f4b; }}
    QStatusBar {{ background: #1d2026; color: {theme.muted}; }}
    QToolTip {{ background: #262a33; color: #ffffff; border: 1px solid #56B4E9; }}
    QScrollArea {{ border: none; }}
    QTabBar::tab {{ background: #22252d; padding: 5px 12px; }}
    QTabBar::tab:selected {{ background: #0072B2; }}
    QCheckBox::indicator, QGroupBox::indicator {{ width: {ind}px; height: {ind}px;
                border: 1px solid #9aa0a6; border-radius: 3px; background: #0f1115; }}
    QCheckBox::indicator:hover {{ border: 1px solid #56B4E9; }}
    QCheckBox::indicator:checked, QGroupBox::indicator:checked {{ background: #56B4E9;
                border: 1px solid #56B4E9; image: url({icons}/check.svg); }}
    QCheckBox::indicator:disabled {{ border: 1px solid #4a4f5b; background: #1d2026; }}
    QMenu::indicator:checked {{ image: url({icons}/check.svg); background: #56B4E9;
                border-radius: 3px; }}
    QSpinBox, QDoubleSpinBox {{ background: #0f1115; border: 1px solid #3a3f4b;
                border-radius: 4px; padding: 3px 18px 3px 6px; }}
    QSpinBox::up-button, QDoubleSpinBox::up-button {{ subcontrol-position: top right;
                width: 16px; background: #262a33; border-left: 1px solid #3a3f4b;
                border-top-right-radius: 4px; }}
    QSpinBox::down-button, QDoubleSpinBox::down-button {{ subcontrol-position: bottom right;
                width: 16px; background: #262a33; border-left: 1px solid #3a3f4b;
                border-bottom-right-radius: 4px; }}
    QSpinBox::up-button:hover, QSpinBox::down-button:hover,
    QDoubleSpinBox::up-button:hover, QDoubleSpinBox::down-button:hover {{ background: #323743; }}
    QSpinBox::up-arrow, QDoubleSpinBox::up-arrow {{ image: url({icons}/up.svg);
                width: 9px; height: 6px; }}
    QSpinBox::down-arrow, QDoubleSpinBox::down-arrow {{ image: url({icons}/down.svg);
                width: 9px; height: 6px; }}
    QComboBox::drop-down {{ width: 18px; border-left: 1px solid #3a3f4b; }}
    QComboBox::down-arrow {{ image: url({icons}/down.svg); width: 9px; height: 6px; }}
    QComboBox QAbstractItemView {{ background: #1d2026; selection-background-color: #0072B2; }}
    """


#: the quantity whose heatmap row a highlighted part of the cell diagram points at (here, not
#: in the diagram's module: the heatmaps need it from the first frame, the diagram later)
HEATMAP_OF = {
    "forget_gate": "forget_gate",
    "input_gate": "input_gate",
    "output_gate": "output_gate",
    "candidate": "candidate",
    "cell": "cell",
    "hidden": "hidden",
    "kept": "forget_gate",
    "written": "input_gate",
    "tanh_c": "cell",
}


def colormap(name: str) -> Any:
    import pyqtgraph as pg

    return pg.colormap.get(name)


def unit_color(k: int) -> str:
    """Colour of the k-th selected unit's curve."""
    return OKABE_ITO[(k + 5) % len(OKABE_ITO)] if k else "#56B4E9"
