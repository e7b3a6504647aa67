"""`kubectl vm-storage status [PLAN|VM] [-n NS | -A] [-w] [-o table|wide|json|yaml] [-f FILE…]`.

Every engine's migrations, one row per VM disk. Live: a constant number of LISTs (each engine's
``fetch_objects``, engines/<name>/progress.py). ``-f``: the same output computed from files (a dump, a
must-gather), with no API call and no kubeconfig needed. ``-w``: follows until every shown migration
ended (render.follow); the engines read through watchcache.CachedReads, so each of those LISTs is made once and
then kept current by a WATCH: idle, no request per refresh whatever the number of VMs. Ctrl-C stops watching only.
"""
import sys
import time

import click

from ..cli import connection_options
from ..completion_sources import complete_plans
from ..streams import IOStreams

OUTPUTS = ("table", "wide", "json", "yaml")


def from_files(files, namespace=None, name=None):
    """Migrations computed from -f files or must-gather directories (no API call; shared with tests)."""
    from .. import dumps

    return from_objects(dumps.load(files), namespace, name)


def from_objects(objects, namespace=None, name=None):
    """Every registered engine reads the pile (pure)."""
    from .. import engines
    from .. import progress as P

    ms = [m for _, cls in engines.classes() for m in cls.migrations(objects, namespace)]
    return P.select(P.without_shadowed(ms), name)


def _named(obj, name, namespace):
    meta = obj.get("metadata") or {}
    return meta.get("name") == name and (namespace is None or (meta.get("namespace") or "default") == namespace)


def _live_vms_named(kube, name, namespace, all_namespaces):
    """The VM(s) called ``name`` (one GET, or one LIST with -A); none when KubeVirt is not installed."""
    from .. import errors
    from .. import resources as R

    try:
        if not all_namespaces:
            vm = kube.get_or_none(R.VM, name, namespace)
            return [vm] if vm else []
        return [v for v in kube.items(R.VM, None, all_namespaces=True) if _named(v, name, None)]
    except errors.NotFound:
        return []


