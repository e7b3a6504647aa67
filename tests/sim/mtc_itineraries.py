"""mig-controller stand-in: MigMigration itineraries and phase descriptions (migtools/mig-controller
pkg/controller/migmigration/task.go StageItinerary/RollbackItinerary/CancelItinerary/FailedItinerary with
their step flags, description.go PhaseDescriptions). (phase, pipeline step, flag that must hold)."""

N, Q, DV, SWAP, LIVE = "never", "quiesce", "dv", "swap", "live"
STAGE = [("", "Prepare", None), ("Started", "Prepare", None), ("StartRefresh", "Prepare", None),
         ("WaitForRefresh", "Prepare", None), ("CleanStaleAnnotations", "Prepare", None),
         ("CleanStaleResticCRs", "Prepare", None), ("CleanStaleVeleroCRs", "Prepare", None),
         ("RestartVelero", "Prepare", N), ("CleanStaleStagePods", "Prepare", None),
         ("WaitForStaleStagePodsTerminated", "Prepare", None), ("CreateRegistries", "Prepare", N),
         ("CreateDirectImageMigration", "DirectImage", N), ("QuiesceSourceApplications", "StageBackup", Q),
         ("EnsureSrcQuiesced", "StageBackup", Q), ("CreateDirectVolumeMigrationStage", "StageBackup", DV),
         ("EnsureStagePodsFromRunning", "StageBackup", N), ("EnsureStagePodsFromTemplates", "StageBackup", N),
         ("EnsureStagePodsFromOrphanedPVCs", "StageBackup", N), ("StagePodsCreated", "StageBackup", N),
         ("RestartRestic", "StageBackup", N), ("AnnotateResources", "StageBackup", N),
         ("WaitForVeleroReady", "StageBackup", None), ("WaitForResticReady", "StageBackup", N),
         ("WaitForRegistriesReady", "StageBackup", N), ("EnsureCloudSecretPropagated", "StageBackup", N),
         ("EnsureStageBackup", "StageBackup", N), ("StageBackupCreated", "StageBackup", N),
         ("EnsureStageBackupReplicated", "StageBackup", N), ("EnsureStageRestore", "StageRestore", N),
         ("StageRestoreCreated", "StageRestore", N), ("WaitForDirectImageMigrationToComplete", "DirectImage", N),
         ("WaitForDirectVolumeMigrationToComplete", "DirectVolume", DV), ("SwapPVCReferences", "Cleanup", SWAP),
         ("DeleteRegistries", "Cleanup", None), ("EnsureStagePodsDeleted", "Cleanup", N),
         ("EnsureStagePodsTerminated", "Cleanup", N), ("EnsureAnnotationsDeleted", "Cleanup", N),
         ("Completed", "Cleanup", None)]
ROLLBACK = [("Rollback", "CleanupVelero", None), ("DeleteBackups", "CleanupVelero", None),
            ("DeleteRestores", "CleanupVelero", None), ("DeleteRegistries", "CleanupHelpers", None),
            ("EnsureStagePodsDeleted", "CleanupHelpers", None), ("EnsureAnnotationsDeleted", "CleanupHelpers", None),
            ("QuiesceDestinationApplications", "CleanupMigrated", None),
            ("EnsureDestQuiesced", "CleanupMigrated", None), ("SwapPVCReferences", "CleanupMigrated", None),
            ("CreateDirectVolumeMigrationRollback", "RollbackLiveMigration", LIVE),
            ("WaitForDirectVolumeMigrationToRollbackComplete", "RollbackLiveMigration", LIVE),
            ("DeleteMigrated", "CleanupMigrated", None), ("EnsureMigratedDeleted", "CleanupMigrated", None),
            ("UnQuiesceSrcApplications", "CleanupUnquiesce", None), ("Completed", "CleanupUnquiesce", None)]
CANCEL = [(p, None, None) for p in (
    "Canceling", "DeleteBackups", "DeleteRestores", "DeleteRegistries", "DeleteHookJobs",
    "DeleteDirectVolumeMigrationResources", "DeleteDirectImageMigrationResources", "EnsureStagePodsDeleted",
    "EnsureAnnotationsDeleted", "UnQuiesceSrcApplications", "Canceled", "Completed")]
