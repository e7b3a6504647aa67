"""`kubectl vm-storage version`: client version, then the server's; fails as `kubectl version` does."""
import json
import sys

import click

from ..cli import connection_options


@click.command("version")
@click.option("--client", "client_only", is_flag=True, help="Print the client version only (no API call).")
@click.option("-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text", help="Output format.")
@connection_options()
def command(conn, client_only, output):
    """Print the client version and the server version.

    Like `kubectl version`, the client version is printed first; when the server cannot be asked (no
    cluster, wrong credentials, TLS failure) the command then fails with the error and its exit code.
    """
    from .. import __version__, errors

    info = {"clientVersion": {"version": __version__, "python": sys.version.split()[0]}}
    problem = None
    if not client_only:
        from ..kube import Kube

        try:
            info["serverVersion"] = Kube.connect(conn, retries=0).server_version()
        except errors.VmStorageError as exc:
            problem = exc
    if output == "text":
        click.echo(f"Client Version: {__version__} (python {info['clientVersion']['python']})")
        if "serverVersion" in info:
            click.echo(f"Server Version: {info['serverVersion'].get('gitVersion', 'unknown')}")
    elif output == "json":
        click.echo(json.dumps(info, indent=2))
    else:
        import yaml

        click.echo(yaml.safe_dump(info, sort_keys=False), nl=False)
    if problem is not None:
        raise problem
