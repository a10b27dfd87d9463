"""pyproject.toml: a lean CPU install (xgboost-cpu on Linux x86_64), full xgboost for GPUs, an SPDX license."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11+")
from packaging.requirements import Requirement  # noqa: E402

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
LINUX_X86 = {"platform_machine": "x86_64", "sys_platform": "linux"}
MAC_ARM = {"platform_machine": "arm64", "sys_platform": "darwin"}


def _project() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["project"]


def _selected(requirements: list[str], environment: dict) -> set[str]:
    """Names of the requirements whose markers hold in ``environment`` (no extra requested)."""
    names = set()
    for text in requirements:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({**environment, "extra": ""}):
            names.add(req.name)
    return names


def test_license_is_an_spdx_string():
    assert _project()["license"] == "MIT"


def test_cpu_linux_x86_gets_xgboost_cpu_without_the_cuda_build():
    deps = _project()["dependencies"]
    linux = _selected(deps, LINUX_X86)
    assert "xgboost-cpu" in linux and "xgboost" not in linux
    other = _selected(deps, MAC_ARM)
    assert "xgboost" in other and "xgboost-cpu" not in other


def test_gpu_extra_brings_full_xgboost():
    assert "xgboost" in {Requirement(text).name for text in _project()["optional-dependencies"]["gpu"]}


def test_readme_test_command_installs_every_cpu_extra_and_ci_runs_it_verbatim():
    """A newcomer's one test command is CI's: every optional extra but [gpu], so their tests run."""
    import re

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    command = next(line for line in readme.splitlines() if "python -m pytest" in line and "pip install" in line)
    assert command in (root / ".ci" / "run").read_text(encoding="utf-8")
    extras = set(re.search(r"\.\[([a-z0-9,]+)\]", command).group(1).split(","))
    declared = set(tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    assert extras == declared - {"gpu"}
