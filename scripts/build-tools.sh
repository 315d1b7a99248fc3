#!/usr/bin/env bash
# Builds the operator tools, kubectl and helm, from the Go module proxy into a cache outside the clone:
#   ${KVPA_CACHE:-$HOME/.cache/kvpa}/tools/kubectl-v<k8s>-helm-v<helm>/bin/{kubectl,helm,VERSIONS}
# Idempotent: exits at once when a complete build is cached. Progress goes to stderr; the only
# stdout line is the bin directory, so callers can do BIN=$(bash scripts/build-tools.sh).
# kubectl is k8s.io/kubernetes/cmd/kubectl at the API server's version (same helper module as
# build-k8s.sh); helm is helm.sh/helm/v3/cmd/helm with the ldflags of helm's own Makefile.
#
# Env overrides:
#   KVPA_CACHE            cache root (default $HOME/.cache/kvpa)
#   KVPA_KUBECTL_VERSION  k8s.io/kubernetes version for kubectl (default: the one build-k8s.sh built, else 1.34.4)
#   KVPA_HELM_VERSION     helm.sh/helm/v3 version (default 3.22.0)
set -euo pipefail

CACHE_BASE=${KVPA_CACHE:-$HOME/.cache/kvpa}
CACHE_ROOT=$CACHE_BASE/tools

log() { printf '[build-tools %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# The k8s version build-k8s.sh picked (its VERSIONS file), so kubectl matches the API server.
k8s_from_cache() {
  local f
  for f in "$CACHE_BASE"/k8s/v*/bin/VERSIONS; do
    [[ -f $f ]] && sed -n 's/^kube-apiserver=v//p' "$f" | head -n1
  done | sort -V | tail -n1
}
KUBECTL_VERSION=${KVPA_KUBECTL_VERSION:-$(k8s_from_cache)}
KUBECTL_VERSION=${KUBECTL_VERSION:-1.34.4}
# v3.22.0 is the newest helm v3 the proxy lists (`go list -m -versions helm.sh/helm/v3`, 2026-12).
HELM_VERSION=${KVPA_HELM_VERSION:-3.22.0}

# Module zip hashes (go.sum "h1:" form) of the pinned versions, checked on top of the checksum
# database the go command consults anyway: a changed pin must change its hash here too.
pinned_sum() { # $1 = module@version
  case $1 in
    k8s.io/kubernetes@v1.34.4) echo "h1:Yy6R4QB8C9kJPp25GFqEvX5XQwY5qzKeqD0Xx6oAcmk=" ;;
    helm.sh/helm/v3@v3.22.0) echo "h1:n1if5iQgHYsujPAcO5oonH/KiSNUmqmUF0iGVjSF3AU=" ;;
    *) echo "" ;;
  esac
}

DEST=$CACHE_ROOT/kubectl-v$KUBECTL_VERSION-helm-v$HELM_VERSION
is_complete() { [[ -x $DEST/bin/kubectl && -x $DEST/bin/helm && -f $DEST/bin/VERSIONS ]]; }

# Fast path without taking the lock.
if is_complete; then
  log "cached: $DEST/bin ($(tr '\n' ' ' <"$DEST/bin/VERSIONS"))"
  echo "$DEST/bin"
  exit 0
fi

command -v go >/dev/null || { log "ERROR: 'go' is not on PATH; kubectl and helm are built from source"; exit 1; }
mkdir -p "$CACHE_ROOT"
# One build at a time per cache (CI and the vitest globalSetup may both call us).
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_ROOT/.lock; waiting for it"
  flock 9
fi
if is_complete; then
  log "cached (built by the other process): $DEST/bin"
  echo "$DEST/bin"
  exit 0
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off GOFLAGS="-trimpath -buildvcs=false -mod=mod"
unset GODEBUG
log "$(go version); GOPROXY=$(go env GOPROXY); $(nproc) cores"

mkdir -p "$DEST"
LOG=$DEST/build.log
: >"$LOG"

