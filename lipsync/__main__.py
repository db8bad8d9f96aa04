"""``python -m lipsync``: see ``lipsync.cli.main``."""

from .cli.main import exit_process, main

exit_process(main())
