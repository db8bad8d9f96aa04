"""Model weights: the registry of known files, verification, download (only when asked) and conversion.

Nothing here downloads at import; ``registry`` is plain data, the rest load torch only when used.
"""

from .registry import KNOWN_FILES, WeightFile, download_hint, find_entry, lookup

__all__ = ["KNOWN_FILES", "WeightFile", "download_hint", "find_entry", "lookup"]
