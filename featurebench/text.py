"""Small wording helpers shared by the commands' messages and the report."""

from __future__ import annotations

import shlex
import sys


def command_line() -> str:
    """The command as the user typed it (program name normalised to ``featurebench``), for provenance."""
    return shlex.join(["featurebench", *sys.argv[1:]])


def plural(count: int, word: str, many: str | None = None) -> str:
    """``"1 epoch"``, ``"2 epochs"``: the count with ``word`` in the right number (``many`` for irregular ones)."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


__all__ = ["command_line", "plural"]
