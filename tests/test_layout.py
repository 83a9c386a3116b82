"""The house rules, checked on the source: the library never imports the CLI, no import cycle, no module
over the size a reader can hold (issue 11).

Imports are read with `ast` from every module, including imports inside functions (a lazy import is still a
dependency); imports under `if TYPE_CHECKING:` are left out (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("allocator", "models", "simulations")
CLI_MODULES = ("allocator.cli", "simulations.cli")
MAX_LINES = 560  # "no module over ~500 lines"
# Modules still to be split (issue 11, in progress); an entry is removed when its split lands.
SPLIT_PENDING: set[str] = set()


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules named by the imports of `path` (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    found: set[str] = set()

    def visit(nodes, depth: int) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node):
                visit(node.orelse, depth)
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                if top_level_only:
                    continue
            for field in ("body", "orelse", "finalbody", "handlers"):
                child = getattr(node, field, None)
                if isinstance(child, list):
                    visit(child, depth + 1)

    visit(ast.parse(path.read_text(encoding="utf-8")).body, 0)
    return found


def _is_cli(module: str) -> bool:
    return any(module == c or module.startswith(c + ".") for c in CLI_MODULES)


def test_library_never_imports_the_cli():
    modules = _modules()
    offenders = [
        f"{name} imports {dep}"
        for name, path in modules.items()
        if not _is_cli(name) and name != "allocator.__main__"
        for dep in sorted(_imports(path, top_level_only=False))
        if _is_cli(dep)
    ]
    assert offenders == []


def test_no_import_cycle_among_modules():
    """Top-level imports (the ones that run at import time) form no cycle."""
    modules = _modules()
    graph = {
        name: {d for d in _imports(path, top_level_only=True) if d in modules and d != name}
        for name, path in modules.items()
    }
    # A package's __init__ importing its own submodules is the usual re-export, not a cycle through the package.
    for name in graph:
        graph[name] = {d for d in graph[name] if not name.startswith(d + ".")}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                dfs(dep)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            dfs(name)
    assert cycles == []


def test_cycle_detection_sees_a_cycle(tmp_path, monkeypatch):
    """The checker above finds a cycle when there is one (so its green means something)."""
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("from a import x\n")
    assert "b" in _imports(tmp_path / "a.py", top_level_only=True)
    assert "a" in _imports(tmp_path / "b.py", top_level_only=True)
    (tmp_path / "c.py").write_text("def f():\n    import cli_thing\nif TYPE_CHECKING:\n    import hidden\n")
    assert _imports(tmp_path / "c.py", top_level_only=True) == set()
    assert _imports(tmp_path / "c.py", top_level_only=False) == {"cli_thing"}


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_size(name):
    lines = len(_modules()[name].read_text(encoding="utf-8").splitlines())
    if name in SPLIT_PENDING:
        pytest.xfail(f"{name}: {lines} lines, split pending")
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it on its seams (issue 11: no module over ~500 lines)"
