"""Checks of user-given numbers, made before any work: a flag whose value would make garbage
(``nan``, ``inf``, a learning rate of ``1e300``) is refused in one line naming the flag and the range.

``nan`` compares false with everything, so a plain ``value <= 0`` check lets it through;
every range check here tests finiteness first.
"""

from __future__ import annotations

import math
from typing import Any

from featurebench.errors import FeaturebenchError

#: The largest learning rate taken (larger ones diverge with every optimizer here; ``1e300`` overflows).
MAX_LR = 10.0


def check_range(value: Any, flag: str, low: float, high: float, low_open: bool = False,
                high_open: bool = False, why: str = "") -> float:
    """``value`` as a float, if it is a finite number within ``[low, high]`` (``low_open`` /
    ``high_open``: that end excluded); else a :class:`FeaturebenchError` naming ``flag``.
    ``why``: a few words on the range, added to the message."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    inside = math.isfinite(number) and (low < number if low_open else low <= number) and (
        number < high if high_open else number <= high)
    if not inside:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise FeaturebenchError(f"{flag} {value!r}: must be a finite number in {interval}"
                                + (f" ({why})" if why else ""))
    return number


__all__ = ["MAX_LR", "check_range"]
