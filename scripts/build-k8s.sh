#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy into a cache outside the clone:
#   ${KVPA_CACHE:-$HOME/.cache/kvpa}/k8s/<k8s version>/bin/{kube-apiserver,etcd}
# Idempotent: exits at once when a complete build is cached. Progress goes to stderr; the only
# stdout line is the bin directory, so callers can do BIN=$(bash scripts/build-k8s.sh).
# Recipe: a helper module that requires k8s.io/kubernetes and pins every staging module with a replace
# (kubernetes/kubernetes go.mod's "=> ./staging/src/" list; see kubernetes/kubernetes#79384 for why v0.x.y).
#
# Env overrides:
#   KVPA_CACHE          cache root (default $HOME/.cache/kvpa)
#   KVPA_K8S_VERSIONS   kube-apiserver versions to try in order
#   KVPA_ETCD_VERSIONS  etcd versions to try in order
set -euo pipefail

# v1.34.4 is the newest 1.34 patch the proxy lists (`go list -m -versions k8s.io/kubernetes`). Newer
# patches (up to v1.34.12) answer on @v/<v>.info but the checksum database has no entry for them, so
# `go` refuses them; we never turn off checksum verification. Fallbacks: 1.34.3, then 1.36.3 (the
# line upstream builds with Go 1.26).
K8S_VERSIONS=${KVPA_K8S_VERSIONS:-"1.34.4 1.34.3 1.36.3"}
# 3.6.16 is the newest etcd the proxy lists; 3.6.4 is envtest's pairing for 1.34; 3.5.21 the safe fallback.
ETCD_VERSIONS=${KVPA_ETCD_VERSIONS:-"3.6.16 3.6.4 3.5.21"}
CACHE_ROOT=${KVPA_CACHE:-$HOME/.cache/kvpa}/k8s

