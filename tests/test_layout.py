"""The project's imports point one way: read from the source (ast), imports inside functions included.

app.py -> settings, demo/, pipelines/; demo/ never imports pipelines/ or app; pipelines/ never imports gradio, demo/
or app; only pipelines/presets.py knows every model family; no import cycle anywhere in the project's own code.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipelines", "demo")
TOP = ("app", "settings")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    files = [ROOT / f"{name}.py" for name in TOP] + [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    return {module_name(p): p for p in files}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports, anywhere in its file (a function's body too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def third_party_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_hidden_anywhere():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_import_reader_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "demo" / "tab.py"
    source.parent.mkdir()
    source.write_text("def f():\n    from app import main\n    from .widgets import x\n")
    known = {"app", "demo.tab", "demo.widgets"}
    assert imports_of("demo.tab", source, known) == {"app", "demo.widgets"}


def test_no_import_cycle_in_the_project():
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle)


def test_dependencies_point_one_way():
    edges = graph()
    for name, targets in edges.items():
        if name.startswith("demo"):
            bad = {t for t in targets if t in TOP or t.startswith("pipelines")}
            assert not bad, f"{name} imports {bad}: the UI gets what it needs from app.py"
        if name.startswith("pipelines"):
            bad = {t for t in targets if t in TOP or t.startswith("demo")}
            assert not bad, f"{name} imports {bad}: the model side knows nothing of the UI or the app"
    for name, path in project_modules().items():
        if name.startswith("pipelines"):
            assert "gradio" not in third_party_imports(path), f"{name} imports gradio"
        if name.startswith("demo"):
            assert "torch" not in third_party_imports(path), f"{name} imports torch"


def test_only_the_presets_table_knows_every_family():
    edges = graph()
    families = {"pipelines.image", "pipelines.audio", "pipelines.video", "pipelines.text", "pipelines.text_diffusion"}
    knowers = [name for name, targets in edges.items() if families <= targets]
    assert knowers == ["pipelines.presets"]
    assert not any("pipelines.presets" in targets for name, targets in edges.items() if name in families)
