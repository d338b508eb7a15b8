"""The selected unit at the current step: every LSTM equation with its actual numbers.

::

    f = σ(W_f·x + U_f·h + b_f) = σ(0.52 + 0.91 − 0.06) = σ(1.37) = 0.80
    c = f·c_prev + i·g = 0.80·0.52 + 0.31·(−0.44) = 0.28
    h = o·tanh(c) = 0.65·tanh(0.28) = 0.18
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..state import ViewerState
from .stagger import hold_on_resize, staged
from .style import NORMAL, QUANTITY_COLORS, Theme

ACT_SYMBOL = {
    "sigmoid": "σ",
    "hard_sigmoid": "hσ",
    "tanh": "tanh",
    "relu": "relu",
    "linear": "",
    None: "",
    "softsign": "softsign",
    "elu": "elu",
    "selu": "selu",
    "gelu": "gelu",
    "swish": "swish",
    "silu": "silu",
    "exponential": "exp",
    "softplus": "softplus",
    "relu6": "relu6",
}

#: (symbol, LayerTrace.contributions key, quantity, meaning)
GATE_ROWS = (
    ("f", "forget_gate", "forget_gate", "keep"),
    ("i", "input_gate", "input_gate", "write"),
    ("g", "candidate", "candidate", "new value"),
    ("o", "output_gate", "output_gate", "show"),
)


def num(v: float) -> str:
    """A number with a real minus sign, 2 decimals."""
    s = f"{v:.2f}"
    if s == "-0.00":
        s = "0.00"
    return s.replace("-", "−")


def paren(v: float) -> str:
    return f"({num(v)})" if v < 0 else num(v)


def unit_equations(lt: Any, t: int, b: int, u: int) -> dict[str, Any]:
    """Everything the detail view shows for unit ``u`` of batch item ``b`` at step ``t``.

    Returns a dict with per-gate ``Wx``, ``Uh``, ``b``, ``z`` and activated value, plus
    ``c_prev``, ``c``, ``h`` -- all floats (read from the trace, not recomputed, except the
    split of each pre-activation into its three terms).
    """
    w = lt.weights
    n = lt.units
    h_prev, c_prev = lt.prev_state(t, b)
    x_t = lt.x[b, t]  # (F,)
    cols = [k * n + u for k in range(4)]  # Keras order i, f, c, o
    wx = x_t @ w.kernel[:, cols]  # (4,)
    uh = h_prev @ w.recurrent_kernel[:, cols]  # (4,)
    bias = w.bias[cols] if w.bias is not None else np.zeros(4, np.float32)
    keras_index = {"input_gate": 0, "forget_gate": 1, "candidate": 2, "output_gate": 3}
    out: dict[str, Any] = {"t": t, "b": b, "u": u}
    for _sym, key, q, _m in GATE_ROWS:
        k = keras_index[key]
        out[key] = {
            "Wx": float(wx[k]),
            "Uh": float(uh[k]),
            "b": float(bias[k]),
            "z": float(wx[k] + uh[k] + bias[k]),
            "value": float(lt.at_unit(q, t, b)[u]),
        }
    out["c_prev"] = float(c_prev[u])
    # a projected LSTM's h_prev has P columns, not one per unit: show the unit's own o·tanh(c)
    out["h_prev"] = (
        float(h_prev[u])
        if not lt.projected
        else (
            float(lt.unit_hidden[b, lt.prev_index(t)][u]) if lt.prev_index(t) is not None else 0.0
        )
    )
    out["c"] = float(lt.at_unit("cell", t, b)[u])
    out["h"] = float(lt.at_unit("hidden", t, b)[u])
    return out


Seg = tuple  # (text, color | None, bold, sub)


class UnitDetail(QWidget):
    """Monospace, large: the equations of the selected unit at ``t`` with their numbers.

    Painted directly (no rich-text layout per step): a step costs well under a millisecond.
    """

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.theme = NORMAL
        self.lines: list[list[Seg]] = []
        self.line_quantity: list[str] = []  # the quantity each line computes ("" for none)
        self.values: dict[str, Any] = {}
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._fonts()
        # a big trace: drawn in its own event-loop turn, after the views in the middle
        redraw = staged(state, self.refresh, order=5)  # (another layer or batch item too)
        for sig in (state.events.trace, state.events.layer, state.events.batch):
            sig.connect(redraw)
        hold_on_resize(state, self, order=5)
        state.events.selection.connect(self.refresh)
        state.events.t.connect(self.refresh)
        state.options.events.highlight.connect(self._on_highlight)
        state.options.events.hide_answer.connect(self.refresh)
        self.refresh()

    def _fonts(self) -> None:
        th = self.theme
        self.font_ = QFont("DejaVu Sans Mono")
        self.font_.setPixelSize(th.mono_px)
        self.bold = QFont(self.font_)
        self.bold.setBold(True)
        self.sub = QFont(self.font_)
        self.sub.setPixelSize(max(8, int(th.mono_px * 0.7)))
        fm = QFontMetrics(self.font_)
        self.line_h = int(fm.height() * 1.12)
        self.char_w = fm.horizontalAdvance("0")
        self.sub_w = QFontMetrics(self.sub).horizontalAdvance("0")

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self._fonts()
        self.refresh()

    def text(self) -> str:
        """The equations as plain text (for tests and copying)."""
        return "\n".join("".join(seg[0] for seg in line) for line in self.lines)

    def sizeHint(self) -> QSize:
        return QSize(self.char_w * 34, self.line_h * max(len(self.lines), 4) + 8)

    def minimumSizeHint(self) -> QSize:
        return QSize(self.char_w * 20, self.line_h * 4)

    def refresh(self, *_: Any) -> None:
        doc = self.state
        lt = doc.layer_trace
        th = self.theme
        if lt is None:
            self.lines = [[("Open a model to see a unit's equations.", th.muted, False, False)]]
            self.update()
            return
        b = min(doc.batch, lt.batch_size - 1)
        t = min(doc.t, lt.timesteps - 1)
        u = doc.unit if doc.unit < lt.units else 0
        v = unit_equations(lt, t, b, u)
        self.values = v
        w = lt.weights
        ra = ACT_SYMBOL.get(w.recurrent_activation, w.recurrent_activation)
        ca = ACT_SYMBOL.get(w.activation, w.activation)
        labels = doc.token_labels()
        tok = labels[t] if t < len(labels) else ""
        muted, fg = th.muted, th.fg
        lines: list[list[Seg]] = []
        head: list[Seg] = [(f"unit {u}", fg, True, False), (f" · t = {t}", fg, False, False)]
        if tok:
            head += [(" · input ", muted, False, False), (tok, fg, True, False)]
        lines.append(head)
        lines.append(
            [
                (
                    lt.name
                    + (" · runs backwards: h_prev, c_prev are from t+1" if lt.go_backwards else ""),
                    muted,
                    False,
                    False,
                )
            ]
        )
        lines.append([])
        prev = "h0" if lt.prev_index(t) is None else "h_prev"
        for sym, key, q, meaning in GATE_ROWS:
            g = v[key]
            act = ca if key == "candidate" else ra
            color = QUANTITY_COLORS[q]
            op, cl = (f"{act}(", ")") if act else ("", "")
            lines.append(
                [
                    (sym, color, True, False),
                    (f" = {op}W", fg, False, False),
                    (sym, fg, False, True),
                    ("·x + U", fg, False, False),
                    (sym, fg, False, True),
                    (f"·{prev} + b", fg, False, False),
                    (sym, fg, False, True),
                    (cl, fg, False, False),
                ]
            )
            lines.append(
                [
                    (
                        f"  = {op}{num(g['Wx'])} + {paren(g['Uh'])} + {paren(g['b'])}{cl}",
                        fg,
                        False,
                        False,
                    )
                ]
            )
            lines.append(
                [
                    (f"  = {op}{num(g['z'])}{cl} = ", fg, False, False),
                    (num(g["value"]), color, True, False),
                    (f"  {meaning}", muted, False, False),
                ]
            )
            lines.append([])
        f, i, gg, o = (
            v[k]["value"] for k in ("forget_gate", "input_gate", "candidate", "output_gate")
        )
        cc = QUANTITY_COLORS["cell"]
        hc = QUANTITY_COLORS["hidden"]
        kept, written = f * v["c_prev"], i * gg
        lines.append([("c", cc, True, False), (" = f·c_prev + i·g", fg, False, False)])
        lines.append(
            [(f"  = {num(f)}·{paren(v['c_prev'])} + {num(i)}·{paren(gg)}", fg, False, False)]
        )
        lines.append(
            [
                (f"  = {num(kept)} + {paren(written)} = ", fg, False, False),
                (num(v["c"]), cc, True, False),
            ]
        )
        lines.append([])
        hact = f"{ca}(c)" if ca else "c"
        lines.append([("h", hc, True, False), (f" = o·{hact}", fg, False, False)])
        hnum = f"{ca}({num(v['c'])})" if ca else paren(v["c"])
        lines.append(
            [(f"  = {num(o)}·{hnum} = ", fg, False, False), (num(v["h"]), hc, True, False)]
        )
        lines.append([])
        total = abs(kept) + abs(written) or 1.0
        n_bar = 20
        k_bar = round(n_bar * abs(kept) / total)
        lines.append(
            [
                ("█" * k_bar, "#E69F00", False, False),
                ("█" * (n_bar - k_bar), "#009E73", False, False),
            ]
        )
        lines.append(
            [
                (f"kept {abs(kept) / total:.0%}", "#E69F00", False, False),
                (" · ", muted, False, False),
                (f"written {abs(written) / total:.0%}", "#009E73", False, False),
            ]
        )
        if doc.options.hide_answer:  # a lesson asks first: the cell's update is the answer
            at = 3 + 4 * len(GATE_ROWS)
            lines = [
                *lines[:at],
                [("c", cc, True, False), (" = f·c_prev + i·g = ?", fg, False, False)],
                [],
                [("h", hc, True, False), (f" = o·{hact} = ?", fg, False, False)],
            ]
        tags = ["", "", ""]
        for _sym, _key, q, _m in GATE_ROWS:
            tags += [q, q, q, ""]
        if doc.options.hide_answer:
            tags += ["cell", "", "hidden"]
        else:
            tags += ["cell"] * 3 + [""] + ["hidden"] * 2 + [""] + ["share", "share"]
        grow = len(lines) != len(self.lines)
        self.lines = lines
        self.line_quantity = tags[: len(lines)] + [""] * (len(lines) - len(tags))
        if grow:
            self.setMinimumHeight(self.line_h * len(lines) + 8)
        self.update()

    def _on_highlight(self, _quantity: str) -> None:
        self.update()

    def highlighted(self, k: int) -> bool:
        """Whether line ``k`` computes the quantity highlighted in the cell diagram."""
        hl = self.state.options.highlight
        tag = self.line_quantity[k] if k < len(self.line_quantity) else ""
        if not hl or not tag:
            return False
        if hl in ("kept", "written"):
            return tag in ("cell", "share")
        if hl == "tanh_c":
            return tag == "hidden"
        return tag == hl

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(self.theme.bg))
        y = 4
        fm = QFontMetrics(self.font_)
        asc = fm.ascent()
        for k, line in enumerate(self.lines):
            if not line:
                y += self.line_h // 2
                continue
            if self.highlighted(k):
                p.fillRect(2, y, self.width() - 4, self.line_h, QColor(86, 180, 233, 70))
            x = 6
            for text, color, bold, sub in line:
                f = self.sub if sub else (self.bold if bold else self.font_)
                p.setFont(f)
                p.setPen(QColor(color or self.theme.fg))
                dy = int(self.theme.mono_px * 0.25) if sub else 0
                p.drawText(x, y + asc + dy, text)
                x += QFontMetrics(f).horizontalAdvance(text)
            y += self.line_h
        p.end()
