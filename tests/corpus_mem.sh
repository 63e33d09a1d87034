#!/usr/bin/env bash
# corpus_mem.sh BIN MODEL_DIR — the cache coordinator's memory does not grow with the corpus
# (issue 14 item 4): jobs/bench_corpus_mem.sh reads rank 0's peak RSS (VmHWM) once it has checked a
# corpus and filled its look-ahead, for 2,000 and 200,000 lines; the peaks may differ by at most
# LIMIT_KIB (8 MiB). main's coordinator before the streaming reader held ~150 bytes a line at its
# peak: +29 MiB here (measured, docs/benchmarks.md), so it fails this check.
set -u
BIN=$1 MODEL=$2
LIMIT_KIB=8192
out=$(BIN=$BIN MODEL=$MODEL bash "$(dirname "$0")/../jobs/bench_corpus_mem.sh" 2000 200000) || { echo "FAIL: bench"; exit 1; }
echo "$out"
small=$(awk '$1 == 2000 {print $(NF-1)}' <<<"$out") big=$(awk '$1 == 200000 {print $(NF-1)}' <<<"$out")
if ! [[ "$small" =~ ^[0-9]+$ && "$big" =~ ^[0-9]+$ && $small -gt 10000 ]]; then
  echo "FAIL: no peak read (small '$small', big '$big')"; exit 1
fi
d=$((big - small))
echo "peak at 200,000 lines - peak at 2,000 lines: $d KiB (limit $LIMIT_KIB KiB)"
[ "$d" -lt "$LIMIT_KIB" ] || { echo "FAIL: the coordinator's peak grows with the corpus"; exit 1; }
echo "corpus_mem: PASS"
