"""``featurebench fit``: one feature file + one classifier -> ``RESULTS_DIR/<run-name>/``.

Steps: open the file, resolve the grid and split, load the train slice once as
float32 (or train out of core when it exceeds the memory budget), search on the
train slice only, refit, predict the test rows block by block, then write the
run folder atomically: ``metrics.json``, ``cv_results.csv``,
``classification_report.txt``, ``confusion.csv``, ``predictions.csv`` (one line per
test row), ``model.skops`` (and ``split.json`` for a stratified split).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featurebench.errors import FeaturebenchError, RunExistsError
from featurebench.text import plural
from featurebench.fit import record
from featurebench.fit.bundle import BUNDLE_NAME, extractor_spec, save_bundle
from featurebench.fit.quantised import INT8_FOLDER, attach_int8_model
from featurebench.fit.classifiers import get_classifier
from featurebench.fit.exclude import AUDITED_METRIC, PREDICTIONS_FILE, exclude_rows, predictions_csv, read_rows_file
from featurebench.fit.grids import edge_line, grid_edges, load_grid, main_param
from featurebench.fit.memory import in_memory_bytes, parse_memory
from featurebench.fit.monitor import Reporter, SearchMonitor
from featurebench.fit.rows import block_rows, iter_rows, read_selection
from featurebench.fit.search import PROTOCOLS, SCALES, SearchResult, effective_jobs, search
from featurebench.fit.splits import Split, make_split
from featurebench.outputs import check_not_an_input, check_writable_folder
from featurebench.store import identity
from featurebench.store.reader import FeatureFile, open_feature_file

#: Default run-name template; fields: dataset, extractor, clf, layer, pool, protocol, scale, split, variant,
#: seed, precision, weights (the first 8 characters of the weights' sha256).
RUN_NAME_TEMPLATE = "{dataset}__{extractor}__{clf}{variant}"


@dataclass
class RunResult:
    """What a fit run produced (``skipped`` when ``--skip-existing`` found it done)."""

    run_dir: Path
    run_name: str
    metrics: dict[str, Any]
    skipped: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def bundle_path(self) -> Path:
        return self.run_dir / BUNDLE_NAME

    def describe(self) -> str:
        """A few lines for the terminal."""
        m = self.metrics
        if self.skipped:
            accuracy = m.get("accuracy")
            shown = f"{accuracy:.4f}" if isinstance(accuracy, (int, float)) else "unknown"
            return f"{self.run_dir}: exists, skipped (--skip-existing); test accuracy {shown}"
        low, high = m["accuracy_ci95"] if m.get("accuracy_ci95") else (None, None)
        ci = f" (95% CI {low:.4f}-{high:.4f})" if low is not None else ""
        rank5 = f", rank-5 {m['rank5']:.4f}" if m.get("rank5") is not None else ""
        metric = m.get("accuracy_metric") or "test accuracy"
        # Short lines (a terminal is often 80 columns wide): the answer first, then how it was reached.
        lines = [
            *_repeats_lead(m),
            f"{m['classifier']} on {m['dataset']} / {m['extractor']}: "
            f"{'first split: ' if m.get('repeats') else ''}{metric} {m['accuracy']:.4f}{ci}",
            f"  {rank5[2:] + ', ' if rank5 else ''}mean per-class {m['mean_per_class_accuracy']:.4f}, "
            f"macro F1 {m['macro_f1']:.4f}",
            f"  {m['n_train']} train / {m['n_test']} test rows ({m['split']} split); "
            f"fit {m['fit_seconds']:.2f} s, predict {m['predict_seconds']:.2f} s"
            + (" [out of core]" if m.get("out_of_core") else ""),
            f"  best {m['best_params']} by {m['scoring']}",
            f"  ({m['search_method']})",
            *(f"  {line}" for line in _budget_and_repeats_lines(m)),
            *([f"  {edge_line(m['grid_edges'])}"] if m.get("grid_edges") else []),
            *([f"  test rows: {m['test_set']['description']} ({AUDITED_METRIC}: not ranked with test accuracy)"]
              if (m.get("test_set") or {}).get("kind") == "audited" else []),
            f"wrote {self.run_dir}/",
            "  (metrics.json, cv_results.csv, classification_report.txt,",
            f"  confusion.csv, {PREDICTIONS_FILE}, {BUNDLE_NAME}"
            + (f", {INT8_FOLDER}/: its int8 model)" if (self.run_dir / INT8_FOLDER).is_dir() else ")"),
        ]
        return "\n".join(lines)


def _repeats_lead(m: dict[str, Any]) -> list[str]:
    """The headline of a ``--repeats`` run: mean ± std and the mean's 95% CI over the splits."""
    repeats = m.get("repeats")
    if not repeats or repeats.get("accuracy_mean") is None:
        return []
    ci = repeats.get("accuracy_mean_ci95")
    ci_text = f", 95% CI of the mean {ci[0]:.4f}-{ci[1]:.4f}" if ci else ""
    return [f"{m['classifier']} on {m['dataset']} / {m['extractor']}: test accuracy {repeats['accuracy_mean']:.4f} "
            f"± {repeats.get('accuracy_std') or 0:.4f} (mean ± std over {repeats['n']} splits{ci_text})"]


