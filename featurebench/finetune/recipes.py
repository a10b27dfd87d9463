"""Fine-tuning recipes: every knob of a run in one dataclass, built-in presets, YAML/JSON files.

A recipe is resolved in three layers: the defaults below, then a built-in preset
or a recipe file (``--recipe NAME|FILE``), then the CLI flags that were given.
A recipe file holds the field names below (``-`` or ``_``); ``base: NAME`` makes it
start from a built-in preset. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from featurebench.checks import MAX_LR, check_range
from featurebench.data.resize import RESIZE_MODES, check_train_size
from featurebench.errors import FeaturebenchError
from featurebench.training.augment import AUGMENT_PRESETS
from featurebench.training.optimization import OPTIMIZERS, PRECISIONS

HEADS = ("fc", "gap")
NORMALIZE = ("model", "dataset-mean", "scale")


@dataclass(frozen=True)
class Recipe:
    """A complete fine-tuning schedule (defaults: the classic VGG16 Flowers-17 chapter).

    Phase 1 ("warm-up") trains the new head on a frozen body for ``warmup_epochs``
    with ``warmup_optimizer``/``warmup_lr``. Phase 2 unfreezes the body's layers from
    ``unfreeze_from`` (index into the body's layers, as `featurebench inspect MODEL`
    lists them, or a layer name) and trains ``epochs`` more with ``optimizer``/``lr``.
    ``unfreeze_from = None`` or ``epochs = 0`` skips phase 2 (a frozen feature vector
    plus a trained head: the TF-Hub flow). BatchNorm layers always stay frozen.
    """

    name: str = "custom"
    description: str = ""
    model: str | None = None
    weights: str = "imagenet"
    #: ``fc``: flatten -> Dense(head_hidden, relu) -> Dropout(head_dropout) -> Dense(softmax) (FCHeadNet);
    #: ``gap``: global average pool -> [Dropout] -> Dense(softmax) (TF-Hub style).
    head: str = "fc"
    head_hidden: int = 256
    head_dropout: float = 0.5
    #: Network input size (default: the model's); images are loaded at ``load_size`` (default:
    #: ``image_size``, or 256/224 of it when ``patch`` or ``ten_crop`` needs room to crop).
    image_size: int | None = None
    load_size: int | None = None
    #: ``center-crop`` (aspect-aware resize + centre crop) or ``stretch`` (simple resize).
    resize: str = "center-crop"
    #: ``model``: the backbone's own preprocessing; ``dataset-mean``: subtract the training
    #: split's RGB means (saved as means.json); ``scale``: x/255 (the classic script).
    normalize: str = "model"
    augment: str = "classic"
    #: Train on random crops ("patches") of the loaded image; test on 10 crops averaged.
    patch: bool = False
    ten_crop: bool = False
    batch_size: int = 32
    warmup_epochs: int = 25
    warmup_optimizer: str = "rmsprop"
    warmup_lr: float = 1e-3
    epochs: int = 100
    optimizer: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.0
    unfreeze_from: int | str | None = None
    #: Stored index split: rows [:int(N*train_fraction)] are train (the last
    #: int(N*val_fraction) of them validation), the rest test, as `featurebench extract`.
    train_fraction: float = 0.75
    val_fraction: float = 0.1
    #: Stop a phase when the validation loss has not improved for this many epochs.
    early_stopping: int | None = None
    seed: int = 42
    precision: str = "fp32"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


BUILTIN: dict[str, Recipe] = {
    "classic-flowers17": Recipe(
        name="classic-flowers17",
        description="VGG16 + FCHeadNet(256): head 25 epochs RMSprop 1e-3, then layers[15:] (block5) "
                    "100 epochs SGD 1e-3; aspect-aware 224 crops, classic augmentation, 75/25 split",
        model="vgg16", head="fc", head_hidden=256, head_dropout=0.5, image_size=224, resize="center-crop",
        augment="classic", warmup_epochs=25, warmup_optimizer="rmsprop", warmup_lr=1e-3,
        epochs=100, optimizer="sgd", lr=1e-3, unfreeze_from=15, val_fraction=0.0, batch_size=32,
    ),
    "tfhub-mobilenet": Recipe(
        name="tfhub-mobilenet",
        description="Frozen MobileNetV2 feature vector (global average pool) + Dense softmax, Adam 1e-3, 6 epochs",
        model="mobilenetv2", head="gap", head_dropout=0.0, image_size=224, resize="stretch", augment="none",
        warmup_epochs=6, warmup_optimizer="adam", warmup_lr=1e-3, epochs=0, unfreeze_from=None,
        val_fraction=0.1, batch_size=32,
    ),
}

_FIELDS = {f.name: f for f in fields(Recipe)}


def parse_unfreeze(value: Any) -> int | str | None:
    """``15``/``"15"``/``"-4"`` -> int, ``"block5_conv1"`` -> str, ``None``/``"none"``/``""`` -> None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.lower() in ("", "none", "null"):
        return None
    try:
        return int(text)
    except ValueError:
        return text


