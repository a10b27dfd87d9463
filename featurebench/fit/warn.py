"""Warnings that a fit run reports loudly and also records in its ``metrics.json``."""

from __future__ import annotations

import warnings


class FitWarning(UserWarning):
    """Something about a run that a user must know (a class missing from a split, ...)."""


def warn(message: str, sink: list[str] | None = None) -> None:
    """Emit ``message`` as a :class:`FitWarning` and append it to ``sink`` (the run record)."""
    if sink is not None:
        sink.append(message)
    warnings.warn(message, FitWarning, stacklevel=3)
