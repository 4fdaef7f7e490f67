"""The structure of docs/architecture.md, checked: which layer may import which, no import cycle, and every
dvc.yaml stage's `deps` covering the project files its command imports.

A layer is the core (the `policytag` package less its layer subpackages) or one of the subpackages named in
MAY_IMPORT (`policytag.annotation`, `policytag.training`, `policytag.evaluation`); any other subpackage of
`policytag` (e.g. `policytag.tagging`) belongs to the core.

Everything is derived from the code, pyproject.toml and dvc.yaml (no list of modules here), so a module added,
split or moved is checked the day it appears. Imports are read with `ast`, everywhere in a file: a function's
lazy import is followed too, since the stage that calls the function runs it.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
CORE = "policytag"
MAY_IMPORT = {  # the layering of docs/architecture.md: a layer may import itself and these
    "policytag": set(),
    "policytag.annotation": {"policytag"},
    "policytag.training": {"policytag"},
    "policytag.evaluation": {"policytag", "policytag.training"},
}
SCRIPT_MODULE, SCRIPT_FUNCTION = PYPROJECT["project"]["scripts"]["policytag"].split(":")
"""The command line's dispatcher (policytag.cli): the one core module that imports the other packages, lazily."""


def project_packages() -> list[str]:
    """The top-level packages pyproject.toml installs."""
    patterns = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(path.parent.name for path in REPO.glob("*/__init__.py")
                  if any(fnmatch.fnmatch(path.parent.name, pattern) for pattern in patterns))


PACKAGES = project_packages()


def layers() -> list[str]:
    """The core and the layer subpackages of MAY_IMPORT that the layout holds (a package folder under the core)."""
    return [CORE] + sorted(layer for layer in MAY_IMPORT if layer != CORE
                           and (REPO.joinpath(*layer.split(".")) / "__init__.py").exists())


LAYERS = layers()


def module_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


MODULES = module_files()


@dataclass(frozen=True)
class Edge:
    target: str
    function: str | None  # the top-level function or method it sits in; None: runs when the module is imported
    line: int


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The project modules an import statement in `module` loads (the most specific ones; parents are added
    where files are listed)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}".strip(".")
        names = [base] + [f"{base}.{alias.name}" for alias in node.names]
    found = []
    for name in names:
        while name and name not in MODULES:  # `import a.b.c` where c is not a module: a.b
            name = name.rpartition(".")[0]
        if name and name not in found:
            found.append(name)
    return found


def imports(module: str) -> list[Edge]:
    """Every import of a project module in `module`'s file, with the function it sits in (if any)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))
    edges: list[Edge] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit_one(other, function)
                continue
            visit_one(child, function)

    def visit_one(child: ast.AST, function: str | None) -> None:
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            edges.extend(Edge(target, function, child.lineno) for target in _targets(module, child)
                         if target != module)
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            visit(child, function or child.name)
        elif isinstance(child, ast.ClassDef):
            # a class body runs at import time; its methods later
            for item in child.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    visit(item, function or f"{child.name}.{item.name}")
                else:
                    visit_one(item, function)
        else:
            visit(child, function)

    visit(tree, None)
    return edges


IMPORTS = {module: imports(module) for module in MODULES}


def layer_of(module: str) -> str:
    """The layer a module (or package) belongs to: the longest layer it is, or lies inside; else its top-level
    package (a package pyproject.toml installs beside the core, which test_the_layers_are_found refuses)."""
    inside = [layer for layer in LAYERS if module == layer or module.startswith(layer + ".")]
    return max(inside, key=len) if inside else module.split(".")[0]


def closure(roots: dict[str, set[str] | None]) -> set[str]:
    """The project modules reached from `roots`: module -> the functions whose lazy imports count (None: all of
    them). The dispatcher's lazy imports count only through the functions named for it."""
    reached: set[str] = set()
    todo = list(roots.items())
    while todo:
        module, functions = todo.pop()
        key = module if functions is None else f"{module}:{','.join(sorted(functions))}"
        if key in reached:
            continue
        reached.add(key)
        for edge in IMPORTS[module]:
            if functions is None or edge.function is None or edge.function.split(".")[0] in functions:
                todo.append((edge.target, set() if edge.target == SCRIPT_MODULE else None))
    return {key.split(":")[0] for key in reached}


def files_loaded(modules: set[str]) -> set[Path]:
    """The files Python executes to import `modules`: each module's file and its packages' __init__.py."""
    files = set()
    for module in modules:
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):
            files.add(MODULES[".".join(parts[:depth])].relative_to(REPO))
    return files


