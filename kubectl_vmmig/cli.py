"""The click entry point: a lazy command group, kubectl's shared flags, and error -> exit code.

Only click is imported at module level. Each command lives in ``commands/<verb>.py`` and imports its
heavy dependencies inside the command, so ``--help`` and shell completion stay fast.
"""
import importlib
import sys

import click

from . import __version__, errors
from .exits import STATE as _STATE
from .exits import on_sigterm, report
from .launch import HELP_FLAGS, MAX_CONTENT_WIDTH, prog_name

# verb -> (module, short help). The help is here so listing commands imports nothing.
COMMANDS = {
    "migrate": ("kubectl_vmmig.commands.migrate", "Move VM disks to another StorageClass (live or offline)."),
    "status": ("kubectl_vmmig.commands.status", "Show per-disk progress of migrations."),
    "check": ("kubectl_vmmig.commands.check", "Run the preflight checks only."),
    "cancel": ("kubectl_vmmig.commands.cancel", "Cancel a running migration."),
    "resume": ("kubectl_vmmig.commands.resume", "Finish what a --detach run left for the plugin (kubevirt)."),
    "rollback": ("kubectl_vmmig.commands.rollback", "Roll back a finished MTC migration."),
    "version": ("kubectl_vmmig.commands.version", "Print the client and server versions."),
    "completion": ("kubectl_vmmig.commands.completion", "Shell completion scripts and kubectl completion shims."),
    "__complete": ("kubectl_vmmig.commands.complete_protocol", ""),  # hidden: kubectl's plugin completion protocol
}

class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        spec = COMMANDS.get(name) or COMMANDS.get(name.replace("_", "-"))
        if spec is None:
            return None
        return importlib.import_module(spec[0]).command

    def format_commands(self, ctx, formatter):
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items() if name != "__complete"]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


class Verbosity(click.ParamType):
    """-v N, --v=N, and kubectl's -v=N (click would otherwise see '=N')."""

    name = "level"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        text = str(value).lstrip("=")
        if not text.isdigit():
            self.fail(f"{value!r} is not a verbosity level (0-10)", param, ctx)
        return int(text)


def _set_verbosity(ctx, param, value):
    _STATE["verbosity"] = value or 0
    return value


CONNECTION_FLAGS = [
    click.option("--kubeconfig", metavar="PATH",
                 help="Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."),
    click.option("--context", metavar="NAME", help="The kubeconfig context to use."),
    click.option("--cluster", metavar="NAME", help="The kubeconfig cluster to use."),
    click.option("--user", metavar="NAME", help="The kubeconfig user to use."),
    click.option("-s", "--server", metavar="URL", help="The address and port of the Kubernetes API server."),
    click.option("--token", metavar="TOKEN", help="Bearer token for authentication to the API server."),
    click.option("--as", "as_user", metavar="USER", help="Username to impersonate for the operation."),
    click.option("--as-group", "as_groups", multiple=True, metavar="GROUP", help="Group to impersonate (repeatable)."),
    click.option("--as-uid", metavar="UID", help="UID to impersonate for the operation."),
    click.option("--request-timeout", metavar="DURATION",  # unset = 0 = none (kubeconfig.parse_timeout)
                 help="Time to wait for a single request (e.g. 30s, 1m); 0 means no timeout."),
    click.option("--insecure-skip-tls-verify", is_flag=True, help="Do not verify the server's certificate (insecure)."),
    click.option("--certificate-authority", metavar="PATH", help="Path to a CA certificate file."),
    click.option("--client-certificate", metavar="PATH", help="Path to a client certificate file."),
    click.option("--client-key", metavar="PATH", help="Path to a client key file."),
    click.option("--tls-server-name", metavar="NAME", help="Server name to use for certificate validation."),
    click.option("-v", "--v", "verbosity", type=Verbosity(), default=0, callback=_set_verbosity, is_eager=True,
                 metavar="N", help="Log level; 6 logs each HTTP request like kubectl -v=6, 9 adds tracebacks."),
]

CONNECTION_KEYS = ("kubeconfig", "context", "cluster", "user", "server", "token", "as_user", "as_groups",
                   "as_uid", "request_timeout", "insecure_skip_tls_verify", "certificate_authority",
                   "client_certificate", "client_key", "tls_server_name", "verbosity")


