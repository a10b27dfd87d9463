"""Parameter grids: named presets, inline JSON, or a YAML/JSON file (``--grid``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from featurebench.errors import FeaturebenchError
from featurebench.fit.classifiers import CLASSIC_CH3, CLASSIC_CH10, PROBE_C, get_classifier

#: Named grids (``--grid NAME``). Each applies to the classifiers that have its parameters.
PRESETS: dict[str, dict[str, list[Any]]] = {
    "classic-ch3": {"C": CLASSIC_CH3},
    "classic-ch10": {"C": CLASSIC_CH10},
    # The grid of ../shared/datasets/README.md's reference numbers.
    "reference": {"C": [0.01, 0.1, 1.0, 10.0, 100.0]},
    "probe": {"C": PROBE_C},
}

Grid = dict[str, list[Any]]


def _as_grid(value: Any, origin: str) -> Grid | list[Grid]:
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return [_as_grid(item, origin) for item in value]  # type: ignore[misc]
    if not isinstance(value, dict) or not value:
        raise FeaturebenchError(
            f"--grid from {origin}: expected a mapping of parameter -> list of values, "
            f"e.g. '{{\"C\": [0.1, 1, 10]}}', got {type(value).__name__}"
        )
    grid: Grid = {}
    for key, values in value.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise FeaturebenchError(f"--grid from {origin}: parameter {key!r} has an empty list of values")
        grid[str(key)] = values
    return grid


def load_grid(grid: str | dict | list | None, clf: str, protocol: str = "grid") -> Grid | list[Grid]:
    """Resolve ``--grid``: ``None`` (the classifier's default, or its probe sweep), a preset
    name, inline JSON, a ``.json``/``.yaml``/``.yml`` file, or an already-parsed mapping."""
    spec = get_classifier(clf)
    if grid is None:
        if protocol == "probe" and spec.probe_grid:
            return {k: list(v) for k, v in spec.probe_grid.items()}
        return {k: list(v) for k, v in spec.default_grid.items()}
    if isinstance(grid, (dict, list)):
        return _as_grid(grid, "the grid argument")
    text = grid.strip()
    if text in PRESETS:
        return {k: list(v) for k, v in PRESETS[text].items()}
    if text.startswith(("{", "[")):
        try:
            return _as_grid(json.loads(text), "inline JSON")
        except json.JSONDecodeError as exc:
            raise FeaturebenchError(f"--grid {text!r} is not valid JSON ({exc})") from None
    path = Path(text).expanduser()
    if path.is_file():
        raw = path.read_text()
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            try:
                parsed = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise FeaturebenchError(f"--grid file {path} is not valid YAML ({exc})") from None
        else:
            try:
                parsed = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise FeaturebenchError(f"--grid file {path} is not valid JSON ({exc})") from None
        return _as_grid(parsed, str(path))
    raise FeaturebenchError(
        f"--grid {grid!r} is neither a preset ({', '.join(PRESETS)}), inline JSON, nor an existing "
        ".json/.yaml file"
    )


def check_grid(grid: Grid | list[Grid], estimator: Any, clf: str) -> None:
    """Refuse parameters the estimator does not have, naming the valid ones, and values it
    would reject (checked against scikit-learn's parameter constraints before any fit)."""
    valid = set(estimator.get_params(deep=False))
    for part in grid if isinstance(grid, list) else [grid]:
        unknown = sorted(set(part) - valid)
        if unknown:
            raise FeaturebenchError(
                f"--grid sets {', '.join(unknown)}, which --clf {clf} ({type(estimator).__name__}) does not have; "
                f"its parameters are: {', '.join(sorted(valid))}"
            )
        for key, values in part.items():
            for value in values:
                _check_value(estimator, clf, key, value)


def _check_value(estimator: Any, clf: str, key: str, value: Any) -> None:
    from sklearn.base import clone

    # scikit-learn's own estimators declare their parameter constraints (>= 1.2); others
    # (xgboost) inherit the method without the table and check values only when fitting.
    if not hasattr(estimator, "_parameter_constraints"):
        return
    try:
        candidate = clone(estimator).set_params(**{key: value})
        candidate._validate_params()
    except (ValueError, TypeError) as exc:  # InvalidParameterError is a ValueError
        raise FeaturebenchError(f"--grid {key}={value!r} is not valid for --clf {clf}: {exc}") from None


def grid_size(grid: Grid | list[Grid]) -> int:
    """Number of parameter combinations in ``grid``."""
    total = 0
    for part in grid if isinstance(grid, list) else [grid]:
        size = 1
        for values in part.values():
            size *= len(values)
        total += size
    return total


def main_param(grid: Grid | list[Grid], default: str | None) -> str | None:
    """The swept parameter to report: the default's if swept, else the first with several values."""
    parts = grid if isinstance(grid, list) else [grid]
    swept = [k for part in parts for k, v in part.items() if len(v) > 1]
    if default in swept:
        return default
    return swept[0] if swept else (default if any(default in p for p in parts) else None)


def grid_edges(grid: Grid | list[Grid], best_params: dict[str, Any]) -> list[dict[str, Any]]:
    """The chosen numeric values that sit at the lowest or highest value of their grid (of 3 or more
    values): the search may have stopped at the grid's end, not at the best value."""
    edges = []
    for key, chosen in (best_params or {}).items():
        if isinstance(chosen, bool) or not isinstance(chosen, (int, float)):
            continue
        values = sorted({v for g in (grid if isinstance(grid, list) else [grid]) for v in g.get(key, [])
                         if isinstance(v, (int, float)) and not isinstance(v, bool)})
        if len(values) < 3 or chosen not in (values[0], values[-1]):
            continue
        edges.append({"param": key, "value": chosen, "edge": "highest" if chosen == values[-1] else "lowest",
                      "grid_min": values[0], "grid_max": values[-1]})
    return edges


def edge_line(edges: list[dict[str, Any]]) -> str:
    """One terminal line naming the chosen values at the edge of their grid ('' when none)."""
    if not edges:
        return ""
    parts = [f"{e['param']}={e['value']:g} is the {e['edge']} value of its grid ({e['grid_min']:g}..{e['grid_max']:g})"
             for e in edges]
    return "grid edge: " + "; ".join(parts) + " - the best may lie beyond it; widen the grid (--grid) to check"
