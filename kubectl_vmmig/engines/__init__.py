"""Engine selection: ``get_engine(name, kube, options)`` with name ``mtc`` | ``kubevirt`` | ``auto``.

``auto`` = MTC when its CRDs are served and the host MigCluster is Ready, else the kubevirt engine.
Engines are imported lazily so ``--help`` stays light.
"""
ENGINES = ("mtc", "kubevirt", "auto")


def _kubevirt(kube, options):
    from .kubevirt.engine import KubevirtEngine

    return KubevirtEngine(kube, options)


def get_engine(name, kube, options=None):
    from .. import errors
    from .mtc.engine import MtcEngine

    options = options or {}
    if name == "mtc":
        return MtcEngine(kube, options)
    if name == "kubevirt":
        return _kubevirt(kube, options)
    if name == "auto":
        mtc = MtcEngine(kube, options)
        return mtc if mtc.usable() else _kubevirt(kube, options)
    raise errors.BadInput(f"unknown engine {name!r}", "use --engine mtc, kubevirt or auto")
