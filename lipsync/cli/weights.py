"""``python -m lipsync weights list|download|convert``: find, verify and (only when asked) download weights."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TextIO

from ..errors import LipSyncError
from ..weights import registry
from ..weights.locate import WeightsPlace, resolve_place
from ..weights.registry import DOWNLOAD_COMMAND, WeightFile, known_names, lookup
from ..weights.verify import CORRUPT, MISSING, OK, FileCheck, check_file, check_other
from .checks import AT_LEAST_1, check_bounds

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lipsync weights",
        description="Find, verify and download model weights. Nothing is ever downloaded unless you run 'download'.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="{list,download,convert}")

    listing = actions.add_parser("list", help="show which known files are present, missing or corrupt")
    _add_place_options(listing)
    listing.add_argument("--quick", action="store_true", help="compare sizes only (no sha256, no loading)")
    listing.add_argument("--long", action="store_true", help="also show each file's licence, URLs and notes")
    listing.add_argument("-q", "--quiet", action="store_true", help="warnings only on the log")

    fetch = actions.add_parser("download", help="download known files with resume, sha256 check and atomic rename")
    fetch.add_argument("names", nargs="+", metavar="NAME", help=f"one or more of: {', '.join(known_names())}")
    _add_place_options(fetch)
    fetch.add_argument("--url", help="download from this URL instead of the known ones (still verified); one NAME only")
    fetch.add_argument("--attempts", type=int, default=4, help="tries per URL, each resuming where the last stopped")
    fetch.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings only")

    convert = actions.add_parser("convert", help="write a .pth checkpoint's tensors as .safetensors")
    convert.add_argument("file", help="the .pth / .pt / .model file")
    convert.add_argument("-o", "--output", help="output .safetensors (default: beside the input)")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    convert.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    return parser


def _add_place_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--comfyui", metavar="DIR", help="a ComfyUI folder: files go in DIR/models/<folder> (default: the ComfyUI this pack is in)"
    )
    where.add_argument("--dir", metavar="DIR", help="one plain folder holding all the files")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Do the chosen action; ``list`` returns 1 when a file is corrupt."""
    check_bounds(args, {"attempts": ("--attempts", AT_LEAST_1)})
    if args.action == "convert":
        from ..weights.convert import convert_to_safetensors

        convert_to_safetensors(args.file, args.output, overwrite=args.overwrite)
        return 0
    place = resolve_place(args.comfyui, args.dir)
    if args.action == "download":
        return _download(args, place)
    return _list(place, quick=args.quick, long=args.long, out=out or sys.stdout)


def _download(args: argparse.Namespace, place: WeightsPlace) -> int:
    from ..weights.download import download

    if args.url and len(args.names) > 1:
        raise LipSyncError("--url names one file's source; download one NAME at a time with it.")
    try:
        entries = [lookup(name) for name in args.names]
    except KeyError as error:
        raise LipSyncError(error.args[0]) from error
    for entry in entries:
        logger.info("%s: %s. Licence: %s.", entry.name, entry.what, entry.licence)
        existing = place.find(entry)
        if existing is not None and existing.name != entry.name and check_file(entry, existing).state == OK:
            logger.info("%s is already there under another published name: %s", entry.name, existing)
            continue
        urls = [args.url] if args.url else None
        download(entry, place.folder_for(entry), urls, attempts=args.attempts, progress=not args.quiet)
    return 0


def _list(place: WeightsPlace, quick: bool, long: bool, out: TextIO) -> int:
    if not place.root.is_dir():
        raise LipSyncError(f"'{place.root}' is not a folder.")
    command_tail = f" {place.options}" if place.options else ""
    rows: list[tuple[str, FileCheck, str, WeightFile | None]] = []
    found = set()
    for entry in registry.KNOWN_FILES:
        check = check_file(entry, place.find(entry), hash_file=not quick)
        if check.path is not None:
            found.add(check.path)
        where = _shown(place, check.path) if check.path else _shown(place, place.folder_for(entry))
        rows.append((entry.name, check, where, entry))
    for path in place.other_files(found):
        rows.append((path.name, check_other(path, load=not quick), _shown(place, path), None))

    lines = [f"Weights in {place.describe()}:", f"  {'state':<8} {'file':<22} {'size':>10}  {'where':<36} detail"]
    for name, check, where, entry in rows:
        detail = check.detail
        if check.state == MISSING:
            detail = f"{DOWNLOAD_COMMAND} {name}{command_tail}"
        elif check.state == CORRUPT and entry is not None:
            detail = f"{detail}; fetch a good copy: {DOWNLOAD_COMMAND} {name}{command_tail}"
        lines.append(f"  {check.state:<8} {name:<22} {_size(check.size):>10}  {where:<36} {detail}")
        if long and entry is not None:
            lines.append(f"{'':11}{entry.what}; checked by {entry.check}. Licence: {entry.licence}.")
            lines += [f"{'':11}url: {url}" for url in entry.urls]
            if entry.note:
                lines.append(f"{'':11}note: {entry.note}")
    counts = {state: sum(row[1].state == state for row in rows) for state in ("ok", "present", MISSING, CORRUPT)}
    lines.append("  " + ", ".join(f"{count} {state}" for state, count in counts.items()))
    if counts[CORRUPT]:
        lines.append("  A corrupt file is not the published one: replace it ('download' verifies the new copy before it replaces the old).")
    out.write("\n".join(lines) + "\n")
    return 1 if counts[CORRUPT] else 0


def _shown(place: WeightsPlace, path: Path) -> str:
    try:
        return str(path.relative_to(place.root))
    except ValueError:
        return str(path)


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"
