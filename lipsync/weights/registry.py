"""The known weight files: expected size and sha256 (where published), licence, model folder, candidate URLs.

Pure data and string helpers, no torch: error messages import this to name the download command.
Sizes and hashes are the values published for the release assets, cross-checked where possible
against other projects' download scripts that verify the same files; none was guessed. Where none is
published the field is ``None``: the file is then checked by size only, or, with neither, by loading
it as the model it should hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# ComfyUI model folder names (ComfyUI/models/<folder>); nodes/comfy_glue.py registers the same names.
WAV2LIP_FOLDER = "wav2lip"
DETECTION_FOLDER = "facedetection"
RESTORE_FOLDER = "facerestore_models"
SYNCNET_FOLDER = "syncnet"

DOWNLOAD_COMMAND = "python -m lipsync weights download"
PACK_ROOT = Path(__file__).resolve().parent.parent.parent

WAV2LIP_LICENCE = (
    "Wav2Lip: personal, research and non-commercial use only (trained on LRS2, a BBC research dataset); "
    "commercial use needs the authors' permission"
)
WAV2LIP_OFFICIAL = "official copies are linked from the Wav2Lip README (a cloud folder, not a direct link); these URLs are mirrors"
GFPGAN_RELEASES = "https://github.com/TencentARC/GFPGAN/releases/download"
CAMENDURU = "https://huggingface.co/camenduru/Wav2Lip/resolve/main"
GPEN_MODELS = "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models"
GPEN_LICENCE = (
    "GPEN (c) Alibaba: 'for academic and non-commercial use only' (the licence section of the GPEN README; it was removed "
    "in March 2026 and no other licence was given)"
)


@dataclass(frozen=True)
class WeightFile:
    """One known weight file and what it takes to get and check it."""

    name: str
    folder: str
    what: str
    size: int | None
    sha256: str | None
    urls: tuple[str, ...]
    licence: str
    purpose: str | None = None  # lipsync.models architecture purpose, checked when no sha256 is known
    aliases: tuple[str, ...] = ()  # other names the same file is published under
    note: str = ""

    @property
    def check(self) -> str:
        """How a copy is verified, in words."""
        if self.sha256:
            return "sha256"
        return "size only" if self.size else "loading it"


KNOWN_FILES: tuple[WeightFile, ...] = (
    WeightFile(
        "wav2lip.pth",
        WAV2LIP_FOLDER,
        "Wav2Lip generator (more accurate sync, softer mouth)",
        None,
        None,
        (f"{CAMENDURU}/checkpoints/wav2lip.pth", "https://github.com/OpenTalker/SadTalker/releases/download/v0.0.2/wav2lip.pth"),
        WAV2LIP_LICENCE,
        purpose="generator",
        note=f"no size or sha256 is published: a download is checked by loading it as a Wav2Lip generator; {WAV2LIP_OFFICIAL}",
    ),
    WeightFile(
        "wav2lip_gan.pth",
        WAV2LIP_FOLDER,
        "Wav2Lip generator trained with a visual-quality GAN (sharper; the usual choice)",
        435_801_865,
        "ca9ab7b7b812c0e80a6e70a5977c545a1e8a365a6c49d5e533023c034d7ac3d8",
        (
            f"{CAMENDURU}/checkpoints/wav2lip_gan.pth",
            "https://huggingface.co/numz/wav2lip_studio/resolve/main/Wav2lip/wav2lip_gan.pth",
            "https://huggingface.co/Nekochu/Wav2Lip/resolve/main/wav2lip_gan.pth",
        ),
        WAV2LIP_LICENCE,
        purpose="generator",
        note=WAV2LIP_OFFICIAL,
    ),
    WeightFile(
        "lipsync_expert.pth",
        SYNCNET_FOLDER,
        "expert colour SyncNet (Wav2Lip's lip-sync discriminator), for scoring",
        None,
        "9b9936c721696446eeed353032cab242a8cf0eed8c46cde540366f6ae5493be5",
        (f"{CAMENDURU}/checkpoints/lipsync_expert.pth",),
        WAV2LIP_LICENCE,
        purpose="sync_expert",
        note=f"sha256 known, size not published; {WAV2LIP_OFFICIAL}",
    ),
    WeightFile(
        "s3fd.pth",
        DETECTION_FOLDER,
        "S3FD face detector (Wav2Lip ships it as face_detection/detection/sfd/s3fd.pth)",
        89_843_225,
        "619a31681264d3f7f7fc7a16a42cbbe8b23f31a256f75a366e5a1bcd59b33543",
        ("https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth", f"{CAMENDURU}/checkpoints/s3fd-619a316812.pth"),
        "BSD-3-Clause (published by face-alignment); trained on WIDER FACE",
        purpose="face_detector",
        aliases=("s3fd-619a316812.pth",),
        note="face-alignment's s3fd-619a316812.pth is the same file (its name carries the start of the sha256)",
    ),
    WeightFile(
        "syncnet_v2.model",
        SYNCNET_FOLDER,
        "SyncNet v2 (syncnet_python), for LSE-C / LSE-D scores",
        54_573_114,
        "961e8696f888fce4f3f3a6c3d5b3267cf5b343100b238e79b2659bff2c605442",
        (
            "https://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model",
            "http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model",
        ),
        "syncnet_python code is MIT; the weights are published by Oxford VGG for research, with no separate licence stated",
    ),
    WeightFile(
        "GFPGANv1.3.pth",
        RESTORE_FOLDER,
        "GFPGAN v1.3 face restoration (natural look)",
        348_632_874,
        "c953a88f2727c85c3d9ae72e2bd4846bbaf59fe6972ad94130e23e7017524a70",
        (f"{GFPGAN_RELEASES}/v1.3.0/GFPGANv1.3.pth",),
        "Apache-2.0 (GFPGAN; parts under NVIDIA StyleGAN2 terms); trained on FFHQ (images CC BY-NC-SA 4.0)",
    ),
    WeightFile(
        "GFPGANv1.4.pth",
        RESTORE_FOLDER,
        "GFPGAN v1.4 face restoration (more detail)",
        348_632_874,
        "e2cd4703ab14f4d01fd1383a8a8b266f9a5833dacee8e6a79d3bf21a1b6be5ad",
        (f"{GFPGAN_RELEASES}/v1.3.4/GFPGANv1.4.pth", f"{GFPGAN_RELEASES}/v1.3.0/GFPGANv1.4.pth"),
        "Apache-2.0 (GFPGAN; parts under NVIDIA StyleGAN2 terms); trained on FFHQ (images CC BY-NC-SA 4.0)",
    ),
    WeightFile(
        "RestoreFormer.pth",
        RESTORE_FOLDER,
        "RestoreFormer face restoration (released with GFPGAN)",
        290_785_322,
        "07404d446d62ca3d5ed38b1de09a947a1e77d46dbccec961a74d713a8f24ace0",
        (f"{GFPGAN_RELEASES}/v1.3.4/RestoreFormer.pth", f"{GFPGAN_RELEASES}/v1.3.0/RestoreFormer.pth"),
        "Apache-2.0 (RestoreFormer, released with GFPGAN); trained on FFHQ (images CC BY-NC-SA 4.0)",
    ),
    WeightFile(
        "codeformer.pth",
        RESTORE_FOLDER,
        "CodeFormer face restoration",
        376_637_898,
        "1009e537e0c2a07d4cabce6355f53cb66767cd4b4297ec7a4a64ca4b8a5684b7",
        ("https://github.com/sczhou/CodeFormer/releases/download/v0.1.0/codeformer.pth",),
        "NTU S-Lab License 1.0: non-commercial use only",
        aliases=("codeformer-v0.1.0.pth",),
    ),
    # GPEN: the authors' files (public-vigen-video) and mirrors. Only the 512's sha256 and size are public (the same
    # git-lfs oid on the akhaliq/GPEN-BFR-512 and vinthony/videoretalking Hugging Face copies); 256 and 1024 are checked
    # by loading them as a face restorer.
    WeightFile(
        "GPEN-BFR-512.pth",
        RESTORE_FOLDER,
        "GPEN face restoration at 512 (GPEN-BFR-512)",
        284_085_738,
        "f1002c41add95b0decad69604d80455576f7187dd99ca16bd611bcfd44c10b51",
        (
            f"{GPEN_MODELS}/GPEN-BFR-512.pth",
            "https://huggingface.co/akhaliq/GPEN-BFR-512/resolve/main/GPEN-BFR-512.pth",
            "https://github.com/vinthony/video-retalking/releases/download/v0.0.1/GPEN-BFR-512.pth",
        ),
        GPEN_LICENCE,
        purpose="face_restorer",
    ),
    WeightFile(
        "GPEN-BFR-256.pth",
        RESTORE_FOLDER,
        "GPEN face restoration at 256 (narrower network, about 1/16 of the 512's work)",
        None,
        None,
        (f"{GPEN_MODELS}/GPEN-BFR-256.pth",),
        GPEN_LICENCE,
        purpose="face_restorer",
        note="no size or sha256 is published: a download is checked by loading it as a GPEN face restorer",
    ),
    WeightFile(
        "GPEN-BFR-1024.pth",
        RESTORE_FOLDER,
        "GPEN face restoration at 1024 (released on ModelScope as pytorch_model.pt)",
        None,
        None,
        ("https://carimage-1253226081.cos.ap-beijing.myqcloud.com/gpen/GPEN-BFR-1024.pth",),
        GPEN_LICENCE,
        purpose="face_restorer",
        note="no size or sha256 is published: a download is checked by loading it as a GPEN face restorer; the authors publish it "
        "on ModelScope (damo/cv_gpen_image-portrait-enhancement-hires, pytorch_model.pt); this URL is a copy that other projects' "
        "download scripts use",
    ),
)

# The file suggested when a folder is empty.
SUGGESTED = {
    WAV2LIP_FOLDER: "wav2lip_gan.pth",
    DETECTION_FOLDER: "s3fd.pth",
    RESTORE_FOLDER: "GFPGANv1.4.pth",
    SYNCNET_FOLDER: "syncnet_v2.model",
}


def known_names() -> list[str]:
    return [entry.name for entry in KNOWN_FILES]


def find_entry(name: str) -> WeightFile | None:
    """The registry entry for a file name or one of its aliases (case-insensitive), or ``None``."""
    wanted = os.path.basename(name).lower()
    for entry in KNOWN_FILES:
        if wanted == entry.name.lower() or wanted in (alias.lower() for alias in entry.aliases):
            return entry
    return None


def lookup(name: str) -> WeightFile:
    """The registry entry for ``name``; a ``KeyError`` whose message lists the known names otherwise."""
    entry = find_entry(name)
    if entry is None:
        raise KeyError(f"'{name}' is not a known weight file. Known files: {', '.join(known_names())}.")
    return entry


def files_for_folder(folder: str) -> list[WeightFile]:
    return [entry for entry in KNOWN_FILES if entry.folder == folder]


def suggested_file(folder: str) -> str | None:
    return SUGGESTED.get(folder)


def empty_folder_placeholder(folder: str) -> str:
    """Dropdown text for an empty model folder: where the files go and the command that fetches one."""
    suggestion = suggested_file(folder)
    fetch = f": {DOWNLOAD_COMMAND} {suggestion}" if suggestion else ""
    return f"(no weights in models/{folder}{fetch})"


def _quote(path: str) -> str:
    return f'"{path}"' if any(char.isspace() for char in path) else path


def download_hint(filename: str, target_dir: str | os.PathLike | None = None, folder: str | None = None) -> str:
    """A sentence with the exact command that downloads ``filename`` into ``target_dir``.

    For a name the registry does not know, it lists the known files of ``folder`` (the ComfyUI model
    folder name, or guessed from ``target_dir``'s last part) instead.
    """
    where = f" --dir {_quote(os.fspath(target_dir))}" if target_dir else ""
    run_in = f"run in {_quote(str(PACK_ROOT))} with the Python that runs ComfyUI or this pack: "
    entry = find_entry(filename)
    if entry is not None:
        return f"To download it, {run_in}{DOWNLOAD_COMMAND} {entry.name}{where}"
    folder = folder or (Path(os.fspath(target_dir)).name if target_dir else None)
    candidates = files_for_folder(folder) if folder else []
    if not candidates:
        return f"Known downloadable files: {', '.join(known_names())} ({DOWNLOAD_COMMAND} NAME{where})."
    names = ", ".join(entry.name for entry in candidates)
    example = suggested_file(folder) or candidates[0].name
    return f"Files known for this folder: {names}. To download one, {run_in}{DOWNLOAD_COMMAND} {example}{where}"
