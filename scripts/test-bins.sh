#!/usr/bin/env bash
# Build the real Kubernetes parts the tests need, from Go modules, into a versioned cache:
#   kube-apiserver (k8s.io/kubernetes), etcd (go.etcd.io/etcd/server/v3), krew + validate-krew-manifest.
# Each binary set is keyed by its version and skipped when present, so a warm machine pays nothing.
# Usage: scripts/test-bins.sh            -> prints the bin directory on its last line
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KREW_VERSION=${KREW_VERSION:-v0.4.3}
CACHE=${VMMIG_CACHE:-$HOME/.cache/kubectl-vmmig}
BIN=$CACHE/bin-k8s-$K8S_VERSION-etcd-$ETCD_VERSION-krew-$KREW_VERSION

export CGO_ENABLED=0 GOFLAGS=-trimpath GOTOOLCHAIN=${GOTOOLCHAIN:-local}
mkdir -p "$BIN"
log() { echo "test-bins: $*" >&2; }

command -v go >/dev/null || { log "Go is required to build kube-apiserver and etcd (install Go >= 1.25)"; exit 1; }

if [ ! -x "$BIN/kube-apiserver" ]; then
  log "building kube-apiserver $K8S_VERSION (cold: 10-30 min)"
  STG=v0.${K8S_VERSION#v1.}; MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
  W=$CACHE/src-k8s-$K8S_VERSION; mkdir -p "$W"; cd "$W"
  [ -f go.mod ] || go mod init example.invalid/k8s-testbins >/dev/null 2>&1
  KKMOD=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
  # k/k requires every staging module at v0.0.0 with local replaces a consumer ignores: pin them.
  for m in $(awk '$1 ~ /^k8s\.io\// && $2=="v0.0.0" {print $1}' "$KKMOD" | sort -u); do
    go mod edit -replace="$m=$m@$STG"
  done
  go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION"
  LD="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LD="$LD -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
  done
  go build -ldflags "$LD" -o "$BIN/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
fi

if [ ! -x "$BIN/etcd" ]; then
  log "building etcd $ETCD_VERSION"
  W=$CACHE/src-etcd-$ETCD_VERSION; mkdir -p "$W"; cd "$W"
  [ -f go.mod ] || go mod init example.invalid/etcd-bin >/dev/null 2>&1
  go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go build -ldflags '-s -w' -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$BIN/etcd.tmp" "$BIN/etcd"
fi

if [ ! -x "$BIN/krew" ] || [ ! -x "$BIN/validate-krew-manifest" ]; then
  log "installing krew $KREW_VERSION"
  GOBIN=$BIN go install -ldflags "-X sigs.k8s.io/krew/internal/version.gitTag=$KREW_VERSION" \
    "sigs.k8s.io/krew/cmd/krew@$KREW_VERSION" "sigs.k8s.io/krew/cmd/validate-krew-manifest@$KREW_VERSION"
  ln -sf krew "$BIN/kubectl-krew"
fi

ln -sfn "$BIN" "$CACHE/bin"
echo "$BIN"
