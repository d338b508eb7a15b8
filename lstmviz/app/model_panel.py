"""The model panel (layers, shapes, the parameter formula, what each LSTM hands on) and the
selection panel (layer, batch item, unit filter, selected units)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPaintEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QVBoxLayout,
    QWidget,
)

from ..errors import LstmvizError
from ..state import ViewerState
from .style import NORMAL, Theme


def _esc(s: str) -> str:
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def lstm_html(name: str, lay: Any, selected: bool, theme: Theme) -> str:
    """One LSTM's shapes, parameter count with its formula, and what it returns."""
    w = lay.weights
    u, f = w.units, w.input_dim
    n = w.n_params
    bias = "+1" if w.bias is not None else ""
    proj = w.projection is not None  # PyTorch proj_size / TF1 num_proj: h has P columns
    p = w.output_units if proj else u
    ret = []
    rs = getattr(lay, "return_sequences", False)
    st = getattr(lay, "return_state", False)
    ret.append("the whole h sequence (return_sequences)" if rs else "only the last h<sub>T</sub>")
    if st:
        ret.append("then h<sub>T</sub> and c<sub>T</sub> (return_state)")
    border = "#56B4E9" if selected else "#2f333c"
    bias_txt = f" · <span style='color:{theme.muted}'>b</span> {4 * u}" if bias else ""
    return (
        f"<div style='border-left:4px solid {border}; padding-left:6px; margin:4px 0'>"
        f"<b>{_esc(name)}</b> LSTM({u})"
        f"{' · runs backwards' if getattr(lay, 'go_backwards', False) else ''}<br>"
        f"<span style='color:{theme.muted}'>W (kernel)</span> {f}×{4 * u} · "
        f"<span style='color:{theme.muted}'>U (recurrent)</span> {p}×{4 * u}"
        f"{bias_txt}"
        + (f" · <span style='color:{theme.muted}'>projection</span> {u}×{p}" if proj else "")
        + "<br>"
        + (
            f"params = 4·U·(F+P{bias}) + U·P<br>&nbsp;= 4·{u}·({f}+{p}{bias}) + {u}·{p} = "
            f"<b>{n:,}</b><br>"
            if proj
            else f"params = 4·U·(F+U{bias})<br>&nbsp;= 4·{u}·({f}+{u}{bias}) = <b>{n:,}</b><br>"
        )
        + f"<span style='color:{theme.muted}'>hands on:</span> {'; '.join(ret)}</div>"
    )


def _torch_bias_note(m: Any, theme: Theme) -> str:
    """PyTorch's nn.LSTM keeps two bias vectors (b_ih, b_hh) where Keras has one; lstmviz adds
    them into one, so torch counts 4U more parameters per layer and direction."""
    if m.format != "pytorch":
        return ""
    extra = 0
    for lay in m.lstm_layers:
        for one in (lay.forward, lay.backward) if hasattr(lay, "forward") else (lay,):
            if one.weights.bias is not None:
                extra += 4 * one.weights.units
    if not extra:
        return ""
    return (
        f"<br><span style='color:{theme.muted}'>PyTorch counts {m.n_params + extra:,}: "
        f"nn.LSTM keeps two biases (b_ih + b_hh), added into one here</span>"
    )