def _budget_and_repeats_lines(m: dict[str, Any]) -> list[str]:
    lines = []
    budget = m.get("time_budget")
    if budget and budget.get("stopped"):
        lines.append(f"time budget {budget['seconds']:g} s: {budget['fits_skipped']} of {budget['fits_planned']} "
                     f"fits skipped ({plural(len(budget['skipped_params']), 'candidate')} not fully searched)")
    repeats = m.get("repeats")
    if repeats:
        std = repeats.get("accuracy_std")
        each = ", ".join(f"{s['accuracy']:.4f}" for s in repeats["splits"])
        lines.append(f"{repeats['n']} stratified splits (seeds {repeats['seeds'][0]}..{repeats['seeds'][-1]}): "
                     f"accuracy {repeats['accuracy_mean']:.4f} ± {std:.4f} (each: {each}); "
                     "the first-split line above is one of them, the mean is the run's result")
    return lines


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", str(text)).strip("-.") or "unnamed"


def extractor_name(attrs: dict[str, Any]) -> str:
    """A short extractor name: the registry name, or a model file's stem."""
    model = str(attrs.get("model") or "unknown")
    if attrs.get("model_source") == "fused":  # already "a+b" of the parts' short names
        return model
    if attrs.get("model_source") not in (None, "", "registry") or re.search(r"\.(tflite|keras|h5)$", model):
        model = Path(model).stem if Path(model).suffix else Path(model).name
    return model


def dataset_name(attrs: dict[str, Any], path: Path) -> str:
    """The dataset: the file's ``dataset`` attribute, else its source folder's name, else the file stem."""
    return str(attrs.get("dataset") or (Path(str(attrs["source"])).name if attrs.get("source") else "") or path.stem)


#: The extraction settings a run name shows when they differ from ``extract``'s defaults.
DEFAULT_SEED = 42


def extraction_variant(attrs: dict[str, Any]) -> str:
    """``__seedN``, ``__layer-NAME``, ``__pool-P``, ``__PRECISION``, ``__random-init`` or ``__w-SHA8``
    for every extraction setting that differs from the defaults ("" when none does, so default
    runs keep their names): files that differ only there get different run folders. Files written
    from arrays (``write_feature_arrays``) have no extraction settings."""
    variant = ""
    if attrs.get("source_kind") == "arrays":
        return variant
    seed = attrs.get("seed")
    if seed not in (None, "") and str(seed) != str(DEFAULT_SEED):
        variant += f"__seed{seed}"
    if attrs.get("layer_requested"):
        variant += f"__layer-{attrs.get('layer')}"
    if attrs.get("pool_requested") and str(attrs.get("pool")) != "avg":
        variant += f"__pool-{attrs.get('pool')}"
    precision = str(attrs.get("precision") or "fp32")
    if precision != "fp32":
        variant += f"__{precision}"
    weights = str(attrs.get("weights") or "")
    if attrs.get("model_source") in (None, "", "registry"):
        if weights.lower().startswith("random"):
            variant += "__random-init"
        elif weights.startswith("file:") and attrs.get("weights_sha256"):
            variant += f"__w-{str(attrs['weights_sha256'])[:8]}"
    return variant


