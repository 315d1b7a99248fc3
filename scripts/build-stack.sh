#!/usr/bin/env bash
# Builds the workload half of the live stack from the Go module proxy into a cache outside the clone:
#   ${KVPA_CACHE:-$HOME/.cache/kvpa}/stack/k8s-v<k8s>-lws-v<lws>-kwok-v<kwok>/bin/
#     {kube-controller-manager,kube-scheduler,lws-controller,kwok,VERSIONS}
# Idempotent: exits at once when a complete build is cached. Progress goes to stderr; the only
# stdout line is the bin directory, so callers can do BIN=$(bash scripts/build-stack.sh).
# Recipe: the same helper-module approach as build-k8s.sh; kwok is built as its docs install it
# (`go install sigs.k8s.io/kwok/cmd/kwok@<release>`, kubernetes-sigs/kwok site/content/en/docs/user/installation.md).
#
# Env overrides:
#   KVPA_CACHE               cache root (default $HOME/.cache/kvpa)
#   KVPA_STACK_K8S_VERSIONS  kube-controller-manager/kube-scheduler versions to try in order
#                            (default: the version build-k8s.sh built, so control plane and controllers match)
#   KVPA_LWS_VERSIONS        sigs.k8s.io/lws versions to try in order
#   KVPA_KWOK_VERSIONS       sigs.k8s.io/kwok versions to try in order
set -euo pipefail

CACHE_BASE=${KVPA_CACHE:-$HOME/.cache/kvpa}
CACHE_ROOT=$CACHE_BASE/stack

