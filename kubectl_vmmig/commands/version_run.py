"""The run half of ``version`` (click-free), and the forms of it launch.py runs without click at all.

``kubectl vm-storage version`` is the start-up figure users and scripts compare with ``kubectl version``;
importing click costs a sixth of it (inspect, click.core, click.types: ~25 ms). ``version`` with nothing but
``--client`` and ``-o``/``--output`` has every connection flag at its default, so it needs no parser:
``run_plain`` runs it with the same options, streams and error reporting (exits.report) as the click command
in version.py; any other argument list goes to click. tests/unit/test_version_fast_path.py holds the two paths
to the same options, output and exit codes.
"""
import sys

from ..streams import IOStreams, write_document

OUTPUTS = ("text", "json", "yaml")  # -o choices (version.py's click.Choice)


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


def plain_flags(rest):
    """(client_only, output) when ``rest`` (the arguments after ``version``) holds at most one --client and one
    -o/--output of a known format, spelled as click reads them; None for anything else (click then parses it)."""
    client_only, output, rest = False, None, list(rest)
    while rest:
        arg = rest.pop(0)
        if arg == "--client" and not client_only:
            client_only = True
        elif arg in ("-o", "--output") and output is None and rest:
            output = rest.pop(0)
        elif arg.startswith("--output=") and output is None:
            output = arg.partition("=")[2]
        else:
            return None
    if output is not None and output not in OUTPUTS:
        return None
    return client_only, output or "text"


def run_plain(rest):
    """Run ``version REST`` without click when ``plain_flags`` reads REST; the exit code, or None."""
    flags = plain_flags(rest)
    if flags is None:
        return None
    from ..exits import on_sigterm, report
    from ..kubeconfig import ConnectionOptions

    on_sigterm()
    try:
        VersionOptions(ConnectionOptions(), *flags).complete().run()
        code = 0
    except (KeyboardInterrupt, Exception) as exc:
        code = report(exc, ["version", *rest])
    sys.stdout.flush()
    return code
