#!/usr/bin/env bash
# fullfs.sh BIN MODEL_DIR DATA_DIR SHIM — a disk that fills up while a shard is written (the SHIM
# fails shard writes with ENOSPC): cache exits 1 with one line naming the shard (it crashed in
# MPI_Finalize before: HDF5 1.10.8 closes the half-closed file again at termination), the store
# stays consistent, and a rerun without the shim completes it. An eval whose result or summary
# files cannot be written exits 1 naming the file (it exited 0 with empty summaries before), and
# `convert` leaves no half-written folder.
set -u
BIN=$1 MODEL=$2 DATA=$3 SHIM=$4
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
cache() { "$BIN" cache --model "$MODEL" --corpus "$DATA/stories_corpus.jsonl" --store "$W/s" --quiet "$@"; }
for after in 300000 2000; do   # the close's flush fails; the first data write fails
    rm -rf "$W/s"
    err=$(LD_PRELOAD=$SHIM IFK_FULL_AFTER=$after cache 2>&1); rc=$?
    echo "$err"
    expect "full disk ($after): exit 1, not a signal ($rc)" test $rc -eq 1
    expect "full disk ($after): one line" test "$(wc -l <<<"$err")" -eq 1
    expect "full disk ($after): names the shard" grep -q "\.h5\.tmp" <<<"$err"
    expect "full disk ($after): store consistent" "$BIN" verify --store "$W/s"
    expect "full disk ($after): no temporary shard left" bash -c "! ls '$W/s' | grep -q '\.tmp$'"
    cache; expect "full disk ($after): a rerun completes the store" test $? -eq 0
    expect "full disk ($after): complete store verifies" "$BIN" verify --store "$W/s"
done
echo '{"id":"q1","prompt":"Once upon a time","docs":["lily","tom"]}' > "$W/q.jsonl"
printf '[job]\nmodel = %s\nstore = %s/s\nqueries = %s/q.jsonl\nout = %s/out\nmethods = full,infoflow\nbudgets = 0.15\nsteps = 2\n' \
       "$MODEL" "$W" "$W" "$W" > "$W/j.ini"
for f in fidelity.jsonl summary.md; do
    err=$(LD_PRELOAD=$SHIM IFK_FULL_SUFFIX=$f IFK_FULL_AFTER=10 "$BIN" eval --job "$W/j.ini" --quiet 2>&1 >/dev/null); rc=$?
    echo "$err"
    expect "eval, $f on a full disk: exit 1 ($rc)" test $rc -eq 1
    expect "eval, $f on a full disk: one error line naming it" test "$(grep -c '^infoflow: error:' <<<"$err")" -eq 1 -a -n "$(grep "^infoflow: error: .*$f" <<<"$err")"
done
err=$(LD_PRELOAD=$SHIM IFK_FULL_SUFFIX=model.safetensors IFK_FULL_AFTER=1000 "$BIN" convert --model "$MODEL" --out "$W/hf" 2>&1); rc=$?
echo "$err"
expect "convert on a full disk: exit 1 ($rc)" test $rc -eq 1
expect "convert on a full disk: no half-written folder left" test ! -e "$W/hf"
summary