def test_the_layers_are_found():
    assert PACKAGES == [CORE], \
        f"pyproject.toml installs top-level packages besides {CORE}: put them under {CORE}/ (see MAY_IMPORT): {PACKAGES}"
    assert LAYERS == sorted(MAY_IMPORT, key=lambda layer: (layer != CORE, layer)), \
        f"a layer of MAY_IMPORT is not a package under {CORE}/: {sorted(set(MAY_IMPORT) - set(LAYERS))}"
    assert all(MAY_IMPORT[layer] <= set(LAYERS) for layer in LAYERS)
    assert SCRIPT_MODULE in MODULES and layer_of(SCRIPT_MODULE) == CORE


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_imports_only_what_the_layering_allows(layer):
    """Core modules import nothing outside the core, even lazily; the dispatcher only in functions (one per
    subcommand). policytag.annotation and policytag.training import the core; policytag.evaluation also
    policytag.training."""
    wrong = []
    for module in (m for m in MODULES if layer_of(m) == layer):
        for edge in IMPORTS[module]:
            target = layer_of(edge.target)
            if target == layer or target in MAY_IMPORT[layer]:
                continue
            if module == SCRIPT_MODULE and edge.function is not None:
                continue
            wrong.append(f"{MODULES[module].relative_to(REPO)}:{edge.line} imports {edge.target}")
    assert not wrong, "imports against the layering of docs/architecture.md:\n" + "\n".join(wrong)


def test_no_import_cycle():
    """Among module-level imports (what runs on import), no module reaches itself again."""
    graph = {module: sorted({edge.target for edge in IMPORTS[module] if edge.function is None}) for module in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))

    def connect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            connect(node)
    assert not cycles, f"import cycles: {cycles}"


def test_importing_the_core_loads_no_other_package():
    """Each core module imported in a fresh interpreter, then `policytag tag --help` and `segment --help` (what a
    tagging run loads before its work): nothing of policytag.annotation, policytag.training or policytag.evaluation
    in sys.modules."""
    core = [m for m in MODULES if layer_of(m) == CORE and not m.endswith("__main__")]
    others = [layer for layer in LAYERS if layer != CORE]
    assert core and others
    script = f"""
import contextlib, importlib, io, json, sys
for name in {core!r}:
    importlib.import_module(name)
from {SCRIPT_MODULE} import {SCRIPT_FUNCTION} as main
for argv in (["tag", "--help"], ["segment", "--help"], ["--help"]):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit:
            pass
print(json.dumps(sorted(m for m in sys.modules if any(m == o or m.startswith(o + ".") for o in {others!r}))))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []


def dvc_stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def stage_argv(stage: dict) -> list[str]:
    command = stage["cmd"] if isinstance(stage["cmd"], str) else " ".join(stage["cmd"])
    return shlex.split(re.sub(r"\$\{[^}]*\}", "PARAM", command))


def command_roots(argv: list[str]) -> dict[str, set[str] | None]:
    """The modules `argv` loads to dispatch (and those it then runs), as roots for closure()."""
    if argv[:2] in (["python", "-m"], ["python3", "-m"]):
        return {argv[2]: set() if argv[2] == SCRIPT_MODULE else None}
    assert argv[0] == "policytag", f"a stage command this test cannot follow: {argv}"
    script = f"""
import json, sys
from {SCRIPT_MODULE} import handler
run = handler({argv[1:]!r})
print(json.dumps({{"modules": sorted(m for m in sys.modules if m.split(".")[0] in {PACKAGES!r}),
                  "handler": [run.func.__module__, run.func.__qualname__.split(".")[0]]}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    roots: dict[str, set[str] | None] = {m: (set() if m == SCRIPT_MODULE else None)
                                         for m in found["modules"] if m in MODULES}
    module, function = found["handler"]
    roots[module] = {function} if module == SCRIPT_MODULE else None
    return roots


@pytest.mark.parametrize("name", sorted(dvc_stages()))
def test_stage_deps_cover_the_code_it_imports(name):
    """Every project file the stage's command imports (at dispatch, or lazily in what it runs) lies under one of
    the stage's deps; an edit of any of them makes `dvc repro` run the stage again."""
    stage = dvc_stages()[name]
    deps = [Path(next(iter(dep)) if isinstance(dep, dict) else dep) for dep in stage.get("deps", [])]
    files = files_loaded(closure(command_roots(stage_argv(stage))))
    missing = sorted(str(file) for file in files if not any(file == dep or dep in file.parents for dep in deps))
    assert not missing, (f"dvc.yaml stage {name!r} imports files its deps miss (add them, or their package "
                         f"folder): {missing}")
