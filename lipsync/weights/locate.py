"""Where weights live: a ComfyUI install (``models/<folder>``, sub-folders included) or one plain folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import LipSyncError
from . import registry
from .registry import PACK_ROOT, WeightFile

WEIGHT_SUFFIXES = frozenset({".pth", ".pt", ".safetensors", ".sft", ".ckpt", ".bin", ".model"})


@dataclass(frozen=True)
class WeightsPlace:
    """A ComfyUI root (``comfyui=True``) or a folder holding the files directly; ``options`` re-create it on a command line."""

    root: Path
    comfyui: bool
    options: str = ""

    def folder_for(self, entry: WeightFile) -> Path:
        return self.root / "models" / entry.folder if self.comfyui else self.root

    def describe(self) -> str:
        return f"ComfyUI at {self.root} (files in models/<folder>)" if self.comfyui else f"the folder {self.root}"

    def find(self, entry: WeightFile) -> Path | None:
        """The file for ``entry`` under its name or an alias; in ComfyUI also in sub-folders of its model folder."""
        folder = self.folder_for(entry)
        names = (entry.name, *entry.aliases)
        for name in names:
            if (folder / name).is_file():
                return folder / name
        if self.comfyui and folder.is_dir():
            wanted = {name.lower() for name in names}
            for path in sorted(folder.rglob("*")):
                if path.name.lower() in wanted and path.is_file():
                    return path
        return None

    def folders(self) -> list[Path]:
        return sorted({self.folder_for(entry) for entry in registry.KNOWN_FILES})

    def other_files(self, known: set[Path]) -> list[Path]:
        """Weight files in the model folders that are not registry files (a user's own or converted copies)."""
        found: list[Path] = []
        for folder in self.folders():
            if not folder.is_dir():
                continue
            paths = folder.rglob("*") if self.comfyui else folder.iterdir()
            found += [path for path in paths if path.suffix.lower() in WEIGHT_SUFFIXES and path.is_file() and path not in known]
        return sorted(found)


def detect_comfyui_root(pack_root: Path = PACK_ROOT) -> Path | None:
    """The ComfyUI folder when this pack sits in ``ComfyUI/custom_nodes/<pack>``, else ``None``."""
    custom_nodes = pack_root.parent
    if custom_nodes.name == "custom_nodes" and (custom_nodes.parent / "models").is_dir():
        return custom_nodes.parent
    return None


def resolve_place(comfyui: str | None, directory: str | None) -> WeightsPlace:
    """The place named by ``--comfyui`` / ``--dir``, or the ComfyUI this pack is installed in."""
    if directory:
        root = Path(directory).expanduser()
        return WeightsPlace(root, False, f"--dir {_quoted(root)}")
    if comfyui:
        root = Path(comfyui).expanduser()
        if not (root / "models").is_dir():
            raise LipSyncError(
                f"'{root}' does not look like a ComfyUI folder: it has no models/ folder. "
                "Pass the ComfyUI folder (the one holding main.py and models/), or use --dir FOLDER."
            )
        return WeightsPlace(root, True, f"--comfyui {_quoted(root)}")
    detected = detect_comfyui_root()
    if detected is not None:
        return WeightsPlace(detected, True)
    raise LipSyncError(
        "Say where the weights are: --comfyui PATH/TO/ComfyUI (files go in its models/<folder>) or --dir FOLDER (all in one folder)."
    )


def _quoted(path: Path) -> str:
    text = str(path)
    return f'"{text}"' if any(char.isspace() for char in text) else text
