#!/usr/bin/env bash
# store_messages.sh BIN MODEL_DIR DATA_DIR — store problems named as what they are (breaker findings
# 18 and 20): a manifest whose shape disagrees with the shards shows the differing values; a missing
# index segment is "missing", not "kept disappearing"; `cache --no-lock` on a store whose lock another
# job holds is refused and leaves that job's .tmp shard alone.
set -u
BIN=$1 MODEL=$2 DATA=$3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
"$BIN" cache --model "$MODEL" --corpus "$DATA/stories_corpus.jsonl" --store "$W/base" --quiet || { echo "FAIL: cache"; exit 1; }
cp -a "$W/base" "$W/nl"
python3 -c "import json,sys; p=sys.argv[1]; m=json.load(open(p)); m['model']['n_layers']=6; json.dump(m, open(p,'w'))" \
  "$W/nl/manifest.json"
out=$("$BIN" verify --store "$W/nl" 2>&1); rc=$?
expect "manifest n_layers 6 against 5-layer shards fails verify ($out)" test "$rc" -ne 0
expect "... showing the shard's 5 layers and the manifest's 6" has "$out" '5 layers, 4 KV heads of 8) than the manifest.s (.*, 6, 4 of 8)'
cp -a "$W/base" "$W/ni"
rm "$W"/ni/index-*.h5
out=$("$BIN" verify --store "$W/ni" 2>&1); rc=$?
expect "a missing index segment fails verify ($out)" test "$rc" -ne 0
expect "... reported as missing" has "$out" 'index-.*\.h5: index segment is missing'
if has "$out" 'kept disappearing'; then bad "... not as disappearing"; else ok; fi
# --no-lock while another job visibly holds the lock: refused, the job's in-progress shard kept
cp -a "$W/base" "$W/nk"
touch "$W/nk/shard-20260101T000000-abcde-r0000-000000.h5.tmp"
( flock -x 9; echo "pid $BASHPID" >&9; sleep 4 ) 9> "$W/nk/.lock" &
sleep 0.5
out=$("$BIN" cache --model "$MODEL" --corpus "$DATA/stories_corpus.jsonl" --store "$W/nk" --no-lock 2>&1); rc=$?
expect "--no-lock on a held lock is refused ($out)" test "$rc" -eq 1
expect "... saying why" has "$out" "in use by another cache job .*--no-lock does not override a lock that is held"
expect "... the holder's .tmp shard is still there" test -f "$W/nk/shard-20260101T000000-abcde-r0000-000000.h5.tmp"
wait
expect "--no-lock on a free lock works" "$BIN" cache --model "$MODEL" --corpus "$DATA/stories_corpus.jsonl" --store "$W/nk" --no-lock --quiet
summary
