#!/usr/bin/env bash
# mpi_cache.sh BIN MODEL_DIR SCENARIO — the cache job under mpirun, as users run it.
#   ranks N   a store built with N ranks is bitwise identical to one built with 1 rank, same threads
#             per rank (f32 and f16), also with a look-ahead window (--queue-window) smaller than the corpus;
#             `search` on them prints the same hits, equal scores ordered by id whatever the commit order
#   resume    kill -9 of a rank at several points, then a rerun: verify passes and the store equals
#             an uninterrupted run's
#   threads   K/V bits follow the BLAS threads per rank, not the rank count or CPU affinity; verify
#             --against names both thread counts and suggests --tolerance when they differ
#   errors    bad corpus lines (file:line, --skip-bad), another model's store, a locked store,
#             options, a failing rank: one message, non-zero exit, no hang
set -u
BIN=$1 MODEL=$2 SCEN=$3 ARG=${4:-}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary

# a deterministic corpus of n documents of varied length (some longer than a chunk)
corpus() {
  awk -v n="$1" 'BEGIN { split("the cat dog ran to park with a ball and big red little girl boy was happy sad tree sun day", w, " ");
    s = 7; for (i = 0; i < n; i++) { len = 10 + (i * 37) % 190; t = "";
      for (j = 0; j < len; j++) { s = (s * 1103515245 + 12345) % 2147483648; t = t (j ? " " : "") w[1 + s % 22] }
      printf "{\"id\": \"doc%03d\", \"text\": \"%s.\", \"source\": \"synthetic\"}\n", i, t } }' > "$2"
}
cache() { # ranks store [extra options...] (--commit-docs 3 unless they give it: a flag twice is refused)
  local n=$1 s=$2; shift 2
  local commit=(--commit-docs 3)
  [[ " $* " == *" --commit-docs "* ]] && commit=()
  # one thread per rank in every run: stores are compared bitwise, and the rank split must not change a
  # bit, while a GEMM library (oneDNN) may sum in another order with another thread count
  timeout 300 mpirun -n "$n" "$BIN" cache --model "$MODEL" --corpus "$W/c.jsonl" --store "$s" --chunk-tokens 64 \
    "${commit[@]}" --threads 1 --quiet "$@"
}

cache_1t() { OPENBLAS_NUM_THREADS=1 cache "$@"; } # ranks >= cores: one BLAS thread each

