"""virt-launcher pods for the KubeVirt stand-in, and the kubelet/scheduler work nobody else does here:
binding a pod to a node (pods/binding) and writing its status (pods/status)."""
from typing import List, Optional

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .common import now
from .kubevirt_model import claim_of, md5hex_int
from .kubevirt_scheduling import launcher_scheduling

LAUNCHER = "virt-launcher"
CREATED_BY = "kubevirt.io/created-by"
MIGRATION_JOB_UID = "kubevirt.io/migrationJobUID"


def launcher_pod(vmi: dict, version: str, volumes: List[dict], vmim: Optional[dict] = None,
                 kubevirt_cr: Optional[dict] = None) -> dict:
    """The virt-launcher pod manifest for ``vmi`` (a migration target when ``vmim`` is given: destination
    volumes, required anti-affinity against the source pod's node, migration labels); placed by the VMI's
    node selector, tolerations and affinity and the KubeVirt CR's node selectors (kubevirt_scheduling)."""
    md = vmi["metadata"]
    tmpl_labels = {k: v for k, v in (md.get("labels") or {}).items()
                   if not k.startswith("kubevirt.io/nodeName") and not k.startswith("kubevirt.io/migrationTarget")}
    labels = {**tmpl_labels, "kubevirt.io": LAUNCHER, CREATED_BY: md["uid"], "vm.kubevirt.io/name": md["name"]}
    ann = {"kubevirt.io/domain": md["name"], "kubectl.kubernetes.io/default-container": "compute"}
    if vmim is not None:
        labels[MIGRATION_JOB_UID] = vmim["metadata"]["uid"]
        ann["kubevirt.io/migrationJobName"] = vmim["metadata"]["name"]
    pvols = []
    for v in volumes:
        claim = claim_of(v)
        if claim and not v.get("memoryDump"):
            pvols.append({"name": v["name"], "persistentVolumeClaim": {"claimName": claim}})
    pvols.append({"name": "private", "emptyDir": {}})
    spec = {"automountServiceAccountToken": False, "restartPolicy": "Never", "terminationGracePeriodSeconds": 30,
            "containers": [{"name": "compute", "image": f"quay.io/kubevirt/virt-launcher:{version}",
                            "command": ["/usr/bin/virt-launcher-monitor", "--qemu-timeout", "240s",
                                        "--name", md["name"], "--namespace", md["namespace"]],
                            "volumeMounts": [{"name": "private", "mountPath": "/var/run/kubevirt-private"}]}],
            "volumes": pvols}
    spec.update(launcher_scheduling(vmi.get("spec") or {}, kubevirt_cr))
    if vmim is not None:  # migration.go createMigrationPodAntiAffinityRule: added to the VMI's own affinity
        anti = spec.setdefault("affinity", {}).setdefault("podAntiAffinity", {})
        anti.setdefault("requiredDuringSchedulingIgnoredDuringExecution", []).append({
            "labelSelector": {"matchLabels": {CREATED_BY: md["uid"]}}, "topologyKey": "kubernetes.io/hostname"})
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": f"virt-launcher-{md['name']}-", "namespace": md["namespace"],
                         "labels": labels, "annotations": ann,
                         "ownerReferences": [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                                              "name": md["name"], "uid": md["uid"], "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": spec}


def create_pod(kube, pod: dict) -> dict:
    ns = pod["metadata"]["namespace"]
    try:
        return kube.create(R.POD, pod, ns)
    except errors.ApiError as exc:
        # Without kube-controller-manager nobody creates the "default" ServiceAccount that the
        # ServiceAccount admission plugin looks up; create it as the token controller would.
        if "serviceaccount" not in str(exc.message).lower().replace(" ", ""):
            raise
        try:
            kube.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts",
                         body={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})
        except errors.Conflict:
            pass
        return kube.create(R.POD, pod, ns)


def pod_ip(pod: dict) -> str:
    n = md5hex_int(pod["metadata"]["uid"])
    return f"10.244.{n % 250}.{(n >> 8) % 250 + 2}"


def bind_pod(kube, pod: dict, node: str) -> None:
    """What kube-scheduler does: POST pods/<name>/binding."""
    md = pod["metadata"]
    body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": md["name"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
    try:
        kube.request("POST", R.POD.path(md["namespace"], md["name"], "binding"), body=body)
    except errors.Conflict:
        pass  # already bound
    pod.setdefault("spec", {})["nodeName"] = node


def set_pod_phase(kube, pod: dict, phase: str, unschedulable: Optional[str] = None) -> None:
    """What the kubelet (or the scheduler, for ``unschedulable``) would write to pods/status."""
    ts = now()
    st = {"phase": phase}
    if unschedulable:
        st["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                             "message": unschedulable, "lastProbeTime": None, "lastTransitionTime": ts}]
    elif phase == "Running":
        st.update(startTime=ts, podIP=pod_ip(pod), hostIP=pod_ip({"metadata": {"uid": pod["spec"].get("nodeName", "")}}),
                  conditions=[{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": ts}
                              for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")])
    elif phase in ("Succeeded", "Failed"):
        st["conditions"] = [{"type": "Ready", "status": "False", "reason": "PodCompleted",
                             "lastProbeTime": None, "lastTransitionTime": ts}]
    md = pod["metadata"]
    try:
        out = kube.patch(R.POD, md["name"], {"status": st}, md["namespace"], subresource="status")
        pod["status"] = out.get("status") or st
    except errors.NotFound:
        pass


def unschedulable_message(pod: dict) -> Optional[str]:
    """The scheduler's last FailedScheduling message on the pod (PodScheduled=False), if any."""
    c = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"), None)
    return (c or {}).get("message") if (c or {}).get("status") == "False" else None


def delete_pod(kube, pod: dict) -> None:
    """Delete at once (gracePeriodSeconds 0): there is no kubelet to confirm a graceful deletion."""
    md = pod["metadata"]
    try:
        kube.request("DELETE", R.POD.path(md["namespace"], md["name"]),
                     body={"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0})
    except errors.NotFound:
        pass


def pods_of(pods: List[dict], vmi: dict) -> List[dict]:
    uid = vmi["metadata"]["uid"]
    return [p for p in pods if (p["metadata"].get("labels") or {}).get(CREATED_BY) == uid]


def source_pod(pods: List[dict], vmi: dict) -> Optional[dict]:
    """The pod currently running the VMI: on the VMI's node and not finished."""
    node = (vmi.get("status") or {}).get("nodeName")
    live = [p for p in pods_of(pods, vmi) if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    on_node = [p for p in live if (p.get("spec") or {}).get("nodeName") == node]
    return (on_node or [p for p in live if MIGRATION_JOB_UID not in (p["metadata"].get("labels") or {})] or [None])[0]
