#!/bin/sh
# Regenerate every figure of docs/analysis/ (run from the repository root; ~1 minute).
set -e
D=docs/analysis/img
lstmviz attribute word_lm --text "mary had a little lamb its fleece was white as" --target=-1,snow --method ig --force --out $D/ig_word_lm.png
lstmviz attribute word_lm --text "mary had a little lamb its fleece was white as" --target=-1,snow --method gradient --force --out $D/gradient_word_lm.png
lstmviz attribute word_lm --text "mary had a little lamb its fleece was white as" --target=-1,snow --method occlusion --force --out $D/occlusion_word_lm.png
lstmviz attribute word_lm --text "mary had a little lamb its fleece was white as" --target=-1,snow --method lrp --force --out $D/lrp_word_lm.png
lstmviz connectivity char_textgen --text "Shall I compare thee" --force --out $D/connectivity_char_textgen.png
lstmviz ablate binary_addition --text "0110111 + 0000001" --target 3,0 --scan --mode mean --space logit --force --out $D/ablation_scan_adder.png
lstmviz ablate binary_addition --text "0110111 + 0000001" --layer lstm --units 2 --mode mean --force --out $D/ablate_carry_unit.png
lstmviz patch binary_addition --clean "0110111 + 0000001" --corrupted "0110110 + 0000001" --target 3,0 --space logit --force --out $D/patching_adder.png
lstmviz fixed-points flip_flop --force --out $D/fixed_points_flip_flop.png
python docs/analysis/figures.py
# the app panels, in the real window (needs a display: xvfb-run makes one)
xvfb-run -a -s "-screen 0 1920x1080x24" python docs/analysis/panels.py
