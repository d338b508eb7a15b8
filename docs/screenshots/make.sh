#!/bin/sh
# Regenerate the README screenshots: the real app on a 1600x900 Xvfb screen (Qt's xcb
# platform), captured with ImageMagick's `import`. Needs: xvfb, imagemagick, libxcb-cursor0.
#   sh docs/screenshots/make.sh
set -e
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's lstmviz
OUT=docs/screenshots
WAIT=${WAIT:-15}

shot() {  # shot OUT.png lstmviz-arguments...
    out=$1
    shift
    conf=$(mktemp -d)  # fresh settings: no remembered window layout or recent files
    xvfb-run -a -s "-screen 0 1600x900x24" sh -c "
        XDG_CONFIG_HOME=$conf QT_QPA_PLATFORM=xcb lstmviz $* --size 1600x900 &
        pid=\$!
        sleep $WAIT
        import -window root '$out'
        kill \$pid"
    rm -rf "$conf"
    echo "wrote $out"
}

shot $OUT/main.png lstmviz/assets/examples/digit_sum.keras --step 3
shot $OUT/presentation.png lstmviz/assets/examples/char_textgen.keras --text "'to be or not to be'" --step 9 --presentation
shot $OUT/char_textgen.png lstmviz/assets/examples/char_textgen.keras --step 12
shot $OUT/binary_addition.png lstmviz/assets/examples/binary_addition.keras --step 4
xvfb-run -a -s "-screen 0 1600x900x24" python docs/screenshots/training.py $OUT/training.png
# every dockable panel open in the real window, at 1600x900 and 1920x1080 (docs/screenshots/README.md)
xvfb-run -a -s "-screen 0 1920x1080x24" python docs/screenshots/docks.py $OUT/docks
