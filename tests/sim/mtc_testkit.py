"""Helpers for the mig-controller stand-in tests: objects as a user / the MTC console creates them, and
a minimal KubeVirt double (launcher pods, VMI, a VMIM per volume update) so these tests do not depend on
the full KubeVirt stand-in (tests/sim/kubevirt.py, tested on its own)."""
import copy
import json
import os
from typing import List, Optional

from kubectl_vmmig import resources as R

from .common import MTC_NAMESPACE, create_or_get, delete_any, get_condition, make_bound_pvc, now, owner_ref, set_faults
from .mtc_workloads import launcher_vm, vm_volume_claims

SAMPLES = "/work/shared/reference/mtc/samples"


def sample(name: str) -> dict:
    """A reference sample (JSON or YAML), without its ``_source`` note; None when the workspace lacks it."""
    path = os.path.join(SAMPLES, name)
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        if name.endswith(".json"):
            data = json.load(fh)
        else:
            import yaml
            data = yaml.safe_load(fh)
    data.pop("_source", None)
    return data


def make_vm(kube, ns: str, name: str, claims: List[str], running: bool = True, dv_template: Optional[str] = None,
            storage_class: str = "standard") -> dict:
    """A VM whose disks are plain PVCs (created bound) and optionally one dataVolumeTemplate disk."""
    vols, disks, templates = [], [], []
    for i, c in enumerate(claims):
        make_bound_pvc(kube, ns, c, storage_class)
        vols.append({"name": f"disk{i}", "persistentVolumeClaim": {"claimName": c}})
        disks.append({"name": f"disk{i}", "disk": {"bus": "virtio"}})
    if dv_template:
        templates.append({"metadata": {"name": dv_template},
                          "spec": {"source": {"blank": {}}, "storage": {
                              "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": storage_class}}})
        vols.append({"name": "rootdisk", "dataVolume": {"name": dv_template}})
        disks.append({"name": "rootdisk", "disk": {"bus": "virtio"}})
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name, "namespace": ns},
          "spec": {"runStrategy": "Always" if running else "Halted", "dataVolumeTemplates": templates,
                   "template": {"spec": {"domain": {"devices": {"disks": disks}, "memory": {"guest": "1Gi"}},
                                         "volumes": vols}}}}
    vm = create_or_get(kube, R.VM, vm, ns)
    if dv_template:  # the DV/PVC the VM controller + CDI would create
        pvc = make_bound_pvc(kube, ns, dv_template, storage_class)
        dv = create_or_get(kube, R.DATAVOLUME, {
            "apiVersion": R.DATAVOLUME.api_version, "kind": "DataVolume",
            "metadata": {"name": dv_template, "namespace": ns, "ownerReferences": [owner_ref(vm)]},
            "spec": templates[0]["spec"]}, ns)
        kube.patch(R.PVC, dv_template, {"metadata": {"ownerReferences": [owner_ref(dv)]}}, ns)
        del pvc
    return vm


def make_hostpath_pvc(kube, ns: str, name: str, storage_class: str = "standard") -> dict:
    """A PVC bound to a statically provisioned ``hostPath`` PV (mig-controller can only skip it)."""
    pv_name = f"hostpath-{ns}-{name}"[:63]
    create_or_get(kube, R.PV, {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                 "storageClassName": storage_class, "persistentVolumeReclaimPolicy": "Retain",
                 "hostPath": {"path": f"/var/lib/sim-hostpath/{pv_name}"},
                 "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": ns, "name": name}}})
    pvc = create_or_get(kube, R.PVC, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": ns},
        "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem", "storageClassName": storage_class,
                 "volumeName": pv_name, "resources": {"requests": {"storage": "1Gi"}}}}, ns)
    from .common import bind_pvc
    return bind_pvc(kube, pvc)


def make_vmim(kube, ns: str, name: str, vm: str, phase: str, migration_state: Optional[dict] = None) -> dict:
    """A VirtualMachineInstanceMigration with the given status, as KubeVirt leaves it."""
    m = kube.create(R.VMIM, {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
                             "metadata": {"name": name, "namespace": ns}, "spec": {"vmiName": vm}}, ns)
    status = {"phase": phase, "phaseTransitionTimestamps": [{"phase": phase, "phaseTransitionTimestamp": now()}]}
    if migration_state is not None:
        status["migrationState"] = migration_state
    return kube.patch(R.VMIM, m["metadata"]["name"], {"status": status}, ns, subresource="status")


