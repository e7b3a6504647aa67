"""`kubectl vm-storage rollback PLAN`: an engine-side rollback migration (engines supporting "rollback"),
after confirmation."""
import click

from ..cli import connection_options
from ..completion_sources import complete_plans
from ..streams import IOStreams


class RollbackOptions:
    def __init__(self, conn, plan, mtc_namespace, yes, dry_run, wait, streams=None):
        self.conn, self.plan, self.mtc_namespace = conn, plan, mtc_namespace
        self.yes, self.dry_run, self.wait = yes, dry_run, wait
        self.streams = streams or IOStreams.system()
        self.engine = None

    def complete(self):
        from .. import engines
        from ..engines.base import ROLLBACK
        from ..kube import Kube

        kube = Kube.connect(self.conn)
        able = [n for n, cls in engines.classes() if ROLLBACK in cls.supports]
        self.engine = engines.get_engine(able[0], kube, {"mtc_namespace": self.mtc_namespace})
        if self.wait is None:
            self.wait = self.streams.out_is_terminal()
        return self

    def validate(self):
        return self

    def run(self):
        from .. import errors
        from .. import progress as P

        eng, out = self.engine, self.streams.out
        target = eng.rollback_target(self.plan)
        pname = target["plan"]
        if not self.yes and self.dry_run == "none":
            if not self.streams.interactive():
                raise errors.PreflightRefused(target["question"].split("?")[0] + " needs confirmation",
                                              "re-run with --yes (nothing was changed)")
            if not click.confirm(target["question"], default=False, err=True):
                raise errors.PreflightRefused("not confirmed; nothing was changed", None)
        ref = eng.rollback(pname, dry_run_server=self.dry_run == "server")
        if self.dry_run == "server":
            out.write(f"{ref['object']} created (server dry run)\n")
            return
        out.write(f"{ref['object']} {'created' if ref['created'] else 'already exists'}\n")
        if not self.wait:
            return
        from .. import render

        final = render.follow(lambda: [m for m in eng.read(namespace=target["namespace"]) if m.get("plan") == pname
                                       and m.get("_migration") in (None, ref["migration"])],
                              out=out, err=self.streams.err)
        result = final[-1]["result"] if final else P.RUNNING  # the engine's one verdict, as status shows it
        if result == P.SUCCEEDED:
            return
        if result == P.CANCELED:
            raise errors.MigrationCanceled(f"rollback {ref['migration']} was canceled")
        last = final[-1] if final else {}
        why = last.get("_verdict") or "; ".join(last.get("_errors") or []) or "see status"
        raise errors.MigrationFailed(f"rollback {ref['migration']} {result.lower()}: {why}",
                                     f"details: kubectl vm-storage status {pname}")


@click.command("rollback")
@click.argument("plan", shell_complete=complete_plans)
@click.option("--mtc-namespace", metavar="NS", help="MTC's namespace: only openshift-migration is reconciled.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", "dry_run", type=click.Choice(("none", "server")), default="none", show_default=True)
@click.option("--wait/--detach", "wait", default=None, help="Follow progress to the end (default on a terminal).")
@connection_options()
def command(conn, plan, mtc_namespace, yes, dry_run, wait):
    """Roll back the last migration of PLAN (a MigPlan name, or the namespace it covers).

    VMs go back to their source volumes; the new volumes are deleted by MTC. Data written on the new
    volumes of VMs that were stopped is lost (MTC copies back only live-migrated VMs).
    """
    RollbackOptions(conn, plan, mtc_namespace, yes, dry_run, wait).complete().validate().run()
