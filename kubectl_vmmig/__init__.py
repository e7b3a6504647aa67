"""kubectl vm-storage: move KubeVirt VM disks from one StorageClass to another."""

__version__ = "0.1.0"