def _coerce(key: str, value: Any) -> Any:
    if key == "unfreeze_from":
        return parse_unfreeze(value)
    if value is None:
        return None
    if key in ("head_dropout", "warmup_lr", "lr", "momentum", "train_fraction", "val_fraction"):
        return float(value)
    if key in ("head_hidden", "image_size", "load_size", "batch_size", "warmup_epochs", "epochs",
               "early_stopping", "seed"):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("expected an integer")
        return int(value)
    if key in ("patch", "ten_crop"):
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    return str(value) if not isinstance(value, str) else value


def apply_overrides(recipe: Recipe, overrides: dict[str, Any], where: str = "override") -> Recipe:
    """Return ``recipe`` with ``overrides`` applied and checked (keys may use ``-``).

    A ``None`` value sets the key to ``None`` (``unfreeze_from: none`` switches phase 2 off);
    :func:`resolve_recipe` drops CLI flags that were not given before calling this."""
    changes: dict[str, Any] = {}
    for raw_key, value in overrides.items():
        key = str(raw_key).replace("-", "_")
        if key == "base":
            continue
        if key not in _FIELDS:
            raise FeaturebenchError(f"{where}: unknown recipe key {raw_key!r}; valid keys: {', '.join(_FIELDS)}")
        try:
            changes[key] = _coerce(key, value)
        except (TypeError, ValueError) as exc:
            raise FeaturebenchError(f"{where}: {raw_key} = {value!r}: {exc}") from None
    return validate(replace(recipe, **changes), where)


def validate(recipe: Recipe, where: str = "recipe") -> Recipe:
    """Check every value; raise naming the key and the valid choices."""
    choices = {"head": HEADS, "normalize": NORMALIZE, "resize": RESIZE_MODES, "augment": AUGMENT_PRESETS,
               "warmup_optimizer": OPTIMIZERS, "optimizer": OPTIMIZERS, "precision": PRECISIONS}
    for key, allowed in choices.items():
        if getattr(recipe, key) not in allowed:
            raise FeaturebenchError(f"{where}: {key} = {getattr(recipe, key)!r}; choose one of {', '.join(allowed)}")
    if not 0.0 < recipe.train_fraction < 1.0:
        raise FeaturebenchError(f"{where}: train_fraction {recipe.train_fraction} must be between 0 and 1")
    if not 0.0 <= recipe.val_fraction < recipe.train_fraction:
        raise FeaturebenchError(f"{where}: val_fraction {recipe.val_fraction} must be >= 0 and below train_fraction "
                                "(validation rows are the last part of the train split)")
    for key in ("warmup_epochs", "epochs"):
        if getattr(recipe, key) < 0:
            raise FeaturebenchError(f"{where}: {key} must be >= 0")
    if recipe.batch_size < 1 or recipe.head_hidden < 1:
        raise FeaturebenchError(f"{where}: batch_size and head_hidden must be >= 1")
    if not 0.0 <= recipe.head_dropout < 1.0:
        raise FeaturebenchError(f"{where}: head_dropout must be in [0, 1)")
    if recipe.early_stopping is not None and recipe.early_stopping < 1:
        raise FeaturebenchError(f"{where}: early_stopping (patience in epochs) must be >= 1")
    for key in ("image_size", "load_size"):
        check_train_size(getattr(recipe, key), _named(key, where))
    for key in ("warmup_lr", "lr"):
        check_range(getattr(recipe, key), _named(key, where), 0, MAX_LR, low_open=True, why="a learning rate")
    check_range(recipe.momentum, _named("momentum", where), 0, 1, high_open=True)
    if recipe.warmup_epochs + (recipe.epochs if recipe.unfreeze_from is not None else 0) == 0:
        raise FeaturebenchError(f"{where}: nothing to train (warmup_epochs 0 and no fine-tuning phase)")
    return recipe


