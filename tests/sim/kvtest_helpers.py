"""Helpers shared by the KubeVirt/CDI stand-in tests (and usable by e2e tests): read objects, wait."""
import json
import os

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from . import factories as F
from .common import wait_for

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "reference", "kubevirt", "samples")
TIMEOUT = float(os.environ.get("VMSTORAGE_SIM_TIMEOUT", "30"))


def sample_patches():
    """samples/03 (the op lists a user applies), or None when the reference tree is not next to the repo."""
    path = os.path.join(SAMPLES, "03-vm-volume-migration-patches.json")
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.load(fh)


def condition(obj, ctype):
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def get(kube, res, name, ns=None):
    try:
        return kube.get(res, name, ns)
    except errors.NotFound:
        return None


def wait_obj(kube, res, name, ns, pred, what, timeout=TIMEOUT):
    """Wait until ``pred(obj)`` holds for the object; returns the object."""
    box = {}

    def check():
        box["o"] = get(kube, res, name, ns)
        return box["o"] is not None and pred(box["o"])

    try:
        wait_for(check, timeout=timeout, what=what)
    except AssertionError:
        raise AssertionError(f"timed out waiting for {what}; last seen: "
                             f"{json.dumps((box.get('o') or {}).get('status'), indent=1)[:3000]}") from None
    return box["o"]


def vmims(kube, ns, vmi):
    items = kube.items(R.VMIM, ns, label_selector=f"kubevirt.io/volume-update-migration={vmi}")
    return sorted(items, key=lambda m: (m["metadata"]["creationTimestamp"], int(m["metadata"]["resourceVersion"])))


def running_vm(kube, ns, name, timeout=TIMEOUT):
    """Wait for printableStatus Running and a Running VMI; returns (vm, vmi)."""
    vm = wait_obj(kube, R.VM, name, ns, lambda o: (o.get("status") or {}).get("printableStatus") == "Running",
                  f"VM {name} Running", timeout)
    vmi = wait_obj(kube, R.VMI, name, ns, lambda o: (o.get("status") or {}).get("phase") == "Running",
                   f"VMI {name} Running", timeout)
    return vm, vmi


# ---- the samples/01 VM and the samples/03 patches (shared by the KubeVirt stand-in tests) -----------------------
def start_vm(kube, ns, name="vm-dv", disks=None):
    """samples/01 (source DV "src-dv" from a template, here blank on "standard") plus a cloud-init disk."""
    disks = disks or [F.dv_disk("datavolumedisk1", dv="src-dv", size="2Gi"), F.cloudinit_disk()]
    F.apply(kube, ns, *F.make_vm_bundle(name, disks))
    return running_vm(kube, ns, name)


def dst_dv(kube, ns, name="dst-dv", size="3Gi", storage_class="fast"):
    F.apply(kube, ns, F.make_blank_dv(name, size=size, storage_class=storage_class, access_modes=("ReadWriteMany",),
                                      volume_mode="Block"))
    wait_obj(kube, R.PVC, name, ns, lambda o: True, f"PVC {name}")


def start_migration(kube, ns, vm="vm-dv", dst="dst-dv"):
    ops = (sample_patches() or {}).get("start_to_dv_keep_template") if dst == "dst-dv" else None
    ops = ops or [
        {"op": "replace", "path": "/spec/dataVolumeTemplates/0/metadata/name", "value": dst},
        {"op": "replace", "path": "/spec/template/spec/volumes/0",
         "value": {"name": "datavolumedisk1", "dataVolume": {"name": dst}}},
        {"op": "add", "path": "/spec/updateVolumesStrategy", "value": "Migration"}]
    kube.patch(R.VM, vm, ops, ns, patch_type="json")


def revert(kube, ns, vm="vm-dv"):
    ops = (sample_patches() or {}).get("cancel_revert_to_source") or [
        {"op": "replace", "path": "/spec/dataVolumeTemplates/0/metadata/name", "value": "src-dv"},
        {"op": "replace", "path": "/spec/template/spec/volumes/0",
         "value": {"name": "datavolumedisk1", "dataVolume": {"name": "src-dv"}}}]
    kube.patch(R.VM, vm, ops, ns, patch_type="json")
