#!/usr/bin/env bash
# query_cli.sh BIN MODEL_DIR DATA_DIR — `infoflow query` end to end on an f32 store of stories260K:
# the equalities the method must satisfy at the budget's ends, reordering, retrieval, errors.
set -u
BIN=$1 MODEL=$2 DATA=$3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
"$BIN" cache --model "$MODEL" --corpus "$DATA/stories_corpus.jsonl" --store "$W/s" --dtype f32 --quiet || { echo "FAIL: cache"; exit 1; }
q() { "$BIN" query --model "$MODEL" --store "$W/s" --steps 12 --json --compare-full "$@"; }
field() { python3 -c "import json,sys; r=json.loads(sys.stdin.read()); print(eval(sys.argv[1]))" "$1"; }
lt() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$1" "$2"; }
DOCS=lily,tom,cat PROMPT="Lily was sad because the ball"
full=$(q --docs $DOCS --prompt "$PROMPT" --method full)
expect "full against itself: KL 0" test "$(field "r['compare_full']['kl']" <<<"$full")" = 0
fans=$(field "r['answer_ids']" <<<"$full")
# R = 1: every token outside the exact first chunk recomputed = a full prefill (KL < 1e-6, same answer)
for m in infoflow random epic; do
  out=$(q --docs $DOCS --prompt "$PROMPT" --method $m --budget 1)
  expect "$m R=1: KL < 1e-6 ($(field "r['compare_full']['kl']" <<<"$out"))" lt "$(field "r['compare_full']['kl']" <<<"$out")" 1e-6
  expect "$m R=1: the full answer" test "$(field "r['answer_ids']" <<<"$out")" = "$fans"
