"""`kubectl vm-storage completion ...` and the hidden `__complete` protocol entry.

The protocol is kubectl's plugin-completion protocol (kubectl >= 1.26): for `kubectl vm-storage migrate --to <TAB>`
kubectl runs `kubectl_complete-vm_storage migrate --to ''` and reads one candidate per line,
``value<TAB>description``, then a last line ``:<directive>``. The shims forward to `kubectl-vm_storage __complete`.

Speed matters: every TAB pays the start-up, so nothing here imports the REST client or kubernetes; only the
dynamic sources (completion_sources.py) reach the API server, with a short timeout.
"""
import os
import sys

import click

from ..completion_scripts import SCRIPTS, shim

# cobra ShellCompDirective bits
ERROR, NO_SPACE, NO_FILE_COMP, FILTER_DIRS = 1, 2, 4, 16
# kubectl's connection flags that take a file: let the shell complete file names for their values.
PATH_FLAGS = ("--kubeconfig", "--certificate-authority", "--client-certificate", "--client-key")
SHIM_NAMES = {"kubectl": "kubectl_complete-vm_storage", "oc": "oc_complete-vm_storage"}


# ---- the protocol --------------------------------------------------------------------------------------
def _top_level_items(incomplete):
    """Sub-commands (or the group's own flags) straight from cli.COMMANDS: no command module is imported."""
    from ..cli import COMMANDS, cli

    if incomplete.startswith("-"):
        items = []
        for param in cli.get_params(click.Context(cli)):
            for opt in param.opts + param.secondary_opts:
                if opt.startswith(incomplete):
                    items.append((opt, param.help or ""))
        return items
    return [(name, help_) for name, (_, help_) in COMMANDS.items()
            if not name.startswith("_") and name.startswith(incomplete)]


def completions(args, prog_name="kubectl vm-storage"):
    """Protocol answer for ``args`` (the words after the plugin name; the last one is being completed).

    Returns ``([(value, description)], directive)``. Never raises: a completion must not print a traceback.
    """
    args = list(args) or [""]
    words, incomplete = args[:-1], args[-1]
    if (words and words[-1] in PATH_FLAGS) or incomplete.split("=", 1)[0] in PATH_FLAGS and "=" in incomplete:
        return [], 0
    try:
        verbs = [w for w in words if not w.startswith("-")]
        if not verbs:
            return _top_level_items(incomplete), NO_FILE_COMP
        from ..cli import COMMANDS

        if verbs[0] not in COMMANDS and verbs[0].replace("_", "-") not in COMMANDS:
            return [], ERROR  # click would list every sub-command again (importing each module)
        from click.shell_completion import ShellComplete

        from ..cli import cli

        items = ShellComplete(cli, {}, prog_name, "_KUBECTL_VM_STORAGE_COMPLETE").get_completions(words, incomplete)
    except Exception:  # noqa: BLE001 - unknown command, a broken module, ...: say "error", quietly
        return [], ERROR
    kinds = {item.type for item in items}
    if "file" in kinds:  # a path option: let the shell complete file names
        return [], 0
    if "dir" in kinds:
        return [], FILTER_DIRS
    return [(str(item.value), item.help or "") for item in items], NO_FILE_COMP


def format_protocol(items, directive):
    lines = []
    for value, desc in items:
        # one candidate per line: tabs/newlines inside a description would break the format
        desc = " ".join(str(desc).split())
        lines.append(f"{value}\t{desc}" if desc else value)
    lines.append(f":{directive}")
    return "\n".join(lines) + "\n"


def run_protocol(args, prog_name="kubectl vm-storage"):
    items, directive = completions(args, prog_name)
    sys.stdout.write(format_protocol(items, directive))
    sys.stdout.flush()
    return 0


def kubectl_complete():
    """Console script ``kubectl_complete-vm_storage`` (what kubectl looks for on PATH)."""
    sys.exit(run_protocol(sys.argv[1:], "kubectl vm-storage"))


