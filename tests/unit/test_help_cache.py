"""kubectl_vmmig/help_cache.py holds exactly what click prints, and launch.py serves it only where it applies.

The texts are rendered again here through click (scripts/gen_help_cache.py render_all): a help text, option or
command changed without `make help-cache` fails. Then the executable's entry point (launch.main) runs in fresh
interpreters: a cached --help prints click's own output without importing click; any other width or argument
list is click's as before.
"""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from kubectl_vmmig import launch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _generator():
    spec = importlib.util.spec_from_file_location("gen_help_cache", os.path.join(REPO, "scripts", "gen_help_cache.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_cached_text_is_what_click_prints_now():
    from kubectl_vmmig.help_cache import TEXTS

    gen = _generator()
    fresh = gen.render_all()
    assert set(TEXTS) == set(fresh), "run `make help-cache`"
    stale = [k for k in fresh if TEXTS[k] != fresh[k]]
    assert not stale, f"run `make help-cache`: {stale}"
    # every command and sub-command, for kubectl and oc
    assert {k[2] for k in TEXTS} >= {"", "migrate", "status", "completion", "completion bash"}
    assert TEXTS[("oc vm-storage", 78, "migrate")].startswith("Usage: oc vm-storage migrate")


PROBE = r"""
import contextlib, io, json, sys
sys.argv[0] = "kubectl-vm_storage"
from kubectl_vmmig.launch import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(json.loads(sys.argv[1]))
print(json.dumps({"code": code, "click": "click" in sys.modules, "out": out.getvalue()}))
"""

CLICK_PROBE = r"""
import contextlib, io, json, sys
sys.argv[0] = "kubectl-vm_storage"
from kubectl_vmmig.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(json.loads(sys.argv[1]))
print(json.dumps({"code": code, "out": out.getvalue()}))
"""


def _run(probe, argv, columns):
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "KUBECTL_PATH")}
    env.update(PYTHONPATH=REPO, KUBECTL_PATH="/usr/bin/kubectl")
    if columns is not None:
        env["COLUMNS"] = str(columns)
    res = subprocess.run([sys.executable, "-c", probe, json.dumps(argv)], capture_output=True, text=True, env=env,
                         stdin=subprocess.DEVNULL, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.splitlines()[-1])


@pytest.mark.parametrize("argv,columns,cached", [
    (["--help"], 80, True), (["--help"], None, True),  # not a terminal, no $COLUMNS: 80 as shutil says
    (["-h"], 200, True), (["migrate", "--help"], 110, True), (["completion", "bash", "-h"], 80, True),
    (["--help"], 60, False), (["status", "--help"], 95, False),      # widths not cached: click renders
    (["migrate", "vm1", "--help"], 80, False), (["version", "-v", "6", "--help"], 80, False),
])
def test_the_entry_point_prints_clicks_help_and_imports_click_only_when_not_cached(argv, columns, cached):
    got = _run(PROBE, argv, columns)
    want = _run(CLICK_PROBE, argv, columns)
    assert got["code"] == want["code"] == 0
    assert got["out"] == want["out"] and want["out"].startswith("Usage: kubectl vm-storage")
    assert got["click"] is not cached


def test_only_a_command_path_then_a_help_flag_is_answered_from_the_cache(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("KUBECTL_PATH", "/usr/bin/kubectl")
    assert launch.cached_help(["status", "--help"]).startswith("Usage: kubectl vm-storage status")
    for argv in ([], ["status"], ["status", "-w", "--help"], ["--kubeconfig", "x", "--help"], ["nosuch", "--help"],
                 ["--help", "status"]):
        assert launch.cached_help(argv) is None, argv
