"""The import rules ARCHITECTURE.md states, checked on the source: arrows point down, no loops."""

from __future__ import annotations

import ast
from pathlib import Path

import rlrec

ROOT = Path(rlrec.__file__).parent
#: Each folder (or top-level module) and the folders it may import, as ARCHITECTURE.md draws them.
MAY_IMPORT = {
    "utils": set(),
    "plotting": {"utils"},
    "data": {"utils"},
    "envs": {"data", "utils"},
    "nn": {"utils"},
    "agents": {"data", "envs", "nn", "utils"},
    "evaluation": {"agents", "data", "envs", "nn", "utils"},
    "experiments": {"agents", "data", "envs", "evaluation", "nn", "plotting", "utils"},
    "tuning": {"agents", "data", "envs", "evaluation", "experiments", "nn", "utils"},
    "zoo": {"agents", "data", "envs", "nn", "utils"},
    "cli": {"agents", "data", "envs", "evaluation", "experiments", "nn", "plotting", "tuning", "utils"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """``id`` of the nodes under ``if TYPE_CHECKING:`` (names for annotations, never imported)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skipped.update(id(child) for part in node.body for child in ast.walk(part))
    return skipped


def _imports(path: Path) -> set[str]:
    """Modules of ours ``path`` imports, at its top or inside a function (not for type checking)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlrec"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("rlrec"))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in ROOT.rglob("*.py")}
    return {
        name: {target for target in _imports(path) if target in modules and target != name}
        for name, path in modules.items()
    }


def _folder(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_import_points_down() -> None:
    wrong = [
        f"{source} -> {target}"
        for source, targets in _graph().items()
        for target in targets
        if _folder(source) is not None
        and _folder(target) is not None
        and _folder(source) != _folder(target)
        and _folder(target) not in MAY_IMPORT[str(_folder(source))]
    ]
    assert wrong == []


def test_no_import_loop() -> None:
    graph = _graph()
    # A package importing its own modules (re-exports) is not a loop through the package.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}
    loops: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                loops.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert loops == []


def test_the_rules_see_the_imports() -> None:
    # The checks above read real edges: a few the code is known to have.
    graph = _graph()
    assert "rlrec.experiments.manager" in graph["rlrec.cli.commands"]
    assert "rlrec.agents.dqn" in graph["rlrec.agents.slateq"]
    assert "rlrec.data.truth" in graph["rlrec.data.twin"]
