"""`kubectl vm-storage version`: client version, then the server's; fails as `kubectl version` does.
The options and the run are in version_run.py (launch.py runs the plainest forms from there without click)."""
import click

from ..cli import connection_options
from .version_run import OUTPUTS, VersionOptions


@click.command("version")
@click.option("--client", "client_only", is_flag=True, help="Print the client version only (no API call).")
@click.option("-o", "--output", type=click.Choice(list(OUTPUTS)), default="text", help="Output format.")
@connection_options()
def command(conn, client_only, output):
    """Print the client version and the server version (fails, after the client version, when the server
    cannot be asked, as `kubectl version` does)."""
    VersionOptions(conn, client_only, output).complete().run()
