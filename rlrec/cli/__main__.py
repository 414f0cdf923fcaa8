"""``python -m rlrec.cli``: the ``rlrec`` command."""

import sys

from rlrec.cli import main

sys.exit(main())