case $SCEN in
ranks)
  corpus 24 "$W/c.jsonl"
  # six documents of one text score exactly equal for any query; their ids are neither in bytewise
  # order in the file nor committed in one order by 1 and N ranks
  for id in t9 t10 t3 t12 t1 t20; do echo "{\"id\": \"$id\", \"text\": \"Lily saw the sun.\"}"; done >> "$W/c.jsonl"
  for dt in f32 f16; do
    expect "cache -n 1 $dt" cache 1 "$W/one-$dt" --dtype "$dt"
    expect "cache -n $ARG $dt" cache_1t "$ARG" "$W/many-$dt" --dtype "$dt"
    expect "verify -n $ARG store $dt" "$BIN" verify --store "$W/many-$dt" --against "$W/one-$dt"
    n=$(ls "$W/many-$dt"/shard-*.h5 | sed 's/.*-r\([0-9]*\)-.*/\1/' | sort -u | wc -l)
    [ "$ARG" -eq 1 ] || expect "every rank wrote shards ($n of $ARG)" test "$n" -eq "$ARG"
  done
  # a look-ahead window of 5 documents (corpus.h): another hand-out order, the same documents
  expect "cache -n $ARG --queue-window 5" cache_1t "$ARG" "$W/win5" --dtype f16 --queue-window 5
  expect "verify -n $ARG --queue-window 5" "$BIN" verify --store "$W/win5" --against "$W/one-f16"
  expect "index covers the store" sh -c "'$BIN' inspect --store '$W/many-f16' --json | grep -q '\"indexed_documents\": 30'"
  # retrieval is a function of the corpus: the same hits from every store, ties by id (bytewise)
  for qk in Lily:3 Lily:40 "Lily cat:10"; do
    q=${qk%:*} k=${qk##*:}
    ref=$("$BIN" search --store "$W/one-f16" --prompt "$q" --k $k 2>/dev/null)
    [ "$q" = Lily ] && expect "search '$q' k=$k: $(wc -l <<<"$ref") hits" test "$(wc -l <<<"$ref")" -eq $((k < 6 ? k : 6))
    expect "search '$q' k=$k: ties ordered by id ($(cut -d' ' -f2 <<<"$ref" | tr '\n' ' '))" python3 -c '
import sys; h = [l.split() for l in sys.argv[1].splitlines()]
sys.exit(len(h) < 3 or h != sorted(h, key=lambda x: (-float(x[2]), x[1].encode())))' "$ref"
    for s in one-f32 many-f32 many-f16 win5; do
      got=$("$BIN" search --store "$W/$s" --prompt "$q" --k $k 2>/dev/null)
      expect "search '$q' k=$k on $s = 1 rank's ($(cut -d' ' -f2 <<<"$got" | tr '\n' ' '))" test "$got" = "$ref"
    done
  done
  ;;
resume)
  corpus 40 "$W/c.jsonl"
  expect "uninterrupted reference" cache 1 "$W/ref"
  # point:hit rank — mid-chunk (K written, V not) on a worker and on the coordinator; a complete
  # shard not yet renamed; a catalog transaction written but not committed (rank 0 only); the
  # catalog's compaction: the WAL copied into the database file, not yet emptied
  for case in shard.chunk:7:1 shard.chunk:4:0 shard.rename:2:2 catalog.commit:3:0 catalog.commit:9:0 \
              catalog.checkpoint:1:0; do
    IFS=: read -r point hit rank <<<"$case"
    s="$W/s-$point-$hit-$rank"
    INFOFLOW_FAULT=$point:$hit INFOFLOW_FAULT_RANK=$rank cache 3 "$s" > "$W/log" 2>&1
    rc=$?
    expect "$case: the killed job fails (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
    if "$BIN" verify --store "$s" > /dev/null 2>&1; then ok; else
      # the interrupted store may hold fewer documents but never damaged ones
      bad "$case: the interrupted store does not verify"; fi
    expect "$case: rerun completes" cache 3 "$s"
    expect "$case: rerun store equals the uninterrupted one" "$BIN" verify --store "$s" --against "$W/ref"
    left=$(ls "$s" | grep -c '\.tmp$')
    expect "$case: no temp files left ($left)" test "$left" -eq 0
  done
  ;;
