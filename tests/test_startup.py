"""Start-up: ``python -m lipsync --help`` lists every option without importing torch or the other slow packages
(OpenCV, 0.1 s, is allowed: the face-box module needs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_help_lists_the_options_without_importing_torch() -> None:
    code = (
        "import sys\n"
        "from lipsync.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('torch', 'librosa', 'numba', 'scipy', 'face_alignment', 'spandrel', 'av')\n"
        "print('IMPORTED', sorted(name for name in heavy if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "--encoder {auto,libx264,h264_nvenc}" in result.stdout
    assert "--precision {auto,fp32,fp16,bf16}" in result.stdout
    assert "--detector {s3fd,opencv}" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "IMPORTED []"
