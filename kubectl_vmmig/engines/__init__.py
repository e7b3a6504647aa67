"""The engine registry: adding an engine = a package ``engines/<name>/`` with a ``surface.py`` + one line here.

Order is ``--engine auto``'s preference: the first registered engine that does not decline is used. Entries are
``module:Class`` strings, imported only when used, so ``--help`` stays light.
"""
from typing import Dict, List, Optional, Tuple

REGISTRY: Dict[str, str] = {
    "migration-controller": "kubectl_vmmig.engines.migration_controller.surface:MigrationController",
    "mtc": "kubectl_vmmig.engines.mtc.surface:Mtc",
    "kubevirt": "kubectl_vmmig.engines.kubevirt.surface:Kubevirt",
}
AUTO = "auto"


def names() -> Tuple[str, ...]:
    return tuple(REGISTRY)


def choices() -> Tuple[str, ...]:
    """What ``--engine`` accepts."""
    return names() + (AUTO,)


def engine_class(name: str):
    import importlib

    from .. import errors

    spec = REGISTRY.get(name)
    if spec is None:
        raise errors.BadInput(f"unknown engine {name!r}", f"use --engine {', '.join(choices())}")
    module, cls = spec.split(":")
    return getattr(importlib.import_module(module), cls)


def classes() -> List[Tuple[str, type]]:
    return [(n, engine_class(n)) for n in REGISTRY]


def get_engine(name: str, kube, options: Optional[dict] = None, objects: Optional[dict] = None):
    """The engine ``name`` (or, for ``auto``, the first registered one that does not decline)."""
    from .. import errors

    if name != AUTO:
        return engine_class(name)(kube, options)
    reasons = []
    for n, cls in classes():
        eng = cls(kube, options)
        why = eng.declined(objects)
        if why is None:
            because = f": {eng.chosen_because}" if eng.chosen_because else ""
            eng.picked = f"--engine auto picked {n}{because}" + (f" ({'; '.join(reasons)})" if reasons else
                                                                  "" if because else " (the first registered engine)")
            return eng
        reasons.append(f"{n} declined: {why}")
    raise errors.PreflightRefused("no engine can run here (" + "; ".join(reasons) + ")",
                                  "install one of them, or pick one with --engine")


def candidates(name: str, kube, options: Optional[dict] = None) -> list:
    """The typed engine, or every registered engine for ``auto`` (re-run detection, ``cancel``)."""
    if name != AUTO:
        return [engine_class(name)(kube, options)]
    return [cls(kube, options) for _, cls in classes()]


def parse_hooks(name: str, specs) -> list:
    """``--hook NAME:PHASE`` values as the engine that would run them reads them (for ``auto``: the first
    registered engine with hooks; a resolved engine without them refuses the flag later)."""
    from .base import HOOKS

    if name != AUTO:
        return engine_class(name).parse_hooks(specs)
    able = [cls for _, cls in classes() if HOOKS in cls.supports]
    return able[0].parse_hooks(specs) if able and specs else []


def refuse_unsupported(engine_cls, request) -> None:
    """BadInput (exit 2) when the request needs something ``engine_cls`` does not support."""
    from .. import errors
    from .base import unsupported

    problem = unsupported(engine_cls, request, classes())
    if problem:
        raise errors.BadInput(*problem)
