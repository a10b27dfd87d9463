"""Runs as one flat pandas table -> CSV, and the Markdown leaderboard + best run per dataset.

Leaderboard order: by dataset (A→Z); within a dataset by test-row group (the main group, on the
stored split, first; see :mod:`featurebench.report.compare`); within a group by score (a run's
accuracy, or its mean accuracy over ``--repeats`` splits), best first, ties broken by macro-F1
(higher first) then run name. The best run of a dataset is the first row of its main group.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from featurebench.outputs import write_atomically
from featurebench.report import formatting as fmt
from featurebench.report.collect import Run, UnreadableRun
from featurebench.report.compare import ALPHA
from featurebench.text import plural

if TYPE_CHECKING:  # pandas is imported lazily: `featurebench.report` must import fast
    import pandas as pd

BASELINE_LABEL = "random-init baseline"
#: Extractor names of raw-pixel feature files (scripts/bench_offline_extractor.py): a baseline too.
RAW_PIXEL_EXTRACTORS = frozenset({"raw-pixels", "raw_pixels", "pixels"})
#: Run settings that can tell two runs of one dataset × extractor × classifier apart, as (label, where):
#: a top-level key of the run record, or ``provenance.KEY`` (the feature file's). Trained runs
#: (fine-tuning, from scratch) add their ``recipe`` and knobs (``best_params``); outcomes such as a
#: grid search's chosen C are not settings.
VARIANT_KEYS = (("layer", "layer"), ("pool", "pool"), ("weights", "weights"), ("precision", "provenance.precision"),
                ("extract seed", "provenance.seed"), ("protocol", "protocol"), ("scale", "scale"), ("pca", "pca"),
                ("grid", "grid"), ("cv", "cv_folds"), ("split", "split"), ("split seed", "seed"),
                ("fusion scale", "fusion_scale"), ("test file", "test_feature_file"), ("calibration", "calibration"),
                ("recipe", "recipe"))
#: The longest label of a run beside its extractor, "classifier · variant" (characters); a longer variant is
#: cut with "…" (the full text is its tooltip).
LABEL_LIMIT = 40
#: How runs that are not "features + classifier" are labelled (column ``label``, Markdown, HTML badges).
KIND_LABELS = {"finetune": "fine-tuned", "scratch": "trained from scratch", "ensemble": "ensemble"}


def kind_label(m: dict[str, Any]) -> str:
    """``random-init baseline``, ``trained from scratch``, ``fine-tuned``, ``ensemble of N``,
    ``fused features`` (a ``featurebench fuse`` file), or ``""``."""
    if m.get("random_init"):
        return BASELINE_LABEL
    if m.get("kind") == "ensemble":
        return f"ensemble of {len(m.get('members') or [])}"
    if (m.get("provenance") or {}).get("model_source") == "fused":
        return "fused features"
    return KIND_LABELS.get(str(m.get("kind")), "")


#: The CSV columns, in order (one row per run; every value is a scalar).
COLUMNS = (
    "run", "dataset", "extractor", "classifier", "random_init", "label", "kind",
    "layer", "pool", "weights",
    "accuracy", "accuracy_ci_low", "accuracy_ci_high", "rank1", "rank5", "mean_per_class_accuracy",
    "macro_precision", "macro_recall", "macro_f1", "weighted_f1",
    "n_train", "n_test", "n_classes", "feature_dim", "split", "seed",
    "best_params", "cv_param", "fit_seconds", "predict_seconds",
    "repeats", "accuracy_mean", "accuracy_std", "fits_skipped",
    "extract_images_per_second", "feature_file", "feature_file_bytes",
    "rank_in_dataset", "best_in_dataset", "created", "command", "variant", "baseline",
    "score", "score_std", "score_ci_low", "score_ci_high", "accuracy_metric",
    "test_rows_digest", "n_splits", "test_set", "group", "main_group", "rank_in_group",
    "delta_to_best", "p_value", "significant", "comparison",
)

_COPIED = ("dataset", "extractor", "classifier", "kind", "layer", "pool", "weights",
           "accuracy", "rank1", "rank5", "mean_per_class_accuracy", "macro_precision", "macro_recall",
           "macro_f1", "weighted_f1", "n_train", "n_test", "n_classes", "feature_dim", "split",
           "fit_seconds", "predict_seconds", "extract_images_per_second", "feature_file",
           "feature_file_bytes", "created", "command")


def _row(run: Run) -> dict[str, Any]:
    m = run.metrics
    row: dict[str, Any] = {"run": run.name}
    row.update({key: m.get(key) for key in _COPIED})
    row["random_init"] = bool(m.get("random_init"))
    row["label"] = kind_label(m)
    low_high = m.get("accuracy_ci95") or [None, None]
    row["accuracy_ci_low"], row["accuracy_ci_high"] = low_high
    provenance = m.get("provenance") or {}
    row["seed"] = provenance.get("seed")
    row["best_params"] = json.dumps(m["best_params"], sort_keys=True, default=str) if m.get("best_params") is not None else None
    row["cv_param"] = (m.get("cv") or {}).get("param")
    row["baseline"] = ("random init" if row["random_init"] else
                       "raw pixels" if str(row["extractor"]).lower() in RAW_PIXEL_EXTRACTORS else "")
    repeats = m.get("repeats") if isinstance(m.get("repeats"), dict) else {}
    row["repeats"] = repeats.get("n", 1)
    row["accuracy_mean"], row["accuracy_std"] = repeats.get("accuracy_mean"), repeats.get("accuracy_std")
    budget = m.get("time_budget") if isinstance(m.get("time_budget"), dict) else {}
    row["fits_skipped"] = budget.get("fits_skipped", 0)
    row["_repeats_text"], row["_budget_text"] = fmt.repeats(repeats), fmt.budget(budget)
    row["accuracy_metric"] = m.get("accuracy_metric") or "test accuracy"
    row["test_rows_digest"] = m.get("test_rows_digest")
    row["n_splits"] = m.get("n_splits") or row["repeats"]
    return row


def _settings(run: Run) -> dict[str, str]:
    """The run's settings (:data:`VARIANT_KEYS`, the ``--exclude`` file, a trained run's knobs) as short text."""
    m = run.metrics
    provenance = m.get("provenance") if isinstance(m.get("provenance"), dict) else {}
    settings = {label: provenance.get(key.split(".", 1)[1]) if key.startswith("provenance.") else m.get(key)
                for label, key in VARIANT_KEYS}
    detail = m.get("split_detail") if isinstance(m.get("split_detail"), dict) else {}
    if detail.get("exclude_file"):
        settings["exclude"] = detail["exclude_file"]
    if isinstance(m.get("repeats"), dict):
        settings["splits"] = m["repeats"].get("n")
    if m.get("kind") in ("finetune", "scratch") and isinstance(m.get("best_params"), dict):
        settings.update({key: value for key, value in m["best_params"].items() if key != "epochs_run"})
    return {key: _setting_text(key, value) for key, value in settings.items() if not fmt.missing(value)}


def _setting_text(key: str, value: Any) -> str:
    """One setting, short: a file by its name, a grid by its range (``C 0.01…1000 (6)``), a calibration
    by its method's first word."""
    if key in ("test file", "exclude"):
        return Path(str(value)).stem
    if key == "grid":
        grids = value if isinstance(value, list) else [value]
        return "; ".join(", ".join(_grid_range(k, v) for k, v in g.items()) for g in grids if isinstance(g, dict))
    if key == "calibration" and isinstance(value, dict):
        return str(value.get("method") or "yes").split()[0]
    return fmt.any_value(value)


