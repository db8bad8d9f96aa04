"""``python -m lipsync.train``: see ``lipsync.train.cli``."""

import sys

from ..cli.main import main

sys.exit(main(["train", *sys.argv[1:]]))
