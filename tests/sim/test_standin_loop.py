"""The stand-ins' run loop: the idle back-off is bounded, and a dying controller thread is reported.

(The sandbox's stand-ins died after ~15 minutes idle: ``pace * 2 ** idle`` raised OverflowError outside the
per-pass ``try``, the threads ended and the process lived on, so nothing ever progressed again.)
"""
import threading

import pytest

from kubectl_vmmig import resources as R
from tests.sim import factories as F
from tests.sim import runner
from tests.sim.cdi import CdiController
from tests.sim.kubevirt import KubeVirtController
from tests.sim.kvtest_helpers import dst_dv, start_migration, start_vm, vmims
from tests.sim.common import IDLE_WAIT, StandIn, wait_for


class _Nothing(StandIn):
    name = "nothing"

    def step(self):
        pass


def test_idle_wait_is_bounded_past_the_old_overflow():
    s = _Nothing(kube=None, pace=0.05, namespaces=["x"])
    assert s.idle_wait(0) == 0.05 and s.idle_wait(2) == 0.05
    assert s.idle_wait(3) == 0.1
    for idle in (1025, 1030, 10 ** 6):  # 0.05 * 2 ** 1028 was the OverflowError
        assert s.idle_wait(idle) == IDLE_WAIT


def test_idle_thread_keeps_running_past_the_old_overflow():
    s = _Nothing(kube=None, pace=0.001, namespaces=["x"])
    s.idle = 1100
    s.start()
    try:
        wait_for(lambda: s.idle > 1102, timeout=5, what="more idle passes")
        assert s.alive() and s.died is None
    finally:
        s.stop()


def test_a_dying_controller_thread_is_reported_with_its_traceback():
    died = threading.Event()
    s = _Nothing(kube=None, pace=0.001, namespaces=["x"])
    s.idle_wait = lambda idle: 1 / 0  # a bug in the loop itself, outside a pass
    s.on_death = lambda c: died.set()
    s.start()
    assert died.wait(5)
    assert not s.alive()
    assert "ZeroDivisionError" in s.died and "Traceback" in s.died
    handle = runner.Handle([s])
    assert handle.dead() == [f"nothing: {s.died}"]
    assert any("thread died" in e for e in handle.errors())


@pytest.mark.cluster
def test_stand_ins_idle_past_the_old_overflow_still_migrate_a_vm(cp, manual_namespace):
    """Both stand-ins start as if idle for ~1100 passes (the old back-off raised OverflowError at ~1026) and
    must still run a whole live volume migration."""
    kube = cp.admin
    F.install_kubevirt(kube)
    F.install_cdi(kube)
    sims = [KubeVirtController(kube, pace=0.02, namespaces=[manual_namespace]),
            CdiController(kube, pace=0.02, namespaces=[manual_namespace])]
    for s in sims:
        s.idle = 1100
        s.start()
    try:
        # a few idle passes first (nothing to do in the empty namespace); a pass takes longer on a loaded machine
        wait_for(lambda: all(s.idle > 1100 or not s.alive() for s in sims), timeout=30, what="an idle pass of each")
        assert all(s.alive() and s.idle > 1100 for s in sims), [s.died for s in sims]
        start_vm(kube, manual_namespace)
        dst_dv(kube, manual_namespace)
        start_migration(kube, manual_namespace)
        wait_for(lambda: [m for m in vmims(kube, manual_namespace, "vm-dv")
                          if (m.get("status") or {}).get("phase") == "Succeeded"], timeout=60, what="VMIM Succeeded")
        vmi = kube.get(R.VMI, "vm-dv", manual_namespace)
        assert vmi["spec"]["volumes"][0]["dataVolume"]["name"] == "dst-dv"
        assert all(s.died is None for s in sims)
    finally:
        for s in sims:
            s.stop()
