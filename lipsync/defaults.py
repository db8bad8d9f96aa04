"""Defaults shared by the command line's options, the engine's option objects and the nodes' schemas, defined here
once (no heavy imports: the CLI reads them before it loads torch)."""

DEFAULT_GENERATION_BATCH = 128  # faces per generation chunk; the generator caps its forward passes on the CPU anyway
DEFAULT_RESTORE_STRENGTH = 1.0  # 0..1 of the restored mouth region blended in (the command line's value, kept)
# Face-less runs up to this many frames get interpolated boxes (command line, engine and nodes alike); 0 is the
# reference (a frame without a face is passed through, or stops the run).
DEFAULT_MAX_GAP = 5
DEFAULT_DETECTION_BATCH = 16  # frames per face detection batch
DEFAULT_DETECTION_MAX_SIDE = 640  # faces are detected on a copy downscaled to this longest side (0: full size, the reference)
DEFAULT_FPS = 25.0  # frame rate of a still image's output, and of IMAGE frames when none is given
DEFAULT_CRF = 18  # H.264 quality of the written video (18 looks lossless)
DEFAULT_CODEFORMER_FIDELITY = 0.5  # CodeFormer: 0 = strongest restoration, 1 = closest to the input
# Mouth-mask paste-back: ellipse size (1 = nose tip to chin), soft edge (fraction of its radius), shift (box heights).
DEFAULT_MASK_SIZE = 1.0
DEFAULT_MASK_FEATHER = 0.35
DEFAULT_MASK_OFFSET = 0.0
DEFAULT_VSHIFT = 15  # sync scoring searches audio-video offsets -15..+15 frames (syncnet_python's)
DEFAULT_RESTORE_BATCH = 4  # faces per face-restorer forward pass (halved on out-of-memory)
DEFAULT_RESTORE_COMPILE = False  # torch.compile the restorer: minutes of compiling the first time, then faster faces
DEFAULT_SCORE_BATCH = 20  # SyncNet windows per forward pass when scoring (syncnet_python's)
