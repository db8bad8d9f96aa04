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
        "from lipsync.cli.main import main\n"
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


def test_loading_s3fd_does_not_import_numba_and_builds_face_alignments_network(s3fd_checkpoint: Path) -> None:
    """S3FD's weights load into face-alignment's own network class without the package's numba/SciPy imports."""
    code = (
        "import sys, torch\n"
        "from lipsync.models.registry import load_model_file\n"
        f"model = load_model_file({str(s3fd_checkpoint)!r}).model.eval()\n"
        "assert 'numba' not in sys.modules and 'skimage' not in sys.modules, 'numba or scikit-image was imported'\n"
        "from face_alignment.detection.sfd.net_s3fd import s3fd\n"
        f"reference = s3fd().eval(); reference.load_state_dict(torch.load({str(s3fd_checkpoint)!r}))\n"
        "image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255\n"
        "with torch.inference_mode():\n"
        "    ours, theirs = model(image), reference(image)\n"
        "assert type(model).__name__ == 's3fd' and len(ours) == len(theirs) == 12\n"
        "assert all(torch.equal(a, b) for a, b in zip(ours, theirs)), 'outputs differ'\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
