"""Every knob of a from-scratch run in one dataclass, resolved as: general defaults -> the net's
published recipe and architecture options -> the flags given. Nothing here imports TensorFlow."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from featurebench.checks import MAX_LR, check_range
from featurebench.data.resize import RESIZE_MODES, check_train_size
from featurebench.errors import FeaturebenchError
from featurebench.train.nets import get_net
from featurebench.train.schedules import SCHEDULES, make_schedule
from featurebench.training.augment import AUGMENT_PRESETS
from featurebench.training.optimization import OPTIMIZERS, PRECISIONS

NORMALIZE = ("scale", "dataset-mean")
#: Settings a ``--resume`` may change (the ctrl+c workflow: a new learning rate, more epochs).
RESUMABLE = ("lr", "schedule", "power", "step_factor", "step_every", "epochs", "checkpoint_every", "keep_every")
#: Architecture options (passed to the net's builder when the net takes them).
NET_OPTIONS = ("filters", "hidden", "stages", "stem", "width", "l2")


@dataclass(frozen=True)
class TrainSettings:
    """A from-scratch run. ``None`` architecture options mean "the net's published value"."""

    net: str = "minivggnet"
    image_size: int | None = None
    filters: tuple[int, ...] | None = None
    hidden: int | None = None
    stages: tuple[int, ...] | None = None
    stem: str | None = None
    width: float | None = None
    l2: float | None = None
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    #: ``constant``, ``poly`` (power 1 = linear decay) or ``step`` (x step_factor every step_every epochs).
    schedule: str = "constant"
    power: float = 1.0
    step_factor: float = 0.25
    step_every: int = 5
    batch_size: int = 32
    epochs: int = 100
    augment: str = "none"
    #: ``scale``: x/255 (the classic ImageToArray + /255); ``dataset-mean``: minus the training RGB means.
    normalize: str = "scale"
    resize: str = "center-crop"
    load_size: int | None = None
    patch: bool = False
    ten_crop: bool = False
    train_fraction: float = 0.75
    val_fraction: float = 0.1
    seed: int = 42
    precision: str = "fp32"
    #: Write a resumable checkpoint every N epochs (and always after the last one), as ``finetune``.
    checkpoint_every: int = 1
    #: Of the checkpoints written, also keep those of epochs that are multiples of N (0: only the
    #: latest), to resume from an earlier epoch at another learning rate.
    keep_every: int = 5

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def net_options(self) -> dict[str, Any]:
        """The architecture options the net takes, as given (published values for the rest)."""
        spec = get_net(self.net)
        return {k: getattr(self, k) for k in NET_OPTIONS if k in spec.options and getattr(self, k) is not None}

    def schedule_fn(self):
        """The per-epoch learning-rate function."""
        return make_schedule(self.schedule, self.lr, self.epochs, self.power, self.step_factor, self.step_every)


_FIELDS = {f.name for f in fields(TrainSettings)}


def _ints(value: Any, key: str) -> tuple[int, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        out = tuple(int(str(v).strip()) for v in items if str(v).strip())
    except ValueError:
        raise FeaturebenchError(f"--{key.replace('_', '-')} {value!r}: comma-separated integers, e.g. 32,64") from None
    if not out or min(out) < 1:
        raise FeaturebenchError(f"--{key.replace('_', '-')} {value!r}: positive integers")
    return out


def resolve_settings(net: str, overrides: dict[str, Any], base: TrainSettings | None = None) -> TrainSettings:
    """``base`` (default: the net's published recipe) with the given (non-None) ``overrides``, checked."""
    spec = get_net(net)
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - _FIELDS
    if unknown:
        raise FeaturebenchError(f"unknown train setting(s): {', '.join(sorted(unknown))}")
    for key in ("filters", "stages"):
        if key in given:
            given[key] = _ints(given[key], key)
    not_taken = [k for k in NET_OPTIONS if k in given and k not in spec.options]
    if not_taken:
        raise FeaturebenchError(f"--net {spec.name} does not take --{', --'.join(not_taken)}; "
                                f"it takes --{', --'.join(spec.options)}")
    start = base or TrainSettings(net=spec.name, image_size=spec.input_size, **spec.recipe)
    return validate(replace(start, net=spec.name, **given))


def validate(s: TrainSettings) -> TrainSettings:
    """Check every value; raise naming the flag and the choices."""
    choices = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "augment": AUGMENT_PRESETS, "normalize": NORMALIZE,
               "resize": RESIZE_MODES, "precision": PRECISIONS}
    for key, allowed in choices.items():
        if getattr(s, key) not in allowed:
            raise FeaturebenchError(f"--{key.replace('_', '-')} {getattr(s, key)!r}: choose one of {', '.join(allowed)}")
    if s.epochs < 1 or s.batch_size < 1 or s.checkpoint_every < 1:
        raise FeaturebenchError("--epochs, --batch-size and --checkpoint-every must be >= 1")
    if s.keep_every < 0:
        raise FeaturebenchError(f"--keep-every {s.keep_every}: 0 (only the latest checkpoint) or N >= 1")
    if not 0.0 < s.train_fraction < 1.0 or not 0.0 <= s.val_fraction < s.train_fraction:
        raise FeaturebenchError("need 0 < --train-fraction < 1 and 0 <= --val-fraction < --train-fraction")
    for key in ("image_size", "load_size"):
        check_train_size(getattr(s, key), f"--{key.replace('_', '-')}")
    check_range(s.lr, "--lr", 0, MAX_LR, low_open=True, why="the learning rate")
    check_range(s.momentum, "--momentum", 0, 1, high_open=True)
    check_range(s.power, "--power", 0, 100, low_open=True)
    check_range(s.step_factor, "--step-factor", 0, 1, low_open=True)
    if s.l2 is not None:
        check_range(s.l2, "--l2", 0, 1, high_open=True, why="weight decay")
    if s.width is not None:
        check_range(s.width, "--width", 0, 16, low_open=True, why="a multiplier of every filter count")
    s.schedule_fn()  # checks lr / power / step settings
    return s


__all__ = ["NET_OPTIONS", "NORMALIZE", "RESUMABLE", "TrainSettings", "resolve_settings", "validate"]
