"""Controller stand-ins (mig-controller, KubeVirt, CDI) for the test cluster and the sandbox."""