incremental)
  # three runs, each adding documents, against one run over all of them; kill -9 during an index
  # segment's write, during a merge and between a merge's listing and the removal of its inputs
  corpus 40 "$W/all.jsonl"
  head -n 15 "$W/all.jsonl" > "$W/c1.jsonl"; head -n 28 "$W/all.jsonl" > "$W/c2.jsonl"
  inc() { cp "$W/$2.jsonl" "$W/c.jsonl"; cache 2 "$1"; }
  indexed() { "$BIN" inspect --store "$1" --json | python3 -c "import json,sys; m=json.load(sys.stdin); print(m['indexed_documents'], m['index_segments'])"; }
  segfiles() { ls "$1" | grep -c '^index-.*\.h5$'; }
  expect "reference over 28" inc "$W/ref28" c2
  expect "reference over 40" inc "$W/ref40" all
  expect "run 1 (15 documents)" inc "$W/s" c1
  expect "run 2 (28)" inc "$W/s" c2
  # run 3 with readers looping beside it: --retrieve queries (the index is merged under them) and
  # verify against the one-run store (a commit is seen whole or not at all)
  cp "$W/all.jsonl" "$W/c.jsonl"
  cache 2 "$W/s" --commit-docs 1 & job=$!
  nq=0; qbad=0
  while kill -0 "$job" 2>/dev/null; do
    "$BIN" query --model "$MODEL" --store "$W/s" --retrieve 2 --prompt "the cat ran to the park" --steps 1 \
      > /dev/null 2>> "$W/qerr" || qbad=$((qbad + 1))
    "$BIN" verify --store "$W/s" --against "$W/ref40" --subset > /dev/null 2>> "$W/qerr" || qbad=$((qbad + 1))
    nq=$((nq + 1))
  done
  expect "run 3 (40) with readers beside it" wait "$job"
  expect "readers during run 3 ($nq passes) never failed ($qbad: $(head -c 300 "$W/qerr"))" test "$qbad" -eq 0 -a "$nq" -gt 0
  expect "three runs verify and equal one run" "$BIN" verify --store "$W/s" --against "$W/ref40"
  read -r n segs <<<"$(indexed "$W/s")"
  expect "the index covers 40 documents ($n in $segs segments)" test "$n" -eq 40
  expect "... and its files are the listed segments ($(segfiles "$W/s"))" test "$(segfiles "$W/s")" -eq "$segs"
  # retrieval over the incremental index (searched on disk) equals the segments loaded whole and a
  # from-scratch index over the same store (ranks, ids, scores printed to 17 digits) and the
  # one-run store's (ties are ordered by id, not by commit order)
  for q in "the cat ran to the park" "big red ball" "a girl was happy" "tree"; do
    a=$("$BIN" search --store "$W/s" --prompt "$q" --k 100 2>/dev/null)
    b=$("$BIN" search --store "$W/s" --prompt "$q" --k 100 --from-scratch 2>/dev/null)
    l=$("$BIN" search --store "$W/s" --prompt "$q" --k 100 --full-load 2>/dev/null)
    c=$("$BIN" search --store "$W/ref40" --prompt "$q" --k 100 2>/dev/null)
    expect "search '$q': incremental = from scratch ($(wc -l <<<"$a") hits)" test -n "$a" -a "$a" = "$b"
    expect "search '$q': on disk = loaded whole" test "$a" = "$l"
    expect "search '$q': = the one-run store's" test "$a" = "$c"
  done
  for case in index.segment.rename:1 index.merge.fsync:1 index.merge.rename:1 index.merge.unlink:1; do
    IFS=: read -r point hit <<<"$case"
    s="$W/k-$point"
    rm -rf "$s"; inc "$s" c1 > /dev/null 2>&1
    cp "$W/c2.jsonl" "$W/c.jsonl"
    INFOFLOW_FAULT=$point:$hit INFOFLOW_FAULT_RANK=0 cache 2 "$s" > "$W/log" 2>&1; rc=$?
    expect "$case: the killed job fails (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
    expect "$case: the interrupted store verifies" "$BIN" verify --store "$s"
    expect "$case: rerun completes" cache 2 "$s"
    expect "$case: rerun store equals one run" "$BIN" verify --store "$s" --against "$W/ref28"
    read -r n segs <<<"$(indexed "$s")"
    expect "$case: the index covers 28 ($n)" test "$n" -eq 28
    expect "$case: no index file beside the listed ones" test "$(segfiles "$s")" -eq "$segs"
    left=$(ls "$s" | grep -c '\.tmp$')
    expect "$case: no temp files left ($left)" test "$left" -eq 0
  done
  # a truncated and a missing index segment: verify and search report them, search names the
  # repair; rerunning the same cache rebuilds each (one line each, also under --quiet), also after
  # a kill in the middle of a rebuild, and then search equals the undamaged store's
  d="$W/damaged"; rm -rf "$d"
  head -n 36 "$W/all.jsonl" > "$W/c36.jsonl"; inc "$d" c36 > /dev/null 2>&1; inc "$d" all > /dev/null 2>&1
  mapfile -t files < <(ls "$d" | grep '^index-.*\.h5$')
  expect "damaged index: two segments (36 + 4: no merge) (${files[*]})" test "${#files[@]}" -eq 2
  truncate -s 5000 "$d/${files[0]}"
  rm "$d/${files[1]}"
  nd=2
  expect "damaged index: verify fails" sh -c "! '$BIN' verify --store '$d' > /dev/null 2>&1"
  out=$("$BIN" search --store "$d" --prompt "big red ball" 2>&1); rc=$?
  expect "damaged index: search fails naming the repair (rc $rc: $out)" test "$rc" -ne 0 -a -n "$(grep -- 'rerun .*cache' <<<"$out")"
  INFOFLOW_FAULT=index.repair.rename:1 INFOFLOW_FAULT_RANK=0 cache 2 "$d" > "$W/log" 2>&1; rc=$?
  expect "damaged index: a kill in the rebuild fails the job (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
  out=$(cache 2 "$d" 2>&1); rc=$?
  expect "damaged index: the rerun succeeds (rc $rc)" test "$rc" -eq 0
  expect "... saying it rebuilt $nd segment(s) ($out)" test "$(count "$out" 'rebuilt it from the store')" -eq "$nd"
  expect "... and the store verifies" "$BIN" verify --store "$d"
  left=$(ls "$d" | grep -c '\.tmp$')
  expect "... no temp files left ($left)" test "$left" -eq 0
  for q in "the cat ran to the park" "big red ball" "tree"; do
    a=$("$BIN" search --store "$d" --prompt "$q" --k 100 2>/dev/null)
    expect "damaged index rebuilt: search '$q' = the undamaged store's" test -n "$a" -a "$a" = "$("$BIN" search --store "$W/s" --prompt "$q" --k 100 2>/dev/null)"
  done
  out=$(cache 2 "$d" 2>&1)
  expect "... and another rerun rebuilds nothing ($out)" test "$(count "$out" 'rebuilt')" -eq 0
  # without --quiet: the caching summary, a line before the index is built, one after it, last
  out=$(timeout 300 mpirun -n 1 "$BIN" cache --model "$MODEL" --corpus "$W/c1.jsonl" --store "$W/lines" \
        --chunk-tokens 64 --threads 1 2>&1)
  expect "cache's last lines: cached, building the index, indexed ($(tail -n 3 <<<"$out"))" python3 -c '