def _grid_range(key: str, values: Any) -> str:
    values = values if isinstance(values, list) else [values]
    if len(values) <= 2:
        return f"{key} {'/'.join(fmt.params(v) for v in values)}"
    return f"{key} {fmt.params(values[0])}…{fmt.params(values[-1])} ({len(values)})"


def _difference(settings: dict[str, str], reference: dict[str, str]) -> str:
    """What ``settings`` has that ``reference`` has not (``scale standard, pca 128``; ``no pca`` for one it lacks)."""
    parts = [f"{key} {value}" for key, value in settings.items() if reference.get(key) != value]
    parts += [f"no {key}" for key in reference if key not in settings]
    return ", ".join(parts)


def _label_variants(pairs: list[tuple[Run, dict[str, Any]]]) -> None:
    """Set ``row["variant"]`` (and ``row["variant_title"]``, the uncut text): what tells a run from the
    others with the same dataset, test rows, extractor and classifier, stated against the first of them
    (the oldest run, by its ``created`` time): the settings in which it differs from that one, else the
    parts of its run name that differ. The first run's label is ``""``. A label depends only on the run
    and on older runs, so adding a (newer) run never changes the labels already shown."""
    groups: dict[tuple, list[tuple[Run, dict[str, Any]]]] = {}
    for run, row in pairs:
        row["variant"] = row["variant_title"] = ""
        # Within a test-row group only: runs of other groups are already shown apart.
        groups.setdefault((row["dataset"], row.get("group"), row["extractor"], row["random_init"], row["classifier"]),
                          []).append((run, row))
    for members in groups.values():
        members = sorted(members, key=lambda pair: (str(pair[0].metrics.get("created") or ""), pair[0].name))
        reference = _settings(members[0][0])
        taken: dict[str, Run] = {"": members[0][0]}
        shown = {""}
        room = max(12, LABEL_LIMIT - len(f"{members[0][1]['classifier']} · "))
        for run, row in members[1:]:
            label = _difference(_settings(run), reference)
            if label in taken:  # the same settings as an older run: the parts of the name that differ from its
                label = " · ".join(t for t in (label, _name_difference(run.name, taken[label].name)) if t)
            if label in taken:
                label = f"{label} #{len(taken) + 1}".strip()
            taken[label] = run
            short = _cut(label, room)
            if short in shown:  # cut labels that collide get the run's number
                short = _cut(label, room, f" #{len(taken)}")
            shown.add(short)
            row["variant"], row["variant_title"] = short, label


