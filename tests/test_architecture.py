"""The layout is the architecture: one way through it, and docs that match the tree.

``make lint`` runs import-linter's contracts (the stages import only downwards, the host
never imports the sender, OpenTelemetry only where needed); these tests add what it cannot
say: no import cycles at all, no module reaching into another's private names, and the
layout table of docs/development.md naming exactly the modules that exist.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "phonehome"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    modules = sorted(m for m in graph.modules if m.startswith("phonehome"))
    edges = {
        m: sorted(
            n for n in graph.find_modules_directly_imported_by(m) if n.startswith("phonehome")
        )
        for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, []):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return components


def test_there_are_no_import_cycles() -> None:
    """Imports inside functions count: a cycle that only closes at run time is one too."""
    assert _cycles(grimp.build_graph("phonehome")) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="a")
    assert _cycles(_renamed(graph)) == [["phonehome.a", "phonehome.b"]]


def _renamed(graph: grimp.ImportGraph) -> grimp.ImportGraph:
    renamed = grimp.ImportGraph()
    for module in graph.modules:
        renamed.add_module(f"phonehome.{module}")
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            renamed.add_import(importer=f"phonehome.{module}", imported=f"phonehome.{imported}")
    return renamed


def _private_uses(source: str, module: str, modules: set[str]) -> list[str]:
    """Private names of other phonehome modules that ``source`` imports or reads."""
    tree = ast.parse(source)
    found: list[str] = []
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("phonehome"):
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                if target in modules:  # a submodule, not a name
                    aliases[alias.asname or alias.name] = target
                elif alias.name.startswith("_") and node.module != module:
                    found.append(f"from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("phonehome") and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{aliases[node.value.id]}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names() -> None:
    modules = _modules()
    offenders = {
        name: uses
        for name, path in modules.items()
        if (uses := _private_uses(path.read_text(), name, set(modules)))
    }
    assert offenders == {}


def test_the_private_name_check_finds_one() -> None:
    source = (
        "from phonehome._core.diagnostics import _warned\n"
        "from phonehome._core import diagnostics as d\n"
        "d._strict\n"
    )
    modules = {"phonehome._core.diagnostics"}
    assert _private_uses(source, "phonehome._host.x", modules) == [
        "from phonehome._core.diagnostics import _warned",
        "phonehome._core.diagnostics._strict",
    ]


def _documented_layout() -> set[str]:
    text = (ROOT / "docs" / "development.md").read_text()
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([\w/.]+)` \|", section, flags=re.M))


def test_the_layout_table_names_every_module_and_only_those() -> None:
    existing = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" or path.parent == PACKAGE
    }
    existing |= {
        str(path.relative_to(PACKAGE)) + "/" for path in PACKAGE.iterdir() if path.is_dir()
    }
    existing = {p for p in existing if "__pycache__" not in p}
    assert _documented_layout() == existing


ON_PATH = """
import sys, argparse
import phonehome
with phonehome.instrument("democli", version="1.0", vendor="http://127.0.0.1:9",
                          state_dir=sys.argv[1], mode="cli") as t:
    with t.command("generate", params={"language": "go"}, collect={"language"}) as span:
        span.set_attribute("x", 1)
    t.event("done", {"n": 1})
print(" ".join(sorted(sys.modules)))
"""
HEAVY = {
    "typing",
    "threading",
    "weakref",
    "contextlib",
    "struct",
    "dataclasses",
    "inspect",
    "pathlib",
    "json",
    "ipaddress",
    "urllib.parse",
}
"""Standard-library modules a small argparse CLI does not load, each milliseconds to import:
the consent-on host path does without them (docs/development.md)."""
ON_PATH_MODULES = 31
"""phonehome's modules that a later run with consent on loads (each import is about 0.3 M
instructions before its code runs): a ceiling, so that the path does not grow unnoticed.
Exceptions, usage collectors, the schedule and the sender load only when a run needs them."""


def test_the_consent_on_host_path_imports_no_heavy_standard_module(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import clean_environ

    def loaded(code: str) -> set[str]:
        run = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            env=clean_environ(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        return set(run.stdout.split())

    plain = loaded("import sys, argparse; print(' '.join(sorted(sys.modules)))")
    instrumented = loaded(ON_PATH)
    assert "phonehome._host.recording" in instrumented  # consent was on
    assert HEAVY & plain == set()  # what the check is about: modules the CLI does not load
    assert (instrumented - plain) & HEAVY == set()
    later = {m for m in loaded(ON_PATH) if m.split(".")[0] == "phonehome"}
    assert len(later) <= ON_PATH_MODULES, sorted(later)
    # offline, or the collector down: a destination waits, and the host reads the schedule
    progress = tmp_path / "spool" / "progress"
    progress.mkdir(parents=True, exist_ok=True)
    (progress / "all.waiting").write_text("vendor 30.0 1.0\n")
    offline = loaded(ON_PATH)
    assert "phonehome._spool.schedule" in offline
    assert (offline - plain) & HEAVY == set()