def oc_complete():
    """Console script ``oc_complete-vm_storage`` (what oc looks for on PATH)."""
    sys.exit(run_protocol(sys.argv[1:], "oc vm-storage"))


@click.command("__complete", hidden=True, add_help_option=False,
               context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                 "allow_interspersed_args": False})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def complete_command(args):
    """kubectl's plugin-completion protocol (used by the completion shims and scripts)."""
    from ..cli import prog_name

    run_protocol(args, prog_name())


# ---- user-facing `completion` ----------------------------------------------------------------------------
def krew_bin_dir():
    root = os.environ.get("KREW_ROOT") or os.path.join(os.path.expanduser("~"), ".krew")
    return os.path.join(root, "bin")


@click.group("completion")
def command():
    """Shell completion scripts and kubectl/oc completion shims.

    \b
    kubectl vm-storage <TAB> (kubectl >= 1.26 with its own completion enabled):
      kubectl vm-storage completion install       # writes kubectl_complete-vm_storage, oc_complete-vm_storage
    Running the binary kubectl-vm_storage directly:
      source <(kubectl-vm_storage completion bash)        # or zsh;  fish: ... completion fish | source
    """


def _script_command(shell):
    @command.command(shell, help=f"Print the {shell} completion script for kubectl-vm_storage.")
    def _print():
        click.echo(SCRIPTS[shell], nl=False)

    return _print


for _shell in SCRIPTS:
    _script_command(_shell)


@command.command("kubectl")
@click.option("--oc", "tool", flag_value="oc", help="Print the oc shim (oc_complete-vm_storage) instead.")
@click.option("--kubectl", "tool", flag_value="kubectl", default=True, hidden=True)
def kubectl_shim(tool):
    """Print the kubectl completion shim (save it as kubectl_complete-vm_storage on PATH, executable)."""
    click.echo(shim(tool), nl=False)


def write_shims(directory, force=False):
    """Write both shims into ``directory`` (mode 0755). Returns the paths written.

    A file of the same name that is not one of our shims is left alone unless ``force``.
    """
    from .. import errors

    written = []
    for tool, name in SHIM_NAMES.items():
        path = os.path.join(directory, name)
        text = shim(tool)
        if os.path.lexists(path) and not force:
            try:
                with open(path) as fh:
                    current = fh.read()
            except OSError:
                current = None
            if current is None or "kubectl-vm_storage __complete" not in current:
                raise errors.BadInput(f"{path} exists and was not written by kubectl vm-storage",
                                      hint="remove it, or rerun with --force")
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
        written.append(path)
    return written


@command.command("install")
@click.option("--dir", "directory", metavar="DIR", type=click.Path(file_okay=False),
              help="Where to write the shims (default: ${KREW_ROOT:-~/.krew}/bin, next to the krew-installed plugin).")
@click.option("--force", is_flag=True, help="Overwrite files of the same name not written by this plugin.")
def install(directory, force):
    """Write kubectl_complete-vm_storage and oc_complete-vm_storage so kubectl/oc complete this plugin.

    Opt-in: krew links only the plugin binary, so kubectl cannot find the completion shims until they are
    written into a directory on PATH. Needs kubectl >= 1.26 (or oc) with its own completion enabled.
    """
    from .. import errors

    target = directory or krew_bin_dir()
    if directory:
        os.makedirs(target, exist_ok=True)
    elif not os.path.isdir(target):
        raise errors.BadInput(f"krew's bin directory {target} does not exist",
                              hint="set KREW_ROOT, or pass --dir DIR (a directory on PATH)")
    for path in write_shims(target, force=force):
        click.echo(f"wrote {path}")
    path_dirs = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    on_path = os.path.realpath(target) in {os.path.realpath(p) for p in path_dirs}
    if not on_path:
        click.echo(f"warning: {target} is not on PATH; kubectl will not find the shims until it is", err=True)
