"""Start-up: `kubectl vm-storage version` next to `kubectl version` against the real kube-apiserver
(tests/cluster/controlplane.py), and `kubectl vm-storage --help`; medians of N runs, through the real kubectl.

    PYTHONPATH=. python -m bench.startup [--runs 15]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def median_ms(cmd, env, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - t)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode()[-300:]}")
    return statistics.median(times) * 1000


def main():
    from tests.cluster.controlplane import ControlPlane

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--direct", action="store_true", help="put the interpreter's bin/ first on PATH")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cp = ControlPlane(os.path.join(tmp, "cp")).start()
        try:
            env = dict(os.environ, KUBECONFIG=cp.admin_kubeconfig, PYTHONPATH=os.getcwd())
            if args.direct:  # the plugin's own entry script first on PATH, not a pyenv shim (bash + pyenv exec)
                env["PATH"] = os.path.dirname(os.path.realpath(sys.executable)) + os.pathsep + env["PATH"]
            rows = [("kubectl version", median_ms(["kubectl", "version"], env, args.runs)),
                    ("kubectl vm-storage version", median_ms(["kubectl", "vm-storage", "version"], env, args.runs)),
                    ("kubectl vm-storage --help", median_ms(["kubectl", "vm-storage", "--help"], env, args.runs))]
        finally:
            cp.stop()
    base = rows[0][1]
    for name, ms in rows:
        print(f"| `{name}` | {ms:.0f} ms | {ms / base:.2f}x |")


if __name__ == "__main__":
    main()
