"""Requests one pass of the kubevirt engine's waiting loop (steps.Driver.advance) sends, for N VMs waiting:
N/2 live VMs whose copy KubeVirt runs (phase Migrating) and N/2 offline VMs whose clones CDI runs
(WaitingForVolumes). In memory (tests/unit/test_kubevirt_steps.Kube), every call counted by verb and kind.

    PYTHONPATH=. python bench/driver_requests.py 10 100 1000
"""
import collections
import sys

from kubectl_vmmig.engines.kubevirt import build as B
from kubectl_vmmig.engines.kubevirt.steps import Driver
from tests.unit.test_kubevirt_steps import Kube


class Counting(Kube):
    def __init__(self, *objs):
        super().__init__(*objs)
        self.count = collections.Counter()

    def get_or_none(self, res, name, ns=None):
        self.count[("get", res.kind)] += 1
        return super().get_or_none(res, name, ns)

    def items(self, res, ns=None, **kw):
        self.count[("list", res.kind)] += 1
        return super().items(res, ns, **kw)


def world(n):
    objs, vms, moves = [], {}, []
    for i in range(n):
        live = i % 2 == 0
        name = f"vm{i}"
        vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
              "metadata": {"name": name, "namespace": "ns", "generation": 3, "uid": f"u{i}"},
              "spec": {"runStrategy": "Always" if live else "Halted", "template": {"spec": {"volumes": [
                  {"name": "data", "persistentVolumeClaim": {"claimName": f"p{i}"}}]}}}}
        vms[name] = vm
        objs.append(vm)
        if live:
            objs.append({"kind": "VirtualMachineInstance", "metadata": {"name": name, "namespace": "ns"},
                         "status": {"nodeName": "n1", "phase": "Running"}})
        objs.append({"kind": "DataVolume", "metadata": {"name": f"p{i}-fast", "namespace": "ns",
                                                        "labels": B.labels("m")},
                     "status": {"phase": "CloneInProgress", "progress": "10.0%"}})
        moves.append({"vm": name, "namespace": "ns", "volume": "data", "kind": "pvc", "sourcePVC": f"p{i}",
                      "targetPVC": f"p{i}-fast", "sourceSC": "standard", "targetSC": "fast",
                      "mode": "live" if live else "offline", "size": "1Gi", "sizeBytes": 2 ** 30,
                      "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                      "targetBindingMode": "Immediate", "dataVolumeTemplateIndex": None})
    plan = {"namespace": "ns", "vms": sorted(vms), "targetStorageClass": "fast", "moves": moves}
    rec = B.new_record(plan, vms, "m", "t")
    for v, r in rec["vms"].items():
        r["phase"] = "Migrating" if r["mode"] == "live" else "WaitingForVolumes"
        if r["mode"] == "live":
            r["patchedAt"] = "t"
    return Counting(*objs), rec


def one_pass(n):
    kube, rec = world(n)
    Driver(kube, rec, {"max_failures": 3}, lambda line: None).advance()
    return kube.count


if __name__ == "__main__":
    for n in [int(a) for a in sys.argv[1:] or ["10", "100", "1000"]]:
        c = one_pass(n)
        detail = ", ".join(f"{verb} {kind} {k}" for (verb, kind), k in sorted(c.items()))
        print(f"{n} VMs: {sum(c.values())} requests per pass ({detail})")
