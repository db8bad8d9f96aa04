"""``python -m lipsync.train``: see ``lipsync.train.cli``."""

import sys

from ..cli import main

sys.exit(main(["train", *sys.argv[1:]]))
