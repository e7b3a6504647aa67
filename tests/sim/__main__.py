"""Run the controller stand-ins in the foreground (sandbox):  python -m tests.sim --kubeconfig PATH [--pace S]"""
import argparse
import logging
import signal
import sys
import threading


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__)
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--pace", type=float, default=0.5, help="seconds between reconcile passes (default 0.5)")
    ap.add_argument("--namespace", action="append", help="limit to these namespaces (repeatable)")
    ap.add_argument("--install-mtc", action="store_true", help="create openshift-migration + the host MigCluster")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    from kubectl_vmmig.kube import Kube
    from kubectl_vmmig.kubeconfig import ConnectionOptions

    from . import runner
    kube = Kube.connect(ConnectionOptions(kubeconfig=args.kubeconfig))
    if args.install_mtc:
        from .mtc_plan import install_mtc
        install_mtc(kube)
    done = threading.Event()
    # A controller thread that dies ends the process (with its traceback on stderr): a sandbox whose API server
    # answers while nothing reconciles any more is worse than one that says its stand-ins are down.
    handle = runner.start_all(kube, pace=args.pace, namespaces=args.namespace, on_death=lambda c: done.set())
    print(f"running: {', '.join(handle.names)} (pace {args.pace}s); Ctrl-C to stop", flush=True)
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    try:
        while not done.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    handle.stop()
    dead = handle.dead()
    for d in dead:
        print(f"error: controller stand-in died: {d}", file=sys.stderr, flush=True)
    return 1 if dead else 0


if __name__ == "__main__":
    sys.exit(main())
