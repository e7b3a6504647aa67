"""The migration-controller engine: kubevirt-migration-controller (migrations.kubevirt.io/v1alpha1
VirtualMachineStorageMigrationPlan + VirtualMachineStorageMigration) moves the disks; ``surface.MigrationController``
is what the commands see, ``build``/``checks``/``progress`` the pure rules (``progress.verdict`` the one verdict)."""
