"""resources.Resource paths: one segment per namespace and name, refused as client-go refuses them
(apimachinery api/validation/path.IsValidPathSegmentName) before a request could address another object."""
import pytest

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R


def test_paths_of_core_group_and_named_group_kinds():
    assert R.PVC.path("ns1", "disk-0") == "/api/v1/namespaces/ns1/persistentvolumeclaims/disk-0"
    assert R.VM.path("ns1") == "/apis/kubevirt.io/v1/namespaces/ns1/virtualmachines"
    assert R.VM.path(None) == "/apis/kubevirt.io/v1/virtualmachines"
    assert R.VM.path("ns1", "vm.a", "status") == "/apis/kubevirt.io/v1/namespaces/ns1/virtualmachines/vm.a/status"
    assert R.VM.subresource_path("ns1", "vm1", "start") == (
        "/apis/subresources.kubevirt.io/v1/namespaces/ns1/virtualmachines/vm1/start")


@pytest.mark.parametrize("namespace,name,needle", [
    ("bad/ns", None, "invalid namespace 'bad/ns': may not contain '/'"),
    ("..", None, "invalid namespace '..': may not be '..'"),
    (".", "vm1", "invalid namespace '.': may not be '.'"),
    ("ns1", "a/b", "invalid resource name 'a/b': may not contain '/'"),
    ("ns1", "a%2f", "invalid resource name 'a%2f': may not contain '%'"),
    ("ns1", "%/", "may not contain '/' or may not contain '%'"),
])
def test_a_name_that_is_not_one_segment_is_bad_input(namespace, name, needle):
    for make in (lambda: R.VM.path(namespace, name), lambda: R.VM.subresource_path(namespace, name or "vm", "start")):
        with pytest.raises(errors.BadInput) as info:
            make()
        assert needle in str(info.value)
        assert info.value.exit_code == errors.BAD_INPUT
