"""Start every available controller stand-in in background threads: ``start_all(kube) -> handle``."""
import importlib
import logging
from typing import List, Optional

log = logging.getLogger("tests.sim")

# (module, class) of each stand-in; modules that do not exist (yet) are skipped.
STAND_INS = [("tests.sim.mtc", "MigController"), ("tests.sim.kubevirt", "KubeVirtController"),
             ("tests.sim.cdi", "CdiController"), ("tests.sim.migration_controller", "MigrationController")]


class Handle:
    def __init__(self, controllers):
        self.controllers = controllers

    @property
    def names(self) -> List[str]:
        return [c.name for c in self.controllers]

    def dead(self) -> List[str]:
        """"<name>: <traceback>" of every controller whose thread died (StandIn._run_guarded)."""
        return [f"{c.name}: {c.died}" for c in self.controllers if c.died]

    def errors(self) -> List[str]:
        return [f"{c.name}: {e}" for c in self.controllers for e in c.errors]

    def stop(self) -> None:
        for c in self.controllers:
            c.stop()


def available(namespaces=None):
    out = []
    for mod_name, cls_name in STAND_INS:
        try:
            mod = importlib.import_module(mod_name)
        except ImportError as exc:
            # Absent, or being written by another developer right now: run without it, but say so.
            if getattr(exc, "name", None) != mod_name:
                log.warning("stand-in %s not started: %s", mod_name, exc)
            continue
        cls = getattr(mod, cls_name, None)
        if cls is not None:
            out.append(cls)
    return out


def start_all(kube, pace: float = 0.05, namespaces: Optional[List[str]] = None, on_death=None) -> Handle:
    """``on_death(controller)`` is called from a controller thread that died (see StandIn._run_guarded)."""
    controllers = [cls(kube, pace=pace, namespaces=namespaces) for cls in available()]
    try:  # virt-api's start/stop behind the real aggregation layer (tests/sim/virt_api.py)
        from .virt_api import VirtApi
        controllers.append(VirtApi(kube))
    except ImportError as exc:
        log.warning("virt-api stand-in not started: %s", exc)
    for c in controllers:
        c.on_death = on_death
        try:
            c.start()
        except Exception as exc:  # noqa: BLE001 - e.g. no openssl, APIService never Available: say so
            log.warning("%s not started: %s", c.name, exc)
            c.errors = [f"not started: {exc}"]
            continue
        log.info("started %s (pace %.3fs)", c.name, pace)
    return Handle(controllers)
