"""`kubectl vm-storage rollback PLAN`: an MTC rollback migration, after confirmation."""
import sys

import click

from ..cli import connection_options
from ..completion_sources import complete_plans


@click.command("rollback")
@click.argument("plan", shell_complete=complete_plans)
@click.option("--mtc-namespace", metavar="NS", help="MTC's namespace (default: where the host MigCluster is).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", "dry_run", type=click.Choice(("none", "server")), default="none", show_default=True)
@click.option("--wait/--detach", "wait", default=None, help="Follow progress to the end (default on a terminal).")
@connection_options()
def command(conn, plan, mtc_namespace, yes, dry_run, wait):
    """Roll back the last migration of PLAN (a MigPlan name, or the namespace it covers).

    VMs go back to their source volumes; the new volumes are deleted by MTC. Data written on the new
    volumes of VMs that were stopped is lost (MTC copies back only live-migrated VMs).
    """
    from .. import errors
    from .. import progress as P
    from ..engines.mtc.engine import MtcEngine
    from ..kube import Kube

    kube = Kube.connect(conn)
    eng = MtcEngine(kube, {"mtc_namespace": mtc_namespace})
    if not eng.locate()["installed"]:
        raise errors.PreflightRefused("MTC is not installed; rollback is an MTC feature",
                                      "for --engine kubevirt migrations use 'cancel'")
    plan_obj = eng.find_plan(plan)
    pname = plan_obj["metadata"]["name"]
    allowed, _ = kube.can_i("create", "migmigrations", "migration.openshift.io", eng.mtc_namespace)
    if not allowed:
        raise errors.Forbidden(f"forbidden: create migmigrations.migration.openshift.io in {eng.mtc_namespace}",
                               status=403, hint="ask a cluster admin for this permission (see README, RBAC)")
    if not yes and dry_run == "none":
        msg = (f"Roll back MigPlan {eng.mtc_namespace}/{pname}? VMs return to their source volumes and MTC "
               "deletes the migrated volumes")
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise errors.PreflightRefused(msg.split("?")[0] + " needs confirmation",
                                          "re-run with --yes (nothing was changed)")
        if not click.confirm(msg, default=False, err=True):
            raise errors.PreflightRefused("not confirmed; nothing was changed", None)
    name, created = eng.rollback(pname, dry_run_server=dry_run == "server")
    if dry_run == "server":
        click.echo(f"migmigration.migration.openshift.io/{name} created (server dry run)")
        return
    click.echo(f"migmigration.migration.openshift.io/{name} {'created' if created else 'already exists'}")
    if wait is None:
        wait = sys.stdout.isatty()
    if not wait:
        return
    from .. import render

    namespaces = (plan_obj.get("spec") or {}).get("namespaces") or [None]
    ns = str(namespaces[0]).split(":")[0]
    final = render.follow(lambda: [m for m in eng.read(namespace=ns) if m.get("plan") == pname])
    result = final[0]["result"] if final else P.RUNNING
    strict, message, _ = eng.result(name)
    if result == P.SUCCEEDED and strict == P.SUCCEEDED:
        return
    if P.CANCELED in (result, strict):
        raise errors.MigrationCanceled(f"rollback {name} was canceled")
    raise errors.MigrationFailed(f"rollback {name} {strict.lower()}: {message}",
                                 f"details: kubectl vm-storage status {pname}")
