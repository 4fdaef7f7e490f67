"""`python -m policytag ...`: the `policytag` command."""

import sys

from policytag.cli import main

sys.exit(main())
