"""The one interface every engine implements (the commands see nothing else), and what they hand it.

An engine is a package ``engines/<name>/`` whose ``surface.py`` holds an ``Engine`` subclass, plus one line in
``engines/__init__.py``'s ``REGISTRY``. A command never names an engine: it resolves ``--engine`` (``auto`` asks
each registered engine in turn whether it ``declined()``), checks what the request needs against the resolved
engine's ``supports`` and then calls the methods below. Pure rules stay in the engine's own modules
(``build``/``checks``/``progress``); a surface is the glue that reads, writes and calls them.

Everything here is light to import (dataclasses and typing only): ``--help`` imports no engine.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Dict, FrozenSet, List, Optional, Tuple

# What an engine can do beyond "move disks". A request that needs a capability the resolved engine lacks is
# refused before anything is read from the cluster, or right after ``auto`` picked the engine.
LIVE, OFFLINE = "live", "offline"
STAGE, HOOKS, VERIFY = "stage", "hooks", "verify"          # a repeatable pre-copy; attach MigHooks; rsync --checksum
STOP, KEEP_UPDATE_STRATEGY = "stop", "keep-update-strategy"  # stop running VMs for an offline copy; leave the strategy
ROLLBACK = "rollback"                                       # an engine-side undo of a finished migration

# request attribute -> (capability it needs, the flag the user typed)
FLAG_CAPABILITIES = (("stage", STAGE, "--stage"), ("hooks", HOOKS, "--hook"), ("verify", VERIFY, "--verify"),
                     ("stop", STOP, "--stop"), ("keep_update_strategy", KEEP_UPDATE_STRATEGY,
                                                "--keep-update-strategy"))

Events = Callable[[str], None]  # progress lines for the user (stderr); engines never write to sys.std* themselves


def progress_of(events) -> Callable[[str], None]:
    """``events.progress(migration)`` when the caller shows a live view (view/follow.py ``ViewEvents``), else a
    no-op. An engine whose ``apply`` drives the migration itself until it ends (the kubevirt engine with
    ``request.wait``) calls it after each pass, so the same view as ``status -w`` re-reads and redraws;
    its progress lines (``events(line)``) then become the view's last line instead of stderr lines."""
    return getattr(events, "progress", None) or (lambda migration: None)


@dataclass(frozen=True)
class Permission:
    """One API call an engine makes: checked with a SelfSubjectAccessReview and granted by deploy/rbac/.
    ``scope``: "namespace" (the VMs'), "cluster", or an engine's own namespace (MTC's "mtc")."""
    verb: str
    group: str
    resource: str
    scope: str
    subresource: Optional[str] = None


@dataclass
class MigrationRequest:
    """What the user asked, independent of the engine (migrate/check flags)."""
    target_storage_class: str = ""
    mode: str = "auto"                      # live | offline | auto
    stage: bool = False
    hooks: Tuple[Tuple[str, str], ...] = ()  # (MigHook name, phase)
    verify: bool = False
    stop: bool = False
    keep_update_strategy: bool = False
    access_mode: Optional[str] = None
    volume_mode: Optional[str] = None
    wait: bool = False
    dry_run: str = "none"                   # none | client | server
    show_events: bool = True                # -o table: say each step on stderr

    @property
    def kind(self) -> str:
        return "stage" if self.stage else "cutover"

    def needs(self) -> List[Tuple[str, str]]:
        """[(capability, flag)] this request needs beyond moving disks."""
        return [(cap, flag) for attr, cap, flag in FLAG_CAPABILITIES if getattr(self, attr)]


@dataclass
class Existing:
    """What a re-run of the same command finds (every disk is already on the target):
    ``ref`` = a finished or running migration to attach to; ``plan`` = apply this plan again (the engine resumes)."""
    ref: Optional[dict] = None
    plan: Optional[dict] = None
    message: str = ""


@dataclass
class StatusScope:
    namespace: Optional[str] = None
    all_namespaces: bool = False
    options: Dict[str, object] = field(default_factory=dict)


