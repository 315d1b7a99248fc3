#!/usr/bin/env bash
# Fetches the pinned third-party CRDs (LWS, KubeRay, AIBrix, Grove, KServe, Dynamo, Kueue) into a cache outside
# the clone:
#   ${KVPA_CACHE:-$HOME/.cache/kvpa}/crds/<pin set>/<project>/<file>.yaml
# The list, the pins and the SHA-256 of every file are in scripts/fetch-crds.tsv; the pin set is named by
# the first 12 hex digits of that file's SHA-256, so a changed pin never reuses an old directory.
# Modules come from the Go module proxy through `go mod download`, which checks each zip against the
# checksum database (sum.golang.org; verification is never turned off), and the module's h1: hash must
# also equal the one committed in scripts/fetch-crds.go.sum (go.sum format). Three files the proxy cannot serve
# are kept in scripts/crds (see its README) and copied from there, checked the same way.
# Idempotent: when the pin set is complete and every sum matches, it only prints the directory. Progress
# goes to stderr; the only stdout line is the directory, so callers can do DIR=$(bash scripts/fetch-crds.sh).
#
# Env overrides:
#   KVPA_CACHE   cache root (default $HOME/.cache/kvpa)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MANIFEST=$REPO/scripts/fetch-crds.tsv
GO_SUM=$REPO/scripts/fetch-crds.go.sum
PIN_SET=$(sha256sum "$MANIFEST" | cut -c1-12)
CACHE_ROOT=${KVPA_CACHE:-$HOME/.cache/kvpa}/crds
DEST=$CACHE_ROOT/$PIN_SET

log() { printf '[fetch-crds %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# Manifest rows without comments: file, source, path, sha256, scale (tab-separated).
rows() { grep -v '^#' "$MANIFEST" | grep -v '^[[:space:]]*$'; }

# Succeeds when every file of the manifest is in $1 with its committed SHA-256.
verified() {
  local dir=$1 file _src _path sum _scale
  [[ -f $dir/.complete ]] || return 1
  while IFS=$'\t' read -r file _src _path sum _scale; do
    [[ -f $dir/$file ]] || return 1
    [[ $(sha256sum "$dir/$file" | cut -d' ' -f1) == "$sum" ]] || return 1
  done < <(rows)
}

if verified "$DEST"; then
  log "cached: $DEST ($(rows | wc -l) CRDs, sums verified)"
  echo "$DEST"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
# One fetch at a time per cache (CI and the vitest globalSetup may both call us).
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
  log "another fetch holds $CACHE_ROOT/.lock; waiting for it"
  flock 9
fi
if verified "$DEST"; then
  log "cached (fetched by the other process): $DEST"
  echo "$DEST"
  exit 0
fi

command -v go >/dev/null || { log "ERROR: 'go' is not on PATH; the CRDs come from the Go module proxy"; exit 1; }
# Every module must be checked against the checksum database: refuse settings that would skip it.
export GOTOOLCHAIN=local GOWORK=off GOSUMDB=sum.golang.org GOFLAGS=
for v in GONOSUMDB GOPRIVATE GOINSECURE; do
  [[ -z $(go env "$v") ]] || { log "ERROR: $v=$(go env "$v") would skip checksum verification; unset it"; exit 1; }
done
[[ $(go env GOPROXY) != off ]] || { log "ERROR: GOPROXY=off; the CRDs come from the Go module proxy"; exit 1; }
log "$(go version); GOPROXY=$(go env GOPROXY); GOSUMDB=$(go env GOSUMDB)"
# Outside any go.mod, so `go mod download module@version` works on its own.
cd "$(mktemp -d "${TMPDIR:-/tmp}/kvpa-fetch-crds.XXXXXX")"
trap 'rm -rf "$PWD"' EXIT

# Downloads module@version once (verified against sum.golang.org) into MODULE_DIRS[module@version].
declare -A MODULE_DIRS=()
download_module() {
  local mv=$1 json dir
  [[ -z ${MODULE_DIRS[$mv]:-} ]] || return 0
  log "go mod download $mv"
  json=$(go mod download -json "$mv") || {
    log "ERROR: go mod download $mv failed: $(sed -n 's/.*"Error": "\(.*\)".*/\1/p' <<<"$json" | cut -c1-300)"
    exit 1
  }
  dir=$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$json")
  [[ -n $dir && -d $dir ]] || { log "ERROR: go mod download $mv gave no directory"; exit 1; }
  local got want
  got=$(sed -n 's/.*"Sum": "\(.*\)".*/\1/p' <<<"$json")
  want=$(awk -v m="${mv%@*}" -v v="${mv#*@}" '$1 == m && $2 == v { print $3 }' "$GO_SUM")
  [[ -n $want ]] || { log "ERROR: $GO_SUM has no line for ${mv%@*} ${mv#*@} (go mod download printed $got)"; exit 1; }
  [[ $got == "$want" ]] || { log "ERROR: $mv has module hash $got; $GO_SUM says $want"; exit 1; }
  MODULE_DIRS[$mv]=$dir
}

partial=$CACHE_ROOT/$PIN_SET.partial
rm -rf "$partial"
mkdir -p "$partial"
bad=0
while IFS=$'\t' read -r file src path sum _scale; do
  if [[ $src == repo ]]; then
    from=$REPO/$path
  else
    download_module "$src"
    from=${MODULE_DIRS[$src]}/$path
  fi
  [[ -f $from ]] || { log "ERROR: $src has no $path (for $file)"; exit 1; }
  mkdir -p "$partial/$(dirname "$file")"
  cp "$from" "$partial/$file"
  got=$(sha256sum "$partial/$file" | cut -d' ' -f1)
  if [[ $got != "$sum" ]]; then
    log "ERROR: $file from $src:$path has SHA-256 $got; scripts/fetch-crds.tsv says $sum"
    bad=1
  fi
done < <(rows)
if ((bad)); then
  rm -rf "$partial"
  log "ERROR: checksum mismatch; nothing installed. If a pin was changed on purpose, update its sum in $MANIFEST"
  exit 1
fi
# Module files are read-only in the Go module cache; the copies need not be.
chmod -R u+w "$partial"
touch "$partial/.complete"
rm -rf "$DEST"
mv "$partial" "$DEST"
log "done: $(rows | wc -l) CRDs in $DEST"
echo "$DEST"
