#!/usr/bin/env bash
# dev_study_plot.sh STUDY.jsonl OUT.png TITLE — mean KL against budget for the main variants of
# jobs/dev_study.py's output (docs/results.md). Needs gnuplot.
set -eu
IN=$1 OUT=$2 TITLE=$3
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
VARS="infoflow cacheblend dev dev-pow2 dev-K dev-layer2 dev-ranksum dev-err dev-posprior"
for v in $VARS; do
  python3 -c "
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r['variant'] == sys.argv[2]: print(r['budget'], max(r['kl'], 1e-9))" "$IN" "$v" > "$D/$v.dat"
done
{
  echo "set terminal pngcairo size 900,600 noenhanced"
  echo "set output '$OUT'"
  echo "set title '$TITLE'"
  echo "set xlabel 'budget R'; set ylabel 'mean KL(full || method)'; set logscale xy; set key outside right"
  printf "plot "
  sep="" i=1
  for v in $VARS; do
    printf "%s'%s/%s.dat' using 1:2 with linespoints lc %d pt %d title '%s'" "$sep" "$D" "$v" "$i" "$i" "$v"
    sep=", " i=$((i + 1))
  done
  echo
} > "$D/p.gp"
gnuplot "$D/p.gp"
