"""Start-up: ``python -m lipsync --help`` lists every option without importing torch or the other slow packages
(OpenCV, 0.1 s, is allowed: the face-box module needs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_command_line_keeps_freed_blocks_for_reuse_instead_of_returning_them() -> None:
    """With ``keep_freed_memory`` a freed 24 MiB block stays in the process (the next one reuses its pages, no fresh
    zeroed pages to fault in); with glibc's defaults the same block goes back to the system when freed."""
    code = (
        "import resource, sys, numpy as np\n"
        "from lipsync.cli.process import keep_freed_memory\n"
        "def rss_mib():\n"
        "    with open('/proc/self/statm') as f:\n"
        "        return int(f.read().split()[1]) * resource.getpagesize() / 2**20\n"
        "taken = keep_freed_memory() if sys.argv[1] == 'keep' else None\n"
        "block = np.ones(24 * 2**20, np.uint8)\n"
        "held = rss_mib()\n"
        "del block\n"
        "print(taken, round(held - rss_mib()))\n"
    )
    returned = subprocess.run([sys.executable, "-c", code, "default"], cwd=ROOT, capture_output=True, text=True, check=True)
    kept = subprocess.run([sys.executable, "-c", code, "keep"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert returned.stdout.split() == ["None", "24"]
    assert kept.stdout.split() == ["True", "0"]


def _run_module_as_main(*argv: str) -> subprocess.CompletedProcess:
    """``python -m lipsync *argv`` with an atexit handler of its own registered first, and an object whose ``__del__``
    prints when the interpreter tears its modules down (which a process ending in ``exit_process`` skips)."""
    code = (
        "import atexit, runpy, sys\n"
        "class Sentinel:\n"
        "    def __del__(self):\n"
        "        print('teardown ran', flush=True)\n"
        "sentinel = Sentinel()\n"
        "atexit.register(lambda: print('atexit handler ran', flush=True))\n"
        f"sys.argv = ['lipsync', *{list(argv)!r}]\n"
        "runpy.run_module('lipsync', run_name='__main__')\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_command_line_ends_without_teardown_but_keeps_exit_codes_output_and_atexit_handlers(tmp_path: Path) -> None:
    """``python -m lipsync`` leaves through ``process.exit_process`` (no module teardown: 0.4 s with torch imported):
    the exit code, everything printed and the atexit handlers survive it."""
    empty = tmp_path / "empty"
    empty.mkdir()
    listed = _run_module_as_main("weights", "list", "--dir", str(empty), "--quick")
    assert listed.returncode == 0, listed.stderr
    assert "0 ok, 0 present" in listed.stdout and f"weights download wav2lip_gan.pth --dir {empty}" in listed.stdout
    assert listed.stdout.strip().splitlines()[-1] == "atexit handler ran"
    assert "teardown ran" not in listed.stdout

    (empty / "wav2lip_gan.pth").write_bytes(b"not a checkpoint")
    corrupt = _run_module_as_main("weights", "list", "--dir", str(empty), "--quick")
    assert corrupt.returncode == 1, corrupt.stderr  # the listing's own code for a corrupt file, passed on
    assert "1 corrupt" in corrupt.stdout and corrupt.stdout.strip().splitlines()[-1] == "atexit handler ran"

    refused = _run_module_as_main("weights", "list", "--dir", str(tmp_path / "missing"))
    assert refused.returncode == 2
    assert "is not a folder" in refused.stderr and "Traceback" not in refused.stderr
    assert refused.stdout.strip() == "atexit handler ran"
