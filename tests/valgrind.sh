#!/usr/bin/env bash
# valgrind.sh BIN MODEL_DIR DATA_DIR — memcheck of a small cache + query run: no invalid access,
# no uninitialised use, no definite leak outside Open MPI's own initialisation (tests/valgrind.supp).
set -u
BIN=$1 MODEL=$2 DATA=$3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
VG=(valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=9 --num-callers=40
    --suppressions="$(dirname "$0")/valgrind.supp")
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
run() { # name args...
  local name=$1; shift
  if "${VG[@]}" "$BIN" "$@" > "$W/$name.log" 2>&1; then pass=$((pass + 1)); echo "ok   $name: $(grep 'ERROR SUMMARY' "$W/$name.log" | sed 's/==[0-9]*== //')";
  else fail=$((fail + 1)); echo "FAIL: $name"; grep -E -A12 "Invalid|uninitialised|definitely lost" "$W/$name.log" | head -60; fi
}
run cache cache --model "$MODEL" --corpus "$DATA/stories_corpus.jsonl" --store "$W/s" --chunk-tokens 32 --quiet
run query query --model "$MODEL" --store "$W/s" --docs lily,tom,cat --prompt "Lily was sad because the ball" --compare-full --steps 4
run query-cacheblend query --model "$MODEL" --store "$W/s" --docs cake,boat --prompt "Ben put the" --method cacheblend --steps 2
run verify verify --store "$W/s"
summary