class ModelPanel(QLabel):
    """What the model is: title, description, each layer and its parameter count."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.theme = NORMAL
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        state.events.model.connect(self.refresh)
        state.events.layer.connect(self.refresh)
        state.events.trace.connect(self.refresh)
        self.refresh()

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.refresh()

    def refresh(self, *_: Any) -> None:
        doc = self.state
        m = doc.model
        th = self.theme
        if m is None:
            self.setText(f"<span style='color:{th.muted}'>No model open.</span>")
            return
        info = doc.info
        title = info.title if info is not None and info.title else m.name
        parts = [f"<div style='font-size:{th.title_px + 2}px'><b>{_esc(title)}</b></div>"]
        if info is not None and info.description:
            parts.append(f"<div style='color:{th.muted}'>{_esc(info.description)}</div>")
        parts.append(
            f"<div style='margin-top:6px'>{m.n_params:,} parameters · "
            f"{_esc(m.format or 'model')}{_torch_bias_note(m, th)}</div>"
        )
        for row in m.summary():
            lay = m.layers[row["name"]]
            if lay.kind == "LSTM":
                parts.append(lstm_html(row["name"], lay, doc.layer == row["name"], th))
            elif lay.kind == "Bidirectional":
                for half in ("forward", "backward"):
                    nm = f"{row['name']}/{half}"
                    parts.append(lstm_html(nm, getattr(lay, half), doc.layer == nm, th))
            elif lay.kind != "InputLayer":
                parts.append(
                    f"<div style='margin:3px 0'><b>{_esc(row['name'])}</b> "
                    f"{_esc(row['kind'])} <span style='color:{th.muted}'>"
                    f"{row['params']:,} params</span></div>"
                )
        parts.append(
            f"<div style='margin-top:8px; color:{th.muted}'><b>How to read the heatmaps:</b> one "
            "row per unit, one column per input token; the white box is the current step, "
            "darker columns are not reached yet. Gates run from 0 (closed) to 1 (open). "
            "Click a cell to jump there; arrow keys step.</div>"
        )
        self.setText("".join(parts))


#: an item's shorter text, shown when its whole text does not fit the box
SHORT_ROLE = Qt.ItemDataRole.UserRole + 1


class FitComboBox(QComboBox):
    """A combo box that shows its current item's shorter text (``SHORT_ROLE``), elided if
    need be, when the whole does not fit (the list and the tooltip keep the whole): the
    layer "first_lstm (16 units)" was cut mid-word in the Model dock at 1600 x 900."""

    def shown_text(self) -> str:
        """The text drawn in the box."""
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        room = (
            self.style()
            .subControlRect(
                QStyle.ComplexControl.CC_ComboBox, opt, QStyle.SubControl.SC_ComboBoxEditField, self
            )
            .width()
        )
        fm = self.fontMetrics()
        full = self.currentText()
        if fm.horizontalAdvance(full) <= room:
            return full
        short = self.currentData(SHORT_ROLE) or full
        return fm.elidedText(str(short), Qt.TextElideMode.ElideRight, room)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QStylePainter(self)
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        p.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, opt)
        opt.currentText = self.shown_text()
        p.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, opt)


class SelectionPanel(QWidget):
    """Layer (and "all layers"), batch item, unit filter and selected units."""

    error = Signal(str)

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        form = QFormLayout(self)
        form.setContentsMargins(4, 4, 4, 4)
        self.layer_combo = FitComboBox()
        self.layer_combo.setToolTip(
            "The LSTM layer shown (stacked and bidirectional models have several)"
        )
        self.layer_combo.activated.connect(self._on_layer_chosen)
        self.all_layers = QCheckBox("all layers at once")
        self.all_layers.setToolTip("Show forget gate, cell and hidden state of every layer")
        self.all_layers.toggled.connect(self._on_all_layers)
        state.options.events.all_layers.connect(lambda on: self.all_layers.setChecked(on))
        lv = QVBoxLayout()
        lv.setSpacing(2)
        lv.addWidget(self.layer_combo)
        lv.addWidget(self.all_layers)
        form.addRow("Layer", lv)
        self.batch_spin = QSpinBox()
        self.batch_spin.setToolTip("Which sequence of the input batch is shown")
        self.batch_spin.valueChanged.connect(self._on_batch)
        form.addRow("Batch item", self.batch_spin)
        self.filter_combo = QComboBox()
        for label, mode in (
            ("all units", "all"),
            ("most active", "active"),
            ("most saturated", "saturated"),
            ("typed list", "list"),
        ):
            self.filter_combo.addItem(label, mode)
        self.filter_combo.setToolTip("Which units the heatmaps and bars show")
        self.filter_k = QSpinBox()
        self.filter_k.setRange(1, 100000)
        self.filter_k.setValue(16)
        self.filter_k.setPrefix("top ")
        self.filter_k.setMaximumWidth(90)
        self.filter_list = QLineEdit()
        self.filter_list.setPlaceholderText("0-3, 7")
        fl = QHBoxLayout()
        fl.addWidget(self.filter_combo, 1)
        fl.addWidget(self.filter_k)
        fv = QVBoxLayout()
        fv.setSpacing(2)
        fv.addLayout(fl)
        fv.addWidget(self.filter_list)
        form.addRow("Show", fv)
        self.filter_combo.activated.connect(self._apply_filter)
        self.filter_k.editingFinished.connect(self._apply_filter)
        self.filter_list.returnPressed.connect(self._apply_filter)
        self.units_edit = QLineEdit()
        self.units_edit.setToolTip(
            "Units drawn in the line plot; the first one is explained "
            "in the unit detail. Or click a heatmap row."
        )
        self.units_edit.returnPressed.connect(self._on_units_typed)
        form.addRow("Units", self.units_edit)
        state.events.trace.connect(self.refresh)
        state.events.layer.connect(self.refresh)
        state.events.selection.connect(self._on_selection)
        state.events.batch.connect(lambda b: self.batch_spin.setValue(b))
        self.refresh()

    def _on_all_layers(self, on: bool) -> None:
        self.state.options.all_layers = on

    def refresh(self, *_: Any) -> None:
        doc = self.state
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        tr = doc.trace
        if tr is not None:
            for name in doc.layer_names:
                units = tr.layer(name).units
                self.layer_combo.addItem(f"{name} ({units} units)", name)
                k = self.layer_combo.count() - 1
                self.layer_combo.setItemData(k, f"{name} ({units})", SHORT_ROLE)
                self.layer_combo.setItemData(
                    k, f"{name}: {units} units", Qt.ItemDataRole.ToolTipRole
                )
        if doc.layer:
            self.layer_combo.setCurrentIndex(max(0, doc.layer_names.index(doc.layer)))
        self.layer_combo.blockSignals(False)
        self.all_layers.setEnabled(len(doc.layer_names) > 1)
        self.batch_spin.blockSignals(True)
        n = doc.trace.batch_size if doc.trace is not None else 1
        self.batch_spin.setRange(0, max(n - 1, 0))
        self.batch_spin.setValue(doc.batch)
        self.batch_spin.setSuffix(f" of {n}")
        self.batch_spin.blockSignals(False)
        self._on_selection()

    def _on_selection(self) -> None:
        if not self.units_edit.hasFocus():
            self.units_edit.setText(", ".join(str(u) for u in self.state.selected_units))
        mode, _arg = self.state.unit_filter
        self.filter_combo.setCurrentIndex(self.filter_combo.findData(mode))
        self.filter_k.setVisible(mode in ("active", "saturated"))
        self.filter_list.setVisible(mode == "list")

    def _on_layer_chosen(self, i: int) -> None:
        try:
            self.state.set_layer(self.layer_combo.itemData(i))
        except LstmvizError as e:
            self.error.emit(str(e))

    def _on_batch(self, b: int) -> None:
        try:
            self.state.set_batch(b)
        except LstmvizError as e:
            self.error.emit(str(e))

    def _apply_filter(self, *_: Any) -> None:
        mode = self.filter_combo.currentData()
        self.filter_k.setVisible(mode in ("active", "saturated"))
        self.filter_list.setVisible(mode == "list")
        try:
            if mode == "list":
                if not self.filter_list.text().strip():
                    self.filter_list.setFocus()
                    return
                self.state.set_unit_filter("list", self.filter_list.text())
            else:
                self.state.set_unit_filter(mode, self.filter_k.value())
        except LstmvizError as e:
            self.error.emit(str(e))

    def _on_units_typed(self) -> None:
        try:
            self.state.set_units(self.state.parse_units(self.units_edit.text()))
        except LstmvizError as e:
            self.error.emit(str(e))
