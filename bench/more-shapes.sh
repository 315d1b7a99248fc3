#!/usr/bin/env bash
# Eight scenarios beside bench/decisions.sh's ten, to check a decision change on shapes it was not made
# on: conv x40, R1-length outputs at a 20-minute start, code x40, a 3x ramp, 15 s Prometheus scrapes,
# the H100 calibration, a 1.5x step then a dip on 5x prompts, and ServeGen x20. Seed 1, deterministic;
# two runs at a time. Prints one table row per policy and scenario (order varies: compare by name).
#   KVPA_TRACES=<dir> bash bench/more-shapes.sh [policies]     # default kvpa,static
set -euo pipefail
cd "$(dirname "$0")/.."
T=${KVPA_TRACES:-}
[[ -z $T && -d ../shared/traces ]] && T=../shared/traces
P=${1:-kvpa,static}
for f in azure2023_conv.csv azure2023_code.csv servegen_mlarge_day09_scale0.04.csv; do
  [[ -f $T/$f ]] || { echo "bench/more-shapes.sh: no trace $T/$f (see bench/compare-all.sh for sources)" >&2; exit 2; }
done
mkdir -p out/more-shapes
C=$T/azure2023_conv.csv
run() { # name, then kvpa simulate flags
  local name=$1
  shift
  node bin/kvpa.js simulate --compare "$P" --out "out/more-shapes/$name" "$@" 2>/dev/null |
    grep -v '^|:-\|^| policy' | sed "s/^/$name /"
}
run conv-x40-s10 --trace "$C" --rate-multiplier 40 --startup-minutes 10 &
run conv-x20-out10-s20 --trace "$C" --rate-multiplier 20 --output-scale 10 --startup-minutes 20 &
wait
run code-x40-s20 --trace "$T/azure2023_code.csv" --rate-multiplier 40 --startup-minutes 20 &
run conv-x10-ramp3-s10 --trace "$C" --rate-multiplier 10 --shape ramp:0-60m=1-3 --startup-minutes 10 &
wait
run conv-x20-scrape15-s10 --trace "$C" --rate-multiplier 20 --scrape-interval 15 --startup-minutes 10 &
run h100-conv-x20-out10-s10 --trace "$C" --rate-multiplier 20 --output-scale 10 --calibration deepseek-r1-h100 \
  --startup-minutes 10 &
wait
run conv-x20-in5-dip-s20 --trace "$C" --rate-multiplier 20 --input-scale 5 --shape step:20m=1.5,40m=0.7 \
  --startup-minutes 20 &
run servegen-x20-s20 --trace "$T/servegen_mlarge_day09_scale0.04.csv" --rate-multiplier 20 --startup-minutes 20 &
wait
