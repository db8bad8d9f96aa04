"""The command line, ``python -m lipsync``: the lip-sync run (``main.py``), up-front checks, and the subcommands."""
