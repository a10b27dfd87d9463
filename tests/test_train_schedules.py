"""Learning-rate schedules: polynomial (linear) and step decay values."""

from __future__ import annotations

import pytest

from featurebench.errors import FeaturebenchError
from featurebench.train.schedules import make_schedule, polynomial_decay, step_decay


def test_polynomial_decay_values():
    linear = polynomial_decay(0.1, 100, 1.0)
    assert [linear(e) for e in (0, 25, 50, 99, 100, 120)] == pytest.approx([0.1, 0.075, 0.05, 0.001, 0.0, 0.0])
    squared = polynomial_decay(0.01, 10, 2.0)
    assert squared(5) == pytest.approx(0.01 * 0.25)


def test_step_decay_values():
    step = step_decay(0.01, 0.25, 5)
    assert [step(e) for e in (0, 3, 4, 8, 9, 14)] == pytest.approx([0.01, 0.01, 0.0025, 0.0025, 0.000625, 0.00015625])


def test_make_schedule_checks():
    assert make_schedule("constant", 0.05, 10)(7) == 0.05
    assert make_schedule("poly", 1.0, 4, power=1)(1) == pytest.approx(0.75)
    with pytest.raises(FeaturebenchError, match="must be > 0"):
        make_schedule("poly", 0.0, 10)
    with pytest.raises(FeaturebenchError, match="choose one of constant, poly, step"):
        make_schedule("cosine", 0.1, 10)
