#!/usr/bin/env bash
# Screenshots of every bundled lesson, step by step, as a projector shows them: the real
# lstmviz window in presentation mode on an X server at 1920 x 1080 (Xvfb), driven by the
# clicker's PageDown. Needs xvfb-run (Debian: apt-get install xvfb).
#   bash docs/lessons/make.sh                 # every lesson
#   bash docs/lessons/make.sh digit_sum       # one
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
unset QT_QPA_PLATFORM
xvfb-run -a -s "-screen 0 1920x1080x24" python "$here/shoot.py" "$here" "$@"
