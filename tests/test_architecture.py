"""The direction of imports, checked: a module may import only its own layer and the layers below it
(docs/ARCHITECTURE.md). Function-local imports count too: a lazy import that runs back up is still a
back-import. An import that runs back up fails this test, naming the file, line and both layers."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "diffpose_viz"

#: Bottom to top. A module's layer is that of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("utilities", ("diffpose_viz", "diffpose_viz.errors", "diffpose_viz.atomic", "diffpose_viz.memory",
                   "diffpose_viz.progress", "diffpose_viz.safe_io")),
    ("geometry", ("diffpose_viz.skeleton", "diffpose_viz.camera")),
    ("data", ("diffpose_viz.mocap", "diffpose_viz.datasets")),
    ("2D input, metrics, results schema", ("diffpose_viz.detector_sim", "diffpose_viz.metrics",
                                           "diffpose_viz.uncertainty", "diffpose_viz.ood", "diffpose_viz.augmentation",
                                           "diffpose_viz.results")),
    ("initialization, diffusion, models", ("diffpose_viz.initialization", "diffpose_viz.diffusion",
                                           "diffpose_viz.models")),
    ("config, checkpoint I/O, distributed", ("diffpose_viz.config", "diffpose_viz.checkpoint",
                                             "diffpose_viz.distributed")),
    ("inputs", ("diffpose_viz.inputs",)),
    ("methods", ("diffpose_viz.methods",)),
    ("inference", ("diffpose_viz.inference", "diffpose_viz.released")),
    ("training, evaluation", ("diffpose_viz.training", "diffpose_viz.evaluation")),
    ("figures", ("diffpose_viz.figures",)),
    ("apps", ("diffpose_viz.cli", "diffpose_viz.wild", "diffpose_viz.bench", "diffpose_viz.lab", "diffpose_viz.exports")),
]


def layer_of(module: str) -> int | None:
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(tree: ast.AST, this: str, is_package: bool):
    """(line, absolute module name) of every import in the file, relative imports resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = this.split(".")
                base = base if is_package else base[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield node.lineno, mod
            for alias in node.names:  # `from diffpose_viz import inference` imports a submodule
                yield node.lineno, f"{mod}.{alias.name}"


def back_imports(root: Path = PACKAGE) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        this = module_name(path, root)
        own = layer_of(this)
        if own is None:
            problems.append(f"{path.relative_to(root.parent)}: module {this} is in no layer (add it to LAYERS "
                            "and docs/ARCHITECTURE.md)")
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        seen = set()
        for line, target in imported_modules(tree, this, path.name == "__init__.py"):
            if not target.startswith("diffpose_viz"):
                continue
            other = layer_of(target)
            if other is not None and other > own and (line, other) not in seen:
                seen.add((line, other))
                problems.append(f"{path.relative_to(root.parent)}:{line}: {this} ({LAYERS[own][0]}) imports "
                                f"{target} ({LAYERS[other][0]}), a layer above it")
    return problems


def test_imports_point_down_the_layers():
    problems = back_imports()
    assert not problems, "imports that run back up:\n" + "\n".join(problems)


def test_a_planted_back_import_is_caught(tmp_path):
    """The check itself can fail: a copy of a low module that imports the trainer is reported."""
    pkg = tmp_path / "diffpose_viz"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "camera.py").write_text("def f():\n    from diffpose_viz.training.trainer import Trainer\n")
    (pkg / "metrics.py").write_text("from diffpose_viz import camera\n")
    problems = back_imports(pkg)
    assert len(problems) == 1 and "camera.py:2" in problems[0] and "training" in problems[0]


@pytest.mark.parametrize("name", ["dashboard", "notebooks", "scripts"])
def test_apps_outside_the_package_do_not_patch_the_import_path_to_the_repo(name):
    """The package is installed (`pip install -e .`); only the dashboard adds its own folder (for `common`)."""
    folder = PACKAGE.parent / name
    for path in folder.rglob("*.py"):
        text = path.read_text()
        assert "parents[1]))" not in text or name == "dashboard", f"{path}: inserts the repository into sys.path"


#: Where a method's needs may be asked: the method table itself and the feed (inputs/feed.py), nowhere else.
NEEDS_READERS = ("diffpose_viz/methods/", "diffpose_viz/inputs/feed.py")


def ast_nodes(root: Path, folders: tuple[str, ...], allowed: tuple[str, ...]):
    """(path relative to root, node) of every AST node of the .py files under root/folder, except in `allowed`."""
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if not rel.startswith(allowed):
                yield from ((rel, node) for node in ast.walk(ast.parse(path.read_text(), filename=str(path))))


