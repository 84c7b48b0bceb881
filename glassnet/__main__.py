"""``python -m glassnet``: the same as the ``glassnet`` command (see glassnet.cli)."""

import sys

from glassnet.cli import main

sys.exit(main())