import sys; L = sys.argv[1].splitlines()[-3:]
sys.exit(not (len(L) == 3 and L[0].startswith("cache: cached 15 documents") and
              L[1] == "cache: building the BM25 index over 15 documents..." and L[2].startswith("cache: indexed 15 documents")))' "$out"
  ;;
errors)
  corpus 6 "$W/c.jsonl"
  printf '%s\n' '{"id": "a", "text": "fine"}' 'not json' '{"id": "b"}' '{"id": "a", "text": "again"}' \
    '{"id": "c", "text": 5}' "{\"id\": \"d\", \"text\": \"bad $(printf '\xff') byte\"}" '{"text": "no id"}' > "$W/bad.jsonl"
  out=$(timeout 120 mpirun -n 2 "$BIN" cache --model "$MODEL" --corpus "$W/bad.jsonl" --store "$W/b" 2>&1); rc=$?
  expect "bad corpus fails" test "$rc" -ne 0
  expect "bad corpus names file:line ($out)" grep -q "bad.jsonl:2: invalid JSON" <<<"$out"
  out=$(timeout 120 mpirun -n 2 "$BIN" cache --model "$MODEL" --corpus "$W/bad.jsonl" --store "$W/b" --skip-bad 2>&1); rc=$?
  expect "--skip-bad succeeds ($out)" test "$rc" -eq 0
  for l in 2 3 4 5 6 7; do expect "--skip-bad lists line $l" grep -q "bad.jsonl:$l:" <<<"$out"; done
  expect "--skip-bad kept the good line" sh -c "'$BIN' inspect --store '$W/b' --json | grep -q '\"documents\": 1,'"
  # the streaming coordinator (corpus.h): a duplicate far past the look-ahead window is refused naming
  # both lines, before anything is cached; under --skip-bad its first line is cached, it is skipped
  corpus 30 "$W/dup.jsonl"; sed -n 4p "$W/dup.jsonl" >> "$W/dup.jsonl"
  out=$(timeout 120 mpirun -n 2 "$BIN" cache --model "$MODEL" --corpus "$W/dup.jsonl" --store "$W/dup" --queue-window 4 2>&1); rc=$?
  expect "a late duplicate fails ($out)" test "$rc" -ne 0
  expect "... naming both lines" has "$out" 'dup.jsonl:31: duplicate id "doc003" (first on line 4)'
  expect "... before anything is cached" sh -c "! ls '$W/dup'/shard-*.h5 2>/dev/null | grep -q ."
  out=$(timeout 120 mpirun -n 2 "$BIN" cache --model "$MODEL" --corpus "$W/dup.jsonl" --store "$W/dup" --queue-window 4 --skip-bad --commit-docs 4 2>&1); rc=$?
  expect "--skip-bad over a late duplicate ($out)" test "$rc" -eq 0
  expect "... caches the 30 others" sh -c "'$BIN' inspect --store '$W/dup' --json | grep -q '\"documents\": 30,'"
  out=$(timeout 60 "$BIN" cache --model "$MODEL" --corpus "$W/dup.jsonl" --store "$W/dup0" --queue-window 0 2>&1); rc=$?
  expect "--queue-window 0 is refused" test "$rc" -ne 0
  expect "... naming the option ($out)" has "$out" "--queue-window '0' is not an integer"
  # token ids against the vocabulary when the corpus is read (breaker finding 12): before anything is
  # cached, on every line, and --skip-bad skips such a line
  printf '%s\n' '{"id":"a","text":"x"}' 'broken' '{"id":"c","tokens":[1,999]}' '{"id":"d","text":"fine"}' > "$W/sb.jsonl"
  out=$(timeout 120 "$BIN" cache --model "$MODEL" --corpus "$W/sb.jsonl" --store "$W/sb1" 2>&1); rc=$?
  expect "an out-of-vocabulary token fails at read ($out)" has "$out" 'sb.jsonl:2: invalid JSON'
  expect "... before anything is cached" sh -c "! ls '$W/sb1'/shard-*.h5 2>/dev/null | grep -q ."
  out=$(timeout 120 mpirun -n 2 "$BIN" cache --model "$MODEL" --corpus "$W/sb.jsonl" --store "$W/sb" --skip-bad 2>&1); rc=$?
  expect "--skip-bad skips an out-of-vocabulary token ($out)" test "$rc" -eq 0
  expect "... and lists it" has "$out" 'sb.jsonl:3: "tokens"\[1\] = 999 is outside the model.s vocabulary (0..511)'
  expect "... keeping a and d" sh -c "'$BIN' inspect --store '$W/sb' --json | grep -q '\"documents\": 2,'"
  # ids: up to 255 bytes round-trip through cache, verify and query; longer ones are refused when the
  # corpus is read with the reason (breaker finding 2)
  id255=$(printf 'x%.0s' $(seq 255)); id600=$(printf 'y%.0s' $(seq 600))
  printf '{"id":"%s","text":"Lily had a red ball."}\n' "$id255" > "$W/lid.jsonl"
  expect "a 255-byte id is cached" timeout 120 "$BIN" cache --model "$MODEL" --corpus "$W/lid.jsonl" --store "$W/lid" --quiet
  expect "... the store verifies" "$BIN" verify --store "$W/lid"
  expect "... a rerun finds it there" timeout 120 "$BIN" cache --model "$MODEL" --corpus "$W/lid.jsonl" --store "$W/lid" --quiet
  expect "... query reads it" timeout 120 "$BIN" query --model "$MODEL" --store "$W/lid" --docs "$id255" --prompt Lily --steps 2
  printf '{"id":"%s","text":"hi"}\n' "$id600" > "$W/lid6.jsonl"
  out=$(timeout 120 "$BIN" cache --model "$MODEL" --corpus "$W/lid6.jsonl" --store "$W/lid6" 2>&1); rc=$?
  expect "a 600-byte id is refused at read ($out)" has "$out" 'lid6.jsonl:1: "id" is longer than 255 bytes (600)'
  expect "... nothing cached" sh -c "! ls '$W/lid6'/shard-*.h5 2>/dev/null | grep -q ."
  out=$(timeout 60 "$BIN" query --model "$MODEL" --store "$W/lid" --docs "$id600" --prompt Lily 2>&1); rc=$?
  expect "--docs with a 600-byte id: the reason, not a cut message ($out)" \
    has "$out" 'element 1: "id" is longer than 255 bytes (600)'
  # new content under an id already in the store (breaker finding 9): refused naming the id, on
  # 1 and 2 ranks; the same content is skipped; --force rebuilds from the new corpus
  printf '%s\n' '{"id":"a","text":"Lily had a red ball."}' '{"id":"t","tokens":[5,6,7]}' > "$W/ch1.jsonl"
  printf '%s\n' '{"id":"a","text":"Tom saw a big dog."}' '{"id":"t","tokens":[5,6,7]}' > "$W/ch2.jsonl"
  printf '%s\n' '{"id":"a","text":"Lily had a red ball."}' '{"id":"t","tokens":[5,6,8]}' > "$W/ch3.jsonl"
  expect "cache ch1" timeout 60 "$BIN" cache --model "$MODEL" --corpus "$W/ch1.jsonl" --store "$W/ch" --quiet
  expect "the same corpus again is skipped" timeout 60 "$BIN" cache --model "$MODEL" --corpus "$W/ch1.jsonl" --store "$W/ch" --quiet
  out=$(timeout 120 mpirun -n 2 "$BIN" cache --model "$MODEL" --corpus "$W/ch2.jsonl" --store "$W/ch" --quiet 2>&1); rc=$?
  expect "new text under id a is refused ($out)" test "$rc" -ne 0
  expect "... naming the id and the difference" has "$out" 'ch2.jsonl:1: document "a" is already in the store .* with other content (a text of 18 bytes, the store.s 20)'
  out=$(timeout 60 "$BIN" cache --model "$MODEL" --corpus "$W/ch3.jsonl" --store "$W/ch" --quiet 2>&1); rc=$?
  expect "other token ids under id t are refused ($out)" has "$out" 'ch3.jsonl:2: document "t" .* (the same number of tokens, other ids)'
  expect "--force rebuilds from the new corpus" timeout 60 "$BIN" cache --model "$MODEL" --corpus "$W/ch2.jsonl" --store "$W/ch" --force --quiet
  expect "... whose words the index finds" sh -c "'$BIN' search --store '$W/ch' --prompt dog | grep -q '^1 a '"
  # --force checks the corpus before it empties the store (breaker s4 #1: a missing or refused corpus
  # under --force left the store with 0 documents)
  printf '%s\n' '{"id":"x","text":"Lily"}' '{"id":"x","text":"Tom"}' > "$W/dupf.jsonl"
  for bad in "$W/nonexistent.jsonl|cannot" "$W/dupf.jsonl|duplicate id"; do
    out=$(timeout 120 mpirun -n 2 "$BIN" cache --model "$MODEL" --corpus "${bad%%|*}" --store "$W/ch" --force --quiet 2>&1); rc=$?
    expect "--force with a refused corpus fails ($rc: $out)" sh -c "[ $rc -ne 0 ] && grep -q -- '${bad#*|}' <<'E'
