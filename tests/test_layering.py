"""The package's layering rules (docs/architecture.md), checked on the import graph read with ``ast``
(scripts/import_map.py; nothing is imported). Lazy imports inside functions count as imports."""

from __future__ import annotations

import ast
import graphlib
import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "import_map.py"


def load_import_map():
    spec = importlib.util.spec_from_file_location("import_map", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


im = load_import_map()
MODULES, IMPORTS = im.read_imports()
HEAVY = {"tensorflow", "keras", "torch", "tf_keras"}


def imports_between(source_room: str, target_room: str) -> list[str]:
    return [f"{i.source}:{i.line} imports {i.target}" for i in IMPORTS
            if im.room(i.source) == source_room and i.target.startswith("featurebench")
            and im.room(i.target) == target_room]


def test_the_graph_is_read():
    """The reader sees the package: the core, both training rooms and their imports of the core."""
    assert {"featurebench.training.session", "featurebench.train.loop", "featurebench.finetune.surgery"} <= MODULES
    assert imports_between("train", "training") and imports_between("finetune", "training")


def test_no_circle_of_modules():
    assert im.module_cycles(MODULES, im.without_lazy_reexports(MODULES, IMPORTS)) == []


def test_the_cycle_finder_finds_a_circle():
    fake = [im.Import("featurebench.a", "featurebench.b", 1, True), im.Import("featurebench.b", "featurebench.a", 9, False)]
    assert im.module_cycles({"featurebench.a", "featurebench.b"}, fake) == [["featurebench.a", "featurebench.b"]]


def test_rooms_import_in_one_direction_only():
    """Between rooms the imports form no circle, so no import runs from a lower layer to a higher one."""
    graph: dict[str, set[str]] = {}
    for source, target in im.room_counts(IMPORTS):
        graph.setdefault(source, set()).add(target)
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"rooms import each other: {' -> '.join(exc.args[1])}")


@pytest.mark.parametrize("source, target", [("training", "finetune"), ("training", "train"), ("train", "finetune"),
                                            ("finetune", "train"), ("finetune", "explain"), ("training", "explain")])
def test_forbidden_imports_between_rooms(source, target):
    assert imports_between(source, target) == []


def test_library_never_imports_the_cli():
    offenders = [f"{i.source}:{i.line}" for i in IMPORTS
                 if i.target == "featurebench.cli" and i.source != "featurebench.__main__"]
    assert offenders == []


def registered_command_modules() -> set[str]:
    """The modules named in cli.py's CAPABILITY_COMMANDS (imported by name when the CLI loads)."""
    tree = ast.parse((im.ROOT / "cli.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "CAPABILITY_COMMANDS" for t in node.targets):
            return {module for module, _ in ast.literal_eval(node.value)}
    raise AssertionError("cli.py has no CAPABILITY_COMMANDS")


def test_fit_report_info_and_help_never_import_tensorflow_at_module_level():
    """What ``featurebench --help``, ``fit``, ``report`` and ``info`` load: the CLI module and the command
    modules it registers, fit/, report/ and info, followed through module-level imports."""
    top = {}
    for i in IMPORTS:
        if i.module_level:
            top.setdefault(i.source, set()).add(i.target)
    start = ({"featurebench.cli", "featurebench.info"} | registered_command_modules()
             | {m for m in MODULES if im.room(m) in ("fit", "report")})
    seen, todo, heavy = set(), list(start), []
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for target in top.get(module, ()):
            if target in HEAVY:
                heavy.append(f"{module} imports {target}")
            elif target in MODULES:
                todo.append(target)
                # importing featurebench.a.b runs featurebench/a/__init__.py first
                parts = target.split(".")
                todo.extend(".".join(parts[:n]) for n in range(2, len(parts)))
    assert "featurebench.training.commands" in seen and "featurebench.fit.run" in seen
    assert heavy == []