log() { printf '[build-stack %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# The k8s version build-k8s.sh picked (its VERSIONS file), so KCM and the scheduler match the apiserver.
k8s_from_cache() {
  local f
  for f in "$CACHE_BASE"/k8s/v*/bin/VERSIONS; do
    [[ -f $f ]] && sed -n 's/^kube-apiserver=v//p' "$f" | head -n1
  done | sort -V | tail -n1
}
K8S_VERSIONS=${KVPA_STACK_K8S_VERSIONS:-$(k8s_from_cache)}
K8S_VERSIONS=${K8S_VERSIONS:-"1.34.4 1.34.3 1.36.3"}
# v0.10.0 is the newest LWS release. The module
# proxy serves its .info/.mod but answers 403 "This module version is not available" for its .zip
# (checked 2026-08), so v0.9.0 (k8s libs v0.36.2, same LeaderWorkerSet v1 API) is the fallback.
LWS_VERSIONS=${KVPA_LWS_VERSIONS:-"0.10.0 0.9.0"}
# kwok v0.7.0 (client-go v0.33, go 1.24, no replace/exclude in its go.mod) is the primary; v0.8.0 needs Go 1.26.
KWOK_VERSIONS=${KVPA_KWOK_VERSIONS:-"0.7.0 0.8.0"}

BINS="kube-controller-manager kube-scheduler lws-controller kwok"
is_complete() {
  local b
  for b in $BINS; do [[ -x $1/bin/$b ]] || return 1; done
  [[ -f $1/bin/VERSIONS ]]
}

find_cached() {
  local k l w
  for k in $K8S_VERSIONS; do
    for l in $LWS_VERSIONS; do
      for w in $KWOK_VERSIONS; do
        if is_complete "$CACHE_ROOT/k8s-v$k-lws-v$l-kwok-v$w"; then
          echo "$CACHE_ROOT/k8s-v$k-lws-v$l-kwok-v$w"
          return 0
        fi
      done
    done
  done
  return 1
}

# Fast path without taking the lock.
if dest=$(find_cached); then
  log "cached: $dest/bin ($(tr '\n' ' ' <"$dest/bin/VERSIONS"))"
  echo "$dest/bin"
  exit 0
fi

command -v go >/dev/null || { log "ERROR: 'go' is not on PATH; the stack binaries are built from source"; exit 1; }
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_ROOT/.lock; waiting for it"
  flock 9
fi
if dest=$(find_cached); then
  log "cached (built by the other process): $dest/bin"
  echo "$dest/bin"
  exit 0
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off GOFLAGS="-trimpath -buildvcs=false -mod=mod"
unset GODEBUG
log "$(go version); GOPROXY=$(go env GOPROXY); $(nproc) cores"

LOG=$CACHE_ROOT/build.log
: >"$LOG"

# run_logged: scripts/lib.sh
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_k8s() { # $1 = k8s version (no v), $2 = work dir, $3 = output bin dir
  local v=$1 w=$2 out=$3
  local minor=${v#1.}
  minor=${minor%%.*}
  rm -rf "$w/k8s" && mkdir -p "$w/k8s" && cd "$w/k8s" || return 1
  # Same helper module as build-k8s.sh: staging modules pinned via replace at v0.<minor>.<patch>.
  local modfile
  modfile=$(go mod download -json "k8s.io/kubernetes@v$v" 2>>"$LOG" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [[ -n $modfile && -f $modfile ]] || { log "cannot download k8s.io/kubernetes@v$v (see $LOG)"; return 1; }
  local staging
  staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$modfile")
  go mod init k8sbins >>"$LOG" 2>&1 || return 1
  go mod edit -godebug=default=go1.24 || return 1
  local args=()
  for m in $staging; do args+=("-replace=$m=$m@v0.${v#1.}"); done
  go mod edit "${args[@]}" || return 1
  run_logged "go get k8s.io/kubernetes@v$v" go get \
    "k8s.io/kubernetes/cmd/kube-controller-manager@v$v" "k8s.io/kubernetes/cmd/kube-scheduler@v$v" || return 1
  local ldf="-s -w" date
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $p.gitVersion=v$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  local b
  for b in kube-controller-manager kube-scheduler; do
    run_logged "go build $b v$v" go build -v -ldflags "$ldf" -o "$out/$b" "k8s.io/kubernetes/cmd/$b" || return 1
    "$out/$b" --version >&2 || return 1
  done
}

build_lws() { # $1 = lws version (no v), $2 = work dir, $3 = output bin dir
  local v=$1 w=$2 out=$3
  rm -rf "$w/lws" && mkdir -p "$w/lws" && cd "$w/lws" || return 1
  go mod init lwsbin >>"$LOG" 2>&1 || return 1
  # The manager's main package is sigs.k8s.io/lws/cmd (what the upstream Dockerfile builds).
  run_logged "go get sigs.k8s.io/lws@v$v" go get "sigs.k8s.io/lws/cmd@v$v" || return 1
  local ldf="-s -w -X sigs.k8s.io/lws/pkg/version.GitVersion=v$v -X sigs.k8s.io/lws/pkg/version.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  run_logged "go build lws-controller v$v" go build -v -ldflags "$ldf" -o "$out/lws-controller" sigs.k8s.io/lws/cmd || return 1
  "$out/lws-controller" --version >&2 || return 1
}

build_kwok() { # $1 = kwok version (no v), $2 = work dir, $3 = output bin dir
  local v=$1 w=$2 out=$3
  rm -rf "$w/kwok" && mkdir -p "$w/kwok" && cd "$w/kwok" || return 1
  go mod init kwokbin >>"$LOG" 2>&1 || return 1
  run_logged "go get sigs.k8s.io/kwok@v$v" go get "sigs.k8s.io/kwok/cmd/kwok@v$v" || return 1
  run_logged "go build kwok v$v" go build -v -ldflags "-s -w" -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok || return 1
  "$out/kwok" --version >&2 || return 1
}

total_start=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/kvpa-build-stack.XXXXXX")
trap 'rm -rf "$work"' EXIT
partial=$CACHE_ROOT/bin.partial
# Build into bin.partial and rename at the end, so an interrupted build is never taken as complete.
rm -rf "$partial"
mkdir -p "$partial"

# Tries each version of one component in order; prints the one that built.
first_that_builds() { # $1 = build function, $2 = label, rest = versions
  local fn=$1 label=$2
  shift 2
  local v
  for v in "$@"; do
    log "building $label v$v (log: $LOG)"
    if ($fn "$v" "$work" "$partial"); then
      echo "$v"
      return 0
    fi
    log "$label v$v failed; trying the next version (full log: $LOG)"
  done
  return 1
}

# shellcheck disable=SC2086 # version lists are space-separated on purpose
k8s_ok=$(first_that_builds build_k8s "kube-controller-manager+kube-scheduler" $K8S_VERSIONS) ||
  { log "ERROR: no k8s version in [$K8S_VERSIONS] built; see $LOG"; exit 1; }
# shellcheck disable=SC2086
lws_ok=$(first_that_builds build_lws "lws-controller" $LWS_VERSIONS) ||
  { log "ERROR: no LWS version in [$LWS_VERSIONS] built; see $LOG"; exit 1; }
# shellcheck disable=SC2086
kwok_ok=$(first_that_builds build_kwok "kwok" $KWOK_VERSIONS) ||
  { log "ERROR: no kwok version in [$KWOK_VERSIONS] built; see $LOG"; exit 1; }

printf 'kube-controller-manager=v%s\nkube-scheduler=v%s\nlws=v%s\nkwok=v%s\ngo=%s\n' \
  "$k8s_ok" "$k8s_ok" "$lws_ok" "$kwok_ok" "$(go env GOVERSION)" >"$partial/VERSIONS"
dest=$CACHE_ROOT/k8s-v$k8s_ok-lws-v$lws_ok-kwok-v$kwok_ok
mkdir -p "$dest"
rm -rf "$dest/bin"
mv "$partial" "$dest/bin"
cp "$LOG" "$dest/build.log"
log "done in $((SECONDS - total_start))s: $(tr '\n' ' ' <"$dest/bin/VERSIONS")in $dest/bin"
echo "$dest/bin"
