"""Every keyboard shortcut of the app, in one table (no Qt here).

``lstmviz --help`` and Help ▸ Keyboard shortcuts (F1) print this table; a test checks that
every shortcut the window really has is listed here and that every entry here is really
bound, so the two cannot drift apart.
"""

from __future__ import annotations

#: (group, keys, what they do). ``keys`` as Qt writes them ("Ctrl+Shift+O"); several keys
#: for one action are separated by " or ".
KEYS: tuple[tuple[str, str, str], ...] = (
    ("Stepping", "Right", "step forward"),
    ("Stepping", "Left", "step back"),
    (
        "Stepping",
        "PgDown",
        "the clicker: the next lesson step (its question, then its answer), else step forward",
    ),
    ("Stepping", "PgUp", "the clicker's other button: the previous lesson step, else step back"),
    ("Stepping", "Home", "go to the first step"),
    ("Stepping", "End", "go to the last step"),
    ("Stepping", "Space", "play / pause"),
    ("Stepping", "+ or =", "play faster"),
    ("Stepping", "-", "play slower"),
    ("File", "Ctrl+O", "open a model"),
    ("File", "Ctrl+I", "open an input (.npy, .npz, .csv)"),
    ("File", "Ctrl+L", "open a lesson (then PgDown / PgUp move through its steps)"),
    ("File", "Ctrl+Shift+G", "the example gallery"),
    ("File", "Ctrl+Shift+O", "open a session"),
    ("File", "Ctrl+S", "save the session (model, input, view, training timeline)"),
    ("File", "Ctrl+E", "export a figure (PNG, SVG, PDF)"),
    ("File", "Ctrl+Shift+E", "export an animation (GIF, MP4)"),
    ("File", "Ctrl+Shift+S", "save a screenshot of the window"),
    ("File", "Ctrl+Q", "quit"),
    ("View", "F11", "presentation mode"),
    ("View", "V", "presentation mode: the cell diagram, the equations or the heatmaps"),
    ("View", "Escape", "leave presentation mode"),
    ("View", "F5 or Shift+F5", "presentation mode (a clicker's start-the-show button)"),
    ("View", "B or .", "blank screen (black; any key brings the view back)"),
    ("View", "Ctrl+D", "the cell diagram: the selected unit's numbers on every wire"),
    ("View", "Ctrl+0", "reset the heatmaps' zoom (the mouse wheel zooms)"),
    ("View", "Ctrl+Shift+0", "reset the layout of every panel"),
    ("Train", "Ctrl+T", "the Train panel"),
    ("Train", "Ctrl+Shift+T", "start training"),
    ("Analysis", "Ctrl+Alt+1", "Decomposition: what each cell keeps and writes"),
    ("Analysis", "Ctrl+Alt+2", "Unit search: which unit tracks a signal"),
    ("Analysis", "Ctrl+Alt+3", "What-if: change one input, see what follows"),
    ("Analysis", "Ctrl+Alt+4", "Compare two models or training snapshots"),
    ("Analysis", "Ctrl+Alt+5", "Saturation and dead units"),
    ("Analysis", "Ctrl+Alt+6", "Check my LSTM against the model"),
    ("Analysis", "Ctrl+Alt+7", "Corpus: trace many sequences, search for patterns"),
    ("Analysis", "Ctrl+Alt+8", "Interventions: ablate or clamp units, see what breaks"),
    ("Analysis", "Ctrl+Alt+9", "Activation patching: clean vs corrupted input"),
    ("Analysis", "Ctrl+Alt+0", "Attribution: which tokens and units explain an output"),
    ("Analysis", "Ctrl+Alt+-", "State space: PCA trajectory, fixed points"),
    ("Analysis", "Ctrl+Alt+=", "Logit attribution: what each unit writes into the head"),
    ("Panels", "Ctrl+W", "What-if: compare with the changed input"),
    ("Panels", "M", "Unit search: paint the selected steps into the mask"),
    ("Panels", "Ctrl+F", "Corpus: find the selected pattern everywhere"),
    ("Help", "F1", "this list of keys"),
)

#: What the mouse does.
MOUSE = (
    "Click a heatmap cell: jump to its step and select its unit; Ctrl+click adds a unit.",
    "Mouse wheel on a heatmap: zoom; drag: pan (Ctrl+0 resets).",
    "Click a token in the input strip: jump to that step.",
)


def keys_text(width: int = 24) -> str:
    """The table as plain text, grouped (for ``lstmviz --help`` and the F1 dialog)."""
    lines: list[str] = []
    group = ""
    for g, keys, what in KEYS:
        if g != group:
            lines.append(f"{g}:" if not lines else f"\n{g}:")
            group = g
        lines.append(f"  {keys:<{width}} {what}")
    lines.append("\nMouse:")
    lines += [f"  {m}" for m in MOUSE]
    return "\n".join(lines)


def bound_keys() -> set[str]:
    """Every single key sequence of :data:`KEYS` ("Right", "PageDown", "Ctrl+O", ...)."""
    return {k.strip() for _, keys, _ in KEYS for k in keys.split(" or ")}
