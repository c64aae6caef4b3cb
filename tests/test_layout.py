"""The package's import graph: no circle between its parts, and the intended directions
(the model knows no corpus, trainer, CLI or shipped file; scoring runs no model).

Every import counts, at module level or inside a function, except the lazy ones inside a
module's ``__getattr__`` (deprecated names kept for old import paths)."""
import ast
from pathlib import Path

import pytest

import omnisep_plugin

ROOT = Path(omnisep_plugin.__file__).parent
#: Old modules that only re-export the new ones, with a DeprecationWarning.
SHIMS = {"separate", "separator", "streaming", "pretrained"}


def _unit(module: str) -> str:
    """``omnisep_plugin.a.b`` -> ``a`` (the part of the package it belongs to)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path):
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    skip = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
            for n in ast.walk(f)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("omnisep_plugin"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("omnisep_plugin"):
                if node.module is None or target.count(".") == 0:
                    yield from (f"{target}.{a.name}" for a in node.names)
                else:
                    yield target


def _graph():
    edges = {}
    for path in ROOT.rglob("*.py"):
        src = _unit(_module_name(path))
        if not src or src in SHIMS:
            continue
        for target in _imports(path):
            dst = _unit(target)
            if dst and dst != src:
                edges.setdefault(src, set()).add(dst)
    return edges


def test_no_import_circle_between_the_parts_of_the_package():
    edges = _graph()
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)


@pytest.mark.parametrize("part,forbidden", [
    ("models", {"data", "training", "bin", "pipelines", "pretrained", "scoring", "evaluation"}),
    ("query", {"data", "training", "bin", "separation", "scoring", "evaluation", "models"}),
    ("scoring", {"models", "separation", "evaluation", "training", "query", "bin", "pipelines"}),
    ("separation", {"models", "data", "training", "bin", "scoring", "evaluation"}),
    ("audio_io", {"models", "query", "data", "training", "separation", "scoring", "bin"}),
    ("config", {"models", "query", "data", "training", "separation", "scoring", "bin"}),
])
def test_dependency_directions(part, forbidden):
    assert not _graph().get(part, set()) & forbidden


@pytest.mark.parametrize("old,name,new", [
    ("omnisep_plugin.separate", "separate", "omnisep_plugin.separation"),
    ("omnisep_plugin.separator", "QuerySpec", "omnisep_plugin.query.spec"),
    ("omnisep_plugin.separator", "separate_file", "omnisep_plugin.separation.files"),
    ("omnisep_plugin.streaming", "separate_array", "omnisep_plugin.separation.overlap_add"),
    ("omnisep_plugin.streaming", "resample_stream", "omnisep_plugin.audio_io"),
    ("omnisep_plugin.pretrained", "DEFAULT", "omnisep_plugin.pipelines"),
])
def test_old_import_paths_still_work_and_warn(old, name, new):
    import importlib
    import sys
    import warnings

    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert any(issubclass(w.category, DeprecationWarning) and new.split(".")[1] in str(w.message)
               for w in caught)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)


def test_moved_binder_functions_warn_from_their_old_module():
    import warnings

    from omnisep_plugin.query import offline
    from omnisep_plugin.training import binder
    with pytest.warns(DeprecationWarning, match="training.binder"):
        assert offline.train_audio_binder is binder.train_audio_binder
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from omnisep_plugin.query.offline import AudioBinder, OfflineEncoder  # noqa: F401
