#!/usr/bin/env bash
# Build the krew release: dist/kubectl-vm-storage.tar.gz (zipapp + LICENSE + completion shims and scripts)
# and dist/vm-storage.yaml (krew/vm-storage.yaml.in with the version, download URI and the archive's sha256).
# Usage: scripts/krew.sh            (PYTHON=python3.9 scripts/krew.sh to build with another interpreter)
# Env: VERSION (default: kubectl_vmmig.__version__ as vX.Y.Z), URI (default: the GitHub release download URL).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
DIST=${DIST:-$ROOT/dist}
cd "$ROOT"

VERSION=${VERSION:-v$("$PYTHON" -c 'import kubectl_vmmig; print(kubectl_vmmig.__version__)')}
URI=${URI:-https://github.com/kubevirt-tools/kubectl-vm-storage/releases/download/$VERSION/kubectl-vm-storage.tar.gz}

"$PYTHON" scripts/build_zipapp.py --out "$DIST/kubectl-vm_storage"

# Regenerate the completion copies from the code so the archive cannot ship stale scripts.
"$PYTHON" scripts/gen_completion.py completion

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cp "$DIST/kubectl-vm_storage" LICENSE "$STAGE/"
mkdir "$STAGE/completion"
cp completion/* "$STAGE/completion/"
chmod 0755 "$STAGE/kubectl-vm_storage" "$STAGE/completion/kubectl_complete-vm_storage" \
  "$STAGE/completion/oc_complete-vm_storage"
# Reproducible tarball: fixed owner, mtime and order (GNU tar), gzip without a timestamp.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2020-01-01 00:00Z' -C "$STAGE" -cf - \
  kubectl-vm_storage LICENSE completion | gzip -n -9 > "$DIST/kubectl-vm-storage.tar.gz"

SHA=$(sha256sum "$DIST/kubectl-vm-storage.tar.gz" | cut -d' ' -f1)
sed -e "s|@VERSION@|$VERSION|g" -e "s|@URI@|$URI|g" -e "s|@SHA256@|$SHA|g" krew/vm-storage.yaml.in \
  > "$DIST/vm-storage.yaml"
echo "built dist/kubectl-vm-storage.tar.gz (sha256 $SHA) and dist/vm-storage.yaml ($VERSION)"
