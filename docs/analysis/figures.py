"""The figures of docs/analysis/ that have no command of their own (run by make.sh)."""

from pathlib import Path

import lstmviz
from lstmviz.analysis import logit_attribution, memory_paths
from lstmviz.export.analysis_figures import (
    logit_attribution_figure,
    memory_paths_figure,
    save_figure,
)
from lstmviz.io.inputs import encode_text, token_labels
from lstmviz.io.meta import load_info

OUT = Path(__file__).resolve().parent / "img"
EXAMPLES = Path(lstmviz.__file__).resolve().parent / "assets" / "examples"

path = EXAMPLES / "digit_sum.keras"
model, info = lstmviz.load_model(path), load_info(path)
x = encode_text(model, "4 7 3 9 1 8 2 6", info)  # digit sum 40: the answer is 0
tokens = token_labels(model, x, info)
save_figure(
    logit_attribution_figure(logit_attribution(model, x, 0), tokens), OUT / "dla_digit_sum.png"
)
save_figure(
    memory_paths_figure(memory_paths(model, x, 0, space="logit")),
    OUT / "memory_paths_digit_sum.png",
)
print("wrote", OUT / "dla_digit_sum.png", OUT / "memory_paths_digit_sum.png")
