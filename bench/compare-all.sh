#!/usr/bin/env bash
# Runs every comparison of bench/RESULTS.md ("Decision-quality lab") into out/<scenario>/, then
# renders the tables with bench/compare-tables.ts. Deterministic (seed 1): reruns give the same tables.
#   bash bench/compare-all.sh            # all scenarios (~1 h on 2 cores: the oracle's search runs many)
#   bash bench/compare-all.sh conv-x20   # only scenarios whose name starts with this
set -euo pipefail
cd "$(dirname "$0")/.."
# The development traces are not in the repository: KVPA_TRACES, else ../shared/traces when present.
T=${KVPA_TRACES:-../shared/traces}
for f in azure2023_conv.csv azure2023_code.csv servegen_mlarge_day09_scale0.04.csv; do
  [[ -f $T/$f ]] || {
    echo "bench/compare-all.sh: no trace $T/$f. Set KVPA_TRACES to a directory holding azure2023_conv.csv," >&2
    echo "  azure2023_code.csv (github.com/Azure/AzurePublicDataset, data/AzureLLMInferenceTrace_*.csv as" >&2
    echo "  t_ms,input_tokens,output_tokens) and servegen_mlarge_day09_scale0.04.csv (github.com/alibaba/ServeGen)." >&2
    exit 2
  }
done
P=kvpa,knative,aibrix-kpa,aibrix-apa,hpa,static,oracle
only=${1:-}

run() { # name, then kvpa simulate flags
  local name=$1
  shift
  [[ -n $only && $name != "$only"* ]] && return 0
  echo "== $name" >&2
  node bin/kvpa.js simulate --compare "$P" --out "out/$name" "$@" >"out/$name.table.txt" 2>"out/$name.log" \
    || { echo "$name failed; see out/$name.log" >&2; return 1; }
}

mkdir -p out
for s in 10 20; do
  run "conv-x20-s$s" --trace "$T/azure2023_conv.csv" --rate-multiplier 20 --startup-minutes "$s"
  run "conv-x40-s$s" --trace "$T/azure2023_conv.csv" --rate-multiplier 40 --startup-minutes "$s"
  run "conv-x20-out10-s$s" --trace "$T/azure2023_conv.csv" --rate-multiplier 20 --output-scale 10 --startup-minutes "$s"
  run "code-x20-s$s" --trace "$T/azure2023_code.csv" --rate-multiplier 20 --startup-minutes "$s"
  run "code-x40-s$s" --trace "$T/azure2023_code.csv" --rate-multiplier 40 --startup-minutes "$s"
  run "h100-conv-x20-out10-s$s" --trace "$T/azure2023_conv.csv" --rate-multiplier 20 --output-scale 10 \
    --calibration deepseek-r1-h100 --startup-minutes "$s"
done
# Shapes the traces lack (sim/README.md "Traces"): long prompts, a 2x step, a diurnal cycle; 10- and 40-minute starts.
for s in 10 40; do
  run "shape-conv-x20-in10-s$s" --trace "$T/azure2023_conv.csv" --rate-multiplier 20 --input-scale 10 --startup-minutes "$s"
  run "shape-conv-x10-step2-s$s" --trace "$T/azure2023_conv.csv" --rate-multiplier 10 --shape step:30m=2 \
    --output-scale 10 --startup-minutes "$s"
  run "shape-conv-x20-diurnal-s$s" --trace "$T/azure2023_conv.csv" --rate-multiplier 20 \
    --shape diurnal:peak=1.6,mean=1,period=1h,peakAt=40m --output-scale 10 --startup-minutes "$s"
done
for s in 10 20; do
  run "servegen-x10-s$s" --trace "$T/servegen_mlarge_day09_scale0.04.csv" --rate-multiplier 10 --startup-minutes "$s"
  run "servegen-x20-s$s" --trace "$T/servegen_mlarge_day09_scale0.04.csv" --rate-multiplier 20 --startup-minutes "$s"
done
npx tsx bench/compare-tables.ts out >out/tables.md
echo "tables: out/tables.md" >&2
