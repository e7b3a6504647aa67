"""The foundation against the real kube-apiserver: CRDs really installed, RBAC, the plugin through kubectl."""
import json
import re

import pytest

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R
from tests.cluster.controlplane import ADMIN_TOKEN, ALICE_TOKEN

pytestmark = pytest.mark.cluster


def test_plugin_version_through_real_kubectl(cp, kubectl):
    out = kubectl("vm-storage", "version", "--kubeconfig", cp.admin_kubeconfig)
    assert out.returncode == 0, out.stderr
    assert re.search(r"^Client Version: \d+\.\d+\.\d+", out.stdout, re.M)
    server = cp.admin.server_version()["gitVersion"]
    assert server.startswith("v1.")
    assert f"Server Version: {server}" in out.stdout


def test_version_says_when_server_unreachable(cp, kubectl, tmp_path):
    out = kubectl("vm-storage", "version", "--server", "https://127.0.0.1:1", "--insecure-skip-tls-verify",
                  "--request-timeout", "2s")
    # As kubectl version: the client version, then the error and a failure exit (the plugin's API-error code).
    assert out.returncode == errors.API_ERROR, (out.returncode, out.stdout, out.stderr)
    assert re.search(r"^Client Version: \d+\.\d+\.\d+", out.stdout, re.M)
    assert "cannot reach the API server" in out.stderr


def test_crd_schema_is_enforced(cp, namespace):
    plan = {"apiVersion": "migration.openshift.io/v1alpha1", "kind": "MigPlan",
            "metadata": {"name": "bad-plan", "namespace": "openshift-migration"},
            "spec": {"namespaces": [namespace],
                     "persistentVolumes": [{"name": "pv1", "pvc": {"name": "a:b", "namespace": namespace},
                                            "supported": {"actions": ["copy"], "copyMethods": ["filesystem"]}}]}}
    with pytest.raises(errors.Invalid) as info:
        cp.admin.create(R.MIGPLAN, plan)
    assert info.value.status == 422
    assert "selection" in info.value.message


def test_kubevirt_crds_as_virt_operator_installs_them(cp, kubectl):
    out = kubectl("api-resources", "--api-group=kubevirt.io", "-o", "wide")
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("virtualmachines "))
    assert "vm,vms" in line
    crd = cp.admin.get(R.CRD, "virtualmachineinstances.kubevirt.io")
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1", "v1alpha3"]
    assert "subresources" not in crd["spec"]["versions"][0]
    assert cp.admin.get(R.CRD, "virtualmachines.kubevirt.io")["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_cluster_basics_present(cp):
    scs = {sc["metadata"]["name"] for sc in cp.admin.items(R.STORAGECLASS)}
    assert {"standard", "fast", "slow"} <= scs
    assert len(cp.admin.items(R.NODE)) >= 2


def test_no_rights_user_and_impersonation_get_403(cp, kubectl, namespace):
    # user nobody, not alice: tests running in parallel bind alice to cluster-scoped roles for their own runs
    # (controlplane.NOBODY_TOKEN), and a CI run once saw alice list VMs here while one of them held such a grant
    as_nobody = kubectl("get", "vm", "-n", namespace, kubeconfig=cp.nobody_kubeconfig)
    assert as_nobody.returncode != 0 and "forbidden" in as_nobody.stderr.lower()
    impersonated = kubectl("get", "vm", "-n", namespace, "--as", "nobody")
    assert impersonated.returncode != 0 and "forbidden" in impersonated.stderr.lower()
    admin = kubectl("get", "vm", "-n", namespace)
    assert admin.returncode == 0, admin.stderr

    # The plugin's own client sends the same impersonation and gets the same answer.
    from kubectl_vmmig.kube import Kube
    from kubectl_vmmig.kubeconfig import ConnectionOptions

    for opts in (ConnectionOptions(kubeconfig=cp.nobody_kubeconfig),
                 ConnectionOptions(kubeconfig=cp.admin_kubeconfig, as_user="nobody"),
                 ConnectionOptions(kubeconfig=cp.admin_kubeconfig, as_user="nobody", as_groups=("g1", "g2"))):
        with pytest.raises(errors.Forbidden) as info:
            Kube.connect(opts).items(R.VM, namespace)
        assert info.value.status == 403
        assert "nobody" in info.value.message
        assert info.value.exit_code == errors.FORBIDDEN


def test_impersonated_groups_are_sent_one_header_each(cp, namespace):
    """Grant a group, impersonate two groups: only separate Impersonate-Group headers make this work."""
    from kubectl_vmmig.kube import Kube
    from kubectl_vmmig.kubeconfig import ConnectionOptions

    rb = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
          "metadata": {"name": "viewers", "namespace": namespace},
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "vm-viewer"},
          "subjects": [{"kind": "Group", "name": "vm-viewers", "apiGroup": "rbac.authorization.k8s.io"}]}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "vm-viewer"},
            "rules": [{"apiGroups": ["kubevirt.io"], "resources": ["virtualmachines"], "verbs": ["list"]}]}
    for body, path in ((role, "/apis/rbac.authorization.k8s.io/v1/clusterroles"),
                       (rb, f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings")):
        try:
            cp.admin.request("POST", path, body=body)
        except errors.Conflict:
            pass
    kube = Kube.connect(ConnectionOptions(kubeconfig=cp.admin_kubeconfig, as_user="bob",
                                          as_groups=("other", "vm-viewers")))
    assert kube.items(R.VM, namespace) == []


def test_request_log_at_v6_has_no_token(cp, kubectl):
    out = kubectl("vm-storage", "version", "-v", "6", "--kubeconfig", cp.admin_kubeconfig)
    assert out.returncode == 0, out.stderr
    lines = [l for l in out.stderr.splitlines() if " GET " in l]
    assert len(lines) == 1, out.stderr
    assert re.search(r"GET https://127\.0\.0\.1:\d+/version 200 OK in \d+ milliseconds", lines[0])
    assert ADMIN_TOKEN not in out.stderr and ADMIN_TOKEN not in out.stdout
    # kubectl's own -v=6 spelling works as well
    out = kubectl("vm-storage", "version", "-v=6", "--token", ALICE_TOKEN, "--kubeconfig", cp.admin_kubeconfig)
    assert "/version" in out.stderr and ALICE_TOKEN not in out.stderr + out.stdout


def test_kubeconfig_list_is_merged(cp, kubectl, tmp_path):
    """KUBECONFIG=a:b: contexts from the second file, current-context from the first that sets it."""
    import yaml

    with open(cp.admin_kubeconfig) as fh:
        full = yaml.safe_load(fh)
    first = {"apiVersion": "v1", "kind": "Config", "current-context": "admin", "clusters": [], "users": [],
             "contexts": []}
    (tmp_path / "a").write_text(yaml.safe_dump(first))
    (tmp_path / "b").write_text(yaml.safe_dump(dict(full, **{"current-context": "nope"})))
    out = kubectl("vm-storage", "version", "-o", "json",
                  env={"KUBECONFIG": f"{tmp_path / 'a'}:{tmp_path / 'b'}"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["serverVersion"]["gitVersion"].startswith("v1.")
