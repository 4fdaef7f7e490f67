"""python -m annotation push|pull: the same as `policytag annotate push|pull`."""

import sys

from annotation.cli import main

sys.exit(main())
