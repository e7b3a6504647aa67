"""Group/version/resource of every kind the plugin reads or writes, and the request paths they make."""
from typing import NamedTuple, Optional


def _segment(what, value):
    """``value`` as one path segment, refused as client-go refuses it before any request (rest/request.go
    Namespace/Name -> apimachinery api/validation/path.IsValidPathSegmentName): '.' and '..' and any '/' or '%'
    would address another object than the one named."""
    if value in (".", ".."):
        problem = f"may not be '{value}'"
    else:
        bad = [c for c in ("/", "%") if c in value]
        if not bad:
            return value
        problem = " or ".join(f"may not contain '{c}'" for c in bad)
    from .errors import BadInput

    raise BadInput(f"invalid {what} {value!r}: {problem}; names are lowercase letters, digits, '-' and '.'")


class Resource(NamedTuple):
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: Optional[str] = None, name: Optional[str] = None, subresource=None):
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{_segment('namespace', namespace)}"
        base += f"/{self.plural}"
        if name:
            base += f"/{_segment('resource name', name)}"
            if subresource:
                base += f"/{subresource}"
        return base

    def subresource_path(self, namespace, name, sub):
        # KubeVirt serves start/stop/restart through the aggregated subresources.kubevirt.io group.
        group = "subresources." + self.group
        return (f"/apis/{group}/{self.version}/namespaces/{_segment('namespace', namespace)}/{self.plural}/"
                f"{_segment('resource name', name)}/{sub}")


MIG = "migration.openshift.io"
MIGPLAN = Resource(MIG, "v1alpha1", "migplans", "MigPlan")
MIGMIGRATION = Resource(MIG, "v1alpha1", "migmigrations", "MigMigration")
MIGCLUSTER = Resource(MIG, "v1alpha1", "migclusters", "MigCluster")
MIGHOOK = Resource(MIG, "v1alpha1", "mighooks", "MigHook")
DVM = Resource(MIG, "v1alpha1", "directvolumemigrations", "DirectVolumeMigration")
DVMP = Resource(MIG, "v1alpha1", "directvolumemigrationprogresses", "DirectVolumeMigrationProgress")

VM = Resource("kubevirt.io", "v1", "virtualmachines", "VirtualMachine")
VMI = Resource("kubevirt.io", "v1", "virtualmachineinstances", "VirtualMachineInstance")
VMIM = Resource("kubevirt.io", "v1", "virtualmachineinstancemigrations", "VirtualMachineInstanceMigration")
KUBEVIRT = Resource("kubevirt.io", "v1", "kubevirts", "KubeVirt")
# virt-api's aggregated start/stop/restart subresources (RBAC: subresources.kubevirt.io virtualmachines/start)
VM_SUBRESOURCES = Resource("subresources.kubevirt.io", "v1", "virtualmachines", "VirtualMachineSubresources")

# kubevirt-migration-controller (api/migrationcontroller/v1alpha1) and its operator's MigController CR
MIGRATIONS = "migrations.kubevirt.io"
VMSM_PLAN = Resource(MIGRATIONS, "v1alpha1", "virtualmachinestoragemigrationplans",
                     "VirtualMachineStorageMigrationPlan")
VMSM = Resource(MIGRATIONS, "v1alpha1", "virtualmachinestoragemigrations", "VirtualMachineStorageMigration")
MN_VMSM_PLAN = Resource(MIGRATIONS, "v1alpha1", "multinamespacevirtualmachinestoragemigrationplans",
                        "MultiNamespaceVirtualMachineStorageMigrationPlan")
MN_VMSM = Resource(MIGRATIONS, "v1alpha1", "multinamespacevirtualmachinestoragemigrations",
                   "MultiNamespaceVirtualMachineStorageMigration")
MIGCONTROLLER = Resource(MIGRATIONS, "v1alpha1", "migcontrollers", "MigController")

DATAVOLUME = Resource("cdi.kubevirt.io", "v1beta1", "datavolumes", "DataVolume")
STORAGEPROFILE = Resource("cdi.kubevirt.io", "v1beta1", "storageprofiles", "StorageProfile", namespaced=False)
CDICONFIG = Resource("cdi.kubevirt.io", "v1beta1", "cdiconfigs", "CDIConfig", namespaced=False)

PVC = Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
PV = Resource("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False)
POD = Resource("", "v1", "pods", "Pod")
NAMESPACE = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
NODE = Resource("", "v1", "nodes", "Node", namespaced=False)
CONFIGMAP = Resource("", "v1", "configmaps", "ConfigMap")
EVENT = Resource("", "v1", "events", "Event")
STORAGECLASS = Resource("storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced=False)
CSIDRIVER = Resource("storage.k8s.io", "v1", "csidrivers", "CSIDriver", namespaced=False)
DEPLOYMENT = Resource("apps", "v1", "deployments", "Deployment")
STATEFULSET = Resource("apps", "v1", "statefulsets", "StatefulSet")
REPLICASET = Resource("apps", "v1", "replicasets", "ReplicaSet")
DAEMONSET = Resource("apps", "v1", "daemonsets", "DaemonSet")
JOB = Resource("batch", "v1", "jobs", "Job")
CRONJOB = Resource("batch", "v1", "cronjobs", "CronJob")
DEPLOYMENTCONFIG = Resource("apps.openshift.io", "v1", "deploymentconfigs", "DeploymentConfig")  # OpenShift
CRD = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
               namespaced=False)

BY_KIND = {r.kind: r for r in list(globals().values()) if isinstance(r, Resource)}

# The kinds read through watchcache.CachedReads (status views: engines/*/progress.py fetch_objects; migrate -A's
# waiting: engines/kubevirt/reads.py): after one LIST, a WATCH keeps each current. deploy/rbac grants `watch` on
# exactly these, beside `list`; it is optional (never asked by a preflight: without it they LIST at each refresh).
WATCHED = (CONFIGMAP, PVC, VM, VMI, VMIM, DATAVOLUME, MIGPLAN, MIGMIGRATION, DVM, DVMP, VMSM_PLAN, MN_VMSM_PLAN, VMSM)
