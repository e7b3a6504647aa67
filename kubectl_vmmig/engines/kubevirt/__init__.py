"""The kubevirt engine: destination DataVolumes + a guarded volume-swap patch, KubeVirt's own volume migration.
engine.py is the shell; build.py, checks.py, steps.py, track.py and progress.py are pure (steps drives the API)."""
