"""``python -m lipsync.train``: see ``lipsync.train.cli``."""

import sys

from ..cli.main import main
from ..cli.process import exit_process, keep_freed_memory

keep_freed_memory()
exit_process(main(["train", *sys.argv[1:]]))
