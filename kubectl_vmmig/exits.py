"""Failures -> one stderr line and an exit code: the one place that does it, for cli.main (click's own
exceptions first, then these) and for launch.py's click-free paths.

No click here, nor anything heavy: launch.py's fast paths import this module on every start.
"""
import signal
import sys

from . import errors
from .launch import prog_name

STATE = {"verbosity": 0}  # -v (cli.Verbosity sets it) and whether SIGTERM arrived

SECRET_FLAGS = ("--token", "--password", "--client-key")


def reattach_command(args):
    """The command line to run again to re-attach (every verb adopts what exists), secrets left out."""
    import shlex

    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in SECRET_FLAGS:
            skip = True
            continue
        if a.startswith(tuple(f + "=" for f in SECRET_FLAGS)):
            continue
        out.append(shlex.quote(a))
    return " ".join([prog_name()] + out)


def on_sigterm():
    """SIGTERM takes the Ctrl-C path (every waiter already turns KeyboardInterrupt into "stopped following,
    the migration goes on"); only the exit code differs."""
    def on_term(signum, frame):
        STATE["terminated"] = True
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, on_term)


def _traceback_if_asked():
    if STATE["verbosity"] >= 9:
        import traceback

        traceback.print_exc()


def report(exc, args):
    """Write the one line for ``exc`` (raised by a command run with ``args``) to stderr; return the exit code.
    Call it from inside the ``except`` block: -v 9 prints the traceback of the exception being handled."""
    if isinstance(exc, KeyboardInterrupt):
        what = "terminated" if STATE.get("terminated") else "interrupted"
        sys.stderr.write(f"{what}; nothing running in the cluster was stopped; re-attach with: "
                         f"{reattach_command(args)}\n")
        return errors.TERMINATED if STATE.get("terminated") else errors.INTERRUPTED
    if isinstance(exc, errors.Interrupted):
        terminated = STATE.get("terminated") or exc.message == "terminated"
        sys.stderr.write(f"{'terminated: ' if terminated else ''}{exc.line()}\n")
        return errors.TERMINATED if terminated else errors.INTERRUPTED
    if isinstance(exc, errors.VmStorageError):
        _traceback_if_asked()
        sys.stderr.write(f"error: {exc.line()}\n")
        return exc.exit_code
    if isinstance(exc, BrokenPipeError):
        return errors.OK
    # a bug: say so in one line, full trace only when asked
    _traceback_if_asked()
    first = str(exc).splitlines()[0] if str(exc) else ""
    sys.stderr.write(f"error: internal error: {type(exc).__name__}: {first}; "
                     "rerun with -v 9 for a traceback and report it\n")
    return errors.INTERNAL