def run_name_for(features: FeatureFile, clf: str, protocol: str = "grid", scale: str = "none",
                 split_kind: str = "index", test_path: Path | None = None, template: str | None = None,
                 exclude_path: Path | None = None, pca: int | None = None, repeats: int = 1,
                 exclude_test: bool = False, calibrate: bool = False) -> str:
    """The run folder name from ``template`` (default :data:`RUN_NAME_TEMPLATE`); the variant holds
    the extraction settings that differ from the defaults (:func:`extraction_variant`), and an
    explicit ``--pca``, ``--repeats``, ``--calibrate`` and ``--exclude-test`` add ``__pcaN``,
    ``__repeatsN``, ``__calibrated`` and ``__audited-test``."""
    variant = extraction_variant(features.attrs)
    if protocol != "grid":
        variant += f"__{protocol}"
    if scale != "none":
        variant += f"__{scale}"
    if pca:
        variant += f"__pca{pca}"
    if repeats > 1:
        variant += f"__repeats{repeats}"
    elif split_kind == "stratified":
        variant += "__stratified"
    if test_path is not None:
        variant += f"__test-{test_path.stem}"
    if exclude_path is not None:
        variant += f"__exclude-{exclude_path.stem}" + ("__audited-test" if exclude_test else "")
    if calibrate:
        variant += "__calibrated"
    fields = {"dataset": dataset_name(features.attrs, features.path), "extractor": extractor_name(features.attrs),
              "clf": clf, "layer": features.attrs.get("layer", ""), "pool": features.attrs.get("pool", ""),
              "protocol": protocol, "scale": scale, "split": split_kind, "variant": variant,
              "seed": features.attrs.get("seed", ""), "precision": features.attrs.get("precision") or "fp32",
              "weights": str(features.attrs.get("weights_sha256") or features.attrs.get("weights") or "")[:8]}
    try:
        name = (template or RUN_NAME_TEMPLATE).format(**{k: str(v) for k, v in fields.items()})
    except (KeyError, IndexError, ValueError) as exc:
        raise FeaturebenchError(
            f"--run-name {template!r}: unknown field {exc}; fields are {', '.join(fields)}"
        ) from None
    return _slug(name)


