#!/usr/bin/env bash
# faults.sh BIN — injected failures (docs/reliability.md): an HDF5 write, an fsync, a rename, an
# allocation failing, a rank exiting mid-job. Each failed cache job must end (non-zero, no hang)
# with a message, leave a store that verifies and holds only documents identical to an
# uninterrupted run's, and be completed by a rerun. A failing query ends cleanly on all ranks.
# Readers running while a job caches never see an incomplete document.
set -u
BIN=$1
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
SHAPE="dim=64,layers=3,heads=4,kv_heads=2,hidden=128,vocab=300,seq=512"
awk 'BEGIN { s = 9; for (i = 0; i < 30; i++) { printf "{\"id\": \"f%02d\", \"tokens\": [", i;
  for (j = 0; j < 40 + (i * 13) % 90; j++) { s = (s * 1103515245 + 12345) % 2147483648; printf "%s%d", (j ? ", " : ""), 3 + s % 290 }
  print "]}" } }' > "$W/c.jsonl"
cache() { timeout 120 mpirun -n 2 "$BIN" cache --random-model "$SHAPE" --corpus "$W/c.jsonl" --store "$1" --chunk-tokens 32 --commit-docs 2 --quiet; }
cache "$W/ref" || { echo "FAIL: reference"; exit 1; }

for c in shard.write:3:1:fail shard.fsync:2:0:fail shard.rename:1:1:fail catalog.commit:3:0:fail \
         manifest.rename:1:0:fail alloc:12:1:fail worker.doc:3:1:exit; do
  IFS=: read -r point hit rank action <<<"$c"
  s="$W/s-$point"
  out=$(INFOFLOW_FAULT=$point:$hit INFOFLOW_FAULT_RANK=$rank INFOFLOW_FAULT_ACTION=$action cache "$s" 2>&1); rc=$?
  expect "$c: the job fails (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
  if [ "$action" = fail ]; then
    expect "$c: with the failing rank's message ($(head -c 300 <<<"$out"))" grep -q "infoflow: error: rank $rank:" <<<"$out"
  fi
  if [ -f "$s/manifest.json" ]; then
    expect "$c: what the store holds verifies" "$BIN" verify --store "$s"
    expect "$c: ... and equals the uninterrupted run" "$BIN" verify --store "$s" --against "$W/ref" --subset
  fi
  expect "$c: a rerun completes" cache "$s"
  expect "$c: ... into the uninterrupted store" "$BIN" verify --store "$s" --against "$W/ref"
done

# readers during a caching job never see an incomplete document
rm -rf "$W/live"
timeout 120 mpirun -n 2 "$BIN" cache --random-model "$SHAPE" --corpus "$W/c.jsonl" --store "$W/live" --chunk-tokens 32 \
  --commit-docs 1 --quiet &
job=$!
seen=0; broken=0
while kill -0 "$job" 2>/dev/null; do
  if [ -f "$W/live/manifest.json" ]; then
    "$BIN" verify --store "$W/live" --against "$W/ref" --subset > /dev/null 2>&1 || broken=$((broken + 1))
    seen=$((seen + 1))
  fi
done
wait "$job"
expect "concurrent readers ($seen passes) never saw a damaged or partial store ($broken)" test "$broken" -eq 0 -a "$seen" -gt 0

# a failing query ends on every rank with a message
"$BIN" query --random-model "$SHAPE" --store "$W/ref" --docs f01,f02 --prompt-ids 5,6 > /dev/null || bad "query runs"
out=$(INFOFLOW_FAULT=alloc:3 INFOFLOW_FAULT_RANK=1 INFOFLOW_FAULT_ACTION=fail timeout 60 mpirun -n 2 "$BIN" query \
  --random-model "$SHAPE" --store "$W/ref" --docs f01,f02 --prompt-ids 5,6 2>&1); rc=$?
expect "query with a failing allocation on rank 1 ends (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
expect "... with its message ($(head -c 200 <<<"$out"))" grep -q "out of memory" <<<"$out"
# a context that would not fit is refused up front with the estimate
out=$(INFOFLOW_MEM_LIMIT=100000 "$BIN" query --random-model "$SHAPE" --store "$W/ref" --docs f01,f02,f03 --prompt-ids 5 2>&1); rc=$?
expect "an oversized query is refused (rc $rc)" test "$rc" -eq 1
expect "... with the estimate ($out)" grep -q "needs about .* but only .* are available" <<<"$out"
summary