$out
E"
    expect "... and the store still holds its documents" sh -c "'$BIN' search --store '$W/ch' --prompt dog | grep -q '^1 a '"
  done
  expect "... and verifies" "$BIN" verify --store "$W/ch"
  # both "text" and "tokens" (breaker finding 6); empty documents and control characters in ids (17)
  printf '%s\n' '{"id": "a", "text": "Lily", "tokens": [5,6,7,8,9]}' > "$W/tt.jsonl"
  out=$(timeout 60 "$BIN" cache --model "$MODEL" --corpus "$W/tt.jsonl" --store "$W/tt" 2>&1)
  expect "text and tokens together are refused ($out)" has "$out" 'tt.jsonl:1: give "text" or "tokens", not both'
  for line in '{"id":"e","text":""}|"text" is empty' '{"id":"e","tokens":[]}|"tokens" is empty' \
              '{"id":"a\tb","text":"x"}|control character (U+0009)' '{"id":"a\nb","text":"x"}|control character (U+000A)'; do
    printf '%s\n' "${line%%|*}" > "$W/e.jsonl"
    out=$(timeout 60 "$BIN" cache --model "$MODEL" --corpus "$W/e.jsonl" --store "$W/e" 2>&1)
    expect "${line%%|*} refused ($out)" has "$out" "e.jsonl:1: .*${line#*|}"
  done
  # a store of another model
  expect "stories store" cache 2 "$W/s"
  awk '{ print "{\"id\": \"t" NR "\", \"tokens\": [5, 6, 7, 8]}" }' "$W/c.jsonl" > "$W/tok.jsonl"
  out=$(timeout 120 mpirun -n 2 "$BIN" cache --random-model tiny --corpus "$W/tok.jsonl" --store "$W/s" 2>&1); rc=$?
  expect "another model is refused" test "$rc" -ne 0
  expect "... with a clear message ($out)" grep -q "another model" <<<"$out"
  expect "... printed once" test "$(grep -c 'another model' <<<"$out")" -eq 1
  expect "--force rebuilds" timeout 120 mpirun -n 2 "$BIN" cache --random-model tiny --corpus "$W/tok.jsonl" --store "$W/s" --force --quiet
  expect "... into a valid store" "$BIN" verify --store "$W/s"
  # a locked store: a second job refuses while the first runs
  ( flock -x 9; sleep 5 ) 9> "$W/s/.lock" &
  sleep 0.5
  out=$(timeout 60 "$BIN" cache --random-model tiny --corpus "$W/tok.jsonl" --store "$W/s" 2>&1); rc=$?
  expect "a locked store is refused" test "$rc" -ne 0
  expect "... saying it is in use ($out)" has "$out" "in use"
  wait
  # text documents with a random model (no tokenizer): one rank fails, the job ends with its message
  out=$(timeout 120 mpirun -n 3 "$BIN" cache --random-model tiny --corpus "$W/c.jsonl" --store "$W/r" 2>&1); rc=$?
  expect "a failing rank ends the job" test "$rc" -ne 0 -a "$rc" -ne 124
  expect "... with its message ($out)" grep -q "no tokenizer" <<<"$out"
  out=$(timeout 60 mpirun -n 2 "$BIN" cache --model "$MODEL" --corpus "$W/c.jsonl" 2>&1); rc=$?
  expect "missing --store fails" test "$rc" -ne 0
  expect "... with one message ($out)" test "$(count "$out" 'store DIR is required')" -eq 1
  out=$(timeout 60 mpirun -n 2 "$BIN" cache --model "$MODEL" --corpus "$W/nope.jsonl" --store "$W/n" 2>&1); rc=$?
  expect "a missing corpus fails" test "$rc" -ne 0
  expect "... naming it ($out)" has "$out" "nope.jsonl: cannot open"
  ;;