class Engine(ABC):
    name: ClassVar[str]
    title: ClassVar[str]                     # one line for --help, e.g. "MTC (MigPlan/MigMigration)"
    supports: ClassVar[FrozenSet[str]] = frozenset({LIVE, OFFLINE})
    picked: Optional[str] = None             # set by engines.get_engine for auto: which engine and why
    chosen_because: Optional[str] = None     # declined() may set it: what it found that makes it usable
    status_subject: ClassVar[str]            # what status cannot show when fetch_objects is Forbidden
    def __init__(self, kube, options: Optional[dict] = None):
        self.kube = kube                     # None with --local (no API call at all)
        self.options = dict(options or {})

    # ---- choosing an engine ------------------------------------------------------------------------
    @abstractmethod
    def declined(self, objects: Optional[Dict[str, list]] = None) -> Optional[str]:
        """None when ``--engine auto`` should use this engine, else why not (one line). ``objects``: the
        objects read from -f files with --local (then ``self.kube`` is None)."""

    @classmethod
    def parse_hooks(cls, specs) -> List[Tuple[str, str]]:
        """``--hook`` values -> [(name, phase)]; ValueError names the bad one. Engines with HOOKS override it."""
        if specs:
            raise ValueError(f"the {cls.name} engine runs no hooks")
        return []

    # ---- preflight ---------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def permissions(cls, write: bool = True) -> List[Permission]:
        """Every API call of this engine (all verbs). deploy/rbac/<name>-engine.yaml grants exactly these."""

    @abstractmethod
    def naming(self, namespace: str, target_storage_class: str) -> Callable[[dict], str]:
        """disk facts (inventory) -> destination claim name."""

    @abstractmethod
    def checks(self, plan: dict, inventory: dict, request: MigrationRequest, objects: Dict[str, list],
               write: bool = True) -> List[dict]:
        """Every finding for this plan (the plan's own mode findings included), in display order."""

    def existing(self, request: MigrationRequest, namespace: str, vm_names: List[str]) -> Optional[Existing]:
        """A migration of this very request made by an earlier run, else None."""
        return None

    # ---- writing -----------------------------------------------------------------------------------
    @abstractmethod
    def preview(self, plan: dict, request: MigrationRequest, objects: Dict[str, list],
                checks: List[dict]) -> dict:
        """``{"objects", "patches", "checks"}`` without writing (``checks`` merged into the preview's own)."""

    @abstractmethod
    def apply(self, plan: dict, request: MigrationRequest, events: Events) -> dict:
        """Create (or adopt) what the migration needs; idempotent. Returns a reference dict with at least
        ``migration`` and ``plan`` (the name ``status`` shows)."""

    # Optional: ``apply_fleet(plans, request, events) -> [reference dict]`` - ``migrate -A``'s every namespace at
    # once. An engine that offers it gets ONE call with every namespace's prepared plan (after every namespace's
    # preflight and the fleet's one confirmation) and owns the fleet's throttle: never more than the request's
    # ``--parallel`` copies in flight across all namespaces (``--max-per-node`` per node, nodes being
    # cluster-wide), the next VM of any namespace started as one ends, namespaces overlapping - itself or by
    # handing the fleet to one controller (migration-controller: one MultiNamespace plan). It returns one
    # reference per plan as ``apply`` does - a list in the plans' order, or a dict by namespace - and is as
    # idempotent as ``apply`` (re-running the command re-attaches to what an earlier run made, redoes nothing
    # finished). ``events`` are progress lines. An engine that drives the migrations itself (kubevirt) returns,
    # with ``request.wait``, once every plan ended (each reference's ``result`` final) and, when the caller shows
    # a live view, hands ``events.show(migrations)`` the fleet's Migration dicts after each pass, so following
    # costs no request of its own; a reference whose ``result`` is absent or Running is followed as after
    # ``apply``. An engine without ``apply_fleet`` is applied namespace after namespace (commands/migrate_fleet.py:
    # e.g. MTC, one MigPlan per namespace).

    # ---- reading -----------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def fetch_objects(cls, kube, scope: StatusScope) -> List[dict]:
        """The constant-size LISTs ``migrations()`` needs (VMs excepted: the caller adds them once). Returns []
        when the engine's kinds are not served (``status`` asks every registered engine). Forbidden is raised:
        ``status`` turns it into "cannot read <status_subject>" and still shows the other engines'."""

    @classmethod
    @abstractmethod
    def migrations(cls, objects: List[dict], namespace: Optional[str], now: Optional[str] = None) -> List[dict]:
        """Pure: objects -> ``Migration`` dicts (the ``status -o json`` contract). Each ``result`` comes from the
        engine's one verdict function, so ``status`` and ``migrate --wait`` cannot disagree."""

    def read(self, namespace: Optional[str] = None, name: Optional[str] = None,
             all_namespaces: bool = False) -> List[dict]:
        """Live migrations of this engine (what ``migrate --wait`` follows)."""
        import datetime

        from .. import errors
        from .. import resources as R

        scope = StatusScope(namespace or self.kube.namespace, all_namespaces, self.options)
        objs = self.fetch_objects(self.kube, scope)
        if objs:
            ns = None if all_namespaces else scope.namespace
            try:
                objs = objs + self.kube.items(R.VM, ns, all_namespaces=ns is None)
            except errors.NotFound:
                pass
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        out = self.migrations(objs, None if all_namespaces else scope.namespace, now=now)
        return [m for m in out if name is None or m.get("plan") == name]

    @classmethod
    def completion_objects(cls, kube) -> List[dict]:
        """Objects in ``kube.namespace`` whose ``labels.MIGRATION`` (else name) complete a migration name for
        cancel/status/rollback (one quick LIST; may raise ApiError, completion fails soft)."""
        return []

    # ---- after the fact ----------------------------------------------------------------------------
    @abstractmethod
    def owns(self, name: str, namespace: str) -> bool:
        """Did this engine make migration ``name`` (for ``cancel --engine auto``)?"""

    @abstractmethod
    def cancel(self, name: str, namespace: str) -> str:
        """Stop the migration as the engine's controller defines it; returns the line to print."""

    def rollback(self, name: str, dry_run_server: bool = False) -> dict:
        """Only engines whose ``supports`` holds ROLLBACK."""
        raise NotImplementedError


def unsupported(engine_cls, request: MigrationRequest, registry) -> Optional[Tuple[str, str]]:
    """(message, fix) for the first flag the engine cannot honour, else None."""
    for cap, flag in request.needs():
        if cap not in engine_cls.supports:
            able = [n for n, c in registry if cap in c.supports]
            fix = (f"use --engine {' or '.join(able)}, or drop {flag}" if able else f"drop {flag}")
            return f"{flag} is not supported by the {engine_cls.name} engine", fix
    return None
