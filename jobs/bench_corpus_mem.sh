#!/usr/bin/env bash
# bench_corpus_mem.sh [N...] — the cache coordinator's memory against the corpus's line count
# (issue 14 item 4): for each N (default 1 100000 1000000) writes N synthetic lines (bench_scale.sh's
# documents, 8-character ids), starts `infoflow cache` on one rank with the fault point cache.queued
# set to stop the process (SIGSTOP) once the corpus is checked and the work queue (its look-ahead)
# is built, prints the stopped process's VmRSS and VmHWM (peak), and kills it. Uses build/infoflow
# (BIN overrides); MODEL the model folder. A binary without the cache.queued point (main before the
# streaming coordinator) is read when it prints "cache: N documents in ..." instead.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/infoflow}
MODEL=${MODEL:-models/stories260K}
[ -d "$MODEL" ] || MODEL=../shared/models/stories260K
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for n in "${@:-1 100000 1000000}"; do
  for m in $n; do
    awk -v n="$m" 'BEGIN {
      split("the a cat dog ran to park with ball and big red little girl boy was happy sad tree sun day", base, " ");
      for (i = 0; i < 400; i++) { w = base[1 + i % 21]; v[i] = (i < 21) ? w : w substr("abcdefghijklmnopqrst", 1 + int(i / 21), 1) }
      s = 7; for (i = 0; i < n; i++) { t = "";
        for (j = 0; j < 11; j++) { s = (s * 1103515245 + 12345) % 2147483648; t = t (j ? " " : "") v[int(s / 65536) % 400] }
        printf "{\"id\": \"d%07d\", \"text\": \"%s.\"}\n", i, t } }' > "$W/c.jsonl"
    rm -rf "$W/s" "$W/err" # a stale err would end the wait below at once
    INFOFLOW_FAULT=cache.queued:1 INFOFLOW_FAULT_ACTION=stop \
      "$BIN" cache --model "$MODEL" --corpus "$W/c.jsonl" --store "$W/s" --dtype f16 --progress-seconds 100000 2> "$W/err" &
    pid=$!
    for _ in $(seq 1 3000); do
      state=$(awk '{print $3}' /proc/$pid/stat 2>/dev/null)
      [ "$state" = T ] && break
      if [ -z "$state" ] || [ "$state" = Z ]; then # it exited (a zombie until waited for)
        echo "bench_corpus_mem: cache exited before its peak could be read:" >&2; cat "$W/err" >&2; exit 1
      fi
      grep -q "documents in" "$W/err" 2>/dev/null && ! grep -q cache.queued "$BIN" && break
      sleep 0.1
    done
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status) hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
    kill -9 $pid; wait $pid 2>/dev/null
    printf '%9d lines (%d bytes): RSS %d KiB, peak %d KiB\n' "$m" "$(stat -c %s "$W/c.jsonl")" "$rss" "$hwm"
  done
done
