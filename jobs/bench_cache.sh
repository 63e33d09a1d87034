#!/usr/bin/env bash
# bench_cache.sh [DOCS] [TOKENS_PER_DOC] [SHAPE] — caching throughput of `infoflow cache` on a
# synthetic pre-tokenized corpus and a random-weight model, with 1 and 2 ranks, measured in one
# run. Prints tokens/s per configuration and the ratios. Uses build/infoflow.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCS=${1:-24} TOK=${2:-512} SHAPE=${3:-bench100m}
BIN=build/infoflow
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
awk -v n="$DOCS" -v t="$TOK" 'BEGIN { s = 11; for (i = 0; i < n; i++) { printf "{\"id\": \"s%04d\", \"tokens\": [", i;
  for (j = 0; j < t; j++) { s = (s * 1103515245 + 12345) % 2147483648; printf "%s%d", (j ? ", " : ""), 3 + s % 31000 }
  print "]}" } }' > "$W/corpus.jsonl"
run() { # name ranks [options...]; MPIRUN_OPTS adds mpirun options
  local name=$1 n=$2; shift 2
  rm -rf "$W/store"
  local line
  line=$(mpirun ${MPIRUN_OPTS:-} -n "$n" "$BIN" cache --random-model "$SHAPE" --corpus "$W/corpus.jsonl" --store "$W/store" \
         --progress-seconds 1000 "$@" 2>&1 | grep 'cache: cached')
  local rate
  rate=$(sed -E 's/.* ([0-9.]+) tok\/s.*/\1/' <<<"$line")
  printf '%-44s %8s tok/s\n' "$name" "$rate" >&2
  echo "$rate"
}
echo "corpus: $DOCS documents x $TOK tokens, model $SHAPE, chunks of 128 tokens, $(nproc) cores" >&2
r11=$(run "1 rank x 1 BLAS thread" 1 --threads 1)
# mpirun binds each of up to 2 ranks to one core: a single rank needs --bind-to none for 2 threads
r12=$(MPIRUN_OPTS="--bind-to none" run "1 rank x 2 BLAS threads (--bind-to none)" 1 --threads 2)
r21=$(run "2 ranks x 1 BLAS thread (default for -n 2)" 2)
r3d=$(run "3 ranks, dedicated coordinator, 2 workers x 1" 3 --dedicated-coordinator --threads 1)
awk -v a="$r11" -v b="$r12" -v c="$r21" -v d="$r3d" 'BEGIN {
  printf "speed-up of 2 ranks over 1 rank at 1 thread per rank: %.2fx\n", c / a;
  printf "2 ranks x 1 thread over 1 rank x 2 threads:           %.2fx\n", c / b;
  printf "rank 0 caching too over a dedicated coordinator:      %.2fx\n", c / d }'
