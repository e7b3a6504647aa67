"""launch.py runs plain `version` (at most --client and -o) without click (commands/version_run.run_plain):
the same options, output, stderr and exit code as the click command, and no click imported."""
import json
import os
import subprocess
import sys

import pytest

from kubectl_vmmig import cli, errors, launch
from kubectl_vmmig.commands import version_run

from .test_help_cache import PROBE  # launch.main(argv) in a fresh interpreter: its code, output, click imported?

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAIN = [[], ["--client"], ["-o", "json"], ["--output", "yaml"], ["--output=text"], ["--client", "-o", "json"],
         ["-o", "yaml", "--client"]]
NOT_PLAIN = [["-n", "demo"], ["--client", "--client"], ["-o", "xml"], ["-o"], ["-ojson"], ["-o=json"],
             ["-o", "json", "-o", "yaml"], ["--client=true"], ["-v", "6"], ["--kubeconfig", "x"], ["--help"],
             ["extra"], ["--", "--client"]]


@pytest.mark.parametrize("rest", PLAIN, ids=[" ".join(r) or "version" for r in PLAIN])
def test_plain_forms_are_read(rest):
    client_only, output = version_run.plain_flags(rest)
    assert client_only == ("--client" in rest)
    assert output == next((r.partition("=")[2] or rest[i + 1] for i, r in enumerate(rest)
                           if r in ("-o", "--output") or r.startswith("--output=")), "text")


@pytest.mark.parametrize("rest", NOT_PLAIN, ids=" ".join)
def test_anything_else_goes_to_click(rest):
    assert version_run.plain_flags(rest) is None
    assert version_run.run_plain(rest) is None


ORIGINAL = version_run.VersionOptions


def _captured(monkeypatch, call):
    seen = []

    class Capture(ORIGINAL):
        def __init__(self, conn, client_only, output, streams=None):
            seen.append((conn, client_only, output))
            super().__init__(conn, client_only, output, streams)

    monkeypatch.setattr(version_run, "VersionOptions", Capture)
    import kubectl_vmmig.commands.version as click_version

    monkeypatch.setattr(click_version, "VersionOptions", Capture)
    call()
    return seen


@pytest.mark.parametrize("rest", PLAIN, ids=[" ".join(r) or "version" for r in PLAIN])
def test_both_paths_build_the_same_options(rest, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    by_click = _captured(monkeypatch, lambda: cli.main(["version", *rest]))
    plain = _captured(monkeypatch, lambda: version_run.run_plain(rest))
    assert len(by_click) == 1 and by_click == plain  # ConnectionOptions compares field by field


@pytest.mark.parametrize("rest,kubeconfig", [([], "none"), (["-o", "json"], "none"), (["--client", "-o", "yaml"], "none"),
                                             ([], "broken")])
def test_both_paths_print_and_exit_alike(rest, kubeconfig, monkeypatch, tmp_path, capsys):
    (tmp_path / "broken").write_text("clusters: [unclosed\n")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / kubeconfig))
    by_click = (cli.main(["version", *rest]), *capsys.readouterr())
    plain = (launch.main(["version", *rest]), *capsys.readouterr())
    assert plain == by_click
    if "--client" not in rest:
        assert by_click[0] == errors.BAD_INPUT and by_click[2].startswith("error: ")  # the failing side is covered
    assert by_click[1].startswith("Client Version") or "clientVersion" in by_click[1]


@pytest.mark.parametrize("argv,click_imported", [(["version", "--client"], False), (["version", "-o", "json", "--client"], False),
                                                 (["version", "--client", "-v", "1"], True)])
def test_plain_version_imports_no_click(argv, click_imported):
    res = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True, text=True, cwd=REPO,
                         env=dict(os.environ, PYTHONPATH=REPO, KUBECONFIG=os.devnull), timeout=60)
    got = json.loads(res.stdout.splitlines()[-1])
    assert got["code"] == 0 and "0." in got["out"], res.stdout + res.stderr
    assert got["click"] is click_imported