def _complete_namespaces(ctx, param, incomplete):
    from .completion_sources import complete_namespaces  # only when completing (threading, click.shell_completion)

    return complete_namespaces(ctx, param, incomplete)


def connection_options(namespace=True, all_namespaces=False):
    """Decorator: add kubectl's connection flags and pass one ``conn: ConnectionOptions`` to the command."""

    def deco(fn):
        def wrapper(**kw):
            from .kubeconfig import ConnectionOptions  # not for --help (dataclasses, urllib.parse: ~9 ms)

            conn = ConnectionOptions(**{k: kw.pop(k) for k in CONNECTION_KEYS})
            if namespace:
                conn.namespace = kw.pop("namespace")
            return fn(conn=conn, **kw)

        wrapper.__name__ = fn.__name__
        wrapper.__doc__ = fn.__doc__
        wrapper.__click_params__ = getattr(fn, "__click_params__", [])
        for opt in reversed(CONNECTION_FLAGS):
            wrapper = opt(wrapper)
        if namespace:
            wrapper = click.option("-n", "--namespace", metavar="NS", shell_complete=_complete_namespaces,
                                   help="Namespace (default: the kubeconfig context's).")(wrapper)
        if all_namespaces:
            wrapper = click.option("-A", "--all-namespaces", is_flag=True,
                                   help="Across all namespaces.")(wrapper)
        return wrapper

    return deco


@click.group(cls=LazyGroup, context_settings={"help_option_names": list(HELP_FLAGS),
                                             "max_content_width": MAX_CONTENT_WIDTH})
@click.version_option(__version__, "--version", prog_name="kubectl-vm_storage", message="%(prog)s %(version)s")
def cli():
    """Move the disks of KubeVirt virtual machines from one StorageClass to another.

    \b
    Examples:
      # See what would happen, then do it
      kubectl vm-storage migrate my-vm --to fast-ssd --dry-run=client
      kubectl vm-storage migrate my-vm --to fast-ssd
      # Watch progress of every migration in the namespace
      kubectl vm-storage status -w
    """


def _one_line_usage(exc: click.UsageError):
    cmd = exc.ctx.command_path if exc.ctx else prog_name()
    msg = exc.format_message().rstrip(".")
    return f"error: {msg[:1].lower() + msg[1:]}; see '{cmd} --help'"


# kubectl's boolean flags (pflag NoOptDefVal) also take "=true"/"=false"; click flags do not.
BOOL_FLAGS = ("--insecure-skip-tls-verify",)
GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
            "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}  # strconv.ParseBool


def kubectl_bool_flags(args):
    """Rewrite --flag=true to --flag and drop --flag=false, as pflag parses them (up to a '--')."""
    out = []
    for i, a in enumerate(args):
        if a == "--":
            return out + list(args[i:])
        name, eq, value = a.partition("=")
        if eq and name in BOOL_FLAGS:
            if value not in GO_BOOLS:
                raise click.UsageError(f"invalid argument {value!r} for {name!r} flag: use true or false")
            if GO_BOOLS[value]:
                out.append(name)
            continue
        out.append(a)
    return out


def main(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    on_sigterm()
    try:
        # Under standalone_mode=False click *returns* the code of a click.exceptions.Exit instead of raising it;
        # commands report failure by raising errors.VmStorageError, but an Exit must not be lost either.
        returned = cli.main(args=kubectl_bool_flags(args), prog_name=prog_name(), standalone_mode=False)
        code = returned if isinstance(returned, int) and not isinstance(returned, bool) else 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.UsageError as exc:
        sys.stderr.write(_one_line_usage(exc) + "\n")
        code = errors.BAD_INPUT
    except click.ClickException as exc:
        sys.stderr.write(f"error: {exc.format_message()}\n")
        code = errors.BAD_INPUT
    except click.exceptions.Abort:
        code = report(KeyboardInterrupt(), args)
    except (KeyboardInterrupt, Exception) as exc:
        code = report(exc, args)
    sys.stdout.flush()
    return code


def run():
    sys.exit(main())


if __name__ == "__main__":
    run()