# run_logged: scripts/lib.sh
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Downloads module@version and checks its zip hash against pinned_sum; prints the go.mod path.
download_verified() { # $1 = module@version
  local json sum want
  json=$(go mod download -json "$1" 2>>"$LOG") || { log "cannot download $1 (see $LOG)"; return 1; }
  sum=$(sed -n 's/.*"Sum": "\(.*\)".*/\1/p' <<<"$json")
  want=$(pinned_sum "$1")
  if [[ -n $want && $sum != "$want" ]]; then
    log "ERROR: $1 has hash $sum, pinned $want"
    return 1
  fi
  [[ -n $want ]] || log "$1 has no pinned hash here; relying on the checksum database ($sum)"
  sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' <<<"$json"
}

build_kubectl() { # $1 = k8s version (no v), $2 = work dir, $3 = output bin dir
  local v=$1 w=$2 out=$3
  local minor=${v#1.}
  minor=${minor%%.*}
  rm -rf "$w/kubectl" && mkdir -p "$w/kubectl" && cd "$w/kubectl" || return 1
  local modfile
  modfile=$(download_verified "k8s.io/kubernetes@v$v") || return 1
  # Same helper module as build-k8s.sh: staging modules pinned via replace at v0.<minor>.<patch>.
  local staging
  staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$modfile")
  go mod init kubectlbin >>"$LOG" 2>&1 || return 1
  go mod edit -godebug=default=go1.24 || return 1
  local args=()
  for m in $staging; do args+=("-replace=$m=$m@v0.${v#1.}"); done
  go mod edit "${args[@]}" || return 1
  run_logged "go get k8s.io/kubernetes/cmd/kubectl@v$v" go get "k8s.io/kubernetes/cmd/kubectl@v$v" || return 1
  local ldf="-s -w" date
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $p.gitVersion=v$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  run_logged "go build kubectl v$v" go build -v -ldflags "$ldf" -o "$out/kubectl" k8s.io/kubernetes/cmd/kubectl || return 1
  "$out/kubectl" version --client >&2 || return 1
}

build_helm() { # $1 = helm v3 version (no v), $2 = work dir, $3 = output bin dir
  local v=$1 w=$2 out=$3
  rm -rf "$w/helm" && mkdir -p "$w/helm" && cd "$w/helm" || return 1
  download_verified "helm.sh/helm/v3@v$v" >/dev/null || return 1
  go mod init helmbin >>"$LOG" 2>&1 || return 1
  run_logged "go get helm.sh/helm/v3/cmd/helm@v$v" go get "helm.sh/helm/v3/cmd/helm@v$v" || return 1
  # helm's Makefile stamps its version and the k8s line its client libraries follow (client-go
  # v0.N is Kubernetes 1.N); without them `helm template` reports Capabilities.KubeVersion v1.20.
  local kminor
  kminor=$(go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)
  local ldf="-s -w -X helm.sh/helm/v3/internal/version.version=v$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  local p
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldf+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$kminor"
  done
  run_logged "go build helm v$v" go build -v -ldflags "$ldf" -o "$out/helm" helm.sh/helm/v3/cmd/helm || return 1
  "$out/helm" version >&2 || return 1
}

total_start=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/kvpa-build-tools.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Build into bin.partial and rename at the end, so an interrupted build is never taken as complete.
partial=$DEST/bin.partial
rm -rf "$partial"
mkdir -p "$partial"
log "building kubectl v$KUBECTL_VERSION (log: $LOG)"
(build_kubectl "$KUBECTL_VERSION" "$work" "$partial") || { log "ERROR: kubectl v$KUBECTL_VERSION failed; see $LOG"; exit 1; }
log "building helm v$HELM_VERSION (log: $LOG)"
(build_helm "$HELM_VERSION" "$work" "$partial") || { log "ERROR: helm v$HELM_VERSION failed; see $LOG"; exit 1; }
printf 'kubectl=v%s\nhelm=v%s\ngo=%s\n' "$KUBECTL_VERSION" "$HELM_VERSION" "$(go env GOVERSION)" >"$partial/VERSIONS"
rm -rf "$DEST/bin"
mv "$partial" "$DEST/bin"
log "done in $((SECONDS - total_start))s: $(tr '\n' ' ' <"$DEST/bin/VERSIONS")in $DEST/bin"
echo "$DEST/bin"