def _encode(y_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    classes = np.unique(y_train)
    return classes, np.searchsorted(classes, y_train)


def _predict(estimator: Any, features: FeatureFile, split: Split, classes: np.ndarray, block: int
             ) -> tuple[np.ndarray, np.ndarray, str]:
    from featurebench.fit.metrics import estimator_scores, expand_scores

    n_test, n_classes = len(split.test), len(split.label_names)
    y_pred = np.empty(n_test, dtype=np.int64)
    scores = np.empty((n_test, n_classes), dtype=np.float64)
    kind = "probability"
    for positions, data in iter_rows(features, split.test, block):
        block_scores, kind = estimator_scores(estimator, data)
        scores[positions] = expand_scores(block_scores, classes, n_classes)
        # The prediction is the top-scored class (first on ties, as rank-k counts them), so accuracy
        # and rank-1 are one number, and `featurebench predict` shows the same top-1.
        y_pred[positions] = np.argmax(scores[positions], axis=1)
    return y_pred, scores, kind


def _write_run(run_dir: Path, force: bool, files: dict[str, str], metrics: dict[str, Any],
               bundle: tuple, predictions: dict[str, Any]) -> list[str]:
    """Write everything into a temporary folder beside ``run_dir``, then swap it in; the warnings
    this adds to ``metrics`` (an int8 model that could not be copied into the bundle)."""
    tmp = run_dir.with_name(f".{run_dir.name}.tmp-{os.getpid()}")
    old = run_dir.with_name(f".{run_dir.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name, text in files.items():
            (tmp / name).write_text(text)
        estimator, label_names, spec, *rest = bundle
        spec, missing = attach_int8_model(spec, tmp)
        added = [missing] if missing else []
        metrics["warnings"].extend(added)
        save_bundle(tmp / BUNDLE_NAME, estimator, label_names, spec, *rest)
        record.write_probabilities(tmp / record.PROBABILITIES_FILE, **predictions)
        record.write_json(tmp / "metrics.json", metrics)
        if run_dir.exists():
            if not force:
                raise FeaturebenchError(f"{run_dir} appeared while this run was working; pass --force to replace it")
            os.replace(run_dir, old)
        os.replace(tmp, run_dir)
    except OSError as exc:
        raise FeaturebenchError(f"Could not write the run folder {run_dir} ({exc.strerror or exc}); free disk space "
                                "(or fix the error) and run the same command again.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return added


def run_fit(features_path: str | Path, clf: str = "logreg", grid: str | dict | list | None = None, cv: int = 3,
            n_jobs: int | None = -1, out: str | Path = "results", force: bool = False, skip_existing: bool = False,
            scale: str = "none", protocol: str = "grid", stratified: bool = False,
            test_file: str | Path | None = None, seed: int = 42, max_memory: str | int | None = None,
            run_name: str | None = None, command: str | None = None, n_boot: int = 1000,
            exclude: str | Path | None = None,
            pca: int | None = None, time_budget: float | None = None, repeats: int = 1,
            reporter: Reporter | None = None, exclude_test: bool = False, calibrate: bool = False) -> RunResult:
    """Search, refit, evaluate and record one classifier on one feature file.

    ``grid``: a preset name, JSON text, a YAML/JSON file or a mapping (default: the classifier's).
    ``run_name``: a name or a template with ``{dataset}``, ``{extractor}``, ``{clf}``, ... fields.
    ``exclude``: a rows file (row numbers or stored paths, one a line) whose rows do not train; its test
    rows stay test rows unless ``exclude_test``, which drops them and records the result as
    "accuracy on audited test rows" (the report never ranks it with test accuracy).
    ``calibrate``: wrap the chosen model in scikit-learn's ``CalibratedClassifierCV`` (sigmoid, 3 folds
    of the train rows) so that classifiers without probabilities (svm, linsvm, sgd) record some.
    Refuses to replace an existing run folder unless ``force``; ``skip_existing`` returns it instead.
    ``pca``: PCA components inside the pipeline, fitted on train rows only (``None`` or ``0``: none).
    ``time_budget``: seconds per search; no fit is launched past it, the best finished candidate wins.
    ``repeats``: N > 1 re-splits the rows N times (stratified, seeds ``seed .. seed+N-1``), runs the
    whole search on each and records mean, std and every split; the top-level metrics and the saved
    model are those of the first split (seed ``seed``, the same split as ``--stratified --seed``).
    ``reporter``: receives progress events (see :mod:`featurebench.fit.monitor`); default silent.
    """
    spec = get_classifier(clf)
    if scale not in SCALES:
        raise FeaturebenchError(f"--scale {scale!r}: choose one of {', '.join(SCALES)}")
    if protocol not in PROTOCOLS:
        raise FeaturebenchError(f"--protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    if force and skip_existing:
        raise FeaturebenchError("--force and --skip-existing exclude each other")
    if time_budget is not None and not time_budget > 0:
        raise FeaturebenchError(f"--time-budget {time_budget}: must be a positive number of seconds")
    if repeats < 1:
        raise FeaturebenchError(f"--repeats {repeats}: must be at least 1")
    if repeats > 1 and test_file is not None:
        raise FeaturebenchError("--repeats re-splits the feature file's rows; it cannot be combined with --test-file")
    if exclude_test and exclude is None:
        raise FeaturebenchError("--exclude-test needs --exclude ROWS_FILE (the rows to drop from the test set)")
    if pca is not None and pca < 0:
        raise FeaturebenchError(f"--pca {pca}: must be 0 (no PCA) or a number of components")
    budget = parse_memory(max_memory)
    command = command if command is not None else shlex.join(sys.argv)
    features_path = Path(features_path)
    return _run(features_path, spec.name, grid, cv, n_jobs, Path(out), force, skip_existing, scale, protocol,
                stratified or repeats > 1, test_file, seed, budget, run_name, command, n_boot,
                _Extra(pca, time_budget, repeats, reporter,
                       Path(exclude) if exclude is not None else None, exclude_test, calibrate))


@dataclass
class _Extra:
    pca: int | None
    time_budget: float | None
    repeats: int
    reporter: Reporter | None
    exclude: Path | None
    exclude_test: bool = False
    calibrate: bool = False


@dataclass
class _Scored:
    """One split's search and test evaluation."""

    result: SearchResult
    classes: np.ndarray
    y_pred: np.ndarray
    scores: np.ndarray
    evaluation: dict[str, Any]
    score_kind: str
    fit_seconds: float
    load_seconds: float
    predict_seconds: float
    out_of_core: bool
    time_budget: dict[str, Any] | None


def _search_and_score(features: FeatureFile, test_features: FeatureFile | None, split: Split, clf: str,
                      grid: Any, cv: int, n_jobs: int | None, scale: str, protocol: str, seed: int, budget: int,
                      n_boot: int, extra: _Extra, stage: str) -> _Scored:
    from featurebench.fit import metrics as M
    from featurebench.fit.outofcore import fit_out_of_core, needs_memory_error

    spec = get_classifier(clf)
    classes, y_train = _encode(split.y_train)
    n_train, dim = len(split.train), features.feature_dim
    workers = effective_jobs(n_jobs)
    need = in_memory_bytes(n_train, dim, workers, cv)
    started = time.perf_counter()
    out_of_core = need > budget
    if out_of_core and not spec.out_of_core:
        raise needs_memory_error(clf, need, budget, n_train, dim)
    monitor = SearchMonitor(extra.reporter, extra.time_budget, workers)
    monitor.context = {"classifier": clf, "rows": n_train, "dims": dim, "classes": len(classes),
                       "workers": workers, "stage": stage}
    if out_of_core and (extra.pca or extra.calibrate):
        flag = "--pca" if extra.pca else "--calibrate"
        raise FeaturebenchError(f"{flag} needs the train slice in memory ({n_train} rows x {dim} exceed the "
                                f"memory budget); raise --max-memory or drop {flag}")
    if out_of_core:
        monitor.note(f"{clf}: {n_train} train rows exceed the memory budget; training out of core (no progress bar)")
        result: SearchResult = fit_out_of_core(features, split.train, y_train, clf, grid, budget, scale, seed)
        load_seconds = 0.0
    else:
        X = read_selection(features, split.train)
        load_seconds = time.perf_counter() - started
        try:
            result = search(X, y_train, clf, grid, cv, n_jobs, scale, protocol, seed, extra.pca or None, monitor)
        finally:
            monitor.finish()
        if extra.calibrate:
            from featurebench.fit.calibration import calibrate

            result.estimator, result.details["calibration"] = calibrate(result.estimator, X, y_train)
        del X
    split.warnings.extend(result.warnings)
    fit_seconds = time.perf_counter() - started - load_seconds
    started = time.perf_counter()
    test_source = test_features if test_features is not None else features
    block = block_rows(test_source, budget // 4)
    y_pred, scores, score_kind = _predict(result.estimator, test_source, split, classes, block)
    predict_seconds = time.perf_counter() - started
    evaluation = M.evaluate(split.y_test, y_pred, scores, split.label_names, seed, n_boot)
    return _Scored(result, classes, y_pred, scores, evaluation, score_kind, fit_seconds, load_seconds, predict_seconds,
                   out_of_core, monitor.summary() if extra.time_budget is not None else None)


#: The per-split numbers that ``--repeats`` summarises.
REPEATED_METRICS = ("accuracy", "rank1", "rank5", "mean_per_class_accuracy", "macro_f1")


def repeats_block(seeds: list[int], runs: list[_Scored], splits: list[Split], digests: list[str]) -> dict[str, Any]:
    """The ``repeats`` entry: mean and sample std (ddof=1) over the splits, the t-based 95% CI of the
    mean accuracy, and every split (with its test rows' digest, so runs can be paired split by split)."""
    from featurebench.fit.metrics import mean_ci95

    out: dict[str, Any] = {"n": len(runs), "seeds": seeds, "method": "sklearn StratifiedShuffleSplit per seed"}
    for key in REPEATED_METRICS:
        values = [r.evaluation[key] for r in runs if r.evaluation.get(key) is not None]
        out[f"{key}_mean"] = float(np.mean(values)) if values else None
        out[f"{key}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    out["accuracy_mean_ci95"] = mean_ci95([r.evaluation["accuracy"] for r in runs])
    out["splits"] = [{"seed": seed, **{key: r.evaluation.get(key) for key in REPEATED_METRICS},
                      "best_params": r.result.best_params, "n_train": len(s.train), "n_test": len(s.test),
                      "fit_seconds": round(r.fit_seconds, 4), "time_budget": r.time_budget,
                      "test_rows_digest": digest}
                     for seed, r, s, digest in zip(seeds, runs, splits, digests)]
    return out


def _fitted_identity(features: FeatureFile, test_features: FeatureFile | None, split: Split) -> dict[str, Any]:
    """The run's identity: the feature file it was fitted on, the rows it predicted (and the test file's digest)."""
    test_source = test_features if test_features is not None else features
    predicted = split.test.take(np.asarray(test_source.paths, dtype=object)).tolist()
    found = identity.run_identity(features.identity, predicted)
    if test_features is not None:
        found["test_file_digest"] = test_features.identity["digest"]
    return found


def _existing_run(run_dir: Path, features: FeatureFile) -> dict[str, Any]:
    """The record of a finished run that ``--skip-existing`` keeps: refused (one line) when it is
    unreadable or was fitted on another feature file than ``features`` (identities compared)."""
    path = run_dir / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FeaturebenchError(f"--skip-existing: {path} is unreadable ({' '.join(str(exc).split())[:100]}); pass "
                                "--force to run it again.") from None
    if not isinstance(metrics, dict):
        raise FeaturebenchError(f"--skip-existing: {path} holds a JSON {type(metrics).__name__}, not a run record; "
                                "pass --force to run it again.")
    identity.check_run_source("skip-existing", metrics, features.identity, str(run_dir), str(features.path))
    return metrics


def _split_digest(split: Split, test_source: FeatureFile) -> str:
    """The digest of one split's test rows (stored path + label name)."""
    paths = split.test.take(np.asarray(test_source.paths, dtype=object)).tolist()
    return record.test_rows_digest(paths, split.y_test, split.label_names)


def _test_set(split: Split, extra: _Extra, seeds: list[int], excluded_test: int) -> dict[str, Any]:
    """How the run's test rows were chosen (the report labels runs outside the stored split with it)."""
    if split.kind == "test-file" and split.test_file is not None:
        kind, text = "test-file", f"test file {split.test_file.path.name}"
    elif extra.repeats > 1:
        kind, text = "repeats", f"{extra.repeats} stratified splits (seeds {seeds[0]}..{seeds[-1]})"
    elif split.kind == "stratified":
        kind, text = "stratified", f"stratified split (seed {seeds[0]})"
    else:
        kind, text = record.STORED_SPLIT, "stored split"
    if extra.exclude_test and excluded_test:
        kind, text = "audited", f"{text} minus {excluded_test} audited test rows ({extra.exclude.name})"
    return record.test_set(kind, text, len(split.test))


def _run(features_path: Path, clf: str, grid_arg: Any, cv: int, n_jobs: int | None, out: Path, force: bool,
         skip_existing: bool, scale: str, protocol: str, stratified: bool, test_file: str | Path | None,
         seed: int, budget: int, run_name: str | None, command: str, n_boot: int, extra: _Extra) -> RunResult:
    from featurebench.fit import metrics as M
    from featurebench.fit.classifiers import make_estimator
    from featurebench.fit.grids import check_grid

    if not 0 <= seed < 2**32:
        raise FeaturebenchError(f"--seed {seed}: use a whole number from 0 to 2**32-1")
    spec = get_classifier(clf)
    grid = load_grid(grid_arg, clf, protocol)
    check_grid(grid, make_estimator(clf, seed), clf)
    check_writable_folder(out, "--out")
    features = open_feature_file(features_path)
    test_features = open_feature_file(test_file) if test_file is not None else None
    try:
        for opened, flag in ((features, "FEATURES"), (test_features, "--test-file")):
            if opened is not None and opened.shard is not None:
                k, n = opened.shard
                raise FeaturebenchError(
                    f"{flag} {opened.path} is shard {k} of {n} of one extraction (extract --shards): it holds "
                    f"{opened.n_rows} of the dataset's rows, and a run on it would not be comparable with runs on "
                    "the whole set. Join the shards first: `featurebench merge SHARD_1.h5 ... -o WHOLE.h5`.")
        split_kind = "test-file" if test_features is not None else ("stratified" if stratified else "index")
        name = run_name_for(features, clf, protocol, scale, split_kind,
                            Path(test_file) if test_file is not None else None, run_name, extra.exclude,
                            extra.pca, extra.repeats, extra.exclude_test, extra.calibrate)
        run_dir = out / name
        check_not_an_input(run_dir, [features_path, *([Path(test_file)] if test_file is not None else []),
                                     *([extra.exclude] if extra.exclude is not None else [])], "--out/--run-name")
        if run_dir.exists():
            if skip_existing and (run_dir / "metrics.json").is_file():
                return RunResult(run_dir, name, _existing_run(run_dir, features), skipped=True)
            if not force:
                raise RunExistsError(run_dir, "pass --force to replace it, --skip-existing to keep it, "
                                              "or --out/--run-name to write elsewhere.")
        seeds = [seed + r for r in range(extra.repeats)]
        splits: list[Split] = []
        runs: list[_Scored] = []
        excluded = read_rows_file(extra.exclude, features) if extra.exclude is not None else None
        excluded_test = 0
        for r, split_seed in enumerate(seeds):
            splits.append(make_split(features, stratified, test_features, split_seed))
            if excluded is not None:
                splits[-1], in_test = exclude_rows(splits[-1], excluded, extra.exclude_test)
                excluded_test = max(excluded_test, in_test)
                if in_test and not extra.exclude_test and r == 0:
                    from featurebench.fit.warn import warn

                    warn(f"--exclude {extra.exclude}: {in_test} of its rows are test rows; they stay in the test "
                         "set (test rows are never dropped because a model or an audit found them hard). Pass "
                         f"--exclude-test to drop them: that run is recorded as {AUDITED_METRIC}, apart from "
                         "the ranking.", splits[-1].warnings)
            stage = f"split {r + 1}/{extra.repeats} (seed {split_seed})" if extra.repeats > 1 else ""
            runs.append(_search_and_score(features, test_features, splits[-1], clf, grid, cv, n_jobs, scale,
                                          protocol, split_seed, budget, n_boot, extra, stage))
        split, first = splits[0], runs[0]
        test_source = test_features if test_features is not None else features
        digests = [_split_digest(s, test_source) for s in splits]
        result, classes, y_pred, evaluation = first.result, first.classes, first.y_pred, first.evaluation
        n_train, dim = len(split.train), features.feature_dim
        if extra.repeats > 1:
            split.warnings.extend(w for s in splits[1:] for w in s.warnings if w not in split.warnings)
        attrs = features.attrs
        weights = str(attrs.get("weights", ""))
        random_init = attrs.get("random_init")
        random_init = bool(random_init) if random_init not in (None, "") else "random" in weights.lower()
        if random_init:
            from featurebench.fit.warn import warn

            warn(f"{features.path} was extracted with random-init weights ({weights}): this run is a baseline, "
                 "not transfer learning", split.warnings)
        metrics: dict[str, Any] = {
            "schema": record.SCHEMA, "schema_version": record.SCHEMA_VERSION, "run_name": name, "kind": "features",
            "dataset": dataset_name(attrs, features.path), "extractor": extractor_name(attrs),
            "layer": attrs.get("layer"), "pool": attrs.get("pool"), "weights": weights, "random_init": random_init,
            "classifier": clf, **{k: evaluation[k] for k in ("accuracy", "accuracy_ci95", "rank1", "rank5",
                                                              "mean_per_class_accuracy", "macro_precision",
                                                              "macro_recall", "macro_f1", "weighted_f1",
                                                              "per_class", "confusion")},
            "cv": record.cv_block(result.table, main_param(grid, spec.main_param)),
            "best_params": result.best_params, "grid": grid,
            "n_train": n_train, "n_test": len(split.test), "n_classes": len(split.label_names),
            "feature_dim": dim, "split": split.kind,
            "fit_seconds": round(first.fit_seconds, 4), "predict_seconds": round(first.predict_seconds, 4),
            "extract_images_per_second": attrs.get("images_per_second"),
            "feature_file": str(features.path.resolve()), "feature_file_bytes": features.path.stat().st_size,
            "provenance": record.provenance(attrs), "versions": record.versions(), "command": command,
            "created": record.now_iso(),
            # Beyond the schema's required keys:
            "split_detail": {**split.describe(), **({"excluded_rows": len(excluded), "exclude_file": str(extra.exclude),
                                                       "excluded_test_rows": excluded_test if extra.exclude_test else 0,
                                                       "kept_test_rows_named": 0 if extra.exclude_test else excluded_test,
                                                       "train_rows": None, "test_rows": None}
                                                      if excluded is not None else {})},
            "protocol": protocol, "scale": scale, "scoring": result.scoring,
            "fusion_scale": (attrs.get("fusion_scale") or "none") if attrs.get("model_source") == "fused" else None,
            "search_method": result.method, "cv_folds": result.n_splits, "seed": seed,
            "search_seconds": round(result.search_seconds, 4), "refit_seconds": round(result.refit_seconds, 4),
            "load_seconds": round(first.load_seconds, 4), "score_kind": first.score_kind,
            "out_of_core": first.out_of_core, "pca": result.details.get("pca"),
            "time_budget": first.time_budget,
            "repeats": repeats_block(seeds, runs, splits, digests) if extra.repeats > 1 else None,
            "n_splits": extra.repeats,
            "test_rows_digest": digests[0] if extra.repeats == 1 else record.combined_digest(seeds, digests),
            "test_set": _test_set(split, extra, seeds, excluded_test),
            "accuracy_metric": AUDITED_METRIC if extra.exclude_test and excluded_test else "test accuracy",
            "grid_edges": grid_edges(grid, result.best_params),
            "calibration": result.details.get("calibration"),
            "max_memory_bytes": budget, "search_details": result.details, "train_classes": len(classes),
            "test_feature_file": str(test_features.path.resolve()) if test_features is not None else None,
            "model_bundle": BUNDLE_NAME, "probabilities_file": record.PROBABILITIES_FILE,
            "warnings": list(split.warnings),
            identity.RUN_IDENTITY_KEY: _fitted_identity(features, test_features, split),
        }
        files = {
            "cv_results.csv": record.cv_results_csv(result.table),
            "classification_report.txt": f"{name}\naccuracy {evaluation['accuracy']:.4f}  "
                                         f"({len(split.test)} test rows, {split.kind} split)\n\n"
                                         + M.classification_report_text(split.y_test, y_pred, split.label_names),
            "confusion.csv": M.confusion_csv(evaluation["confusion"]),
            PREDICTIONS_FILE: predictions_csv(split.test.numbers(), (test_features if test_features is not None else features).paths, split.y_test,
                                              y_pred, first.scores, split.label_names),
        }
        if split.kind == "stratified":
            files["split.json"] = json.dumps({"seed": seed, "train_fraction": split.train_fraction,
                                              "train_rows": split.train.numbers().tolist(),
                                              "test_rows": split.test.numbers().tolist()})
        bundle_meta = {"run_name": name, "best_params": result.best_params, "dataset": metrics["dataset"],
                       "feature_file": metrics["feature_file"], "accuracy": evaluation["accuracy"],
                       "created": metrics["created"]}
        bundle = (result.estimator, [split.label_names[c] for c in classes], extractor_spec(attrs), clf,
                  record.jsonable(bundle_meta))
        # Classes the classifier never saw score -inf for ranking; as probabilities they are 0.
        scores, score_kind = first.scores, first.score_kind
        stored = np.where(np.isfinite(scores), scores, 0.0 if score_kind == "probability" else np.finfo(np.float32).min)
        predictions = {"paths": split.test.take(np.asarray(test_source.paths, dtype=object)).tolist(),
                       "y_true": split.y_test, "scores": stored, "label_names": split.label_names,
                       "score_kind": score_kind}
        out.mkdir(parents=True, exist_ok=True)
        written = _write_run(run_dir, force, files, metrics, bundle, predictions)
        return RunResult(run_dir, name, record.jsonable(metrics), warnings=[*split.warnings, *written])
    finally:
        features.close()
        if test_features is not None:
            test_features.close()