FAILED = [(p, None, None) for p in ("MigrationFailed", "DeleteRegistries", "EnsureAnnotationsDeleted", "Completed")]
ITINERARIES = {"Stage": STAGE, "Rollback": ROLLBACK, "Cancel": CANCEL, "Failed": FAILED}

# description.go PhaseDescriptions; the phases newer than the stored copy get short approximations.
DESCRIPTIONS = {
    "": "Migration created.", "Started": "Migration started.",
    "StartRefresh": "Starting refresh on MigPlan, MigStorage and MigCluster resources",
    "WaitForRefresh": "Waiting for refresh of MigPlan, MigStorage and MigCluster resources to complete",
    "CleanStaleAnnotations": "Removing leftover migration annotations and labels from PVs, PVCs, Pods, ImageStreams, "
                             "and Namespaces. Annotations and labels provide migration instructions to Velero, "
                             "Velero Plugins and Restic.",
    "CleanStaleResticCRs": "Deleting incomplete Restic PodVolumeBackups and PodVolumeRestores created by past "
                           "migration attempts.",
    "CleanStaleVeleroCRs": "Deleting incomplete Velero Backups and Restores created by past migration attempts.",
    "CleanStaleStagePods": "Deleting any leftover stage Pods.",
    "WaitForStaleStagePodsTerminated": "Waiting for leftover stage Pod deletion to finish.",
    "QuiesceSourceApplications": "Quiescing (Scaling to 0 replicas): Deployments, DeploymentConfigs, StatefulSets, "
                                 "ReplicaSets, DaemonSets, CronJobs and Jobs.",
    "QuiesceDestinationApplications": "Quiescing (Scaling to 0 replicas): Deployments, DeploymentConfigs, "
                                      "StatefulSets, ReplicaSets, DaemonSets, CronJobs and Jobs.",
    "EnsureSrcQuiesced": "Waiting for Quiesce (Scaling to 0 replicas) to finish for Deployments, DeploymentConfigs, "
                         "StatefulSets, ReplicaSets, DaemonSets, CronJobs and Jobs.",
    "EnsureDestQuiesced": "Waiting for Quiesce (Scaling to 0 replicas) to finish for Deployments, DeploymentConfigs, "
                          "StatefulSets, ReplicaSets, DaemonSets, CronJobs and Jobs.",
    "UnQuiesceSrcApplications": "UnQuiescing (Scaling to N replicas) source cluster Deployments, DeploymentConfigs, "
                                "StatefulSets, ReplicaSets, DaemonSets, CronJobs and Jobs.",
    "CreateDirectVolumeMigrationStage": "Creating Direct Volume Migration",
    "CreateDirectVolumeMigrationRollback": "Creating Direct Volume Migration",
    "WaitForVeleroReady": "Waiting for Velero Pods to restart, ensuring work queue is empty.",
    "WaitForDirectVolumeMigrationToComplete": "Waiting for Direct Volume Migration to complete.",
    "WaitForDirectVolumeMigrationToRollbackComplete": "Waiting for Direct Volume Migration to complete.",
    "SwapPVCReferences": "Swapping PVC references on workloads to the migrated PVCs.",
    "DeleteRegistries": "Deleting migration registries on source and target clusters.",
    "EnsureAnnotationsDeleted": "Removing migration annotations and labels from PVs, PVCs, Pods, ImageStreams, and "
                                "Namespaces. Annotations and labels provide migration instructions to Velero, Velero "
                                "Plugins and Restic.",
    "EnsureStagePodsDeleted": "Deleting any leftover stage Pods.",
    "EnsureMigratedDeleted": "Rolling back. Waiting for migrated resource deletion.",
    "DeleteMigrated": "Rolling back. Deleting migrated resources from target cluster.",
    "DeleteBackups": "Deleting Velero Backups created during migration.",
    "DeleteRestores": "Deleting Velero Restores created during migration.",
    "DeleteHookJobs": "Deleting user-defined hook Jobs and Pods created during migration.",
    "DeleteDirectVolumeMigrationResources": "Deleting Direct Volume Migration resources.",
    "DeleteDirectImageMigrationResources": "Deleting Direct Image Migration resources.",
    "Rollback": "Starting rollback", "MigrationFailed": "Migration failed.",
    "Canceling": "Migration cancellation in progress.", "Canceled": "Migration canceled.",
    "Completed": "Migration completed.",
}
