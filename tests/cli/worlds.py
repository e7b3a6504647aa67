"""Object sets for the command tests: a KubeVirt-only cluster and one where MTC already ran a cutover."""
import copy
import json
from pathlib import Path

from tests.unit.vmshapes import pvc, sc, vm

MTC_FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "mtc"
KUBEVIRT_ONLY = ("kubevirt.io/v1", "cdi.kubevirt.io/v1beta1")
WITH_MTC = KUBEVIRT_ONLY + ("migration.openshift.io/v1alpha1",)


def kubevirt_cr(version="v1.6.2"):
    return {"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt", "metadata": {"name": "kubevirt", "namespace": "kubevirt"},
            "spec": {"configuration": {"vmRolloutStrategy": "LiveUpdate"},
                     "workloadUpdateStrategy": {"workloadUpdateMethods": ["LiveMigrate"]}},
            "status": {"observedKubeVirtVersion": version, "phase": "Deployed",
                       "observedDeploymentID": "a", "targetDeploymentID": "a"}}


def stopped_vm_world(kubevirt=True):
    """ns1/a: a stopped VM with one PVC disk on ``standard``; classes standard and fast."""
    objs = [vm("a", ns="ns1", pvcs=[("disk", "a-disk")], run_strategy="Halted"), pvc("a-disk", ns="ns1"),
            sc("standard"), sc("fast")]
    return objs + ([kubevirt_cr()] if kubevirt else [])


def _mtc(name):
    obj = json.loads((MTC_FIXTURES / f"status-{name}.json").read_text())
    obj.pop("_source", None)
    return obj


def mtc_finished_world(conditions):
    """MTC moved ns/vm-0 (disk pvc-0 -> pvc-0-mig-x7bq on fast) with the plugin's own plan and a MigMigration
    carrying ``conditions``; the VM already runs on the destination, so migrating it again re-attaches."""
    from kubectl_vmmig.engines.mtc import build as B

    plan_name = B.plan_name("ns")
    host = {"apiVersion": B.GROUP_VERSION, "kind": "MigCluster",
            "metadata": {"name": "host", "namespace": "openshift-migration"}, "spec": {"isHostCluster": True},
            "status": {"conditions": [{"type": "Ready", "status": "True", "category": "Required"}]}}
    plan = {"apiVersion": B.GROUP_VERSION, "kind": "MigPlan",
            "metadata": {"name": plan_name, "namespace": "openshift-migration", "labels": B.labels(plan_name)},
            "spec": {"namespaces": ["ns"], "liveMigrate": False, "persistentVolumes": [
                {"name": "pv-pvc-0", "storageClass": "standard",
                 "selection": {"action": "copy", "storageClass": "fast", "copyMethod": "filesystem"},
                 "pvc": {"name": "pvc-0:pvc-0-mig-x7bq", "namespace": "ns"}}]},
            "status": {"suffix": "x7bq", "conditions": [{"type": "Ready", "status": "True", "category": "Required"}]}}
    mig = _mtc("migmigration-cutover-running")
    mig["spec"]["migPlanRef"] = {"name": plan_name, "namespace": "openshift-migration"}
    mig["metadata"]["labels"] = B.labels(plan_name)
    mig["metadata"]["annotations"] = {B.REQUEST_ANNOTATION: json.dumps(
        {"type": "cutover", "targetStorageClass": "fast", "vms": ["vm-0"]})}
    mig["metadata"]["creationTimestamp"] = "2025-06-01T10:03:00Z"
    mig["status"]["conditions"] = copy.deepcopy(conditions)
    mig["status"]["phase"] = "Completed"
    the_vm = vm("vm-0", ns="ns", pvcs=[("rootdisk", "pvc-0-mig-x7bq")], run_strategy="Halted")
    return [host, plan, mig, _mtc("dvm-completed"), the_vm, pvc("pvc-0-mig-x7bq", ns="ns", sc_name="fast"),
            sc("standard"), sc("fast"), kubevirt_cr()]


def cond(ctype, category="Advisory", message=""):
    return {"type": ctype, "status": "True", "category": category, "message": message,
            "lastTransitionTime": "2025-06-01T10:09:00Z"}