done
# R = 0 is none
none=$(q --docs $DOCS --prompt "$PROMPT" --method none)
zero=$(q --docs $DOCS --prompt "$PROMPT" --method infoflow --budget 0)
expect "R=0 selects nothing" test "$(field "r['n_selected']" <<<"$zero")" = 0
expect "R=0 equals none (KL)" test "$(field "r['compare_full']['kl']" <<<"$zero")" = "$(field "r['compare_full']['kl']" <<<"$none")"
expect "R=0 equals none (answer)" test "$(field "r['answer_ids']" <<<"$zero")" = "$(field "r['answer_ids']" <<<"$none")"
expect "none differs from full on 3 chunks" lt 1e-6 "$(field "r['compare_full']['kl']" <<<"$none")"
# a single chunk: its cache is exact, so none = full
one=$(q --docs cake --prompt "Sue ate the" --method none)
expect "single chunk: none = full (KL < 1e-6)" lt "$(field "r['compare_full']['kl']" <<<"$one")" 1e-6
expect "single chunk: none = full (answer)" test "$(field "r['compare_full']['leading_agree']" <<<"$one")" = "$(field "len(r['answer_ids'])" <<<"$one")"
# budget semantics: n = floor(R T), first chunk (BOS + lily) excluded for infoflow
inf=$(q --docs $DOCS --prompt "$PROMPT" --method infoflow --budget 0.15)
T=$(field "r['n_context_tokens']" <<<"$inf")
expect "T = 1 + tokens of the chunks" test "$T" = 162
expect "n = floor(0.15 T)" test "$(field "r['n_selected']" <<<"$inf")" = $((T * 15 / 100))
expect "first chunk excluded" test "$(field "min(r['selected'])" <<<"$inf")" -ge 47
expect "timings add up to ttft" python3 -c "import json,sys; t=json.loads(sys.argv[1])['timings_ms']; sys.exit(0 if abs(sum(v for k,v in t.items() if k!='ttft')-t['ttft'])<1e-2 else 1)" "$inf"
expect "infoflow beats none here" lt "$(field "r['compare_full']['kl']" <<<"$inf")" "$(field "r['compare_full']['kl']" <<<"$none")"
# reorder: one chunk changes nothing; several give a permutation
r1=$(q --docs cake --prompt "Sue ate the" --method infoflow --reorder)
expect "reorder of one chunk" test "$(field "r['chunk_order']" <<<"$r1")" = "[0]"
r3=$(q --docs cake,boat,tree,lily --prompt "Ben put the boat in the" --method infoflow --reorder)
expect "reorder is a permutation" test "$(field "sorted(r['chunk_order'])" <<<"$r3")" = "[0, 1, 2, 3]"
# retrieval: the prompt's words pick the documents
rt=$(q --retrieve 2 --prompt "the boat in the bath" --method infoflow)
expect "retrieve: boat first" test "$(field "r['documents'][0]" <<<"$rt")" = boat
expect "retrieve: 2 documents" test "$(field "len(r['documents'])" <<<"$rt")" = 2
# errors: one line naming the problem, exit 1
err() { # what pattern args...
  local what=$1 pat=$2; shift 2
  local out rc
  out=$("$BIN" query --model "$MODEL" --store "$W/s" "$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -eq 1 ] && grep -q -- "$pat" <<<"$out" && [ "$(wc -l <<<"$out")" -eq 1 ]; then ok; else bad "$what: rc $rc: $out"; fi
}
err "unknown document" 'no document "nope"' --docs lily,nope --prompt x
err "empty prompt" "prompt is empty" --docs lily --prompt ""
err "budget above 1" "budget" --docs lily --prompt x --budget 1.5
err "budget below 0" "budget" --docs lily --prompt x --budget -0.1
err "score layers" "score-layers" --docs lily --prompt x --score-layers 3-9
err "reorder with a baseline" "reorder" --docs lily,tom --prompt x --method epic --reorder
err "unknown method" "not one of" --docs lily --prompt x --method magic
err "docs and retrieve" "exactly one" --docs lily --retrieve 2 --prompt x
err "--dev without infoflow-dev" "goes with --method infoflow-dev" --docs lily --prompt x --method infoflow --dev layer=2
err "--dev bad layer" "layer '9' is not an integer in 1-4" --docs lily --prompt x --method infoflow-dev --dev layer=9
err "--dev unknown key" "unknown key 'beta'" --docs lily --prompt x --method infoflow-dev --dev beta=1
# settings the method or command does not use are refused, never ignored (breaker finding 8)
err "--budget with full" "budget does not apply to --method full" --docs lily --prompt x --method full --budget 0.3
err "--budget with none" "budget does not apply to --method none" --docs lily --prompt x --method none --budget 0.5
err "--score-layers with full" "score-layers goes with --method infoflow" --docs lily --prompt x --method full --score-layers 0-1
err "--score-layers with random" "score-layers goes with --method infoflow" --docs lily --prompt x --method random --score-layers 0-1
err "--seed without random" "seed goes with --method random" --docs lily --prompt x --seed 5
echo '{"id":"q1","prompt":"x","docs":["lily"],"method":"full","budget":0.9,"steps":50}' > "$W/q1.jsonl"
err "a setting in a --queries line" 'q1.jsonl:1: unknown key "method"' --queries "$W/q1.jsonl" --out "$W/a1.jsonl"
echo '{"id":"q1","prompt":"x","docs":["lily"],"answers":["y"]}' > "$W/q2.jsonl"
"$BIN" query --model "$MODEL" --store "$W/s" --queries "$W/q2.jsonl" --out "$W/a2.jsonl" --steps 2 2>/dev/null
expect "a --queries line with gold answers is a question" test "$(wc -l < "$W/a2.jsonl")" -eq 1
line=$("$BIN" query --model "$MODEL" --store "$W/s" --docs lily --prompt x --method none --steps 2 --compare-full 2>&1 >/dev/null)
expect "none's comparison names no budget ($line)" test -n "$(grep '^none: KL' <<<"$line")"
r=$("$BIN" query --model "$MODEL" --store "$W/s" --docs lily --prompt x --method full --steps 2 --json)
expect "full records budget 1" test "$(field "r['budget']" <<<"$r")" = "1"
# --out: a resume under other settings is refused naming the first difference; --out the --queries file too
"$BIN" query --model "$MODEL" --store "$W/s" --queries "$W/q2.jsonl" --out "$W/a2.jsonl" --steps 2 2>/dev/null
expect "a resume under the same settings runs" test $? -eq 0 -a "$(wc -l < "$W/a2.jsonl")" -eq 1
err "a resume with other steps" 'a2.jsonl:1: answered with steps 2, this run has steps 8' --queries "$W/q2.jsonl" --out "$W/a2.jsonl" --steps 8
err "a resume with another method" 'a2.jsonl:1: answered with method "infoflow", this run has method "full"' --queries "$W/q2.jsonl" --out "$W/a2.jsonl" --steps 2 --method full
err "a resume with another budget" 'a2.jsonl:1: answered with budget 0.15, this run has budget 0.3' --queries "$W/q2.jsonl" --out "$W/a2.jsonl" --steps 2 --budget 0.3
err "a resume with other score layers" 'answered with score_layers' --queries "$W/q2.jsonl" --out "$W/a2.jsonl" --steps 2 --score-layers 1-1
ln -s q2.jsonl "$W/q2link.jsonl"
err "--out the --queries file (another name)" 'is the --queries file' --queries "$W/q2.jsonl" --out "$W/q2link.jsonl"
expect "... left untouched" test "$(wc -l < "$W/q2.jsonl")" -eq 1
# a single question's timings: after an untimed warm-up run by default, labelled; --cold times the first run
r=$("$BIN" query --model "$MODEL" --store "$W/s" --docs lily --prompt x --steps 2 --json)
expect "a single question's timings are a warm run's" test "$(field "r['timings_cold']" <<<"$r")" = "False"
r=$("$BIN" query --model "$MODEL" --store "$W/s" --docs lily --prompt x --steps 2 --json --cold)
expect "--cold times the first run and says so" test "$(field "r['timings_cold']" <<<"$r")" = "True"
line=$("$BIN" query --model "$MODEL" --store "$W/s" --docs lily --prompt x --steps 2 --compare-full 2>&1 >/dev/null)
expect "the comparison line says which run it timed ($line)" grep -q "ttft .* ms (full .* ms), after a warm-up run" <<<"$line"
err "--cold with --queries" "cold is for a single question" --queries "$W/q2.jsonl" --out "$W/a3.jsonl" --cold
vout=$("$BIN" verify --store "$W/s" --subset 2>&1); rc=$?
expect "verify --subset without --against refused ($vout)" test "$rc" -eq 1 -a -n "$(grep 'subset goes with --against' <<<"$vout")"
vout=$("$BIN" verify --store "$W/s" --tolerance 0.1 2>&1); rc=$?
expect "verify --tolerance without --against refused ($vout)" test "$rc" -eq 1 -a -n "$(grep 'tolerance goes with --against' <<<"$vout")"
ij=$("$BIN" inspect --store "$W/s" --docs --json)
expect "inspect --docs --json lists the documents" python3 -c "import json,sys; d=json.loads(sys.argv[1]); l=d['document_list']; sys.exit(not (len(l) == d['documents'] and any(x['id'] == 'lily' and x['tokens'] > 0 for x in l)))" "$ij"
cout=$("$BIN" cache --model "$MODEL" --corpus "$DATA/stories_corpus.jsonl" --store "$W/sd" --dedicated-coordinator --quiet 2>&1); rc=$?
expect "cache --dedicated-coordinator on one rank refused ($cout)" test "$rc" -eq 1 -a -n "$(grep 'needs more than one rank' <<<"$cout")" -a ! -e "$W/sd/manifest.json"
# ids: the corpus's rule everywhere (breaker findings 2 and 17)
err "--docs with an empty element" 'element 2: empty "id"' --docs lily,,tom --prompt x
err "--docs with a trailing comma" 'element 2: empty "id"' --docs lily, --prompt x
qset() { # what pattern line: --queries with one line; pattern "" means it is answered
  local what=$1 pat=$2 out rc
  printf '%s\n' "$3" > "$W/qs.jsonl"; rm -f "$W/qs.out"
  out=$("$BIN" query --model "$MODEL" --store "$W/s" --queries "$W/qs.jsonl" --out "$W/qs.out" --steps 2 2>&1); rc=$?
  if [ -z "$pat" ]; then expect "$what ($out)" test "$rc" -eq 0
  elif [ "$rc" -eq 1 ] && grep -q -- "$pat" <<<"$out"; then ok
  else bad "$what: rc $rc: $out"
  fi
}
qset 'query set: empty id refused' 'qs.jsonl:1: empty "id"' '{"id":"","prompt":"Lily","docs":["lily"]}'
qset 'query set: retrieve 2.5 refused' 'qs.jsonl:1: "retrieve" must be a whole count' '{"id":"q","prompt":"Lily","retrieve":2.5}'
qset 'query set: tab in an id refused' 'control character (U+0009)' '{"id":"a\tb","prompt":"Lily","docs":["lily"]}'
qset 'query set: integer id accepted' '' '{"id":7,"prompt":"Lily","docs":["lily"]}'
expect "... and written as the corpus writes it" grep -q '"id": "7"' "$W/qs.out"
awk '{ print "{\"id\": \"t" NR "\", \"tokens\": [5, 6, 7, 8]}" }' "$DATA/stories_corpus.jsonl" > "$W/tok.jsonl"
"$BIN" cache --random-model tiny --corpus "$W/tok.jsonl" --store "$W/other" --quiet
out=$("$BIN" query --model "$MODEL" --store "$W/other" --docs t1 --prompt "x" 2>&1); rc=$?
expect "another model's store is refused ($out)" sh -c "[ $rc -eq 1 ]"
expect "... saying so" grep -q "another model" <<<"$out"
# the same model held in bf16 computes other K/V: its queries and its cache jobs refuse the f32 store
out=$("$BIN" query --model "$MODEL" --store "$W/s" --docs lily --prompt "x" --weights bf16 2>&1); rc=$?
expect "bf16 weights on an f32 store are refused ($out)" sh -c "[ $rc -eq 1 ]"
expect "... naming both precisions" grep -q "computed with f32 weights; this model holds bf16" <<<"$out"
out=$("$BIN" cache --model "$MODEL" --corpus "$DATA/stories_corpus.jsonl" --store "$W/s" --dtype f32 --weights bf16 --quiet 2>&1); rc=$?
expect "cache --weights bf16 into the f32 store is refused ($out)" sh -c "[ $rc -ne 0 ]"
expect "... naming both precisions" grep -q "computed with f32 weights; this model holds bf16" <<<"$out"
python3 -c "import json,sys; sys.exit(json.load(open(sys.argv[1]))['model']['weights'] != 'f32')" "$W/s/manifest.json"; expect "the manifest records the weight precision" test $? -eq 0
err "unknown weight precision" "is not one of f32, bf16, f16, auto" --docs lily --prompt x --weights f8
# a context over more shards than the reader keeps open (32): the located chunks keep theirs mapped
for i in $(seq 0 39); do printf '{"id": "e%02d", "text": "Lily ran %d."}\n' "$i" "$i"; done > "$W/c40.jsonl"
"$BIN" cache --model "$MODEL" --corpus "$W/c40.jsonl" --store "$W/s40" --commit-docs 1 --quiet
D40=$(for i in $(seq 0 39); do printf 'e%02d,' "$i"; done); D40=${D40%,}
many=$("$BIN" query --model "$MODEL" --store "$W/s40" --docs "$D40" --prompt "Lily" --steps 4 --compare-full --json)
expect "40 shards in one query: answered ($(cut -c1-80 <<<"$many"))" test -n "$many"
expect "... the whole context gathered" test "$(field "r['n_context_tokens']" <<<"$many")" -gt 200
summary