def _cut(label: str, room: int, suffix: str = "") -> str:
    """``label`` + ``suffix`` in at most ``room`` characters (cut with "…")."""
    if len(label + suffix) <= room:
        return label + suffix
    return label[:room - 1 - len(suffix)].rstrip(" ,·") + "…" + suffix


def _name_difference(name: str, other: str) -> str:
    """The parts of run name ``name`` (split at ``__`` or ``-``) that ``other`` lacks, e.g. ``seed1`` for
    ``flowers17__lite0__logreg__seed1`` against ``flowers17__lite0__logreg``."""
    import re

    theirs = set(re.split(r"__|-", other))
    return " ".join(part for part in re.split(r"__|-", name) if part not in theirs)


def setting_label(row: dict[str, Any]) -> str:
    """The classifier plus what distinguishes the run from its siblings (charts and matrix rows)."""
    return f"{row['classifier']} · {row['variant']}" if row.get("variant") else str(row["classifier"])


def dataset_baselines(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The best baseline run (random-init or raw-pixel features) of each dataset that has one."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:  # leaderboard order: the first baseline of a dataset's main group is its best
        if row["baseline"] and row.get("main_group", True) and row["dataset"] not in best:
            best[row["dataset"]] = row
    return best


def _sort_key(row: dict[str, Any]) -> tuple:
    return (str(row["dataset"]).casefold(), str(row["dataset"]), row["group_index"], row["rank_in_group"])


def leaderboard_rows(runs: Iterable[Run]) -> list[tuple[Run, dict[str, Any]]]:
    """(run, flat row) pairs in leaderboard order, each with its test-row ``group``, ``rank_in_group``
    (also ``rank_in_dataset``), ``best_in_dataset`` (the main group's best) and the paired comparison
    with its group's best (``delta_to_best``, ``p_value``, ``significant``, ``comparison``)."""
    from featurebench.report.compare import group_runs

    pairs = [(run, _row(run)) for run in runs]
    group_runs(pairs)
    pairs.sort(key=lambda pair: _sort_key(pair[1]))
    _label_variants(pairs)
    return pairs


def runs_dataframe(runs: Iterable[Run]) -> "pd.DataFrame":
    """All runs, one row each, flat columns (:data:`COLUMNS`), in leaderboard order."""
    import pandas as pd

    rows = [row for _, row in leaderboard_rows(runs)]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in ("n_train", "n_test", "n_classes", "feature_dim", "feature_file_bytes", "rank_in_dataset"):
        frame[col] = frame[col].astype("Int64")
    for col in ("accuracy", "accuracy_ci_low", "accuracy_ci_high", "rank1", "rank5", "mean_per_class_accuracy",
                "macro_precision", "macro_recall", "macro_f1", "weighted_f1", "fit_seconds", "predict_seconds",
                "extract_images_per_second"):
        frame[col] = frame[col].astype("float64")
    frame["random_init"] = frame["random_init"].astype(bool)
    frame["best_in_dataset"] = frame["best_in_dataset"].astype(bool)
    return frame


def write_csv(frame: "pd.DataFrame", path: str | Path) -> Path:
    return write_atomically(Path(path), lambda tmp: frame.to_csv(tmp, index=False))


# --- Markdown -----------------------------------------------------------------------------------

def md_escape(text: Any) -> str:
    """Make any text safe inside a GitHub-flavoured Markdown table cell (no HTML, no broken pipes)."""
    text = str(text)
    for old, new in (("\\", "\\\\"), ("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"),
                     ("`", "\\`"), ("*", "\\*"), ("[", "\\["), ("]", "\\]")):
        text = text.replace(old, new)
    return " ".join(text.split())


def _table(header: list[str], rows: list[list[str]], align: list[str]) -> list[str]:
    marks = {"l": ":---", "r": "---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return lines


def _extractor_cell(row: dict[str, Any]) -> str:
    text = md_escape(row["extractor"])
    if row["random_init"]:
        return f"{text} ({BASELINE_LABEL})"
    if row["baseline"]:
        return f"{text} ({row['baseline']} baseline)"
    return f"{text} ({md_escape(row['label'])})" if row["label"] else text


def _accuracy_cell(row: dict[str, Any], bold: bool) -> str:
    """The run's score: accuracy with its bootstrap CI, or a repeated run's mean ± std with the mean's CI."""
    value = fmt.score(row)
    value = f"**{value}**" if bold else value
    interval = fmt.ci(row["score_ci_low"], row["score_ci_high"])
    extra = " ".join(f"({text})" for text in (fmt.splits_note(row), row.get("_budget_text")) if text)
    return f"{value} {interval} {extra}".strip()


def _versus_cell(row: dict[str, Any]) -> str:
    """Difference to the group's best and the paired test's verdict ('' for the best itself)."""
    return md_escape(fmt.versus(row))


def _baseline_cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return fmt.BLANK
    kind = "random-init " if row["random_init"] else ""
    return f"{fmt.pct(row['accuracy'])} ({kind}{md_escape(row['extractor'])} + {md_escape(setting_label(row))})"


def markdown_summary(runs: Iterable[Run], unreadable: Iterable[UnreadableRun] = (), title: str = "featurebench report") -> str:
    """Leaderboard + best run per dataset (+ unreadable runs), as GitHub-flavoured Markdown."""
    pairs = leaderboard_rows(runs)
    rows = [row for _, row in pairs]
    unreadable = list(unreadable)
    out = [f"## {md_escape(title)}", ""]
    n_datasets = len({row["dataset"] for row in rows})
    out.append(f"{plural(len(rows), 'run')} on {plural(n_datasets, 'dataset')}. Accuracy etc. in % on the held-out "
               "test split; **bold** = best run of its dataset. Runs are ranked only against runs scored on the same "
               "test images (each dataset's main group: its stored split); a repeated-split run by its mean ± std. "
               f"\"vs best\": the difference to the group's best and a paired test (McNemar exact on the same images, "
               f"or paired over the same splits); n.s. = not significant at p < {ALPHA}.")
    main_rows = [row for row in rows if row["main_group"]]
    out += ["", "### Leaderboard", ""]
    out += _leaderboard_table(main_rows)
    others = [row for row in rows if not row["main_group"]]
    if others:
        out += ["", "### Other test-row sets (ranked apart)", ""]
        for group in dict.fromkeys((row["dataset"], row["group"]) for row in others):
            members = [row for row in others if (row["dataset"], row["group"]) == group]
            out += [f"**{md_escape(group[0])}: {md_escape(group[1])}**", ""]
            out += _leaderboard_table(members) + [""]
        out.pop()
    out += ["", "### Best run per dataset", ""]
    header = ["Dataset", "Extractor", "Classifier", "Accuracy % [95% CI]", "Macro-F1 %", "Best params", "Test images",
              "Runs", "Baseline %", "Run"]
    baselines = dataset_baselines(rows)
    counts: dict[str, int] = {}
    for row in main_rows:
        counts[row["dataset"]] = counts.get(row["dataset"], 0) + 1
    body = [[md_escape(row["dataset"]), _extractor_cell(row), md_escape(setting_label(row)), _accuracy_cell(row, False),
             fmt.pct(row["macro_f1"]), md_escape(fmt.params(json.loads(row["best_params"]) if row["best_params"] else None)),
             fmt.integer(row["n_test"]), str(counts[row["dataset"]]), _baseline_cell(baselines.get(row["dataset"])),
             md_escape(row["run"])]
            for row in rows if row["best_in_dataset"]]
    out += _table(header, body, ["l", "l", "l", "r", "r", "l", "r", "r", "l", "l"])
    out += _ensembles_section(pairs)
    if unreadable:
        out += ["", "### Unreadable runs", ""]
        out += [f"- {md_escape(bad.name)}: {md_escape(bad.reason)}" for bad in unreadable]
    return "\n".join(out) + "\n"


def _leaderboard_table(rows: list[dict[str, Any]]) -> list[str]:
    header = ["#", "Dataset", "Extractor", "Classifier", "Accuracy % [95% CI]", "Rank-1 %", "Rank-5 %",
              "Mean/class %", "Macro-F1 %", "Fit s", "Extract img/s", "Dim", "File", "vs best", "Run"]
    align = list("rlll") + ["r"] * 9 + ["l", "l"]
    body = [[str(row["rank_in_group"]), md_escape(row["dataset"]), _extractor_cell(row), md_escape(setting_label(row)),
             _accuracy_cell(row, row["best_in_dataset"]), fmt.pct(row["rank1"]), fmt.pct(row["rank5"]),
             fmt.pct(row["mean_per_class_accuracy"]), fmt.pct(row["macro_f1"]), fmt.seconds(row["fit_seconds"]),
             fmt.rate(row["extract_images_per_second"]), fmt.integer(row["feature_dim"]),
             fmt.size(row["feature_file_bytes"]), _versus_cell(row), md_escape(row["run"])] for row in rows]
    return _table(header, body, align)


def _ensembles_section(pairs: list[tuple[Run, dict[str, Any]]]) -> list[str]:
    """Each ensemble beside its members: accuracies on the same test images and the gain."""
    ensembles = [(run, row) for run, row in pairs if run.metrics.get("kind") == "ensemble"]
    if not ensembles:
        return []
    out = ["", "### Ensembles and their members", ""]
    for run, row in ensembles:
        m = run.metrics
        gain = m.get("gain_over_best_member")
        gain_text = f", {100 * gain:+.2f} points over the best member" if isinstance(gain, (int, float)) else ""
        out.append(f"**{md_escape(row['run'])}** ({md_escape(row['dataset'])}): "
                   f"{_accuracy_cell(row, False)}{gain_text}")
        out.append("")
        members = [[md_escape(x.get("run_name")), md_escape(x.get("kind")), md_escape(x.get("extractor")),
                    md_escape(x.get("classifier")), fmt.pct(x.get("accuracy"))] for x in m.get("members") or []]
        members.append(["= ensemble (mean of probabilities)", "ensemble", md_escape(row["extractor"]), "ensemble",
                        fmt.pct(row["accuracy"])])
        out += _table(["Member run", "Kind", "Extractor", "Classifier", "Accuracy %"], members, list("llllr"))
        out.append("")
    return out[:-1]


def write_text(text: str, path: str | Path) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file, so a reader never sees half a page."""
    return write_atomically(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))
