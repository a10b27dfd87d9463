"""The ``featurebench`` command line: parses, calls the library, prints. Nothing else lives here.

Heavy libraries (TensorFlow, scikit-learn) are imported inside the commands
that need them, so ``--help``, ``models`` and ``info`` start fast.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import List, Optional

import typer
import typer.core

from featurebench import __version__
from featurebench.errors import FeaturebenchError
from featurebench.terminal import diagnostics as console  # results on stdout, diagnostics on stderr
from featurebench.terminal import results as out
from featurebench.text import command_line

# Quiet TensorFlow's C++ start-up banner (users can still override it); featurebench.quiet drops what it misses.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")



#: Click's plain placeholder for each annotation typer reports (typer >= 0.20 has no click type to ask).
_PLAIN_TYPES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "Path": "PATH"}


def _plain_metavars(command) -> None:
    """Show click's plain placeholders (``SOURCE``, ``TEXT``, ``PATH``) instead of typer's ``{source}``/``<str>``."""
    for param in command.params:
        if param.metavar is not None:
            continue
        if param.param_type_name == "argument":
            param.metavar = param.name.upper() + ("..." if param.nargs != 1 else "")
            # Newer typer adds the type (`SOURCE <path>`) and braces (`{SOURCE}`) around these; plain click does not.
            param.display_type_rich = lambda ctx: None
            param._usage_display_name = lambda name=param.metavar: name
        elif not (getattr(param, "is_flag", False) or getattr(param, "count", False)):
            kind = param.type.name if hasattr(param, "type") else param.bare_type()
            param.metavar = _PLAIN_TYPES.get(kind, kind.upper())


class _Group(typer.core.TyperGroup):
    """The app's command group: plain placeholders in every command's help; a ``--resume`` without its
    path (the old flag) is refused in one line before the parser takes the next option for the path."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            _plain_metavars(command)

    def resolve_command(self, ctx, args):
        from featurebench.training.options import check_resume_argument

        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and any(param.name == "resume" for param in command.params):
            check_resume_argument(name, rest)
        return name, command, rest


