"""The executable's entry point: ``--help`` and plain ``version`` without click, everything else through cli.main.

``kubectl vm-storage [COMMAND…] --help`` (or ``-h``) is answered from help_cache.py - click's own output,
rendered ahead for the two program names kubectl and oc give the plugin and the two widths most terminals and
pipes get - so it costs the interpreter's start and no import of click (~30 ms: inspect, typing, enum…). Any
other argument list, width or program name goes to click as always. tests/unit/test_help_cache.py renders
every cached text again through click and fails when one differs (`make help-cache` writes them anew).

``version`` with at most --client and -o (every connection flag at its default) is run by
commands/version_run.run_plain, which needs no parser either.

Only ``os`` and ``sys`` are imported here: this module runs before anything else on every start.
"""
import os
import sys

HELP_FLAGS = ("--help", "-h")   # cli.py's help_option_names
MAX_CONTENT_WIDTH = 110         # cli.py's context_settings max_content_width


def prog_name():
    """'kubectl vm-storage' (or 'oc vm-storage') when run as a plugin, else the script name."""
    base = os.path.basename(sys.argv[0] or "")
    parent = os.path.basename(os.environ.get("KUBECTL_PATH", "") or "")
    if base.startswith(("kubectl-", "oc-")) or parent:
        return ("oc" if parent.startswith("oc") else "kubectl") + " vm-storage"
    return base or "kubectl-vm_storage"


def help_width():
    """The width click formats help at (click.formatting.HelpFormatter: max(min(columns, max width) - 2, 50)),
    with the columns shutil.get_terminal_size would give it: $COLUMNS, else the terminal behind stdout, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return max(min(columns, MAX_CONTENT_WIDTH) - 2, 50)


def cached_help(args):
    """click's help text for ``args`` (a command path, then one help flag), or None when it is not cached."""
    if not args or args[-1] not in HELP_FLAGS or any(a.startswith("-") for a in args[:-1]):
        return None
    from .help_cache import TEXTS

    return TEXTS.get((prog_name(), help_width(), " ".join(args[:-1])))


def main(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    text = cached_help(args)
    if text is None:
        if args[:1] == ["version"]:
            from .commands.version_run import run_plain

            code = run_plain(args[1:])
            if code is not None:
                return code
        from .cli import main as cli_main

        return cli_main(args)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `… --help | head`: as cli.main answers it
        pass
    return 0


def run():
    sys.exit(main())
