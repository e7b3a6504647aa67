"""CDI's clone authorization (tests/sim/cdi_admission.py) through the real kube-apiserver: a PVC clone into the
source's own namespace needs no permission beyond creating the DataVolume (authorize_utils.go CanUserClonePVC);
from another namespace it needs create datavolumes/source or create pods there (getResourceAttributesPvc)."""
import uuid

import pytest

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R
from tests.cluster.rbac import Grants
from tests.conftest import make_namespace
from tests.sim import factories as F

pytestmark = pytest.mark.cluster


def _grant(kube, ns, user, group, resource):
    Grants(kube).rules(user, f"{user}-{resource.replace('/', '-')}",
                       [{"apiGroups": [group], "resources": [resource], "verbs": ["create"]}], ns)


@pytest.fixture
def spaces(cp, namespace):
    F.install_cdi(cp.admin)
    source = make_namespace(cp.admin, "clone-source")
    for ns in (source, namespace):
        F.apply(cp.admin, ns, F.make_pvc("golden", size="1Gi"))
    return source, namespace


def _as(cp, user):
    from kubectl_vmmig.kube import Kube
    from kubectl_vmmig.kubeconfig import ConnectionOptions

    return Kube.connect(ConnectionOptions(kubeconfig=cp.user_kubeconfig(user)))


@pytest.mark.parametrize("source_grant", [None, ("cdi.kubevirt.io", "datavolumes/source"), ("", "pods")],
                         ids=["no-grant", "datavolumes-source", "pods"])
def test_clone_authorization_follows_cdi(cp, spaces, source_grant):
    source, target = spaces
    user = f"cloner-{uuid.uuid4().hex[:6]}"
    _grant(cp.admin, target, user, "cdi.kubevirt.io", "datavolumes")  # what creating any DataVolume needs
    if source_grant:
        _grant(cp.admin, source, user, *source_grant)
    kube = _as(cp, user)
    # the source's own namespace: allowed whatever the grants (what the plugin's offline clones are)
    kube.create(R.DATAVOLUME, F.make_clone_dv("same-ns", "golden", target), target)
    cross = F.make_clone_dv("cross-ns", "golden", source)
    if source_grant is None:
        with pytest.raises(errors.Invalid) as info:
            kube.create(R.DATAVOLUME, cross, target)
        assert info.value.status == 422
        assert f"User {user} has insufficient permissions in clone source namespace {source}" in info.value.message
        assert cp.admin.get_or_none(R.DATAVOLUME, "cross-ns", target) is None
    else:
        kube.create(R.DATAVOLUME, cross, target)
        assert cp.admin.get(R.DATAVOLUME, "cross-ns", target)["spec"]["source"]["pvc"]["namespace"] == source
