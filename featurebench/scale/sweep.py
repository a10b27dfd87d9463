"""``featurebench sweep``: every (feature file, classifier) cell is one ``fit`` run.

Each cell writes its own run folder exactly as ``featurebench fit`` does (it *is*
:func:`featurebench.fit.run_fit`), so ``featurebench report`` reads a sweep like any other
results folder. Without Ray the cells run here one after another; with Ray each cell is a
task that opens its feature file where it runs (shared storage: nothing but the path
crosses the network, never a feature matrix per parameter or fold). ``skip_existing``
makes a sweep resumable: finished cells are left as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from featurebench.errors import FeaturebenchError, unexpected_error_line, write_crash_log


@dataclass
class SweepResult:
    """What a sweep did: the runs (``fit``'s RunResult each) and the cells that failed."""

    runs: list[Any] = field(default_factory=list)
    #: ``(feature file, classifier, error message)`` of every failed cell.
    failures: list[tuple[str, str, str]] = field(default_factory=list)


def sweep_cells(features: Sequence[str | Path], classifiers: Sequence[str]) -> list[tuple[str, str]]:
    """The cells in order: every classifier for the first file, then the next file; paths absolute."""
    cells = []
    for path in features:
        path = Path(path).expanduser()
        if not path.is_file():
            raise FeaturebenchError(f"Feature file {path} not found.")
        cells += [(str(path.resolve()), clf) for clf in classifiers]
    if not cells:
        raise FeaturebenchError("A sweep needs at least one feature file and one --clf.")
    return cells


def check_distinct_run_names(paths: Sequence[str], fit_args: dict[str, Any]) -> None:
    """Refuse, before any work, two different feature files whose runs would share a run folder
    (the second would replace or, with --skip-existing, be mistaken for the first)."""
    from types import SimpleNamespace

    import h5py

    from featurebench.fit.run import run_name_for
    from featurebench.store import identity
    from featurebench.store.reader import _decode, h5_identity

    seen: dict[str, tuple[str, dict[str, Any]]] = {}
    for path in paths:
        try:
            with h5py.File(path, "r") as h5:
                attrs = {key: _decode(value) for key, value in h5.attrs.items()}
                found = h5_identity(h5)
        except (OSError, KeyError, ValueError, TypeError):
            continue  # the cell's own fit names what is wrong with the file
        name = run_name_for(SimpleNamespace(attrs=attrs, path=Path(path)), "CLF", fit_args.get("protocol", "grid"),
                            fit_args.get("scale", "none"), template=fit_args.get("run_name"),
                            pca=fit_args.get("pca"), repeats=fit_args.get("repeats", 1))
        if name in seen and seen[name][1]["digest"] != found["digest"]:
            other, other_identity = seen[name]
            field = (identity.first_difference("skip-existing", other_identity, found) or ("digest",))[0]
            raise FeaturebenchError(
                f"sweep: {path} and {other} differ ({field}) but would write the same run folders "
                f"({name.replace('CLF', '<clf>')}); give them distinct dataset names (extract --dataset-name) or "
                "pass --run-name with a field that tells them apart (e.g. '{dataset}__{extractor}__{clf}__{weights}').")
        seen[name] = (path, found)


def fit_cell(features: str, clf: str, out: str, fit_args: dict[str, Any]) -> tuple[Any, str | None]:
    """One cell: ``(RunResult, None)``, or ``(None, message)`` when the fit refused or failed.

    An unexpected error fails this cell only (its traceback goes to a log file the message
    names), here and in a Ray task alike: the other cells still run."""
    import warnings

    from featurebench.fit import FitWarning, run_fit

    from featurebench.errors import RunExistsError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)  # kept in the RunResult's warnings
            return run_fit(features, clf, out=out, **fit_args), None
    except RunExistsError as exc:  # a sweep has no --run-name: say what it has
        return None, (f"Run folder {exc.run_dir} already exists; pass --force to replace it, --skip-existing to "
                      "keep it, or another --out.")
    except FeaturebenchError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - one broken cell must not stop the sweep
        log = write_crash_log(exc, str(fit_args.get("command", "featurebench sweep")))
        return None, (f"failed unexpectedly: {unexpected_error_line(exc)}"
                      + (f" (traceback in {log})" if log else ""))


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def ray_failure(exc: BaseException) -> str:
    """One plain line for a failed Ray task: the exception that ended it (Ray's own message
    starts with a coloured ``ray::fit_cell()`` banner and the worker's traceback)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return f"Ray task failed: {unexpected_error_line(cause)}"
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    return f"Ray task failed: {type(exc).__name__}" + (f": {lines[-1][:300]}" if lines else "")


def run_sweep(features: Sequence[str | Path], classifiers: Sequence[str], out: str | Path,
              fit_args: dict[str, Any] | None = None, ray: bool = False, address: str | None = None,
              cpus_per_task: int = 1, on_cell: Callable[[str, str, Any, str | None], None] | None = None,
              on_begin: Callable[[int, int, str, str], None] | None = None) -> SweepResult:
    """Fit every (feature file, classifier) cell into ``out``; ``fit_args`` go to ``run_fit``
    (grid, cv, scale, protocol, seed, skip_existing, force, command, ...).

    With ``ray`` each cell is a Ray task with ``cpus_per_task`` CPUs (its ``n_jobs`` unless
    given). ``on_cell(features, clf, run_result, error)`` is called as each cell finishes;
    ``on_begin(number, total, features, clf)`` as each starts (1-based; with Ray: as it is submitted).
    """
    cells = sweep_cells(features, classifiers)
    out = str(Path(out).expanduser().resolve())
    args = dict(fit_args or {})
    check_distinct_run_names(sorted({path for path, _ in cells}, key=[p for p, _ in cells].index), args)
    result = SweepResult()

    def record(path: str, clf: str, run: Any, error: str | None) -> None:
        if run is not None:
            result.runs.append(run)
        else:
            result.failures.append((path, clf, error or "failed"))
        if on_cell:
            on_cell(path, clf, run, error)

    if not ray:
        for number, (path, clf) in enumerate(cells, 1):
            if on_begin:
                on_begin(number, len(cells), path, clf)
            record(path, clf, *fit_cell(path, clf, out, args))
        return result
    from featurebench.scale.cluster import connect

    ray_module = connect(address)
    args.setdefault("n_jobs", cpus_per_task)
    task = ray_module.remote(fit_cell).options(num_cpus=cpus_per_task)
    refs = {}
    for number, (path, clf) in enumerate(cells, 1):
        if on_begin:
            on_begin(number, len(cells), path, clf)
        refs[task.remote(path, clf, out, args)] = (path, clf)
    while refs:
        (ref,), _ = ray_module.wait(list(refs), num_returns=1)
        path, clf = refs.pop(ref)
        try:
            run, error = ray_module.get(ref)
        except ray_module.exceptions.RayError as exc:
            run, error = None, ray_failure(exc)
        record(path, clf, run, error)
    return result