app = typer.Typer(
    name="featurebench",
    help="Transfer-learning workbench: pretrained CNN features -> HDF5 -> classical classifiers -> reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Group,
    # Plain click help: wraps at any width and never cuts a default or a name short (rich help truncates at 80).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

def _version(value: bool) -> None:
    if value:
        out.print(f"featurebench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Transfer-learning workbench: pretrained CNN features -> HDF5 -> classical classifiers -> reports."""


@app.command()
def models(fmt: str = typer.Option("table", "--format", help="table, json or csv (whole values, for scripts).")) -> None:
    """List the registered extractors: input size, feature dim, preprocessing, weights source."""
    from featurebench.extractors import list_specs

    columns = ("name", "input", "dim", "feature layer", "prep", "weights source")
    rows = [(spec.name, str(spec.input_size), str(spec.feature_dim),
             f"{spec.default_layer or 'last conv'} ({spec.default_pool})", spec.preprocessing, spec.weights_source)
            for spec in list_specs()]
    if fmt == "json":
        import json

        typer.echo(json.dumps([dict(zip(columns, row)) for row in rows], indent=2))
    elif fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerows([columns, *rows])
    elif fmt == "table":
        from rich.table import Table

        title = "Registered extractors (--model NAME, or a .keras/.h5/.tflite/.onnx/SavedModel path)"
        # The table needs its longest word per column plus 3 characters of border and padding each.
        needed = 1 + sum(3 + max(len(word) for text in (column, *(row[i] for row in rows)) for word in text.split())
                         for i, column in enumerate(columns))
        if out.width < needed:  # too narrow for whole words: one block per model, nothing broken mid-word
            out.print(title)
            for row in rows:
                out.print(f"\n{row[0]}")
                for column, value in zip(columns[1:], row[1:]):
                    out.print(f"  {column}: {value}")
            return
        table = Table(title=title)
        for column in columns:
            table.add_column(column, no_wrap=column == "name")
        for row in rows:
            table.add_row(*row)
        out.print(table)
    else:
        raise FeaturebenchError(f"--format {fmt!r}: choose table, json or csv")


@app.command()
def extract(
    source: str = typer.Argument(..., help="Class-per-folder directory, a CSV/TSV of path,label, "
                                 "or a directory plus --label-pattern; or the same in object storage: "
                                 "s3://BUCKET/PREFIX, gs://..., a CSV of https:// URLs (docs/scale.md)."),
    output: Path = typer.Option(..., "-o", "--output", help="Feature file to write (HDF5, a local path)."),
    model: str = typer.Option("efficientnet_lite0", "--model", "-m",
                              help="Registered name (see `featurebench models`) or a model file "
                                   "(.keras, .h5, SavedModel folder, .tflite, .onnx)."),
    weights: str = typer.Option("imagenet", help="imagenet (Keras cache/download), none (random init, seeded), "
                                "or PATH to a weights file."),
    layer: Optional[str] = typer.Option(None, help="Feature layer (default: the model's; TFLite: tensor name or index; "
                                        "ONNX: an output or any named tensor)."),
    pool: Optional[str] = typer.Option(None, help="How to turn a 4-D layer output into a vector: avg, max, flatten."),
    batch_size: Optional[int] = typer.Option(None, help="Images per forward pass (default: the model's)."),
    seed: int = typer.Option(42, help="Seed of the one shuffle of the image list (stored)."),
    train_fraction: float = typer.Option(0.75, help="Stored split point: rows [:int(N*f)] train, the rest test."),
    split: str = typer.Option("index", "--split", help="index (the classic protocol: the shuffled order, first "
                              "rows train) or stratified (the same shuffle interleaved by class, so the stored "
                              "train/test slices hold every class in proportion). Recorded in the file."),
    dtype: str = typer.Option("float32", help="float32, or float16 for half-size files."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output / discard a partial run."),
    label_pattern: Optional[str] = typer.Option(None, help="Regex on file names giving the label "
                                                "(group 'label' or group 1), e.g. '^(cat|dog)\\.'"),
    root: Optional[str] = typer.Option(None, help="Root for relative paths in a CSV (default: the CSV's folder; "
                                       "may be s3://BUCKET/PREFIX)."),
    allow_outside_root: bool = typer.Option(False, help="Allow CSV paths that leave the dataset root."),
    read_timeout: float = typer.Option(30.0, help="Object-storage sources: seconds per request at most."),
    read_retries: int = typer.Option(2, help="Object-storage sources: retries of a failed request (then the "
                                     "image is skipped as a network error)."),
    resize: str = typer.Option("stretch", help="stretch (classic: straight to the input size) or center-crop."),
    allow_truncated: bool = typer.Option(False, help="Keep truncated images (decoded partially) instead of skipping."),
    max_pixels: int = typer.Option(178_956_970, help="Refuse images with more pixels (decompression bombs)."),
    max_file_mb: int = typer.Option(1024, help="Refuse files bigger than this many MiB (never read more)."),
    follow_class_links: bool = typer.Option(False, help="Use class folders that are symbolic links "
                                            "(ignored by default: they can count images twice)."),
    preprocess: Optional[str] = typer.Option(None, help="Model files only: caffe, tf, torch, lite, none, uint8, or "
                                             "the model's mean/std on the 0..1 scale: "
                                             "'mean=0.485,0.456,0.406;std=0.229,0.224,0.225'."),
    unsafe_model: bool = typer.Option(False, help="Allow Keras model files with Lambda layers (runs their code)."),
    workers: int = typer.Option(2, help="Decoding threads; with --ray, Ray workers (one model each)."),
    flush_rows: int = typer.Option(1000, help="Rows per journal flush (the resume granularity)."),
    compression: Optional[str] = typer.Option(None, help="HDF5 compression for features: gzip or lzf."),
    dataset_name: Optional[str] = typer.Option(None, "--name", help="Dataset name recorded in the file."),
    fast_decode: bool = typer.Option(False, "--fast-decode", help="Decode large JPEGs at reduced scale (faster; "
                                     "features differ slightly, see docs/performance.md)."),
    precision: str = typer.Option("fp32", help="fp32; bf16 for registry models (opt-in; 1.8-7x fp32's speed "
                                  "on AVX512-BF16/AMX CPUs, features move slightly; on other CPUs fp32 runs, "
                                  "and the file says so); fp16: mixed float16 on a GPU; int8 for Keras models on "
                                  "OpenVINO (NNCF, calibrated on 64 train images of SOURCE, cached; opt-in); auto: "
                                  "per CPU class, the fastest precision measured within 0.3 points of fp32 on the "
                                  "real datasets (int8 on AVX-512 VNNI), else fp32. See docs/performance.md."),
    engine: Optional[str] = typer.Option(None, help="What runs a Keras model: auto (default: TensorFlow on a GPU it "
                                         "sees, else OpenVINO), openvino (CPU, faster there) or tensorflow "
                                         "(the reference)."),
    ray: bool = typer.Option(False, "--ray", help="Run the model in Ray workers (pip install "
                             "'featurebench[ray]'); this process writes the file. docs/scale.md."),
    address: Optional[str] = typer.Option(None, help="With --ray: the cluster, auto or ray://HOST:PORT "
                                          "(default: start one on this machine)."),
    cpus_per_worker: int = typer.Option(1, help="With --ray: CPUs per worker (its decode and model threads)."),
    gpus_per_worker: float = typer.Option(0.0, help="With --ray: GPUs per worker."),
    memory_per_worker: Optional[int] = typer.Option(None, help="With --ray: MB of memory each worker asks Ray "
                                                    "for (default: derived from the model; docs/scale.md)."),
    spill_dir: Optional[str] = typer.Option(None, help="With --ray and no --address: folder the object store "
                                            "spills to (default: Ray's temporary folder)."),
    autoscale: bool = typer.Option(False, "--autoscale", help="With --ray on an autoscaling cluster (KubeRay): "
                                   "ask the autoscaler for the workers' resources and wait for the nodes, "
                                   "instead of refusing a cluster that is too small now."),
    shards: int = typer.Option(1, help="Split the seeded order into this many shards (see --shard-index, "
                               "`featurebench merge`)."),
    shard_index: int = typer.Option(0, help="Write only this shard (0-based) of --shards."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="One line per finished batch instead of a bar."),
) -> None:
    """Stream pretrained CNN features of every image into a resumable HDF5 file.

    Interrupted runs resume: run the same command again. Unusable images are
    skipped with a reason (see `featurebench info`), never silently dropped.
    """
    from featurebench.extract import ExtractOptions, run_extract

    opts = ExtractOptions(
        source=source, output=str(output), model=model, weights=weights, layer=layer, pool=pool,
        batch_size=batch_size, seed=seed, train_fraction=train_fraction, split=split, dtype=dtype, force=force,
        label_pattern=label_pattern, root=root or None, allow_outside_root=allow_outside_root,
        read_timeout=read_timeout, read_retries=read_retries, resize=resize, allow_truncated=allow_truncated,
        max_pixels=max_pixels, max_file_mb=max_file_mb,
        follow_class_links=follow_class_links, preprocess=preprocess,
        unsafe_model=unsafe_model, workers=workers, flush_rows=flush_rows, compression=compression,
        dataset_name=dataset_name, fast_decode=fast_decode, precision=precision, engine=engine,
        ray=ray, address=address, cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker,
        memory_per_worker_mb=memory_per_worker, spill_dir=spill_dir, autoscale=autoscale,
        shards=shards, shard_index=shard_index, command=command_line(),
    )
    from featurebench.progress import extraction_progress, print_extract_summary

    try:
        with extraction_progress(console, quiet=quiet, verbose=verbose) as (on_start, on_progress):
            summary = run_extract(opts, progress=on_progress, on_start=on_start, notify=_print_note)
    except KeyboardInterrupt:
        from rich.markup import escape

        from featurebench.store.journal import saved_candidates

        saved = saved_candidates(output.expanduser().resolve())
        again = "run the same command without --force" if force else "run the same command again"
        if saved:
            console.print(f"[yellow]Interrupted.[/] Finished batches ({saved} images) are saved in "
                          f"{escape(str(output))}.partial; {again} to resume.", soft_wrap=True)
        else:
            console.print("[yellow]Interrupted[/] before any batch was finished: nothing was saved; run the "
                          "command again to start.", soft_wrap=True)
        _leave_now(130)
    print_extract_summary(console, summary, results=out)


def _leave_now(code: int) -> None:
    """Exit at once, skipping the interpreter's teardown.

    After Ctrl+C, daemon decode threads may still be inside a native decoder or runtime; a
    normal teardown under them can abort the process ("terminate called without an active
    exception", exit -6 instead of 130). Everything worth keeping is already on disk (the
    journal's shards are renamed into place when committed) and the kernel releases its lock.
    """
    from featurebench.quiet import restore_stderr

    sys.stdout.flush()
    sys.stderr.flush()
    restore_stderr()
    os._exit(code)


@app.command()
def info(features: Path = typer.Argument(..., help="Feature file (.h5) written by `featurebench extract`."),
         show_all: bool = typer.Option(False, "--all", help="List every skipped image and duplicate.")) -> None:
    """Show a feature file's provenance, completeness, counts and skipped images."""
    from featurebench.info import describe

    typer.echo(describe(features, max_skipped=sys.maxsize if show_all else 20))


@app.command()
def fit(
    features: Path = typer.Argument(..., help="Feature file (.h5) written by `featurebench extract`."),
    clf: str = typer.Option("logreg", "--clf", help="logreg, linsvm, svm, xgb, hgb, knn or sgd."),
    grid: Optional[str] = typer.Option(None, "--grid", help="Preset (classic-ch3, classic-ch10, reference, probe), "
                                       "inline JSON such as '{\"C\": [0.1, 1, 10]}', or a .json/.yaml file. "
                                       "Default: the classifier's grid (logreg: classic-ch3)."),
    cv: int = typer.Option(3, "--cv", help="Folds of the grid search (train slice only)."),
    n_jobs: int = typer.Option(-1, "--n-jobs", help="Parallel fits in total (-1: all cores)."),
    out: Path = typer.Option(Path("results"), "--out", help="Results folder; the run goes to OUT/<run-name>/."),
    force: bool = typer.Option(False, "--force", help="Replace an existing run folder."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Leave an existing run folder as it is."),
    scale: str = typer.Option("none", "--scale", help="none or standard (fitted on train rows only, in the pipeline)."),
    protocol: str = typer.Option("grid", "--protocol", help="grid (k-fold CV, the classic scripts) or probe "
                                 "(45 log-spaced C, seeded stratified k-fold, balanced accuracy, middle of the best plateau)."),
    stratified: bool = typer.Option(False, "--stratified", help="Seeded stratified split instead of the stored "
                                    "index split (stored in split.json)."),
    test_file: Optional[Path] = typer.Option(None, "--test-file", help="Separate test feature file (same "
                                             "extractor); all rows of FEATURES train."),
    seed: int = typer.Option(42, "--seed", help="Seed of the stratified/probe split, bootstrap and classifiers."),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", help="Memory budget (512MB, 2GB, 25%); default "
                                             "half the available memory. Bigger train slices train out of core "
                                             "(sgd, logreg)."),
    run_name: Optional[str] = typer.Option(None, "--run-name", help="Run folder name or template: {dataset}, "
                                           "{extractor}, {clf}, {layer}, {pool}, {protocol}, {scale}, {split}, "
                                           "{variant}."),
    exclude: Optional[Path] = typer.Option(None, "--exclude", help="Rows file (row numbers or stored paths, one a "
                                           "line; `featurebench audit` writes exclude_rows.txt): they do not "
                                           "train. Test rows named there stay test rows (see --exclude-test)."),
    exclude_test: bool = typer.Option(False, "--exclude-test", help="Also drop the --exclude rows from the test "
                                      "set; recorded as 'accuracy on audited test rows' and never ranked with "
                                      "test accuracy."),
    calibrate: bool = typer.Option(False, "--calibrate", help="Calibrated probabilities (scikit-learn "
                                   "CalibratedClassifierCV, sigmoid, 3 folds of the train rows) for classifiers "
                                   "without them (svm, linsvm, sgd): `predict` shows them and `ensemble` accepts "
                                   "the run."),
    pca: Optional[int] = typer.Option(None, "--pca", help="PCA to N components inside the pipeline, fitted on "
                                      "train rows only (for slow classifiers on wide features)."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Seconds per search: no new fit is "
                                                "launched past it; the best finished candidate is kept and the "
                                                "skipped ones are recorded."),
    repeats: int = typer.Option(1, "--repeats", help="Re-split the rows N times (stratified, seeds SEED.."
                                "SEED+N-1), search each, report mean ± std and every split."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="One line per finished fit instead of a bar."),
) -> None:
    """Grid-search a classifier on the train slice of FEATURES, score it on the test slice, save the run.

    Progress (a bar over the (parameter, fold) fits with rate and ETA) goes to stderr.
    """
    from featurebench.fit import FitWarning, run_fit
    from featurebench.progress import FitReporter

    reporter = None if quiet else FitReporter(console, verbose=verbose)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)  # printed below, once, in colour
        result = run_fit(features, clf, grid=grid, cv=cv, n_jobs=n_jobs, out=out, force=force,
                         skip_existing=skip_existing, scale=scale, protocol=protocol, stratified=stratified,
                         test_file=test_file, seed=seed, max_memory=max_memory, run_name=run_name,
                         command=command_line(), exclude=exclude, pca=pca, time_budget=time_budget, repeats=repeats,
                         reporter=reporter, exclude_test=exclude_test, calibrate=calibrate)
    _print_warnings(result.warnings)
    typer.echo(result.describe())


@app.command()
def predict(
    bundle: Path = typer.Argument(..., help="Model bundle: RESULTS_DIR/<run>/model.skops."),
    inputs: List[Path] = typer.Argument(..., help="Image files and/or folders (searched recursively)."),
    top: int = typer.Option(5, "--top", help="Labels per image."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Also write path,top1,score1,...,error to this CSV."),
    model: Optional[str] = typer.Option(None, "--model", help="The bundle's model file, if it has moved."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Weights file of a registry model trained "
                                          "with --weights PATH."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images per forward pass."),
    trust: bool = typer.Option(False, "--trust", help="Load types outside the allow-list "
                               "(only for bundles you made yourself)."),
    unsafe_model: bool = typer.Option(False, "--unsafe-model", help="Allow a Keras model file with Lambda "
                                      "layers (runs their code)."),
) -> None:
    """Classify images with a saved bundle: decode, extract with the bundle's extractor, top-k labels."""
    from featurebench.fit.predict import format_predictions, predict_images, write_predictions_csv

    result = predict_images(bundle, [str(p) for p in inputs], top=top, trust=trust, model=model,
                            weights=weights, batch_size=batch_size, unsafe_model=unsafe_model,
                            say=lambda message: console.print(message, highlight=False, soft_wrap=True, markup=False))
    typer.echo(format_predictions(result))
    if result.score_kind != "probability":
        console.print("Scores are the classifier's decision values, not probabilities (close values are not a "
                      "near-tie in probability); refit with `featurebench fit ... --calibrate` for calibrated "
                      "probabilities.", highlight=False, soft_wrap=True)
    _print_warnings(result.warnings)
    if csv:
        write_predictions_csv(result, csv)
        console.print(f"Wrote {csv}")
    if not result.predictions:
        raise FeaturebenchError(f"Nothing could be predicted: none of the {len(result.unreadable)} input(s) "
                                "could be read (listed above with the reason)")
    if result.missing:
        raise FeaturebenchError(f"No such file or folder: {', '.join(result.missing)} (the results for the other "
                                "inputs are above)")
    if result.unreadable:
        console.print(f"[yellow]{len(result.unreadable)} input(s) could not be read[/] (listed above)")


def _print_note(message: str) -> None:
    from rich.markup import escape

    console.print(f"[cyan]note:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _print_warnings(messages: list[str]) -> None:
    from rich.markup import escape

    for message in messages:
        console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


@app.command()
def report(
    results_dir: Path = typer.Argument(..., help="Folder of runs: RESULTS_DIR/<run>/metrics.json."),
    output: Path = typer.Option(Path("report.html"), "-o", "--output", help="Self-contained HTML report to write."),
    md: Optional[Path] = typer.Option(None, "--md", help="Also write a Markdown summary (leaderboard + best per dataset)."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Also write a CSV table of all runs."),
    heatmaps: bool = typer.Option(False, "--heatmaps", help="Draw the gallery of mistakes as heatmap overlays "
                                  "(loads each run's model; slower)."),
) -> None:
    """Every run under RESULTS_DIR side by side: HTML with plots (+ Markdown, CSV)."""
    from featurebench.progress import count_progress
    from featurebench.report import build_report

    with count_progress(console, "report", "runs") as on_progress:  # heatmaps load every run's model: slow
        summary = build_report(results_dir, output, md_path=md, csv_path=csv, heatmaps=heatmaps, progress=on_progress)
    typer.echo(summary.describe())


@app.command()
def demo(
    out: Path = typer.Option(Path("featurebench-demo"), "--out", help="Folder for the dataset, features and results."),
    model: str = typer.Option("efficientnet_lite0", "--model", "-m", help="Extractor to run (see `featurebench models`)."),
    weights: str = typer.Option("imagenet", help="imagenet, none, or PATH (registry models)."),
    per_class: Optional[int] = typer.Option(None, help="Use at most this many images per digit (quick runs)."),
    force: bool = typer.Option(False, "--force", help="Redo the demo in a non-empty --out folder."),
) -> None:
    """Run the whole job offline on the embedded digits dataset: extract -> fit -> report."""
    from featurebench.demo import run_demo
    from featurebench.progress import extraction_progress

    # Stage messages and the bar go to stderr; the results (scores, where the report is) to stdout.
    with extraction_progress(console) as (on_start, on_progress):
        result = run_demo(out, model, weights, per_class, force, say=lambda m: console.print(m, soft_wrap=True),
                          progress=on_progress, on_start=on_start,
                          result=typer.echo)
    baseline = " (random-init baseline, not transfer learning)" if result.random_init else ""
    typer.echo(f"Report: {result.report.resolve()}{baseline}")
    typer.echo(f"Also: {result.plan.out / 'report.md'}, {result.plan.out / 'runs.csv'}")


#: Commands that live in their capability's folder, ``(module, function)`` in the order ``--help`` lists
#: them. Their modules import TensorFlow, scikit-learn and Ray only inside the command bodies.
CAPABILITY_COMMANDS = (
    ("featurebench.explain.commands", "inspect"),
    ("featurebench.training.commands", "build_images"),
    ("featurebench.finetune.commands", "finetune"),
    ("featurebench.explain.commands", "explain"),
    ("featurebench.audit.commands", "audit"),
    ("featurebench.scale.commands", "merge"),
    ("featurebench.scale.commands", "sweep"),
    ("featurebench.train.commands", "train"),
    ("featurebench.ensemble.commands", "ensemble"),
    ("featurebench.ensemble.commands", "fuse"),
)


def _register_capability_commands() -> None:
    import importlib

    for module_name, name in CAPABILITY_COMMANDS:
        app.command()(getattr(importlib.import_module(module_name), name))


_register_capability_commands()




def _command_name() -> str:
    return next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "")


def main() -> None:
    """Console-script entry point: run the app, turning FeaturebenchError into a clean message.

    The last line of defence: any other exception is one line naming the command, the file
    it was working on and the exception, plus a log file with the full traceback (exit 1).
    """
    from rich.markup import escape

    from featurebench.errors import noted_file, unexpected_error_line, write_crash_log
    from featurebench.quiet import filter_framework_lines

    filter_framework_lines()  # before any command imports TensorFlow or LiteRT
    try:
        app()
    except FeaturebenchError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        if getattr(exc, "exit_without_cleanup", False):
            # A failed HDF5 write (e.g. a full disk): freeing the half-written file's HDF5
            # objects on the way out can crash the process, so leave at once.
            _leave_now(2)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - the point: no bare traceback reaches a user
        log = write_crash_log(exc, command_line())
        where = f" while processing {noted_file()}" if noted_file() else ""
        console.print(f"[red]error:[/] featurebench {escape(_command_name())} failed unexpectedly{escape(where)}: "
                      f"{escape(unexpected_error_line(exc))}. "
                      + (f"Full traceback in {escape(str(log))}; please report it." if log else
                         "(the traceback could not be written to a log file)"), highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
