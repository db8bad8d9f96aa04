"""``python -m lipsync``: see ``lipsync.cli.main``."""

import sys

from .cli.main import main

sys.exit(main())
