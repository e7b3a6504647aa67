"""The plugin package stands alone: it never imports the tests, the stand-ins or the benchmark."""
import ast
import pathlib

PKG = pathlib.Path(__file__).resolve().parents[2] / "kubectl_vmmig"


def imported_modules(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_plugin_does_not_import_tests_or_bench():
    files = sorted(PKG.rglob("*.py"))
    assert len(files) > 20
    offenders = [(str(f.relative_to(PKG)), m) for f in files for m in imported_modules(f)
                 if m.split(".")[0] in ("tests", "bench", "pytest")]
    assert offenders == []


def _relative_targets(path):
    """Absolute module names a file imports (relative imports resolved), function-local ones included."""
    rel = path.relative_to(PKG.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            yield mod
            for alias in node.names:
                yield f"{mod}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name


def test_only_the_engines_reach_into_an_engine_package():
    """Issue 13: commands (and every module outside engines/) see engines only through engines/__init__.py's
    registry and engines/base.py; adding an engine changes no module outside its own package."""
    from kubectl_vmmig import engines

    packages = {f"kubectl_vmmig.engines.{n.replace('-', '_')}" for n in engines.names()}
    offenders = []
    for f in sorted(PKG.rglob("*.py")):
        if f.is_relative_to(PKG / "engines"):
            continue
        for target in _relative_targets(f):
            if any(target == p or target.startswith(p + ".") for p in packages):
                offenders.append((str(f.relative_to(PKG)), target))
    assert offenders == []
