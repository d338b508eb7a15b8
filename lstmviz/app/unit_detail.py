"""The selected unit at the current step: every LSTM equation with its actual numbers.

::

    f = σ(W_f·x + U_f·h + b_f) = σ(0.52 + 0.91 − 0.06) = σ(1.37) = 0.80
    c = f·c_prev + i·g = 0.80·0.52 + 0.31·(−0.44) = 0.28
    h = o·tanh(c) = 0.65·tanh(0.28) = 0.18
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from .document import Document
from .style import NORMAL, QUANTITY_COLORS, Theme

ACT_SYMBOL = {"sigmoid": "σ", "hard_sigmoid": "hσ", "tanh": "tanh", "relu": "relu",
              "linear": "", None: "", "softsign": "softsign", "elu": "elu", "selu": "selu",
              "gelu": "gelu", "swish": "swish", "silu": "silu", "exponential": "exp",
              "softplus": "softplus", "relu6": "relu6"}

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
        out[key] = {"Wx": float(wx[k]), "Uh": float(uh[k]), "b": float(bias[k]),
                    "z": float(wx[k] + uh[k] + bias[k]), "value": float(lt.at(q, t, b)[u])}
    out["c_prev"] = float(c_prev[u])
    out["h_prev"] = float(h_prev[u])
    out["c"] = float(lt.at("cell", t, b)[u])
    out["h"] = float(lt.at("hidden", t, b)[u])
    return out


class UnitDetail(QWidget):
    """Monospace, large: the equations of the selected unit at ``t`` with their numbers."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.theme = NORMAL
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.label.setWordWrap(False)
        lay.addWidget(self.label, 1)
        self.values: dict[str, Any] = {}
        for sig in (document.trace_changed, document.selection_changed, document.batch_changed,
                    document.layer_changed):
            sig.connect(self.refresh)
        document.t_changed.connect(self.refresh)
        self.refresh()

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.refresh()

    def text(self) -> str:
        """The equations as plain text (for tests and copying)."""
        from PySide6.QtGui import QTextDocument

        d = QTextDocument()
        d.setHtml(self.label.text())
        return d.toPlainText()

    def refresh(self, *_: Any) -> None:
        doc = self.document
        lt = doc.layer_trace
        th = self.theme
        if lt is None:
            self.label.setText(f"<span style='color:{th.muted}'>Open a model to see a unit's "
                               "equations.</span>")
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
        fs = th.mono_px
        muted = th.muted
        lines = []
        head = (f"<div style='font-size:{th.title_px}px; margin-bottom:6px'><b>unit {u}</b>"
                f" · t = {t}" + (f" · input <b>{_esc(tok)}</b>" if tok else "")
                + f" <span style='color:{muted}'>· {_esc(lt.name)}</span></div>")
        prev = "h₀" if lt.prev_index(t) is None else "h_prev"
        for sym, key, _q, meaning in GATE_ROWS:
            g = v[key]
            act = ca if key == "candidate" else ra
            color = QUANTITY_COLORS[_q]
            wrap = (lambda s, a=act: f"{a}({s})" if a else s)
            formula = f"W<sub>{sym}</sub>·x + U<sub>{sym}</sub>·{prev} + b<sub>{sym}</sub>"
            terms = f"{num(g['Wx'])} + {paren(g['Uh'])} + {paren(g['b'])}"
            lines.append(
                f"<span style='color:{color}; font-weight:bold'>{sym}</span> = "
                f"{wrap(formula)}"
                f"<br>&nbsp;&nbsp;= {wrap(terms)}"
                f"<br>&nbsp;&nbsp;= {wrap(num(g['z']))} = "
                f"<b style='color:{color}'>{num(g['value'])}</b>"
                f" <span style='color:{muted}; font-size:{int(fs * 0.8)}px'>({meaning})</span>")
        f, i, gg, o = (v[k]["value"] for k in ("forget_gate", "input_gate", "candidate",
                                                "output_gate"))
        cc = QUANTITY_COLORS["cell"]
        hc = QUANTITY_COLORS["hidden"]
        kept, written = f * v["c_prev"], i * gg
        lines.append(
            f"<span style='color:{cc}; font-weight:bold'>c</span> = f·c_prev + i·g"
            f"<br>&nbsp;&nbsp;= {num(f)}·{paren(v['c_prev'])} + {num(i)}·{paren(gg)}"
            f"<br>&nbsp;&nbsp;= {num(kept)} + {paren(written)} = "
            f"<b style='color:{cc}'>{num(v['c'])}</b>")
        hact = ca or ""
        lines.append(
            f"<span style='color:{hc}; font-weight:bold'>h</span> = o·{hact}(c)"
            f"<br>&nbsp;&nbsp;= {num(o)}·{hact}({num(v['c'])}) = "
            f"<b style='color:{hc}'>{num(v['h'])}</b>")
        total = abs(kept) + abs(written) or 1.0
        n_bar = 18
        k_bar = round(n_bar * abs(kept) / total)
        bar = (f"<span style='color:#E69F00'>{'█' * k_bar}</span>"
               f"<span style='color:#009E73'>{'█' * (n_bar - k_bar)}</span>")
        lines.append(f"<span style='font-size:{int(fs * 0.8)}px'>{bar}<br>"
                     f"<span style='color:#E69F00'>kept {abs(kept) / total:.0%}</span> · "
                     f"<span style='color:#009E73'>written {abs(written) / total:.0%}</span>"
                     "</span>")
        body = "<br><br>".join(lines)
        self.label.setText(f"{head}<div style='font-family:\"DejaVu Sans Mono\",monospace; "
                           f"font-size:{fs}px; line-height:120%'>{body}</div>")


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
