"""kubeconfig merge and flag overrides, the way kubectl resolves them."""
import base64

import pytest
import yaml

from kubectl_vmmig import errors
from kubectl_vmmig.kubeconfig import ConnectionOptions, parse_timeout, resolve_access


def write(path, current=None, clusters=(), users=(), contexts=()):
    data = {"apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": n, "cluster": c} for n, c in clusters],
            "users": [{"name": n, "user": u} for n, u in users],
            "contexts": [{"name": n, "context": c} for n, c in contexts]}
    if current:
        data["current-context"] = current
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture
def two_files(tmp_path):
    (tmp_path / "ca.crt").write_text("a CA file must exist (clientcmd validateClusterInfo)\n")
    a = write(tmp_path / "a", current="one",
              clusters=[("c1", {"server": "https://one:6443", "certificate-authority": "ca.crt"})],
              users=[("u1", {"token": "t1"})],
              contexts=[("one", {"cluster": "c1", "user": "u1", "namespace": "ns1"})])
    b = write(tmp_path / "b", current="two",
              clusters=[("c1", {"server": "https://shadowed:1"}), ("c2", {"server": "two:443"})],
              users=[("u2", {"client-certificate-data": base64.b64encode(b"CERT").decode(),
                             "client-key-data": base64.b64encode(b"KEY").decode()})],
              contexts=[("two", {"cluster": "c2", "user": "u2"})])
    return a, b


def test_first_file_wins_and_sets_current_context(two_files, monkeypatch):
    a, b = two_files
    monkeypatch.setenv("KUBECONFIG", f"{a}:{b}")
    acc = resolve_access(ConnectionOptions())
    assert acc.server == "https://one:6443"          # c1 from the first file, not the shadowing one
    assert acc.namespace == "ns1" and not acc.namespace_explicit
    assert acc.token == "t1"
    assert acc.ca_file.endswith("/ca.crt")             # relative paths resolve against the file's folder


def test_context_flag_picks_entries_from_second_file(two_files, monkeypatch):
    a, b = two_files
    monkeypatch.setenv("KUBECONFIG", f"{a}:{b}")
    acc = resolve_access(ConnectionOptions(context="two", namespace="x"))
    assert acc.server == "https://two:443"             # scheme added like kubectl
    assert acc.client_cert_data == b"CERT" and acc.client_key_data == b"KEY"
    assert acc.namespace == "x" and acc.namespace_explicit


def test_flag_overrides(two_files, monkeypatch):
    a, _ = two_files
    monkeypatch.setenv("KUBECONFIG", a)
    acc = resolve_access(ConnectionOptions(server="https://other:1", token="tok", as_user="bob",
                                           as_groups=("g1", "g2"), as_uid="42", insecure_skip_tls_verify=True,
                                           tls_server_name="api.example", request_timeout="1m30s"))
    assert acc.server == "https://other:1" and acc.token == "tok"
    assert acc.impersonate_user == "bob" and acc.impersonate_groups == ("g1", "g2") and acc.impersonate_uid == "42"
    assert acc.insecure and acc.tls_server_name == "api.example" and acc.timeout == 90


@pytest.mark.parametrize("opts, text", [
    (ConnectionOptions(context="nope"), "context 'nope' not found"),
    (ConnectionOptions(cluster="nope"), "cluster 'nope' not found"),
    (ConnectionOptions(user="nope"), "user 'nope' not found"),
    (ConnectionOptions(as_groups=("g",)), "--as-group/--as-uid need --as"),
    (ConnectionOptions(request_timeout="soon"), "invalid --request-timeout"),
])
def test_bad_connection_input(two_files, monkeypatch, opts, text):
    monkeypatch.setenv("KUBECONFIG", two_files[0])
    with pytest.raises(errors.BadInput) as info:
        resolve_access(opts)
    assert text in info.value.line()
    assert "\n" not in info.value.line()
    assert info.value.exit_code == errors.BAD_INPUT


def test_missing_and_malformed_kubeconfig(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(errors.BadInput, match="no cluster configured"):
        resolve_access(ConnectionOptions())
    with pytest.raises(errors.BadInput, match="does not exist"):
        resolve_access(ConnectionOptions(kubeconfig=str(tmp_path / "absent")))
    bad = tmp_path / "bad"
    bad.write_text("clusters: [unclosed\n")
    with pytest.raises(errors.BadInput, match="not valid YAML"):
        resolve_access(ConnectionOptions(kubeconfig=str(bad)))
    bad.write_text("- just\n- a list\n")
    with pytest.raises(errors.BadInput, match="not a kubeconfig"):
        resolve_access(ConnectionOptions(kubeconfig=str(bad)))


@pytest.mark.parametrize("text, seconds", [("0", None), ("", None), ("5", 5.0), ("30s", 30.0), ("2m", 120.0),
                                           ("1h", 3600.0), ("250ms", 0.25), ("1m30s", 90.0), ("1ns", 1e-9),
                                           ("1.5h", 5400.0), ("10us", 1e-5), ("2\u00b5s", 2e-6), ("+5s", 5.0),
                                           ("-5s", None), ("0s", None), ("+5", 5.0), ("-0", None), ("007", 7.0)])
def test_parse_timeout(text, seconds):
    """client-go clientcmd.ParseTimeout: strconv.ParseInt seconds, else time.ParseDuration."""
    assert parse_timeout(text) == pytest.approx(seconds) if seconds else parse_timeout(text) is None


@pytest.mark.parametrize("text", ["1.5", "-1", "abc", "5x", "1m30", "s", "1 s", "0x10"])
def test_parse_timeout_refuses_what_kubectl_refuses(text):
    with pytest.raises(errors.BadInput, match="invalid --request-timeout"):
        parse_timeout(text)
