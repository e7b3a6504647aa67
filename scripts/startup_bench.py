#!/usr/bin/env python3
"""Median start-up of `kubectl vm-storage --help` and of a static completion, pip install vs krew zipapp.

Runs each command N times (after one warm-up run) through the real kubectl when it is found, and directly,
and prints a Markdown table for the README. The zipapp is dist/kubectl-vm_storage (make zipapp).
Usage: python3 scripts/startup_bench.py [-n 21] [--zipapp dist/kubectl-vm_storage] [--kubectl PATH]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def median_ms(cmd, env, n):
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # warm-up
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), min(times)


def find_kubectl(explicit):
    if explicit:
        return explicit
    cand = os.path.join(os.path.dirname(sys.executable), "kubectl")
    return cand if os.access(cand, os.X_OK) else shutil.which("kubectl")


def layouts(tmp, zipapp):
    """{form: PATH directory holding kubectl-vm_storage + kubectl_complete-vm_storage + python3}."""
    out = {}
    pybin = os.path.dirname(sys.executable)
    if os.access(os.path.join(pybin, "kubectl_complete-vm_storage"), os.X_OK):
        d = os.path.join(tmp, "pip")
        os.makedirs(d)
        for name in ("kubectl-vm_storage", "kubectl_complete-vm_storage"):
            os.symlink(os.path.join(pybin, name), os.path.join(d, name))
        out["pip install"] = d
    if zipapp and os.path.exists(zipapp):
        d = os.path.join(tmp, "zipapp")
        os.makedirs(d)
        os.symlink(os.path.abspath(zipapp), os.path.join(d, "kubectl-vm_storage"))
        with open(os.path.join(d, "kubectl_complete-vm_storage"), "w") as fh:  # what `completion install` writes
            fh.write('#!/usr/bin/env sh\nexec kubectl-vm_storage __complete "$@"\n')
        os.chmod(os.path.join(d, "kubectl_complete-vm_storage"), 0o755)
        out["krew zipapp"] = d
    for d in out.values():
        os.symlink(sys.executable, os.path.join(d, "python3"))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=21)
    ap.add_argument("--zipapp", default=os.path.join(ROOT, "dist", "kubectl-vm_storage"))
    ap.add_argument("--kubectl")
    args = ap.parse_args(argv)
    kubectl = find_kubectl(args.kubectl)
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="vmstorage-bench-") as tmp:
        kdir = os.path.join(tmp, "kubectl")
        os.makedirs(kdir)
        if kubectl:
            os.symlink(os.path.realpath(kubectl), os.path.join(kdir, "kubectl"))
        for form, d in layouts(tmp, args.zipapp).items():
            env = dict(os.environ, PATH=os.pathsep.join([d, kdir, "/usr/bin", "/bin"]),
                       KUBECONFIG=os.path.join(tmp, "none"), VMSTORAGE_CACHE_DIR=os.path.join(tmp, "cache"))
            env.pop("KUBECTL_PATH", None)
            env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure what users get: bytecode cached after the warm-up
            cases = [("kubectl-vm_storage --help", ["kubectl-vm_storage", "--help"]),
                     ("kubectl_complete-vm_storage ''", ["kubectl_complete-vm_storage", ""]),
                     ("kubectl_complete-vm_storage version --", ["kubectl_complete-vm_storage", "version", "--"])]
            if kubectl:
                cases += [("kubectl vm-storage --help", ["kubectl", "vm-storage", "--help"]),
                          ("kubectl __complete vm-storage ''", ["kubectl", "__complete", "vm-storage", ""])]
            for label, cmd in cases:
                med, best = median_ms(cmd, env, args.n)
                rows.append((form, label, med, best))
    print(f"Python {sys.version.split()[0]}, {args.n} runs each after one warm-up, {os.cpu_count()} CPUs, "
          f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} (figures mean little when it exceeds the CPUs)\n")
    print("| form | command | median | min |")
    print("|---|---|---|---|")
    for form, label, med, best in rows:
        print(f"| {form} | `{label}` | {med:.0f} ms | {best:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
