"""``python -m efflab`` is the same as the ``efflab`` command."""

import sys

from efflab.cli import main

sys.exit(main())