def _named(key: str, where: str) -> str:
    """How a message names recipe ``key``: its flag for the command line, else ``where: key``."""
    return f"--{key.replace('_', '-')}" if where == "command line" else f"{where}: {key}"


def read_recipe_file(path: Path) -> dict[str, Any]:
    """Parse a ``.yaml``/``.yml``/``.json`` recipe file into a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FeaturebenchError(f"Cannot read recipe file {path}: {exc}") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - json and yaml raise different types
        raise FeaturebenchError(f"Recipe file {path} is not valid {path.suffix.lstrip('.').upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise FeaturebenchError(f"Recipe file {path} must hold a mapping of recipe keys")
    return data


def load_recipe(recipe: str | None) -> Recipe:
    """A built-in name, a ``.yaml``/``.yml``/``.json`` file, or ``None`` (the defaults)."""
    if recipe is None:
        return Recipe()
    if recipe in BUILTIN:
        return BUILTIN[recipe]
    path = Path(recipe).expanduser()
    if path.suffix.lower() not in (".yaml", ".yml", ".json") or not path.is_file():
        raise FeaturebenchError(f"--recipe {recipe!r} is neither a built-in recipe ({', '.join(BUILTIN)}) "
                                "nor an existing .yaml/.yml/.json file")
    data = read_recipe_file(path)
    base_name = data.get("base")
    if base_name is not None and base_name not in BUILTIN:
        raise FeaturebenchError(f"{path}: base {base_name!r} is not a built-in recipe ({', '.join(BUILTIN)})")
    start = BUILTIN[base_name] if base_name else Recipe()
    data = {"name": path.stem, **data}
    return apply_overrides(start, data, where=str(path))


def resolve_recipe(recipe: str | None, overrides: dict[str, Any], base: Recipe | None = None) -> Recipe:
    """The recipe named by ``--recipe`` (else ``base``, e.g. a resumed run's, else the defaults) with the
    given CLI flags on top (``None`` = not given)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    start = base if recipe is None and base is not None else load_recipe(recipe)
    resolved = apply_overrides(start, given, where="command line")
    _refuse_unused_flags(resolved, given)
    return resolved


#: Flags that only act in phase 2 (after unfreezing).
PHASE2_FLAGS = ("epochs", "optimizer", "lr", "momentum")


def _refuse_unused_flags(recipe: Recipe, given: dict[str, Any]) -> None:
    """A flag the resolved recipe cannot honour is an error, not silently ignored."""
    def flags(keys) -> str:
        return ", ".join("--" + key.replace("_", "-") for key in keys)

    unused = [key for key in PHASE2_FLAGS if key in given]
    if unused and recipe.unfreeze_from is None:
        raise FeaturebenchError(
            f"{flags(unused)} set phase 2 (after unfreezing), but recipe {recipe.name!r} never unfreezes "
            "(unfreeze_from none), so they would do nothing: add --unfreeze-from INDEX|NAME to fine-tune "
            "(`featurebench inspect MODEL` lists the layers), or use --warmup-epochs N to train the head longer.")
    if "head_hidden" in given and recipe.head != "fc":
        raise FeaturebenchError(f"--head-hidden sets the fc head's hidden units, but the head is {recipe.head!r} "
                                "(no hidden layer): add --head fc, or leave --head-hidden out.")


def write_recipe(recipe: Recipe, path: Path) -> None:
    """Save a resolved recipe as YAML (``.yaml``/``.yml``) or JSON; loadable with ``--recipe PATH``."""
    data = recipe.to_dict()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    else:
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


__all__ = ["BUILTIN", "Recipe", "apply_overrides", "load_recipe", "parse_unfreeze", "resolve_recipe",
           "validate", "write_recipe"]
