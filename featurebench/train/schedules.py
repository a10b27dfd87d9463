"""Learning-rate schedules, per epoch (the classic ``LearningRateScheduler`` functions).

- ``constant``: ``base``;
- ``poly``: ``base × (1 − epoch / max_epochs) ** power`` (power 1 = linear decay to 0 at ``max_epochs``);
- ``step``: ``base × factor ** floor((1 + epoch) / every)`` (the classic step decay: drop by
  ``factor`` every ``every`` epochs).

``epoch`` is 0-based, as Keras passes it. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import math
from typing import Callable

from featurebench.errors import FeaturebenchError

SCHEDULES = ("constant", "poly", "step")

Schedule = Callable[[int], float]


def polynomial_decay(base: float, max_epochs: int, power: float = 1.0) -> Schedule:
    """``lr(epoch) = base × (1 − epoch / max_epochs) ** power``, 0 from ``max_epochs`` on."""
    return lambda epoch: float(base * max(0.0, 1.0 - epoch / float(max_epochs)) ** power)


def step_decay(base: float, factor: float = 0.25, every: int = 5) -> Schedule:
    """``lr(epoch) = base × factor ** floor((1 + epoch) / every)``."""
    return lambda epoch: float(base * factor ** math.floor((1 + epoch) / every))


def make_schedule(name: str, base: float, max_epochs: int, power: float = 1.0, factor: float = 0.25,
                  every: int = 5) -> Schedule:
    """The schedule called ``name`` (one of :data:`SCHEDULES`)."""
    if base <= 0:
        raise FeaturebenchError(f"--lr {base}: the learning rate must be > 0")
    if name == "constant":
        return lambda epoch: float(base)
    if name == "poly":
        if max_epochs < 1 or power <= 0:
            raise FeaturebenchError("--schedule poly needs --epochs >= 1 and --power > 0")
        return polynomial_decay(base, max_epochs, power)
    if name == "step":
        if every < 1 or not 0 < factor <= 1:
            raise FeaturebenchError("--schedule step needs --step-every >= 1 and 0 < --step-factor <= 1")
        return step_decay(base, factor, every)
    raise FeaturebenchError(f"--schedule {name!r}: choose one of {', '.join(SCHEDULES)}")


__all__ = ["SCHEDULES", "Schedule", "make_schedule", "polynomial_decay", "step_decay"]
