"""The stand-ins' run loop: the idle back-off is bounded, and a dying controller thread is reported.

(The sandbox's stand-ins died after ~15 minutes idle: ``pace * 2 ** idle`` raised OverflowError outside the
per-pass ``try``, the threads ended and the process lived on, so nothing ever progressed again.)
"""
import threading

from tests.sim import runner
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
