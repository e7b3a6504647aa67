"""`kubectl vm-storage cancel PLAN`: stop a running migration (MTC: spec.canceled on the MigMigration)."""
import click

from ..cli import connection_options
from ..completion_sources import complete_plans


@click.command("cancel")
@click.argument("plan", shell_complete=complete_plans)
@click.option("--engine", type=click.Choice(("mtc", "kubevirt", "auto")), default="auto", show_default=True,
              help="Which engine made the migration.")
@click.option("--mtc-namespace", metavar="NS", help="MTC's namespace (default: where the host MigCluster is).")
@connection_options()
def command(conn, plan, engine, mtc_namespace):
    """Cancel the running migration of PLAN (a MigPlan name, or the namespace it covers).

    The controller stops the copy and puts the VMs back on their source volumes; nothing is deleted.
    """
    from .. import errors
    from ..engines import get_engine
    from ..kube import Kube

    kube = Kube.connect(conn)
    if engine == "auto":
        from .. import resources as R
        from ..engines.kubevirt.build import record_name

        # A kubevirt-engine migration is known by its record ConfigMap; auto would otherwise pick MTC.
        if kube.get_or_none(R.CONFIGMAP, record_name(plan), conn.namespace or kube.namespace) is not None:
            engine = "kubevirt"
    eng = get_engine(engine, kube, {"mtc_namespace": mtc_namespace})
    if eng.name == "mtc" and not eng.locate()["installed"]:
        raise errors.PreflightRefused("MTC is not installed", "use --engine kubevirt for direct migrations")
    if eng.name == "mtc":
        name = eng.cancel(plan)
        click.echo(f"migmigration.migration.openshift.io/{name} cancel requested "
                   f"(follow with: kubectl vm-storage status {plan} -w)")
    else:
        eng.cancel(plan, conn.namespace or kube.namespace)
        click.echo(f"migration {plan} cancel requested")
