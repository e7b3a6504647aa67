"""Every label and annotation key the plugin writes or reads, in one place (the other modules import these)."""

DOMAIN = "vm-storage.kubevirt-tools.io"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "kubectl-vm-storage"                  # MANAGED_BY's value on everything the plugin creates
MIGRATION = f"{DOMAIN}/migration"               # the plugin's migration name
ENGINE = f"{DOMAIN}/engine"                     # the engine that made it (engines.REGISTRY key)
TYPE = f"{DOMAIN}/type"                         # stage | cutover | rollback
REQUEST = f"{DOMAIN}/request"                   # annotation: the request as JSON (re-run detection)
REQUEST_HASH = f"{DOMAIN}/request-hash"

# KubeVirt's label on the VMIMs it creates for a volume update (pkg/virt-controller/watch/vm.go
# createMigrationForVolumesUpdate -> virtv1.VolumesUpdateMigration).
VOLUME_UPDATE_MIGRATION = "kubevirt.io/volume-update-migration"


def ours(engine: str, migration: str) -> dict:
    """The labels on every object an engine creates for ``migration``."""
    return {MANAGED_BY: MANAGER, MIGRATION: migration, ENGINE: engine}
