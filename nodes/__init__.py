"""ComfyUI nodes: thin wrappers over the ``lipsync`` engine, one file per stage."""
