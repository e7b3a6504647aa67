"""--help, `completion` and static completion must not import the kubernetes client nor urllib3 (nor ssl);
a request without a proxy imports neither urllib3 nor http.client (kubectl_vmmig/wire.py + http11.py).

Every TAB pays the start-up, so these paths may import click and our own light modules only. Each case runs
in a fresh interpreter and reports which heavy top-level packages ended up in sys.modules.
"""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEAVY = ("kubernetes", "urllib3", "yaml", "requests", "tabulate", "http", "email", "ssl")

PROBE = r"""
import contextlib, io, json, sys
from kubectl_vmmig.cli import main
from kubectl_vmmig.commands import completion
argv = json.loads(sys.argv[1])
out = io.StringIO()
with contextlib.redirect_stdout(out):
    if argv[0] == "kubectl_complete":
        completion.run_protocol(argv[1:])
    else:
        main(argv)
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[2])))
print(json.dumps({"heavy": heavy, "out": out.getvalue()}))
"""

CASES = [
    ["--help"],
    ["version", "--help"],
    ["completion", "--help"],
    ["completion", "bash"],
    ["completion", "zsh"],
    ["completion", "fish"],
    ["completion", "kubectl"],
    ["__complete", ""],
    ["__complete", "completion", ""],
    ["__complete", "version", "--"],
    ["__complete", "version", "-o", ""],
    ["__complete", "migrate", "--"],
    ["__complete", "status", "-"],
    ["__complete", "migrate", "--mode", ""],
    ["migrate", "--help"],
    ["status", "--help"],
    ["check", "--help"],
    ["cancel", "--help"],
    ["rollback", "--help"],
    ["kubectl_complete", ""],
    ["kubectl_complete", "version", "--kubeconfig", ""],
]


def probe(argv, **env_extra):
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("https_proxy", "http_proxy", "no_proxy")}
    env.update({"PYTHONPATH": REPO, "KUBECONFIG": os.devnull, **env_extra})
    res = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)], capture_output=True,
                         text=True, env=env, cwd=REPO, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.splitlines()[-1])


@pytest.mark.parametrize("argv", CASES, ids=[" ".join(a) or "''" for a in CASES])
def test_light_paths_import_no_kubernetes_nor_urllib3(argv):
    got = probe(argv)
    assert got["out"], "the command printed nothing: the probe did not exercise it"
    assert got["heavy"] == [], f"{argv} imported {got['heavy']}"


def test_probe_detects_heavy_imports():
    """The probe itself can fail: a command that talks to a server imports ssl - and not urllib3, which only a
    proxy needs, nor http.client (and the email package under it)."""
    got = probe(["version", "-s", "http://127.0.0.1:9", "--request-timeout", "1s"])
    assert got["heavy"] == ["ssl"], got


def test_a_proxy_brings_urllib3():
    got = probe(["version", "-s", "http://example.invalid:9", "--request-timeout", "1s"],
                HTTP_PROXY="http://127.0.0.1:9")
    assert "urllib3" in got["heavy"], got


def test_a_kubeconfig_in_kubectls_style_is_read_without_pyyaml(tmp_path):
    cfg = tmp_path / "config"
    cfg.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- cluster:\n"
                   "    server: http://127.0.0.1:9\n  name: s\ncontexts:\n- context:\n    cluster: s\n    user: u\n"
                   "    namespace: demo\n  name: c\nusers:\n- name: u\n  user:\n    token: t0ken\n")
    got = probe(["version", "--request-timeout", "1s"], KUBECONFIG=str(cfg))
    assert "ssl" in got["heavy"], got  # it did read the kubeconfig and try the server
    assert "yaml" not in got["heavy"], got
