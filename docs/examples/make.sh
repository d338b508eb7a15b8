#!/bin/sh
# Regenerates the example figures in this folder from the bundled digit-sum model.
# Run from the repository root:  sh docs/examples/make.sh
set -e
D=docs/examples
IN="4 7 3 9 1 8 2 6 5 0 3 7"
lstmviz export digit_sum --text "$IN" --step 7 --style paper --force --out $D/grid_paper.png
lstmviz export digit_sum --text "$IN" --step 7 --style paper --force --out $D/grid_paper.svg
lstmviz export digit_sum --text "$IN" --step 7 --style paper --force --out $D/grid_paper.pdf
lstmviz export digit_sum --text "$IN" --step 7 --style slide --force --out $D/grid_slide.png
lstmviz export digit_sum --text "$IN" --quantities cell --units 0-11 --step 7 --style paper \
    --force --out $D/cell_paper.svg
lstmviz export digit_sum --text "$IN" --quantities forget_gate,cell,hidden --units 0-15 \
    --style slide --dpi 60 --fps 2 --force --out $D/steps.gif
# the LSTM cell diagram: one unit's numbers (slide), the whole layer as colour strips, the adder
lstmviz export digit_sum --text "$IN" --view diagram --units 20 --step 7 --style slide \
    --force --out $D/diagram_unit.png
lstmviz export digit_sum --text "$IN" --view diagram --step 7 --style slide --force \
    --out $D/diagram_layer.svg
lstmviz export binary_addition --text "1011011 + 0110110" --view diagram --units 2 \
    --style slide --dpi 60 --fps 1 --force --out $D/diagram_adder.gif
# all six quantities of a few units at one step
lstmviz export digit_sum --text "$IN" --view bars --units 3,10,20,22 --step 7 --style slide \
    --force --out $D/bars_slide.png
# a bundled lesson as a handout
lstmviz export lstmviz/assets/lessons/binary_addition.lstmviz-lesson --force --out $D/lesson_handout.pdf
