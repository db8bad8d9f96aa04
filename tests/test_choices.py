"""Modes picked by name are ``str`` Enums whose members are the words saved in workflows and given on the command line."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lipsync.faces.report import MissingFace
from lipsync.faces.stream import FACE_CHOICES, FaceChoice
from lipsync.render.blend import PASTE_MODES, PasteMode, PasteOptions
from lipsync.speech.timeline import LengthMode
from lipsync.sync.prepare import INPUT_KINDS, InputKind


@pytest.mark.parametrize("choice", [PasteMode, FaceChoice, MissingFace, InputKind, LengthMode])
def test_members_are_their_words(choice) -> None:
    for member in choice:
        assert member == member.value and str(member) == member.value and f"{member}" == member.value
        assert json.loads(json.dumps({"mode": member})) == {"mode": member.value}  # as a workflow saves it
        assert choice.of(member.value) is member and choice.of(member) is member
    assert choice.words() == tuple(member.value for member in choice)


def test_the_widget_and_argparse_choices_are_the_words_in_order() -> None:
    assert PASTE_MODES == ("box", "mouth mask")
    assert FACE_CHOICES == ("best score", "largest", "left to right", "closest to centre")
    assert INPUT_KINDS == ("full frames", "face crops", "syncnet_v2 crops (as is)")


def test_an_unknown_word_names_the_choice_and_lists_the_words() -> None:
    with pytest.raises(ValueError, match=r"paste mode must be one of \('box', 'mouth mask'\), got 'mouth'"):
        PasteMode.of("mouth")
    with pytest.raises(ValueError, match="face choice must be one of"):
        FaceChoice.of("biggest")


def test_options_take_the_plain_word() -> None:
    assert PasteOptions(mode="mouth mask").mode == PasteMode.MOUTH_MASK
    with pytest.raises(ValueError, match="paste mode"):
        PasteOptions(mode="ellipse")


def test_option_objects_take_keywords_only() -> None:
    """Options are named where they are built (a positional argument would silently shift when a field is added)."""
    from lipsync.faces.locate import LocateOptions
    from lipsync.pipeline import LipSyncOptions
    from lipsync.train.loop import LoopOptions
    from lipsync.train.preprocess import PreprocessOptions
    from lipsync.train.syncnet_trainer import SyncNetOptions
    from lipsync.train.wav2lip_trainer import Wav2LipOptions

    for options in (PasteOptions, LocateOptions, LipSyncOptions, PreprocessOptions, LoopOptions, SyncNetOptions, Wav2LipOptions):
        first = next(iter(options.__dataclass_fields__.values()))
        with pytest.raises(TypeError, match="positional argument"):
            options(first.default if first.default is not dataclasses.MISSING else None)
