#!/bin/bash
# collect.sh OUT — merges the array cells' results ($OUT/cell-*) into $OUT/merged and writes the
# summary table and plots there (infoflow eval --summarize). Runs anywhere (no SLURM needed).
set -euo pipefail
OUT=${1:?usage: slurm/collect.sh OUT}
INFOFLOW=${INFOFLOW:-build/infoflow}
shopt -s nullglob
cells=("$OUT"/cell-*)
[ ${#cells[@]} -gt 0 ] || { echo "collect.sh: no $OUT/cell-* results" >&2; exit 2; }
mkdir -p "$OUT/merged"
for f in fidelity.jsonl needle.jsonl ablation.jsonl; do
  : > "$OUT/merged/$f"
  for c in "${cells[@]}"; do [ -f "$c/$f" ] && cat "$c/$f" >> "$OUT/merged/$f"; done
  [ -s "$OUT/merged/$f" ] || rm -f "$OUT/merged/$f"
done
echo "collect.sh: merged ${#cells[@]} cells into $OUT/merged"
"$INFOFLOW" eval --summarize "$OUT/merged"
