"""`kubectl vm-storage migrate VM… --to SC`: options → complete → validate → run.

The shared part (reading VMs and their volumes, the plan, the preflight) is ``prepare()``, also used by
``check``. Nothing is written before the preflight has passed; ``--dry-run=client`` and ``--local``
write nothing at all (``--local`` makes no API call).
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import click

from .. import engines
from ..cli import connection_options
from ..completion_sources import complete_storageclasses, complete_vms
from ..streams import IOStreams

MODES = ("live", "offline", "auto")
DRY_RUNS = ("none", "client", "server")
OUTPUTS = ("table", "wide", "json", "yaml")


@dataclass
class MigrateOptions:
    """The flags of ``migrate`` (and ``check``), then complete → validate → run (kubectl's command pattern)."""
    vms: Tuple[str, ...] = ()
    to: Optional[str] = None
    namespace: Optional[str] = None
    selector: Optional[str] = None
    all_: bool = False
    mode: str = "auto"
    engine: str = "auto"
    mtc_namespace: Optional[str] = None
    access_mode: Optional[str] = None
    volume_mode: Optional[str] = None
    verify: bool = False
    stage: bool = False
    hooks: Tuple[str, ...] = ()
    yes: bool = False
    dry_run: str = "none"
    output: str = "table"
    local: bool = False
    files: Tuple[str, ...] = ()
    wait: Optional[bool] = None
    stop: bool = False
    keep_update_strategy: bool = False
    all_namespaces: bool = False
    parallel: Optional[str] = None      # as typed; validate() -> parallel_n (None: from the KubeVirt CR)
    max_per_node: Optional[str] = None  # as typed; validate() -> max_per_node_n
    parallel_n: Optional[int] = None
    max_per_node_n: Optional[int] = None
    parsed_hooks: List[tuple] = field(default_factory=list)
    streams: Optional[IOStreams] = None

    @classmethod
    def from_flags(cls, conn, streams=None, **flags) -> "MigrateOptions":
        flags.setdefault("all_namespaces", False)
        return cls(namespace=conn.namespace, streams=streams or IOStreams.system(), **flags)

    @property
    def kind(self):
        return "stage" if self.stage else "cutover"

    def request(self, hooks_given=False):
        """The engine-independent request; ``hooks_given``: before the hooks are parsed, count the raw flags."""
        from ..engines.base import MigrationRequest

        hooks = tuple(self.parsed_hooks) or (tuple((h, "") for h in self.hooks) if hooks_given else ())
        return MigrationRequest(target_storage_class=self.to or "", mode=self.mode, stage=self.stage,
                                hooks=hooks, verify=self.verify, stop=self.stop,
                                keep_update_strategy=self.keep_update_strategy, access_mode=self.access_mode,
                                volume_mode=self.volume_mode, wait=bool(self.wait), dry_run=self.dry_run,
                                show_events=self.output in ("table", "wide"))

    def engine_options(self) -> dict:
        """What the engines are constructed with (each reads the keys it knows)."""
        return {"mtc_namespace": self.mtc_namespace, "verify": self.verify, "stop": self.stop,
                "access_mode": self.access_mode, "volume_mode": self.volume_mode, "wait": bool(self.wait),
                "keep_update_strategy": self.keep_update_strategy, "echo": self.streams.say,
                "parallel": self.parallel_n, "max_per_node": self.max_per_node_n}

    def throttle_from(self, kubevirt_cr):
        """--parallel/--max-per-node left out: KubeVirt's own limits (spec.configuration.migrations, defaults
        from kubevirt pkg/virt-config/virt-config.go: parallelMigrationsPerCluster 5,
        parallelOutboundMigrationsPerNode 2), so the plugin never queues more than KubeVirt would run."""
        from ..kubevirt_capabilities import migration_limits

        cluster, per_node = migration_limits(kubevirt_cr)
        if self.parallel_n is None:
            self.parallel_n = cluster
        if self.max_per_node_n is None:
            self.max_per_node_n = per_node
        return self

    def complete(self, conn):
        """Fill what the user left out from the environment."""
        if self.wait is None:
            self.wait = self.streams.out_is_terminal() and self.dry_run == "none"
        return self

    def validate(self):
        """Flag-level problems, before any connection: one line, the fix, nothing created."""
        from .. import errors
        from ..plan import ACCESS_MODES, VOLUME_MODES

        bad = errors.BadInput
        if not self.to:
            raise bad("missing --to STORAGECLASS", "name the destination StorageClass, e.g. --to fast")
        ways = sum([bool(self.vms), bool(self.selector), bool(self.all_)])
        if self.all_namespaces and not (self.selector or self.all_):
            raise bad("-A/--all-namespaces chooses VMs by label or all of them, not by name",
                      "add -l SELECTOR or --all (e.g. migrate -A -l app=db --to fast)")
        if self.all_namespaces and self.local:
            raise bad("-A is not read from -f files", "drop -A (the files' namespaces are used) or --local")
        self.parallel_n = _positive(self.parallel, "--parallel")
        self.max_per_node_n = _positive(self.max_per_node, "--max-per-node")
        if ways == 0:
            raise bad("no VM chosen", "name VMs, or use -l SELECTOR or --all")
        if ways > 1:
            raise bad("VM names, -l/--selector and --all are mutually exclusive", "use only one way to choose VMs")
        for v in list(self.vms) + [self.to]:
            if not _dns_name(v):
                raise bad(f"invalid name {v!r}", "names are lowercase letters, digits, '-' and '.' (DNS-1123)")
        if self.namespace is not None and not _dns_label(self.namespace):
            raise bad(f"invalid namespace {self.namespace!r}", "namespaces are DNS-1123 labels")
        if self.access_mode and self.access_mode not in ACCESS_MODES:
            raise bad(f"invalid --access-mode {self.access_mode!r}", f"use one of {', '.join(ACCESS_MODES)}")
        if self.volume_mode and self.volume_mode not in VOLUME_MODES:
            raise bad(f"invalid --volume-mode {self.volume_mode!r}", f"use one of {', '.join(VOLUME_MODES)}")
        if self.local and self.dry_run != "client":
            raise bad("--local only previews", "add --dry-run=client")
        if self.local and not self.files:
            raise bad("--local needs the objects from files", "add -f FILE (VMs, PVCs, DataVolumes, StorageClasses)")
        if self.files and not self.local:
            raise bad("-f is only read with --local", "add --local --dry-run=client")
        if self.engine != engines.AUTO:  # a typed engine is judged now; auto once it is resolved (prepare)
            engines.refuse_unsupported(engines.engine_class(self.engine), self.request(hooks_given=True))
        try:
            self.parsed_hooks = engines.parse_hooks(self.engine, self.hooks)
        except ValueError as exc:
            raise bad(str(exc), "e.g. --hook my-hook:preBackup") from None
        if self.mtc_namespace is not None and not _dns_label(self.mtc_namespace):
            raise bad(f"invalid --mtc-namespace {self.mtc_namespace!r}", "namespaces are DNS-1123 labels")
        return self

    def run(self, conn):
        from . import migrate_run

        if self.all_namespaces:
            from . import migrate_fleet

            return migrate_fleet.run(self, conn)
        migrate_run.run(self, conn)


def _positive(value, flag) -> Optional[int]:
    """A count flag: None when not given, else an integer >= 1 (one line and the fix otherwise)."""
    from .. import errors

    if value is None:
        return None
    text = str(value).strip()
    if not text.lstrip("-").isdigit():
        raise errors.BadInput(f"invalid {flag} {value!r}: not a number", f"use a whole number >= 1, e.g. {flag} 3")
    if int(text) < 1:
        raise errors.BadInput(f"invalid {flag} {value!r}: must be at least 1",
                              f"use a whole number >= 1, e.g. {flag} 3 (leave it out for KubeVirt's limit)")
    return int(text)


def _dns_label(s) -> bool:
    import re

    return bool(s) and len(s) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", s) is not None


def _dns_name(s) -> bool:
    import re

    return bool(s) and len(s) <= 253 and re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", s) is not None


def migrate_flags(fn):
    """The flags shared by migrate and check (check ignores the write-only ones)."""
    opts = [
        click.argument("vms", nargs=-1, shell_complete=complete_vms),
        click.option("--to", "to", metavar="STORAGECLASS", shell_complete=complete_storageclasses,
                     help="Destination StorageClass."),
        click.option("-l", "--selector", metavar="SELECTOR", help="Choose VMs by label selector."),
        click.option("--all", "all_", is_flag=True, help="All VMs of the namespace."),
        click.option("--mode", type=click.Choice(MODES), default="auto", show_default=True,
                     help="live: running VMs keep running; offline: VMs are stopped; auto: live where possible."),
        click.option("--engine", type=click.Choice(engines.choices()), default=engines.AUTO, show_default=True,
                     help="Which engine moves the disks; auto: the first available, in this order "
                          "(check says which)."),
        click.option("--mtc-namespace", metavar="NS", help="MTC's namespace: only openshift-migration is reconciled."),
        click.option("--access-mode", metavar="MODE",
                     help="Destination access mode (ReadWriteOnce, ReadWriteMany, ..., auto)."),
        click.option("--volume-mode", metavar="MODE", help="Destination volume mode (Filesystem, Block, auto)."),
        click.option("--stage", is_flag=True, help="MTC: a repeatable pre-copy instead of the cutover."),
        click.option("--hook", "hooks", multiple=True, metavar="NAME:PHASE",
                     help="MTC: attach an existing MigHook (preBackup, postBackup, preRestore, postRestore)."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


@click.command("migrate")
@migrate_flags
@click.option("--verify", is_flag=True, help="MTC: verify copied data (rsync --checksum, filesystem copies).")
@click.option("--stop", is_flag=True, help="kubevirt engine: stop running VMs for an offline copy, restart after.")
@click.option("--keep-update-strategy", is_flag=True,
              help="kubevirt engine: accepted for compatibility; spec.updateVolumesStrategy: Migration always stays "
                   "on running VMs (removing it makes KubeVirt mark them RestartRequired).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before stopping workloads.")
@click.option("--dry-run", "dry_run", type=click.Choice(DRY_RUNS), default="none", show_default=True,
              help="client: print what would be done; server: send the creates with dryRun=All.")
@click.option("-o", "--output", type=click.Choice(OUTPUTS), default="table", show_default=True,
              help="Output format (wide: every column of the live view).")
@click.option("--local", is_flag=True, help="With --dry-run=client -f: read objects from files, no API call.")
@click.option("-f", "--filename", "files", multiple=True, metavar="FILE", help="Objects for --local (YAML/JSON).")
@click.option("--wait/--detach", "wait", default=None,
              help="Follow progress to the end (default on a terminal), or return once the migration can go on "
                   "without the plugin. --detach leaves undone - mtc: nothing (MTC's controller does it all); "
                   "kubevirt: a stopped VM is pointed at its clones at once (CDI and KubeVirt finish); a running VM "
                   "whose destinations are not usable within ~10 s, and --stop's stop/restart, wait for "
                   "'kubectl vm-storage resume NAME' (printed, and shown by status).")
@click.option("--parallel", metavar="N",
              help="kubevirt engine: at most N VMs copy at once, the next starts as one ends (default: the "
                   "KubeVirt CR's parallelMigrationsPerCluster, 5).")
@click.option("--max-per-node", "max_per_node", metavar="N",
              help="kubevirt engine: at most N live moves leave one node at once (default: the KubeVirt CR's "
                   "parallelOutboundMigrationsPerNode, 2).")
@connection_options(all_namespaces=True)
def command(conn, **flags):
    """Move the disks of VMs to another StorageClass.

    \b
    Examples:
      kubectl vm-storage migrate vm1 vm2 --to fast --dry-run=client
      kubectl vm-storage migrate -l app=db --to fast --mode live --yes
      kubectl vm-storage migrate --all --to fast --engine mtc --stage
      kubectl vm-storage migrate -A -l tier=db --to fast --parallel 3
      kubectl vm-storage migrate vm1 --to fast --local -f vm1.yaml --dry-run=client -o yaml
    """
    opts = MigrateOptions.from_flags(conn, **flags)
    opts.complete(conn)
    opts.validate()
    opts.run(conn)
