#!/usr/bin/env bash
# The ten scenarios the decision work is checked on (bench/RESULTS.md, "Decisions: work signals"): flat,
# long prompts, a 2x step and a 1-hour diurnal cycle at 10- and 40-minute cold starts, a bursty code trace
# and ServeGen. Deterministic (seed 1). Prints one table row per policy and scenario.
#   KVPA_TRACES=<dir> bash bench/decisions.sh [policies]     # default kvpa,static,oracle
#   KVPA_SIM_FLAGS='--drain off' bash bench/decisions.sh kvpa   # extra simulate flags for every scenario
#   KVPA_SCENARIOS=conv-x20-s10,code-x20-s10 bash bench/decisions.sh kvpa   # only these scenarios
#   KVPA_OUT_TAG=-coupled bash bench/decisions.sh kvpa   # write out/decisions/<scenario>-coupled instead
set -euo pipefail
cd "$(dirname "$0")/.."
# The development traces are not in the repository: KVPA_TRACES, else a sibling shared/traces when present.
T=${KVPA_TRACES:-}
[[ -z $T && -d ../shared/traces ]] && T=../shared/traces
P=${1:-kvpa,static,oracle}
for f in azure2023_conv.csv azure2023_code.csv servegen_mlarge_day09_scale0.04.csv; do
  [[ -f $T/$f ]] || { echo "bench/decisions.sh: no trace $T/$f (see bench/compare-all.sh for sources)" >&2; exit 2; }
done
mkdir -p out/decisions
run() { # name, then kvpa simulate flags
  local name=$1
  shift
  [[ -z ${KVPA_SCENARIOS:-} || ,$KVPA_SCENARIOS, == *,$name,* ]] || return 0
  # shellcheck disable=SC2086 # KVPA_SIM_FLAGS is a list of flags
  node bin/kvpa.js simulate --compare "$P" --out "out/decisions/$name${KVPA_OUT_TAG:-}" "$@" ${KVPA_SIM_FLAGS:-} 2>/dev/null |
    grep -v '^|:-\|^| policy' | sed "s/^/$name /"
}
for s in 10 40; do
  run "conv-x20-s$s" --trace "$T/azure2023_conv.csv" --rate-multiplier 20 --startup-minutes "$s"
  run "conv-x20-in10-s$s" --trace "$T/azure2023_conv.csv" --rate-multiplier 20 --input-scale 10 --startup-minutes "$s"
  run "conv-x10-step2-s$s" --trace "$T/azure2023_conv.csv" --rate-multiplier 10 --shape step:30m=2 --output-scale 10 \
    --startup-minutes "$s"
  run "conv-x20-diurnal-s$s" --trace "$T/azure2023_conv.csv" --rate-multiplier 20 \
    --shape diurnal:peak=1.6,mean=1,period=1h,peakAt=40m --output-scale 10 --startup-minutes "$s"
done
run code-x20-s10 --trace "$T/azure2023_code.csv" --rate-multiplier 20 --startup-minutes 10
run servegen-x10-s10 --trace "$T/servegen_mlarge_day09_scale0.04.csv" --rate-multiplier 10 --startup-minutes 10
