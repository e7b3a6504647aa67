"""Every label and annotation key the plugin writes or reads, in one place (the other modules import these)."""

DOMAIN = "vm-storage.kubevirt-tools.io"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "kubectl-vm-storage"                  # MANAGED_BY's value on everything the plugin creates
MIGRATION = f"{DOMAIN}/migration"               # the plugin's migration name
ENGINE = f"{DOMAIN}/engine"                     # the engine that made it (engines.REGISTRY key)
TYPE = f"{DOMAIN}/type"                         # stage | cutover | rollback
REQUEST = f"{DOMAIN}/request"                   # annotation: the request as JSON (re-run detection)
REQUEST_HASH = f"{DOMAIN}/request-hash"
PLANNED = f"{DOMAIN}/planned"                   # annotation: what the plugin planned (JSON; migration-controller)
CANCEL_REQUESTED = f"{DOMAIN}/cancel-requested"  # annotation: when the plugin's cancel was requested
DISKS = f"{DOMAIN}/disks"                       # annotation: {source PVC: "vm/volume"} of a migration
PLAN_GENERATION = f"{DOMAIN}/plan-generation"   # MTC: the n-th MigPlan of a namespace
SUPERSEDED_BY = f"{DOMAIN}/superseded-by"       # annotation on a MigPlan the plugin closed for a newer one
FLEET = f"{DOMAIN}/fleet"                       # annotation on a fleet's per-namespace plan: its fleet, "ns/name"

# MTC's label on the PVCs a plan created (migtools/mig-controller pkg/apis/migration/v1alpha1/labels.go MigPlanLabel,
# set to the plan's UID by pkg/controller/migmigration/pvcs.go).
MTC_MIGRATED_BY_MIGPLAN = "migration.openshift.io/migrated-by-migplan"
# MTC's label on the PVCs a cutover left behind (pkg/controller/directvolumemigration/task.go MigrationSourceFor, set
# to the plan's UID on every PVC of the namespace but the run's targets by migmigration/storage.go handleSourceLabels).
MTC_SOURCE_FOR = "migration.openshift.io/source-for-directvolumemigration"

# KubeVirt's label on the VMIMs it creates for a volume update (pkg/virt-controller/watch/vm.go
# createMigrationForVolumesUpdate -> virtv1.VolumesUpdateMigration).
VOLUME_UPDATE_MIGRATION = "kubevirt.io/volume-update-migration"
# virt-handler labels the nodes KubeVirt may run VMs on; every launcher pod selects it
# (pkg/virt-handler/heartbeat, pkg/virt-controller/services/nodeselectorrenderer.go)
NODE_SCHEDULABLE = "kubevirt.io/schedulable"
# CDI annotations on a DataVolume (containerized-data-importer pkg/controller/common/util.go)
CDI_ALLOW_CLAIM_ADOPTION = "cdi.kubevirt.io/allowClaimAdoption"       # AnnAllowClaimAdoption
CDI_IMMEDIATE_BINDING = "cdi.kubevirt.io/storage.bind.immediate.requested"  # AnnImmediateBinding
CDI_USE_POPULATOR = "cdi.kubevirt.io/storage.usePopulator"            # AnnUsePopulator


def ours(engine: str, migration: str) -> dict:
    """The labels on every object an engine creates for ``migration``."""
    return {MANAGED_BY: MANAGER, MIGRATION: migration, ENGINE: engine}
