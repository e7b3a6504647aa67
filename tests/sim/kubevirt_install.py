"""KubeVirt "installed": the KubeVirt CR like samples/08, Deployed at a version (what virt-operator writes)."""
from typing import Optional

from kubectl_vmmig import errors
from kubectl_vmmig import resources as R

from .common import ensure_namespace, md5hex, now

KV_NAMESPACE = "kubevirt"


def install_kubevirt(kube, version: str = "v1.6.0",
                     feature_gates=("VMLiveUpdateFeatures", "VolumesUpdateStrategy", "VolumeMigration"),
                     workload_update_methods=("LiveMigrate",), rollout: Optional[str] = "LiveUpdate",
                     name: str = "kubevirt", namespace: str = KV_NAMESPACE,
                     eviction_strategy: Optional[str] = None) -> dict:
    """Create (or reconfigure) the KubeVirt CR like samples/08 and mark it Deployed at ``version``.
    ``rollout=None`` leaves vmRolloutStrategy unset (the version's default applies); ``eviction_strategy`` sets
    spec.configuration.evictionStrategy (unset by default, as upstream; HCO sets LiveMigrate)."""
    ensure_namespace(kube, namespace)
    conf = {"developerConfiguration": {"featureGates": list(feature_gates)},
            "migrations": {"parallelMigrationsPerCluster": 5, "parallelOutboundMigrationsPerNode": 2,
                           "completionTimeoutPerGiB": 150, "progressTimeout": 150}}
    if rollout:
        conf["vmRolloutStrategy"] = rollout
    if eviction_strategy:
        conf["evictionStrategy"] = eviction_strategy
    body = {"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt", "metadata": {"name": name, "namespace": namespace},
            "spec": {"certificateRotateStrategy": {}, "configuration": conf, "customizeComponents": {},
                     "imagePullPolicy": "IfNotPresent",
                     "workloadUpdateStrategy": {"workloadUpdateMethods": list(workload_update_methods)}}}
    try:
        kv = kube.create(R.KUBEVIRT, body, namespace)
    except errors.Conflict:
        cur = kube.get(R.KUBEVIRT, name, namespace)
        body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        kv = kube.replace(R.KUBEVIRT, body, namespace)
    dep = md5hex(version)[:16]
    ts = now()
    status = {"phase": "Deployed", "observedKubeVirtVersion": version, "targetKubeVirtVersion": version,
              "operatorVersion": version, "observedKubeVirtRegistry": "quay.io/kubevirt",
              "targetKubeVirtRegistry": "quay.io/kubevirt", "observedDeploymentID": dep, "targetDeploymentID": dep,
              "observedGeneration": kv["metadata"].get("generation", 1), "defaultArchitecture": "amd64",
              "conditions": [
                  {"type": "Available", "status": "True", "reason": "AllResourcesCreated",
                   "message": "All components are ready.", "lastProbeTime": ts, "lastTransitionTime": ts},
                  {"type": "Progressing", "status": "False", "reason": "AllResourcesCreated",
                   "message": "All components are ready.", "lastProbeTime": ts, "lastTransitionTime": ts},
                  {"type": "Degraded", "status": "False", "reason": "AllResourcesCreated",
                   "message": "All components are ready.", "lastProbeTime": ts, "lastTransitionTime": ts},
                  {"type": "Created", "status": "True", "reason": "AllResourcesCreated",
                   "message": "All resources were created.", "lastProbeTime": ts, "lastTransitionTime": ts}]}
    return kube.patch(R.KUBEVIRT, name, {"status": status}, namespace, subresource="status")


