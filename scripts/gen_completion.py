#!/usr/bin/env python3
"""Write the completion copies kept under completion/ from kubectl_vmmig.completion_scripts.

completion/kubectl_complete-vm_storage, completion/oc_complete-vm_storage: the kubectl/oc shims;
completion/kubectl-vm_storage.{bash,zsh,fish}: the shell scripts for running the binary directly.
Usage: python3 scripts/gen_completion.py [DIR]   (default: completion/ at the repository root)
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from kubectl_vmmig.completion_scripts import SCRIPTS, shim  # noqa: E402


def files():
    """{file name: (text, mode)} of every completion copy."""
    out = {f"{tool}_complete-vm_storage": (shim(tool), 0o755) for tool in ("kubectl", "oc")}
    for shell, text in SCRIPTS.items():
        out[f"kubectl-vm_storage.{shell}"] = (text, 0o644)
    return out


def main(argv):
    target = os.path.join(ROOT, argv[0]) if argv else os.path.join(ROOT, "completion")
    os.makedirs(target, exist_ok=True)
    for name, (text, mode) in files().items():
        path = os.path.join(target, name)
        with open(path, "w") as fh:
            fh.write(text)
        os.chmod(path, mode)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
