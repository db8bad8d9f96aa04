"""``python -m lipsync``: see ``lipsync.cli.main``."""

from .cli.main import main
from .cli.process import exit_process, keep_freed_memory

keep_freed_memory()
exit_process(main())
