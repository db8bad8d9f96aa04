"""``python -m lipsync.train``: see ``lipsync.train.cli``."""

import sys

from ..cli.main import exit_process, main

exit_process(main(["train", *sys.argv[1:]]))
