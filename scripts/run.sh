#!/usr/bin/env bash
# `make run`: use the configured cluster if one answers; otherwise start the local sandbox and use it.
# Then run `kubectl vm-storage ARGS` (default: a guided first look).
set -euo pipefail
cd "$(dirname "$0")/.."
PYBIN=$(python3 -c "import os,sys;print(os.path.dirname(sys.executable))")
export PATH="$PYBIN:$PATH"
if ! kubectl-vm_storage version --request-timeout 3s 2>/dev/null | grep -q '^Server Version: v'; then
  echo "no reachable cluster configured: starting the local sandbox (.sandbox/kubeconfig)" >&2
  make -s sandbox >&2
  export KUBECONFIG=$PWD/.sandbox/kubeconfig
fi
KUBECTL=$(python3 -c 'import os,sys; p=os.path.join(os.path.dirname(sys.executable),"kubectl"); print(p if os.access(p,os.X_OK) else "kubectl")')
if [ $# -eq 0 ]; then
  set -x
  "$KUBECTL" vm-storage version
  "$KUBECTL" vm-storage migrate demo-dv --to fast -n demo --dry-run=client || true
  { set +x; } 2>/dev/null
  echo
  echo "Next: KUBECONFIG=$KUBECONFIG kubectl vm-storage migrate demo-dv --to fast -n demo --yes --wait" >&2
else
  exec "$KUBECTL" vm-storage "$@"
fi
