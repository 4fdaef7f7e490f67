"""python -m policytag.annotation push|pull: the same as `policytag annotate push|pull`."""

import sys

from policytag.annotation.cli import main

sys.exit(main())