def make_plan(kube, ns: str, name: str, live: bool) -> dict:
    """samples/vm-storage-migplan.yaml as the plugin/console writes it (controller fields stripped)."""
    body = sample("vm-storage-migplan.yaml") or {"spec": {}}
    body = {"apiVersion": R.MIGPLAN.api_version, "kind": "MigPlan",
            "metadata": {"name": name, "namespace": MTC_NAMESPACE},
            "spec": {"srcMigClusterRef": body["spec"].get("srcMigClusterRef") or {"name": "host", "namespace": MTC_NAMESPACE},
                     "destMigClusterRef": body["spec"].get("destMigClusterRef") or {"name": "host", "namespace": MTC_NAMESPACE},
                     "namespaces": [ns], "liveMigrate": live}}
    return kube.create(R.MIGPLAN, body, MTC_NAMESPACE)


def select_all(kube, plan_name: str, storage_class: str = "fast", skip=()) -> dict:
    plan = kube.get(R.MIGPLAN, plan_name, MTC_NAMESPACE)
    pvs = copy.deepcopy(plan["spec"]["persistentVolumes"])
    for pv in pvs:
        src = pv["pvc"]["name"].split(":")[0]
        pv["selection"]["action"] = "skip" if src in skip else "copy"
        pv["selection"]["storageClass"] = storage_class
    return kube.patch(R.MIGPLAN, plan_name, {"spec": {"persistentVolumes": pvs}}, MTC_NAMESPACE)


def make_migration(kube, plan_name: str, kind: str, name: Optional[str] = None) -> dict:
    """samples/vm-storage-migmigration-<kind>.yaml (cutover|stage|rollback) pointed at ``plan_name``."""
    body = sample(f"vm-storage-migmigration-{kind}.yaml")
    body["spec"]["migPlanRef"]["name"] = plan_name
    if name:
        body["metadata"] = {"name": name, "namespace": MTC_NAMESPACE}
    return kube.create(R.MIGMIGRATION, body, MTC_NAMESPACE)


