"""Defaults shared by the command line's options and the nodes' schemas, defined here once (no heavy imports: the
CLI reads them before it loads torch)."""

DEFAULT_GENERATION_BATCH = 128  # faces per generation chunk; the generator caps its forward passes on the CPU anyway
DEFAULT_RESTORE_STRENGTH = 1.0  # 0..1 of the restored mouth region blended in (the command line's value, kept)
# Face-less runs up to this many frames get interpolated boxes: the nodes' value. The command line keeps the
# reference's 0 (a frame without a face is passed through), which its --max-gap raises.
DEFAULT_MAX_GAP = 5
