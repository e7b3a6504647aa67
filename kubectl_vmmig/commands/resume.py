"""`kubectl vm-storage resume NAME`: finish the steps a `migrate --detach` (or an interrupted run) left for the
plugin. Only engines whose steps the plugin drives need it (kubevirt); others' controllers do the work."""
import click

from .. import engines, errors
from ..cli import connection_options
from ..completion_sources import complete_plans
from ..streams import IOStreams


@click.command("resume")
@click.argument("name", shell_complete=complete_plans)
@click.option("--engine", type=click.Choice(engines.choices()), default=engines.AUTO, show_default=True,
              help="Which engine made the migration (auto: the one that owns NAME).")
@connection_options()
def command(conn, name, engine):
    """Resume migration NAME and follow it to the end.

    kubevirt engine: creates what is missing, waits for the destination DataVolumes, swaps the volumes, stops and
    restarts VMs (--stop), and records the result. Exit codes as for migrate --wait.
    """
    from ..kube import Kube

    streams = IOStreams.system()
    kube = Kube.connect(conn)
    ns = conn.namespace or kube.namespace
    options = {"echo": streams.say, "wait": True}
    chosen = None
    for eng in engines.candidates(engine, kube, options):
        if eng.owns(name, ns):
            chosen = eng
            break
    if chosen is None:
        raise errors.NotFoundInput(f"no migration {name!r} in namespace {ns}",
                                   "list them with 'kubectl vm-storage status'")
    fn = getattr(chosen, "resume", None)
    if not callable(fn):
        raise errors.BadInput(f"migration {name} ({chosen.name} engine) needs no resume: its controller does the work",
                              f"follow it with 'kubectl vm-storage status {name} -n {ns} -w'")
    ref = fn(name, ns, streams.say)
    streams.out.write(f"migration {ref['migration']}: {ref['result']}\n")
    if ref["result"] == "Canceled":
        raise errors.MigrationCanceled(f"migration {ref['migration']} was canceled", None)
    if ref["result"] != "Succeeded":
        raise errors.MigrationFailed(f"migration {ref['migration']} failed: {ref.get('message') or ''}".rstrip(": "),
                                     f"details: kubectl vm-storage status {ref['migration']} -n {ns}")
