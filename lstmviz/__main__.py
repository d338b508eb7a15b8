"""``python -m lstmviz`` does what ``lstmviz`` does."""

import sys

from .cli import main

sys.exit(main())
