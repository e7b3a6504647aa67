"""Fixtures of the KubeVirt stand-in tests."""
import pytest

from tests.sim import factories as F


@pytest.fixture
def kv(cp, sims):
    """KubeVirt v1.6.0 configured for volume migration (samples/08) + CDI; restored after the test."""
    F.install_kubevirt(cp.admin)
    F.install_cdi(cp.admin)
    before = {c.name: list(c.errors) for c in sims.controllers}
    yield cp.admin
    F.install_kubevirt(cp.admin)
    new = [f"{c.name}: {e}" for c in sims.controllers if c.name in ("kubevirt", "cdi")
           for e in c.errors if e not in before.get(c.name, [])]
    assert not new, f"stand-in errors during the test: {new}"