log() { printf '[build-k8s %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

is_complete() { [[ -x $1/bin/kube-apiserver && -x $1/bin/etcd && -f $1/bin/VERSIONS ]]; }

# Fast path without taking the lock: any candidate already built.
for v in $K8S_VERSIONS; do
  if is_complete "$CACHE_ROOT/v$v"; then
    log "cached: $CACHE_ROOT/v$v/bin ($(tr '\n' ' ' <"$CACHE_ROOT/v$v/bin/VERSIONS"))"
    echo "$CACHE_ROOT/v$v/bin"
    exit 0
  fi
done

command -v go >/dev/null || { log "ERROR: 'go' is not on PATH; kube-apiserver must be built from source"; exit 1; }
mkdir -p "$CACHE_ROOT"
# One build at a time per cache (CI and the vitest globalSetup may both call us).
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_ROOT/.lock; waiting for it"
  flock 9
fi
for v in $K8S_VERSIONS; do
  if is_complete "$CACHE_ROOT/v$v"; then
    log "cached (built by the other process): $CACHE_ROOT/v$v/bin"
    echo "$CACHE_ROOT/v$v/bin"
    exit 0
  fi
done

export GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off GOFLAGS="-trimpath -buildvcs=false -mod=mod"
# GODEBUG defaults come from the helper module's go.mod (godebug line below); never inherit one.
unset GODEBUG
log "$(go version); GOPROXY=$(go env GOPROXY); $(nproc) cores"

# run_logged: scripts/lib.sh
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_apiserver() { # $1 = k8s version (no v), $2 = work dir, $3 = output bin dir
  local v=$1 w=$2 out=$3
  local minor=${v#1.}
  minor=${minor%%.*}
  # errexit does not apply inside `if ! (fn)`, so every step below ends in `|| return 1`.
  mkdir -p "$w/k8s" && cd "$w/k8s" || return 1
  log "kube-apiserver v$v: fetching go.mod of k8s.io/kubernetes@v$v"
  # The staging module list comes from kubernetes' own go.mod (its "=> ./staging/src/" replaces),
  # so 1.34 (31 modules) and 1.36 (33) both work without a hard-coded list.
  local modfile
  modfile=$(go mod download -json "k8s.io/kubernetes@v$v" 2>>"$LOG" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [[ -n $modfile && -f $modfile ]] || { log "cannot download k8s.io/kubernetes@v$v (see $LOG)"; return 1; }
  local staging
  staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$modfile")
  log "kube-apiserver v$v: $(wc -w <<<"$staging") staging modules pinned at v0.$minor.${v##*.}"
  go mod init k8sbins >>"$LOG" 2>&1 || return 1
  # kubernetes pins its GODEBUG defaults to go1.24; GODEBUG defaults follow the MAIN module.
  go mod edit -godebug=default=go1.24 || return 1
  local args=()
  for m in $staging; do args+=("-replace=$m=$m@v0.${v#1.}"); done
  go mod edit "${args[@]}" || return 1
  run_logged "go get k8s.io/kubernetes@v$v (module download)" go get "k8s.io/kubernetes/cmd/kube-apiserver@v$v" || return 1
  local ldf="-s -w" date
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $p.gitVersion=v$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  run_logged "go build kube-apiserver v$v" go build -v -ldflags "$ldf" -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver || return 1
  "$out/kube-apiserver" --version >&2 || return 1
}

build_etcd() { # $1 = etcd version (no v), $2 = work dir, $3 = output bin dir
  local v=$1 w=$2 out=$3
  rm -rf "$w/etcd" && mkdir -p "$w/etcd" && cd "$w/etcd" || return 1
  go mod init etcdbin >>"$LOG" 2>&1 || return 1
  run_logged "go get go.etcd.io/etcd/server/v3@v$v" go get "go.etcd.io/etcd/server/v3@v$v" || return 1
  # The main package is the module root, so -o is needed (the default name would be "v3").
  run_logged "go build etcd v$v" go build -v -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3 || return 1
  "$out/etcd" --version >&2 || return 1
}

total_start=$SECONDS
for v in $K8S_VERSIONS; do
  dest="$CACHE_ROOT/v$v"
  mkdir -p "$dest"
  LOG="$dest/build.log"
  : >"$LOG"
  # Build into bin.partial and rename at the end, so an interrupted build is never taken as complete.
  rm -rf "$dest/bin.partial"
  mkdir -p "$dest/bin.partial"
  work=$(mktemp -d "${TMPDIR:-/tmp}/kvpa-build-k8s.XXXXXX")
  log "building kube-apiserver v$v into $dest (log: $LOG)"
  if ! (build_apiserver "$v" "$work" "$dest/bin.partial"); then
    log "kube-apiserver v$v failed to build; full log: $LOG"
    rm -rf "$work" "$dest/bin.partial"
    continue
  fi
  etcd_ok=""
  for e in $ETCD_VERSIONS; do
    log "building etcd v$e (log: $LOG)"
    if (build_etcd "$e" "$work" "$dest/bin.partial"); then
      etcd_ok=$e
      break
    fi
    log "etcd v$e failed to build; trying the next version (full log: $LOG)"
  done
  rm -rf "$work"
  if [[ -z $etcd_ok ]]; then
    log "ERROR: no etcd version in [$ETCD_VERSIONS] built; see $LOG"
    rm -rf "$dest/bin.partial"
    exit 1
  fi
  printf 'kube-apiserver=v%s\netcd=v%s\ngo=%s\n' "$v" "$etcd_ok" "$(go env GOVERSION)" >"$dest/bin.partial/VERSIONS"
  rm -rf "$dest/bin"
  mv "$dest/bin.partial" "$dest/bin"
  log "done in $((SECONDS - total_start))s: kube-apiserver v$v, etcd v$etcd_ok in $dest/bin"
  echo "$dest/bin"
  exit 0
done
log "ERROR: kube-apiserver failed to build for every version in [$K8S_VERSIONS]; logs: $CACHE_ROOT/v*/build.log"
exit 1