def needs_read_outside(root: Path = PACKAGE, attrs=("uses_windows", "hk_at_training", "hk_at_test")) -> list[str]:
    """`x.uses_windows(...)` / `x.hk_at_*` read in a module that is neither in methods/ nor the feed."""
    return [f"{rel}:{node.lineno}: reads .{node.attr}"
            for rel, node in ast_nodes(root.parent, (root.name,), NEEDS_READERS)
            if isinstance(node, ast.Attribute) and node.attr in attrs]


def test_only_the_methods_and_the_feed_ask_what_a_method_needs():
    """Whether a method reads windows or H_K is decided in one place: everyone else takes a Feed."""
    found = needs_read_outside()
    assert not found, "ask the feed (diffpose_viz/inputs/feed.py) instead:\n" + "\n".join(found)


def test_a_planted_uses_windows_outside_the_feed_is_caught(tmp_path):
    pkg = tmp_path / "diffpose_viz"
    (pkg / "inputs").mkdir(parents=True)
    (pkg / "inputs" / "feed.py").write_text("def f(m, c):\n    return m.uses_windows(c)\n")
    (pkg / "lab.py").write_text("def g(m, c):\n    return m.hk_at_test and m.uses_windows(c)\n")
    assert needs_read_outside(pkg) == ["diffpose_viz/lab.py:2: reads .hk_at_test",
                                       "diffpose_viz/lab.py:2: reads .uses_windows"]


def test_the_hk_cache_file_is_named_in_one_place():
    """The H_K cache file name is formatted by inputs.hk.hk_cache_file only."""
    named = [f"{p.relative_to(PACKAGE.parent).as_posix()}" for p in sorted(PACKAGE.rglob("*.py"))
             if 'f"hk_' in p.read_text()]
    assert named == ["diffpose_viz/inputs/hk.py"], named


#: Where a method's name may be compared: the method table itself. Everyone else asks the method object.
NAME_READERS = ("diffpose_viz/methods/",)
#: Code outside the package that must not dispatch on method names either.
APPS = ("scripts", "dashboard")


def _string_literals(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [v for e in node.elts for v in _string_literals(e)]
    return []


def method_name_comparisons(root: Path = PACKAGE.parent, names: set[str] | None = None) -> list[str]:
    """`x == "diffpose"`, `cfg.method in ("lifter", ...)` and the like: a comparison with a method name of the
    table (or a results name), in the package outside methods/ or in the scripts and the dashboard."""
    if names is None:
        from diffpose_viz.methods import METHODS

        names = set(METHODS) | {m.model_name for m in METHODS.values()}
    found = []
    for rel, node in ast_nodes(root, ("diffpose_viz", *APPS), NAME_READERS):
        if isinstance(node, ast.Compare):
            hit = sorted({v for part in (node.left, *node.comparators) for v in _string_literals(part) if v in names})
            if hit:
                found.append(f"{rel}:{node.lineno}: compares with method name {', '.join(hit)}")
    return found


def test_no_method_name_comparisons_outside_the_method_table():
    found = method_name_comparisons()
    assert not found, "ask the method object (diffpose_viz/methods/) instead:\n" + "\n".join(found)


def test_a_planted_method_name_comparison_is_caught(tmp_path):
    (tmp_path / "diffpose_viz" / "methods").mkdir(parents=True)
    (tmp_path / "diffpose_viz" / "methods" / "x.py").write_text("def f(cfg):\n    return cfg.method == 'lifter'\n")
    (tmp_path / "diffpose_viz" / "bench.py").write_text("def f(cfg):\n    return cfg.method == 'video_lifter'\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "s.py").write_text("def g(m):\n    return m in ('diffpose', 'other')\n")
    assert method_name_comparisons(tmp_path, {"lifter", "video_lifter", "diffpose"}) == [
        "diffpose_viz/bench.py:2: compares with method name video_lifter",
        "scripts/s.py:2: compares with method name diffpose"]


def _repeated_test_basenames(root: Path) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for path in sorted(root.rglob("test_*.py")):
        seen.setdefault(path.name, []).append(str(path.relative_to(root)))
    return {name: paths for name, paths in seen.items() if len(paths) > 1}


def test_test_files_have_unique_basenames():
    # The test folders have no __init__.py, so pytest imports each test file by its basename: two files with one
    # name pass alone and break the whole-suite run at collection.
    repeated = _repeated_test_basenames(Path(__file__).resolve().parent)
    assert not repeated, f"test files sharing a basename (rename one): {repeated}"


def test_a_planted_repeated_test_basename_is_caught(tmp_path):
    for sub in ("methods", "models"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "test_official.py").write_text("")
    assert _repeated_test_basenames(tmp_path) == {"test_official.py": ["methods/test_official.py",
                                                                        "models/test_official.py"]}
