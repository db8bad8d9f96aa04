"""The base of every mode the user picks by name (length mode, paste mode, face choice, ...): a ``str`` Enum.

A member is its word: it compares equal to the string saved in workflows and given on the command line, prints
and formats as that word, and ``of`` turns a word into a member with an error that lists the words.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

ChoiceType = TypeVar("ChoiceType", bound="Choice")


class Choice(str, Enum):
    """A mode chosen by name; subclasses list the words."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def words(cls) -> tuple[str, ...]:
        """The choices as plain strings, in order (widget options, argparse choices)."""
        return tuple(member.value for member in cls)

    @classmethod
    def of(cls: type[ChoiceType], word: str) -> ChoiceType:
        """``word`` (a member or its value) as a member; a ``ValueError`` naming the choices for anything else."""
        try:
            return cls(word)
        except ValueError:
            raise ValueError(f"{cls.what()} must be one of {cls.words()}, got {word!r}") from None

    @classmethod
    def what(cls) -> str:
        """What the choice is called in messages ("length mode" for ``LengthMode``)."""
        name = cls.__name__
        return "".join(f" {char.lower()}" if char.isupper() else char for char in name).strip()
