"""`python -m mglru.cli`: the `mglru` command."""

import sys

from mglru.cli import main

sys.exit(main())
