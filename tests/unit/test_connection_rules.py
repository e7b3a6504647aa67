"""Pure connection rules without a cluster: Go's proxy selection, exec plugin answers and modes, the
kubeconfig validations kubectl applies (clientcmd), URL userinfo never kept."""
import json

import pytest
import yaml

from kubectl_vmmig import errors, execcred
from kubectl_vmmig.kubeconfig import ClusterAccess, ConnectionOptions, resolve_access, split_userinfo
from kubectl_vmmig.transport import _no_proxy_match, env_proxy

V1 = "client.authentication.k8s.io/v1"


@pytest.mark.parametrize("host, port, no_proxy, match", [
    ("kubernetes", 443, "kubernetes", True), ("a.foo.com", 443, "foo.com", True), ("foo.com", 443, ".foo.com", False),
    ("a.foo.com", 443, "*.foo.com", True), ("10.1.2.3", 443, "10.0.0.0/8", True), ("10.1.2.3", 443, "10.1.2.3", True),
    ("kubernetes", 443, "kubernetes:80", False), ("kubernetes", 443, "kubernetes:443", True), ("x", 1, "*", True),
    ("::1", 443, "[::1]:443", True), ("barfoo.com", 443, "foo.com", False), ("k", 443, " , ,", False)])
def test_no_proxy_rules_of_go_httpproxy(host, port, no_proxy, match):
    assert _no_proxy_match(host, port, no_proxy) is match


def test_env_proxy_scheme_loopback_and_bare_host(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://p:1")
    assert env_proxy("https://api.example:6443") is None          # HTTP_PROXY is for http:// only
    assert env_proxy("http://api.example:8080") == "http://p:1"
    monkeypatch.setenv("https_proxy", "p:3128")
    assert env_proxy("https://api.example:6443") == "http://p:3128"  # a bare host:port means http
    assert env_proxy("https://127.0.0.1:6443") is None and env_proxy("https://localhost:6443") is None
    monkeypatch.setenv("NO_PROXY", "example")
    assert env_proxy("https://api.example:6443") is None


def test_userinfo_is_split_off():
    assert split_userinfo("https://u:p%40ss@h:1/x") == ("https://h:1/x", True)
    assert split_userinfo("https://h:1") == ("https://h:1", False)


@pytest.mark.parametrize("mode, tty, want", [("Never", True, False), ("IfAvailable", False, False),
                                             ("IfAvailable", True, True), ("Always", True, True)])
def test_exec_interactive_modes(mode, tty, want):
    assert execcred.interactive(mode, tty) is want


def test_exec_always_needs_a_terminal():
    with pytest.raises(execcred.ExecFailed, match="standard input is not a terminal"):
        execcred.interactive("Always", False)


@pytest.mark.parametrize("out, text", [
    ("not json {", "not JSON"), ('{"kind": "Pod"}', "not an ExecCredential"),
    ('{"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1beta1", "status": {"token": "s3"}}',
     "plugin returned version client.authentication.k8s.io/v1beta1"),
    ('{"kind": "ExecCredential", "apiVersion": "%s"}' % V1, "didn't return a status"),
    ('{"kind": "ExecCredential", "apiVersion": "%s", "status": {}}' % V1, "didn't return a token"),
    ('{"kind": "ExecCredential", "apiVersion": "%s", "status": {"clientKeyData": "k"}}' % V1, "only certificate or key")])
def test_exec_answers_refused_without_quoting_them(out, text):
    with pytest.raises(execcred.ExecFailed) as info:
        execcred.parse_output(out, V1)
    assert text in info.value.line() and "s3" not in info.value.line()


def test_exec_expiry():
    cred = execcred.parse_output(json.dumps({"kind": "ExecCredential", "apiVersion": V1, "status": {
        "token": "t", "expirationTimestamp": "2030-01-01T00:00:00Z"}}), V1)
    assert not execcred.expired(cred, now=cred["expiry"] - 1) and execcred.expired(cred, now=cred["expiry"] + 1)
    assert not execcred.expired(dict(cred, expiry=None)) and execcred.expired(None)


def test_exec_cluster_info_carries_config_null():
    acc = ClusterAccess(server="https://h:1", tls_server_name="k")
    assert execcred.cluster_info(acc, b"PEM") == {"server": "https://h:1", "tls-server-name": "k",
                                                  "certificate-authority-data": "UEVN", "config": None}


def write(tmp_path, cluster=None, user=None, **top):
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
           "clusters": [{"name": "s", "cluster": cluster or {"server": "https://h:1"}}],
           "users": [{"name": "u", "user": user if user is not None else {"token": "t"}}],
           "contexts": [{"name": "c", "context": {"cluster": "s", "user": "u"}}]}
    cfg.update(top)
    path = tmp_path / "kc"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_flags_replace_kubeconfig_tls_settings(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    kc = write(tmp_path, {"server": "https://h:1", "insecure-skip-tls-verify": True, "tls-server-name": "k"})
    acc = resolve_access(ConnectionOptions(kubeconfig=kc, certificate_authority=str(ca), server="https://o:2"))
    assert not acc.insecure and acc.ca_file == str(ca) and acc.tls_server_name is None
    kc = write(tmp_path, {"server": "https://h:1", "certificate-authority": str(ca)})
    acc = resolve_access(ConnectionOptions(kubeconfig=kc, insecure_skip_tls_verify=True))
    assert acc.insecure and acc.ca_file is None


def test_exec_command_resolved_against_the_kubeconfig_folder(tmp_path):
    kc = write(tmp_path, user={"exec": {"apiVersion": V1, "command": "./bin/c", "interactiveMode": "Never"}})
    acc = resolve_access(ConnectionOptions(kubeconfig=kc))
    assert acc.exec_config["command"] == str(tmp_path / "bin" / "c")
    kc = write(tmp_path, user={"exec": {"apiVersion": V1.replace("v1", "v1beta1"), "command": "c"}})
    assert resolve_access(ConnectionOptions(kubeconfig=kc)).exec_config["interactiveMode"] == "IfAvailable"


@pytest.mark.parametrize("kw, text", [
    ({"user": {"token": "t", "username": "a"}}, "more than one authentication method"),
    ({"user": {"exec": {"apiVersion": V1, "command": "c"}}}, "interactiveMode must be specified"),
    ({"cluster": {"server": "https://h:1", "proxy-url": "ftp://p"}}, "unsupported scheme 'ftp'"),
    ({"cluster": {"server": "https://h:1", "certificate-authority-data": "eA==", "insecure-skip-tls-verify": True}},
     "insecure flag is not allowed"),
    ({"kind": "Pod"}, "not a kubeconfig"),
    ({"users": [{"name": "u", "user": {}}, {"name": "u", "user": {"token": "secret-1"}}]}, "duplicate user name 'u'")])
def test_kubectl_validations(tmp_path, kw, text):
    with pytest.raises(errors.BadInput) as info:
        resolve_access(ConnectionOptions(kubeconfig=write(tmp_path, **kw)))
    assert text in info.value.line() and "secret-1" not in info.value.line()


def test_server_userinfo_is_dropped(tmp_path):
    acc = resolve_access(ConnectionOptions(kubeconfig=write(tmp_path, {"server": "https://u:pw@h:1"})))
    assert acc.server == "https://h:1"