class FakeKubeVirt:
    """Launcher pod + VMI per running VM; Halted removes them; a claim change under
    updateVolumesStrategy Migration yields a VMIM Running → Succeeded (or Failed with ``fail_live``)."""

    def __init__(self, kube, ns: str, fail_live: bool = False, manual_vmims: bool = False):
        self.kube, self.ns, self.fail_live = kube, ns, fail_live
        self.manual_vmims = manual_vmims  # the test writes the VMIMs itself (names, phases, order)
        self.vmims_seen = []

    @staticmethod
    def _started(vmim):
        ts = (vmim.get("status") or {}).get("phaseTransitionTimestamps") or []
        return ts[0]["phaseTransitionTimestamp"] if ts else now()

    def _pods(self, vm_name):
        return [p for p in self.kube.items(R.POD, self.ns)
                if launcher_vm(p) == vm_name and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]

    def _launch(self, vm, vmi):
        claims = vm_volume_claims(vm)
        pod = self.kube.create(R.POD, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": f"virt-launcher-{vm['metadata']['name']}-", "namespace": self.ns,
                         "labels": {"kubevirt.io": "virt-launcher"}, "ownerReferences": [owner_ref(vmi)]},
            "spec": {"containers": [{"name": "compute", "image": "virt-launcher"}],
                     "volumes": [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
                                 for i, c in enumerate(claims)]}}, self.ns)
        self.kube.patch(R.POD, pod["metadata"]["name"], {"status": {"phase": "Running"}}, self.ns,
                        subresource="status")

    def step(self):
        for vm in self.kube.items(R.VM, self.ns):
            name = vm["metadata"]["name"]
            pods = self._pods(name)
            vmi = self.kube.get_or_none(R.VMI, name, self.ns)
            if vm["spec"].get("runStrategy") == "Halted":
                for p in pods:
                    delete_any(self.kube, R.POD, p["metadata"]["name"], self.ns)
                if vmi:
                    delete_any(self.kube, R.VMI, name, self.ns)
                continue
            if not vmi:
                vmi = self.kube.create(R.VMI, {
                    "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                    "metadata": {"name": name, "namespace": self.ns, "ownerReferences": [owner_ref(vm)]},
                    "spec": vm["spec"]["template"]["spec"], "status": {"phase": "Running"}}, self.ns)
            if not pods:
                self._launch(vm, vmi)
                continue
            claims = set(vm_volume_claims(vm))
            pod_claims = {v["persistentVolumeClaim"]["claimName"] for v in pods[0]["spec"]["volumes"]}
            if self.manual_vmims or claims == pod_claims or vm["spec"].get("updateVolumesStrategy") != "Migration":
                continue
            vmims = [m for m in self.kube.items(R.VMIM, self.ns) if m["spec"].get("vmiName") == name
                     and (m.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
            if not vmims:
                m = self.kube.create(R.VMIM, {
                    "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
                    "metadata": {"generateName": "kubevirt-workload-update-", "namespace": self.ns,
                                 "labels": {"kubevirt.io/volume-update-migration": name}},
                    "spec": {"vmiName": name}}, self.ns)
                # KubeVirt writes the VMIM's status.migrationState only when the migration ends (as the
                # KubeVirt stand-in, tests/sim/kubevirt_migration.py); while copying only phase + timestamps.
                self.kube.patch(R.VMIM, m["metadata"]["name"], {"status": {
                    "phase": "Running", "phaseTransitionTimestamps": [
                        {"phase": "Running", "phaseTransitionTimestamp": now()}]}}, self.ns, subresource="status")
                self.vmims_seen.append(m["metadata"]["name"])
                continue
            m = vmims[0]
            if self.fail_live:
                self.kube.patch(R.VMIM, m["metadata"]["name"], {"status": {"phase": "Failed", "migrationState": {
                    "startTimestamp": self._started(m), "endTimestamp": now(), "failed": True, "completed": True,
                    "failureReason": "sim: live migration failed"}}}, self.ns, subresource="status")
                continue
            self.kube.patch(R.VMIM, m["metadata"]["name"], {"status": {"phase": "Succeeded", "migrationState": {
                "startTimestamp": self._started(m), "endTimestamp": now(), "completed": True}}}, self.ns,
                subresource="status")
            for p in pods:  # the source launcher pod completes; the target pod runs with the new claims
                self.kube.patch(R.POD, p["metadata"]["name"], {"status": {"phase": "Succeeded"}}, self.ns,
                                subresource="status")
            self._launch(vm, vmi)


class Env:
    """One hand-stepped test namespace: the mig-controller stand-in scoped to it plus FakeKubeVirt."""

    def __init__(self, kube, ns, fail_live=False, manual_vmims=False):
        self.kube, self.ns = kube, ns
        from .mtc import MigController
        from .mtc_plan import install_mtc
        install_mtc(kube)
        self.mtc = MigController(kube, namespaces=[ns])
        self.kv = FakeKubeVirt(kube, ns, fail_live=fail_live, manual_vmims=manual_vmims)
        self.seen = []  # (migration phase, Running message, VM annotations) per step

    def step(self, mig_name=None):
        self.kv.step()
        self.mtc.step()
        if mig_name:
            m = self.mig(mig_name)
            run = get_condition(m, "Running") or {}
            self.seen.append({"phase": (m.get("status") or {}).get("phase"), "running": run.get("message"),
                              "pipeline": (m.get("status") or {}).get("pipeline"),
                              "vms": {v["metadata"]["name"]: dict(v["metadata"].get("annotations") or {})
                                      for v in self.kube.items(R.VM, self.ns)}})

    def n(self, name):
        """MTC objects share openshift-migration across tests: make names unique per test namespace."""
        return name if name.endswith("-" + self.ns) else f"{name}-{self.ns}"

    def mig(self, name):
        return self.kube.get(R.MIGMIGRATION, self.n(name), MTC_NAMESPACE)

    def plan(self, name):
        return self.kube.get(R.MIGPLAN, self.n(name), MTC_NAMESPACE)

    def until(self, pred, mig_name=None, max_steps=200):
        for _ in range(max_steps):
            if pred():
                return
            self.step(mig_name)
        assert pred(), "not reached"

    def ready_plan(self, name, live, skip=()):
        name = self.n(name)
        make_plan(self.kube, self.ns, name, live)
        self.until(lambda: get_condition(self.plan(name), "PvsDiscovered"))
        select_all(self.kube, name, "fast", skip=skip)
        self.until(lambda: get_condition(self.plan(name), "Ready")
                   and all(pv["selection"]["storageClass"] == "fast" for pv in self.plan(name)["spec"]["persistentVolumes"]))
        return self.plan(name)

    def run(self, plan, kind, name, **faults):
        if faults:
            set_faults(self.kube, self.ns, **faults)
        name = self.n(name)
        make_migration(self.kube, self.n(plan), kind, name=name)
        self.until(lambda: (self.mig(name).get("status") or {}).get("phase") == "Completed", name)
        return self.mig(name)

    def dvm(self, mig):
        items = self.kube.items(R.DVM, MTC_NAMESPACE, label_selector=f"migration-direct-volume={mig['metadata']['uid']}")
        assert len(items) == 1
        return items[0]

    def dvmps(self, dvm):
        return self.kube.items(R.DVMP, MTC_NAMESPACE, label_selector=f"directvolumemigration={dvm['metadata']['uid']}")