threads)
  # what K/V bits depend on (breaker finding 5): the BLAS threads per rank, not the rank count or the
  # CPU affinity (mpirun binds ranks to cores at -n <= 2; the default --threads follows the cores a
  # rank may use, which is how bound ranks used to write other bits)
  corpus 24 "$W/c.jsonl"
  c1() { OPENBLAS_NUM_THREADS=1 timeout 300 "$@" --model "$MODEL" --corpus "$W/c.jsonl" --chunk-tokens 64 --quiet; }
  expect "cache --threads 2" c1 "$BIN" cache --store "$W/t2" --threads 2
  expect "cache --threads 2 pinned to one CPU" c1 taskset -c 0 "$BIN" cache --store "$W/t2p" --threads 2
  expect "cache -n 2 (bound) --threads 2" c1 mpirun -n 2 "$BIN" cache --store "$W/t2m" --threads 2
  expect "cache --threads 1" c1 "$BIN" cache --store "$W/t1" --threads 1
  expect "cache, OPENBLAS_NUM_THREADS=1 alone" c1 "$BIN" cache --store "$W/t1e"
  expect "cache -n 2 (bound), OPENBLAS_NUM_THREADS=1 alone" c1 mpirun -n 2 "$BIN" cache --store "$W/t1em"
  # OpenMP (oneDNN) follows OPENBLAS_NUM_THREADS: it took the affinity mask's cores before, so an
  # unbound process wrote other bits than --threads 1 and than bound ranks (breaker, this round)
  expect "OPENBLAS_NUM_THREADS=1: bitwise equal to --threads 1" "$BIN" verify --store "$W/t1e" --against "$W/t1"
  expect "... and to 2 bound ranks under the same variable" "$BIN" verify --store "$W/t1em" --against "$W/t1"
  expect "pinned to one CPU: bitwise equal at equal threads" "$BIN" verify --store "$W/t2p" --against "$W/t2"
  expect "2 bound ranks: bitwise equal at equal threads" "$BIN" verify --store "$W/t2m" --against "$W/t2"
  expect "the shards record their threads" sh -c "h5dump -a /blas_threads \$(ls '$W'/t1/shard-*.h5 | head -n1) | grep -q '(0): 1\$'"
  out=$("$BIN" verify --store "$W/t1" --against "$W/t2" 2>&1); rc=$?
  if [ "$rc" -ne 0 ]; then # other threads may give other bits: then the message says why and what to do
    expect "1 vs 2 threads: the mismatch names both thread counts ($out)" \
      has "$out" "t1 was written with 1 BLAS thread per rank, .*t2 with 2 BLAS threads per rank"
    expect "... and suggests --tolerance" has "$out" "compare with --tolerance 1e-4 (f32) or 2e-3 (f16"
  else ok; ok; fi
  expect "1 vs 2 threads: within the f16 tolerance" "$BIN" verify --store "$W/t1" --against "$W/t2" --tolerance 2e-3
  ;;
*) echo "unknown scenario $SCEN"; exit 2 ;;
esac
summary
