"""`kubectl vm-storage version`: client version, and the server's when it is reachable."""
import json
import sys

import click

from ..cli import connection_options


@click.command("version")
@click.option("--client", "client_only", is_flag=True, help="Print the client version only (no API call).")
@click.option("-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text", help="Output format.")
@connection_options(namespace=False)
def command(conn, client_only, output):
    """Print the client version and, when a cluster is reachable, the server version."""
    from .. import __version__, errors

    info = {"clientVersion": {"version": __version__, "python": sys.version.split()[0]}}
    problem = None
    if not client_only:
        from ..kube import Kube

        try:
            kube = Kube.connect(conn, retries=0)
            info["serverVersion"] = kube.server_version()
        except errors.BadInput as exc:
            problem = exc.line()
        except errors.ApiError as exc:
            problem = exc.line()
    if output == "text":
        click.echo(f"Client Version: {__version__} (python {info['clientVersion']['python']})")
        if "serverVersion" in info:
            click.echo(f"Server Version: {info['serverVersion'].get('gitVersion', 'unknown')}")
        elif not client_only:
            click.echo("Server Version: unavailable (cluster not reachable)")
    else:
        if problem:
            info["serverError"] = problem
        if output == "json":
            click.echo(json.dumps(info, indent=2))
        else:
            import yaml

            click.echo(yaml.safe_dump(info, sort_keys=False), nl=False)
    if problem:
        click.echo(f"warning: server version unavailable: {problem}", err=True)
