"""The transport bar: start, back, play/pause, forward, end, a slider over time, and speed.

Playback follows napari's animation: a timer asks for the next step and the GUI thread sets
``t``; slider drags go through a rate-limited :class:`pyqtgraph.SignalProxy`.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QToolButton, QWidget

from ..state import ViewerState

SPEEDS = (0.5, 1, 2, 4, 8, 15, 30, 60, 120)  # steps per second


class Transport(QWidget):
    """Buttons, slider and speed for stepping through the sequence."""

    playing_changed = Signal(bool)

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.speed_index = SPEEDS.index(4)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 2, 6, 2)

        def button(text: str, tip: str, slot: Any) -> QToolButton:
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(slot)
            b.setMinimumWidth(38)
            lay.addWidget(b)
            return b

        self.start_button = button("⇤", "Start (Home)", self.to_start)
        self.back_button = button("◀", "Back one step (Left, PageUp)", self.back)
        self.play_button = button("▶ play", "Play / pause (Space)", self.toggle_play)
        self.forward_button = button("▶", "Forward one step (Right, PageDown)", self.forward)
        self.end_button = button("⇥", "End (End)", self.to_end)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setToolTip("Drag to move through time")
        lay.addWidget(self.slider, 1)
        self.t_label = QLabel()
        self.t_label.setMinimumWidth(120)
        self.t_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.t_label)
        self.slower_button = button("−", "Slower (-)", self.slower)
        self.speed_label = QLabel()
        self.speed_label.setToolTip("Playback speed (+ / -)")
        lay.addWidget(self.speed_label)
        self.faster_button = button("+", "Faster (+)", self.faster)
        self._proxy = pg.SignalProxy(
            self.slider.valueChanged, rateLimit=60, delay=0, slot=self._on_slider
        )
        state.events.trace.connect(self._on_trace_changed)
        state.events.layer.connect(self._on_trace_changed)
        state.events.t.connect(self._on_t_changed)
        self._update_speed()
        self._on_trace_changed()

    # --- actions -------------------------------------------------------------------------------
    def forward(self) -> None:
        self.state.step(1)

    def back(self) -> None:
        self.state.step(-1)

    def to_start(self) -> None:
        self.state.set_t(0)

    def to_end(self) -> None:
        self.state.set_t(self.state.timesteps - 1)

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def toggle_play(self) -> None:
        self.set_playing(not self.playing)

    def set_playing(self, on: bool) -> None:
        if on == self.playing:
            return
        if on:
            if self.state.t >= self.state.timesteps - 1:
                self.state.set_t(0)
            self.timer.start(int(1000 / SPEEDS[self.speed_index]))
        else:
            self.timer.stop()
        self.play_button.setText("❚❚ pause" if on else "▶ play")
        self.playing_changed.emit(on)

    def faster(self) -> None:
        self.speed_index = min(self.speed_index + 1, len(SPEEDS) - 1)
        self._update_speed()

    def slower(self) -> None:
        self.speed_index = max(self.speed_index - 1, 0)
        self._update_speed()

    @property
    def speed(self) -> float:
        return SPEEDS[self.speed_index]

    def _update_speed(self) -> None:
        s = SPEEDS[self.speed_index]
        self.speed_label.setText(f"{s:g} steps/s")
        if self.playing:
            self.timer.setInterval(int(1000 / s))

    def _tick(self) -> None:
        doc = self.state
        if doc.t >= doc.timesteps - 1:
            self.set_playing(False)
            return
        doc.step(1)

    # --- state -> view ------------------------------------------------------------------
    def _on_slider(self, args: Any) -> None:
        self.state.set_t(int(args[0]))

    def _on_trace_changed(self, *_: Any) -> None:
        n = self.state.timesteps
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(n - 1, 0))
        self.slider.setPageStep(max(1, n // 20))
        self.slider.setValue(self.state.t)
        self.slider.blockSignals(False)
        self._on_t_changed(self.state.t)

    def _on_t_changed(self, t: int) -> None:
        n = self.state.timesteps
        if self.slider.value() != t:
            self.slider.blockSignals(True)
            self.slider.setValue(t)
            self.slider.blockSignals(False)
        self.t_label.setText(f"t = {t} / {max(n - 1, 0)}")
