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
