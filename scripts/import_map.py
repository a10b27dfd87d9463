"""The import graph of the featurebench package, read with ``ast`` (nothing is imported).

    python scripts/import_map.py [PACKAGE_DIR]          # default: featurebench/ beside this script

Prints a Markdown table of imports between the top-level rooms (``finetune -> training: 12`` counts the
import statements in ``finetune/`` that name a module of ``training/``, lazy ones inside functions
included; a package ``__init__`` is its room), then any circle of modules importing each other. docs/architecture.md shows its output;
tests/test_layering.py checks the rules with the same graph.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "featurebench"


@dataclass(frozen=True)
class Import:
    """One imported featurebench module (or an outside top-level name) in ``source``."""

    source: str
    target: str
    line: int
    module_level: bool   # at the top of the module (runs on import), not inside a function


def module_name(path: Path, root: Path) -> str:
    """``featurebench/train/run.py`` -> ``featurebench.train.run``; a package's ``__init__`` is the package."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(name: str, modules: set[str]) -> str:
    """The longest known module that ``name`` (a module or a name inside one) refers to."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _module_level_nodes(tree: ast.Module) -> set[int]:
    """ids of the import nodes that run at import time (not inside a function body)."""
    found: set[int] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.add(id(child))
            visit(child)

    visit(tree)
    return found


def read_imports(root: Path = ROOT) -> tuple[set[str], list[Import]]:
    """All modules under ``root`` and every import in them (featurebench targets resolved to modules;
    other targets kept as their top-level name, e.g. ``tensorflow``)."""
    files = {module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    modules = set(files)
    imports: list[Import] = []
    for source, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        top = _module_level_nodes(tree)
        package = source if path.name == "__init__.py" else source.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    prefix = f"{base}.{node.module}" if node.module else base
                else:
                    prefix = node.module or ""
                names = [f"{prefix}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                head = name.split(".")[0]
                target = _resolve(name, modules) if head == root.name else head
                if target != source:
                    imports.append(Import(source, target, node.lineno, id(node) in top))
    return modules, imports


def room(module: str) -> str:
    """The top-level room of a module: ``featurebench.train.nets.resnet`` -> ``train``;
    a top-level module is its own room (``featurebench.cli`` -> ``cli``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def room_counts(imports: list[Import]) -> Counter:
    """``(from room, to room) -> import statements`` between different featurebench rooms (a statement
    naming three things of one module counts once; one naming two modules, twice)."""
    statements = {(i.source, i.line, i.target) for i in imports
                  if i.target.startswith("featurebench.") and room(i.source) != room(i.target)}
    return Counter((room(source), room(target)) for source, _, target in statements)


def without_lazy_reexports(modules: set[str], imports: list[Import]) -> list[Import]:
    """``imports`` less a package ``__init__``'s lazy imports of its own modules: the public re-exports of
    its ``__getattr__`` (scikit-learn style) run when a user asks for the name, not when the package loads,
    so a module of the package may import the package without a circle."""
    return [i for i in imports
            if not (i.source in modules and i.target.startswith(i.source + ".") and not i.module_level)]


def module_cycles(modules: set[str], imports: list[Import]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (a package's ``__init__`` re-exports by name
    at call time, so an edge to a package is not followed into its submodules)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for i in imports:
        if i.target in graph:
            graph[i.source].add(i.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:   # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def markdown_table(counts: Counter) -> str:
    """``| from | to | imports |`` rows, sorted."""
    rows = ["| from | to | imports |", "|---|---|---:|"]
    rows += [f"| {a} | {b} | {n} |" for (a, b), n in sorted(counts.items())]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", type=Path, default=ROOT, help="The package folder (default: %(default)s).")
    args = parser.parse_args(argv)
    modules, imports = read_imports(args.package.resolve())
    print(markdown_table(room_counts(imports)))
    cycles = module_cycles(modules, without_lazy_reexports(modules, imports))
    print(f"\n{len(modules)} modules, {len(imports)} imported names, {len(cycles)} circle(s) "
          "(a package's lazy re-exports of its own modules aside)")
    for group in cycles:
        print("circle: " + " <-> ".join(group))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
