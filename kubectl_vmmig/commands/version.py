"""`kubectl vm-storage version`: client version, and the server's when it is reachable."""
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
        """Ask the server, unless --client; an unreachable server is a warning, not an error (as kubectl)."""
        from .. import __version__, errors

        self.info = {"clientVersion": {"version": __version__, "python": sys.version.split()[0]}}
        if not self.client_only:
            from ..kube import Kube

            try:
                kube = Kube.connect(self.conn, retries=0)
                self.info["serverVersion"] = kube.server_version()
            except (errors.BadInput, errors.ApiError) as exc:
                self.problem = exc.line()
        return self

    def run(self):
        out, info = self.streams.out, self.info
        if self.output == "text":
            out.write(f"Client Version: {info['clientVersion']['version']} "
                      f"(python {info['clientVersion']['python']})\n")
            if "serverVersion" in info:
                out.write(f"Server Version: {info['serverVersion'].get('gitVersion', 'unknown')}\n")
            elif not self.client_only:
                out.write("Server Version: unavailable (cluster not reachable)\n")
        else:
            if self.problem:
                info["serverError"] = self.problem
            write_document(info, self.output, out)
        if self.problem:
            self.streams.say(f"warning: server version unavailable: {self.problem}")


@click.command("version")
@click.option("--client", "client_only", is_flag=True, help="Print the client version only (no API call).")
@click.option("-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text", help="Output format.")
@connection_options(namespace=False)
def command(conn, client_only, output):
    """Print the client version and, when a cluster is reachable, the server version."""
    VersionOptions(conn, client_only, output).complete().run()
