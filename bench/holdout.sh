#!/usr/bin/env bash
# kvpa against its comparison policies on the synthetic held-out shapes of bench/holdout-traces.ts
# (generated on first use into out/holdout), at 10- and 40-minute cold starts. Needs no trace from
# outside the repository. Seed 1, deterministic; two runs at a time. One table row per policy and run.
#   bash bench/holdout.sh [policies]                  # default kvpa,static
#   KVPA_SHAPES=long-flat-1h,reasoning-daily-8h bash bench/holdout.sh kvpa,static,oracle
#   KVPA_SIM_FLAGS='--policy-file x.yaml' KVPA_OUT_TAG=-x bash bench/holdout.sh   # extra flags, own outputs
set -euo pipefail
cd "$(dirname "$0")/.."
P=${1:-kvpa,static}
D=out/holdout
[[ -f $D/long-flat-1h.csv ]] || npx tsx bench/holdout-traces.ts --out "$D" >&2
mkdir -p out/holdout-runs
run() { # shape, startup minutes
  local name=$1-s$2
  [[ -z ${KVPA_SHAPES:-} || ,$KVPA_SHAPES, == *,$1,* ]] || return 0
  # shellcheck disable=SC2086 # KVPA_SIM_FLAGS is a list of flags
  node bin/kvpa.js simulate --trace "$D/$1.csv" --compare "$P" --startup-minutes "$2" \
    --out "out/holdout-runs/$name${KVPA_OUT_TAG:-}" ${KVPA_SIM_FLAGS:-} 2>/dev/null |
    grep -v '^|:-\|^| policy' | sed "s/^/$name /"
}
for shape in long-flat-1h reasoning-step2-2h reasoning-daily-8h chat-daily-6h reasoning-bursts-2h chat-ramp3-2h \
  long-stepdown-2h; do
  run "$shape" 10 &
  run "$shape" 40 &
  wait
done