class LiveSource:
    """fetch() for the live cluster: every engine, VMs listed once per refresh (or less when watching)."""

    def __init__(self, kube, namespace, all_namespaces, options=None, vm_cache_seconds=0.0, err=None,
                 with_sizes=None):
        self.kube, self.namespace, self.all = kube, namespace, all_namespaces
        self.options = dict(options or {})
        self.vm_cache_seconds = vm_cache_seconds
        self.with_sizes = bool(vm_cache_seconds) if with_sizes is None else with_sizes
        self.err = err or sys.stderr
        self._vms, self._vms_at, self._warned = None, None, set()
        self._sizes = {}  # (namespace, PVC) -> bytes, refreshed with the VMs, only while watching (the view's bytes)

    def _vm_list(self):
        from .. import errors
        from .. import resources as R

        now = time.monotonic()
        if self._vms is None or now - self._vms_at >= self.vm_cache_seconds:
            try:
                self._vms = self.kube.items(R.VM, None if self.all else self.namespace, all_namespaces=self.all)
            except errors.NotFound:  # KubeVirt not installed: rows without VM names
                self._vms = []
            self._vms_at = now
            if self.with_sizes:
                self._sizes = self._pvc_sizes()
        return self._vms

    def _pvc_sizes(self):
        """One PVC LIST: status.capacity (else the request) of each claim, so the view can show bytes."""
        from .. import errors
        from .. import resources as R
        from ..inventory import parse_quantity

        try:
            pvcs = self.kube.items(R.PVC, None if self.all else self.namespace, all_namespaces=self.all)
        except (errors.NotFound, errors.Forbidden):
            return {}
        out = {}
        for p in pvcs:
            size = ((p.get("status") or {}).get("capacity") or {}).get("storage") or \
                (((p.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
            out[((p.get("metadata") or {}).get("namespace"), (p.get("metadata") or {}).get("name"))] = \
                parse_quantity(size)
        return out

    def _with_sizes(self, ms):
        for m in ms:
            for d in m.get("disks") or []:
                size = self._sizes.get((m.get("namespace"), d.get("sourcePVC")))
                if size:
                    d["_sizeBytes"] = size
        return ms

    def _warn_once(self, message):
        if message not in self._warned:
            self._warned.add(message)
            self.err.write(f"warning: {message}\n")

    def __call__(self):
        import datetime

        from .. import engines, errors
        from .. import progress as P
        from ..engines.base import StatusScope

        ns = None if self.all else self.namespace
        scope = StatusScope(ns, self.all, self.options)
        read, said = [], []
        for _, cls in engines.classes():
            try:
                read.append((cls, cls.fetch_objects(self.kube, scope)))
            except errors.Forbidden as exc:  # e.g. a user bound to another engine's roles only
                said.append(f"cannot read {cls.status_subject}: {exc.message}")
        if not read:
            # No engine's objects may be read at all: a refusal, as `kubectl get` answers it (exit 7), not an
            # empty answer. One engine refused while others answer: a warning, their migrations still show.
            raise errors.Forbidden("; ".join(said), status=403)
        for message in said:
            self._warn_once(message)
        vms = self._vm_list() if any(objs for _, objs in read) else []
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        ms = [m for cls, objs in read for m in cls.migrations(objs + vms, ns, now=now)]
        return self._with_sizes(P.without_shadowed(ms))


class StatusOptions:
    """status's flags, then validate → run (the connection is completed inside run: -f needs none)."""

    def __init__(self, conn, name, watch, output, files, mtc_namespace, interval, all_namespaces, streams=None):
        self.conn, self.name, self.watch, self.output, self.files = conn, name, watch, output, files
        self.mtc_namespace, self.interval, self.all_namespaces = mtc_namespace, interval, all_namespaces
        self.streams = streams or IOStreams.system()

    def validate(self):
        from .. import errors

        if self.all_namespaces and self.conn.namespace:
            raise errors.BadInput("-n and -A cannot be used together", "pass one of them")
        if self.files and self.watch:
            raise errors.BadInput("-w cannot be used with -f", "files do not change; drop -w")
        return self

    def _no_migration(self, vms):
        """``status VM`` for a VM nothing moves: say so (exit 0); -o json|yaml still prints the document."""
        from .. import render

        for vm in vms:
            meta = vm.get("metadata") or {}
            self.streams.err.write(f"VM {meta.get('name')} in namespace {meta.get('namespace') or 'default'}: "
                                   "no storage migration\n")
        if self.output in ("json", "yaml"):
            render.show([], self.output, out=self.streams.out, err=self.streams.err)

    def _show(self, ms, namespace, all_namespaces):
        from .. import render

        render.show(ms, self.output, out=self.streams.out, err=self.streams.err, namespace=namespace,
                    all_namespaces=all_namespaces, name=self.name)

    def run(self):
        from .. import errors

        conn, name = self.conn, self.name
        if self.files:
            from .. import dumps

            objects = dumps.load(self.files)
            ns = None if self.all_namespaces else conn.namespace
            ms = from_objects(objects, namespace=ns, name=name)
            if name and not ms:
                vms = [o for o in objects if o.get("kind") == "VirtualMachine" and _named(o, name, ns)]
                if not vms:
                    raise errors.NotFoundInput(f"no migration of plan or VM {name!r} in the given files",
                                               "run 'status -f FILE' without a name to list them")
                self._no_migration(vms)
                return
            self._show(ms, conn.namespace, not conn.namespace)
            return
        from ..kube import Kube

        # While watching, the follow loop does the reconnecting (bounded, with a message): few client retries.
        kube = Kube.connect(conn, **({"retries": 1, "on_retry": lambda message: None} if self.watch else {}))
        if self.watch:
            from ..watchcache import CachedReads

            reads = CachedReads(kube)  # every LIST once, then its WATCH: a refresh costs no request
            try:
                self._run_live(reads, name)
            finally:
                reads.close()
                import gc

                # The stores hold every object read (at 1 000 VMs a million dicts): the interpreter's last
                # collection at exit walked them for seconds after Ctrl-C (measured: 1.4 s idle, 9 s loaded).
                # Frozen objects are left out of collections; the process ends right after this command.
                gc.freeze()
        else:
            self._run_live(kube, name)

    def _run_live(self, kube, name):
        from .. import errors, render
        from .. import progress as P

        ns = None if self.all_namespaces else kube.namespace
        # While watching, the VMs and PVCs (the view's bytes) are read at each refresh too: from the watched stores.
        source = LiveSource(kube, ns, self.all_namespaces, {"mtc_namespace": self.mtc_namespace},
                            err=self.streams.err, with_sizes=self.watch)

        def fetch():
            return P.select(source(), name)

        first = fetch()
        if name and not first:
            vms = _live_vms_named(kube, name, ns, self.all_namespaces)
            if vms:
                self._no_migration(vms)
                return
            raise errors.NotFoundInput(f"no migration of plan or VM {name!r} in "
                                       + ("any namespace" if self.all_namespaces else f"namespace {ns}"),
                                       "list them with 'kubectl vm-storage status"
                                       + (" -A'" if not self.all_namespaces else "'"))
        if not self.watch or not first:
            self._show(first, ns, self.all_namespaces)
            return
        pending = [first]

        def fetch_following():
            return pending.pop() if pending else fetch()

        final = render.follow(fetch_following, output=self.output, interval=self.interval,
                              out=self.streams.out, err=self.streams.err, wait=getattr(kube, "wait", None))
        # Like `migrate --wait`, a followed watch ends with the result's exit code, so scripts can rely on it.
        final = [m for m in final if not m.get("_superseded")]  # a plan's earlier runs do not decide the exit code
        failed = [m for m in final if m.get("result") == P.FAILED]
        if failed:
            disks = [f"{d['vm']}/{d['volume']}" for m in failed for d in P.failed_disks(m)]
            raise errors.MigrationFailed(f"{len(failed)} migration(s) failed"
                                         + (f" (disks: {', '.join(disks)})" if disks else ""))
        canceled = [m["plan"] for m in final if m.get("result") == P.CANCELED]
        if canceled:
            raise errors.MigrationCanceled(f"migration(s) canceled: {', '.join(canceled)}")


@click.command("status")
@click.argument("name", required=False, metavar="[PLAN|VM]", shell_complete=complete_plans)
@click.option("-w", "--watch", is_flag=True,
              help="Follow progress until the migrations end (Ctrl-C stops watching only).")
@click.option("-o", "--output", type=click.Choice(OUTPUTS), default="table", show_default=True, help="Output format.")
@click.option("-f", "--filename", "files", multiple=True, metavar="FILE|DIR",
              help="Compute the status from YAML/JSON files (a List or several documents) or a must-gather "
                   "directory (read recursively), with no API call.")
@click.option("--mtc-namespace", metavar="NS", help="MTC's namespace: only openshift-migration is reconciled.")
@click.option("--interval", type=click.FloatRange(0.5, 300), default=3.0, show_default=True,
              help="Seconds between refreshes with -w.")
@connection_options(all_namespaces=True)
def command(conn, name, watch, output, files, mtc_namespace, interval, all_namespaces):
    """Show per-disk progress of migrations (every engine).

    \b
    With -w the exit code is the result's: 0 succeeded, 4 failed, 5 canceled.

    \b
    Examples:
      kubectl vm-storage status                      # migrations in the current namespace
      kubectl vm-storage status my-vm -w             # follow one VM's disks to the end
      kubectl vm-storage status -A -o json           # the stable JSON contract, all namespaces
      kubectl vm-storage status -f must-gather.yaml  # offline, from a dump
      kubectl vm-storage status -f must-gather.local.123/  # offline, from a must-gather directory
    """
    StatusOptions(conn, name, watch, output, files, mtc_namespace, interval, all_namespaces).validate().run()
