"""`kubectl vm-storage cancel PLAN`: stop a running migration, as the engine that made it defines cancel."""
import click

from .. import engines
from ..cli import connection_options
from ..completion_sources import complete_plans
from ..streams import IOStreams


class CancelOptions:
    def __init__(self, conn, plan, engine, mtc_namespace, streams=None):
        self.conn, self.plan, self.engine, self.mtc_namespace = conn, plan, engine, mtc_namespace
        self.streams = streams or IOStreams.system()
        self.kube = self.namespace = None

    def complete(self):
        from ..kube import Kube

        self.kube = Kube.connect(self.conn)
        self.namespace = self.conn.namespace or self.kube.namespace
        return self

    def validate(self):
        return self  # click's Choice already judged --engine; the engine judges PLAN

    def resolve(self):
        """The typed engine; for auto the first that made ``plan``, else auto's usual choice."""
        options = {"mtc_namespace": self.mtc_namespace, "echo": self.streams.say}
        if self.engine == engines.AUTO:
            for eng in engines.candidates(engines.AUTO, self.kube, options):
                if eng.owns(self.plan, self.namespace):
                    return eng
        return engines.get_engine(self.engine, self.kube, options)

    def run(self):
        line = self.resolve().cancel(self.plan, self.namespace)
        self.streams.out.write(line + "\n")


@click.command("cancel")
@click.argument("plan", shell_complete=complete_plans)
@click.option("--engine", type=click.Choice(engines.choices()), default=engines.AUTO, show_default=True,
              help="Which engine made the migration (auto: the one that owns PLAN).")
@click.option("--mtc-namespace", metavar="NS", help="MTC's namespace: only openshift-migration is reconciled.")
@connection_options()
def command(conn, plan, engine, mtc_namespace):
    """Cancel the running migration of PLAN (a migration name, or the namespace an MTC plan covers).

    The controller stops the copy and puts the VMs back on their source volumes; nothing is deleted.
    """
    CancelOptions(conn, plan, engine, mtc_namespace).complete().validate().run()
