"""`kubectl vm-storage version`: client version, then the server's; fails as `kubectl version` does."""
import sys

import click

from ..cli import connection_options
from ..streams import IOStreams, write_document


class VersionOptions:
    def __init__(self, conn, client_only, output, streams=None):
        self.conn, self.client_only, self.output = conn, client_only, output
        self.streams = streams or IOStreams.system()
        self.info, self.problem = {}, None

    def complete(self):
        """Ask the server, unless --client. Like `kubectl version`, a server that cannot be asked (no cluster,
        bad credentials, TLS failure) is an error, raised by ``run`` after the client version is printed."""
        from .. import __version__, errors

        self.info = {"clientVersion": {"version": __version__, "python": sys.version.split()[0]}}
        if not self.client_only:
            from ..kube import Kube

            try:
                kube = Kube.connect(self.conn, retries=0)
                self.info["serverVersion"] = kube.server_version()
            except errors.VmStorageError as exc:
                self.problem = exc
        return self

    def run(self):
        out, info = self.streams.out, self.info
        if self.output == "text":
            out.write(f"Client Version: {info['clientVersion']['version']} "
                      f"(python {info['clientVersion']['python']})\n")
            if "serverVersion" in info:
                out.write(f"Server Version: {info['serverVersion'].get('gitVersion', 'unknown')}\n")
        else:
            write_document(info, self.output, out)
        if self.problem is not None:
            raise self.problem


@click.command("version")
@click.option("--client", "client_only", is_flag=True, help="Print the client version only (no API call).")
@click.option("-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text", help="Output format.")
@connection_options()
def command(conn, client_only, output):
    """Print the client version and the server version (fails, after the client version, when the server
    cannot be asked, as `kubectl version` does)."""
    VersionOptions(conn, client_only, output).complete().run()
