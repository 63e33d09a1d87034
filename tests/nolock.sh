#!/usr/bin/env bash
# nolock.sh BIN MODEL_DIR DATA_DIR SHIM — a file system without working locks (the SHIM makes every
# flock fail with ENOLCK): cache reports the cause and the remedy in one line instead of "in use by
# another cache job"; `cache --no-lock` works; a query names HDF5_USE_FILE_LOCKING=FALSE, and with it
# set gives the same answer as without the shim.
set -u
BIN=$1 MODEL=$2 DATA=$3 SHIM=$4
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
cache() { "$BIN" cache --model "$MODEL" --corpus "$DATA/stories_corpus.jsonl" --store "$W/s" --quiet "$@"; }
query() { "$BIN" query --model "$MODEL" --store "$W/s" --docs lily,tom --prompt "Lily was sad because" --json --steps 8; }
err=$(LD_PRELOAD=$SHIM cache 2>&1); rc=$?
echo "$err"
expect "cache without locks exits 1" test $rc -eq 1
expect "one line naming the cause and --no-lock" test "$(wc -l <<<"$err")" -eq 1
expect "cause stated" grep -q "does not support file locks (flock: No locks available)" <<<"$err"
expect "remedy stated" grep -q -- "--no-lock" <<<"$err"
expect "not the old wrong message" bash -c "! grep -q 'in use by another' <<<'$err'"
LD_PRELOAD=$SHIM cache --no-lock; expect "cache --no-lock works there" test $? -eq 0
err=$(LD_PRELOAD=$SHIM query 2>&1); rc=$?
echo "$err"
expect "query without locks exits 1 with one line" test $rc -eq 1 -a "$(wc -l <<<"$err")" -eq 1
expect "query names the remedy" grep -q "HDF5_USE_FILE_LOCKING=FALSE" <<<"$err"
a=$(query); b=$(LD_PRELOAD=$SHIM HDF5_USE_FILE_LOCKING=FALSE query)
f() { python3 -c "import json,sys; r=json.loads(sys.argv[1]); print(r['answer_ids'], r['selected'])" "$1"; }
expect "HDF5_USE_FILE_LOCKING=FALSE: readers work, same answer" test -n "$a" -a "$(f "$a")" = "$(f "$b")"
expect "--no-lock is documented with its risk" bash -c "'$BIN' cache --help | grep -A3 -- --no-lock | grep -q RISK"
summary
