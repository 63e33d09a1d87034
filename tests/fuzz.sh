#!/usr/bin/env bash
# fuzz.sh [SECONDS] — builds the libFuzzer harnesses (clang, ASan+UBSan) in build-fuzz and runs each
# for SECONDS (default 20) from its committed seeds (tests/fuzz/corpus/<harness>), after replaying
# every committed regression input (tests/fuzz/regressions/<harness>). Any crash, leak, sanitizer
# report or timeout fails, and the input is kept in build-fuzz/crashes/.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
cd "$(dirname "$0")/.."
SECS=${1:-${FUZZ_SECONDS:-20}}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DINFOFLOW_FUZZ=ON -DINFOFLOW_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null || exit 1
cmake --build build-fuzz -j"$(nproc)" >/dev/null || { echo "FAIL: building the harnesses"; exit 1; }
mkdir -p build-fuzz/crashes
export ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0
for h in checkpoint tokenizer corpus queryset jobspec manifest shard safetensors hftokenizer; do
  bin=build-fuzz/tests/fuzz/fuzz_$h
  if [ -d tests/fuzz/regressions/$h ] && [ -n "$(ls tests/fuzz/regressions/$h)" ]; then
    if "$bin" -runs=0 tests/fuzz/regressions/$h/* > build-fuzz/crashes/$h.replay.log 2>&1; then pass=$((pass + 1));
    else echo "FAIL: $h: a committed regression input crashes again (build-fuzz/crashes/$h.replay.log)"; fail=$((fail + 1)); fi
  fi
  work=build-fuzz/corpus-$h
  rm -rf "$work" && mkdir -p "$work" && cp tests/fuzz/corpus/$h/* "$work/"
  if "$bin" "$work" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
       -artifact_prefix=build-fuzz/crashes/$h- -print_final_stats=1 > build-fuzz/crashes/$h.log 2>&1; then
    runs=$(grep -E "stat::number_of_executed_units" build-fuzz/crashes/$h.log | awk '{print $2}')
    echo "ok   $h: ${SECS}s, ${runs:-?} executions, no crash"
    pass=$((pass + 1))
  else
    echo "FAIL: $h: $(grep -m1 -E 'ERROR|SUMMARY|deadly' build-fuzz/crashes/$h.log) (log: build-fuzz/crashes/$h.log)"
    fail=$((fail + 1))
  fi
done
summary
