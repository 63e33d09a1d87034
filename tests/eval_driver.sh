#!/usr/bin/env bash
# eval_driver.sh BIN MODEL_DIR CORPUS MODE — what `eval` does with its out directory, its grid and
# the result files it summarises (one process; docs/eval.md):
#   owned      a job's out holds only its own results (no earlier job's needle/ablation tables)
#   grid       grid values beyond the model or the haystack are refused with FILE:LINE, never clamped
#   summarize  --summarize refuses malformed result lines with FILE:LINE
#   plots      plots gnuplot cannot draw are skipped with one line, no gnuplot warnings
#   settings   settings no listed method uses are refused; [job] seed reaches random's runs
set -u
BIN=$1 MODEL=$2 CORPUS=$3 MODE=$4
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
# refused FILE ERRFILE PATTERN: the last command failed with rc 1 and one line matching PATTERN
refused() { expect "$1 refused (rc $rc)" test "$rc" -eq 1
            expect "$1: one line matching '$2' ($(cat "$W/err"))" test "$(grep -c . "$W/err")" -eq 1 -a -n "$(grep -E -- "$2" "$W/err")"; }
cd "$W"
"$BIN" cache --model "$MODEL" --corpus "$CORPUS" --store store --quiet || exit 1
echo '{"id":"q1","prompt":"Once upon a time","docs":["story01","story02"],"answers":["there"]}' > q.jsonl
job() { printf '[job]\nmodel = %s\nstore = %s/store\nqueries = %s/q.jsonl\nout = %s/out\nmethods = %s\nbudgets = 0.15\nsteps = 2\n' \
          "$MODEL" "$W" "$W" "$W" "${1:-full,infoflow}"; }
needle() { printf '[needle]\nlengths = %s\ndepths = %s\nbudget = 0.15\nhaystack_docs = %s\nhaystack_tokens = 96\nseed = 1\n' "$1" "$2" "$3"; }
eval_() { "$BIN" eval --job "$1" --quiet >"$W/stdout" 2>"$W/err"; rc=$?; }

case $MODE in
owned)
  { job; needle 128,192 0,50 4; printf '[ablation]\nlayers = 0-1\nbudget = 0.15\n'; } > j1.ini
  job > j2.ini
  eval_ j1.ini
  expect "the first job runs (rc $rc)" test "$rc" -eq 0
  expect "the first job writes needle and ablation results" test -s out/needle.jsonl -a -s out/ablation.jsonl
  echo "not eval's" > out/notes.txt
  eval_ j2.ini
  expect "the second job runs (rc $rc)" test "$rc" -eq 0
  for f in needle.jsonl ablation.jsonl needle.png ablation.png ablation.dat needle_full.dat needle_infoflow.dat; do
    expect "the first job's $f is gone" test ! -e "out/$f"
  done
  expect "the summary holds no needle or ablation table" test -z "$(grep -E 'needle|ablation' out/summary.md)"
  expect "the printed summary neither" test -z "$(grep -E '### (needle|scoring-layer)' stdout)"
  expect "the summary holds this job's fidelity table" grep -q '| infoflow | 0.15 |' out/summary.md
  expect "files that are not eval's stay" test -s out/notes.txt
  # the same spec again: every result is rewritten, not appended to
  n1=$(wc -l < out/fidelity.jsonl); eval_ j2.ini; n2=$(wc -l < out/fidelity.jsonl)
  expect "a rerun of the same spec replaces its results ($n1 then $n2 lines)" test "$rc" -eq 0 -a "$n1" -eq "$n2"
  ;;
grid)
  # a "retrieve" item no document matches: the file and line (breaker s4 #6: "no documents chosen")
  cp q.jsonl q.keep
  echo '{"id":"q9","prompt":"zzqx wvyk","retrieve":2}' > q.jsonl
  job > jr.ini; eval_ jr.ini
  refused "a retrieve item nothing matches" 'q.jsonl:1: "retrieve": no document of the store shares a word with the prompt'
  mv q.keep q.jsonl
  { job; needle 100000 0 2; } > j3.ini; eval_ j3.ini
  refused "a needle length beyond the model's positions" "j3.ini:10: \[needle\] lengths: 100000 .*512 positions"
  { job; needle 128,400 0 2; } > j3b.ini; eval_ j3b.ini
  refused "a needle length beyond the haystack's capacity" "j3b.ini:10: \[needle\] lengths: 400 exceeds the haystack's capacity"
  { job; printf '[ablation]\nlayers = 3-9\nbudget = 0.15\n'; } > j4.ini; eval_ j4.ini
  refused "ablation layers beyond the model (clamped before)" "j4.ini:10: \[ablation\] layers: 3-9 is outside the model's layers 0-4"
  { job; printf '[ablation]\nlayers = 7-9\nbudget = 0.15\n'; } > j5.ini; eval_ j5.ini
  refused "ablation layers all beyond the model (dropped before)" "j5.ini:10: \[ablation\] layers: 7-9"
  { job; echo 'score_layers = 2-5'; } > j6.ini; eval_ j6.ini
  refused "score_layers beyond the model" "j6.ini:9: score_layers: 2-5 is outside"
  expect "nothing refused was written" test ! -e out/needle.jsonl -a ! -e out/ablation.jsonl
  { job; needle 128,192 0 4; printf '[ablation]\nlayers = 3-4\nbudget = 0.15\n'; } > j7.ini; eval_ j7.ini
  expect "a grid within the model runs (rc $rc: $(cat err))" test "$rc" -eq 0
  expect "... every needle length as asked" test "$(grep -c '"target_tokens": 192' out/needle.jsonl)" -eq 2
  expect "... every ablation layer asked" test "$(grep -c '"score_layer": 4' out/ablation.jsonl)" -eq 1
  ;;
summarize)
  { job; needle 128,192 0,50 4; printf '[ablation]\nlayers = 0-1\nbudget = 0.15\n'; } > j1.ini; eval_ j1.ini
  expect "eval runs (rc $rc)" test "$rc" -eq 0
  mkdir s
  try() { # try FILE SED PATTERN: the first line of out/FILE edited by SED, summarised
    rm -f s/*.jsonl; head -n 1 "out/$1" | sed -E "$2" > "s/$1"
    "$BIN" eval --summarize s >/dev/null 2>"$W/err"; rc=$?; refused "$1 edited with '$2'" "$3"; }
  try fidelity.jsonl 's/.*/{"garbage": 1}/' 's/fidelity.jsonl:1: missing "item"'
  try fidelity.jsonl 's/"kl": [^,]*/"kl": "abc"/' 's/fidelity.jsonl:1: "kl" is not a number'
  try fidelity.jsonl 's/"kl": [^,]*/"kl": -5/' 's/fidelity.jsonl:1: "kl" = -5 is outside'
  try fidelity.jsonl 's/"method": "[^"]*", //' 's/fidelity.jsonl:1: missing "method"'
  try fidelity.jsonl 's/"method": "[^"]*"/"method": "magic"/' 's/fidelity.jsonl:1: "method" "magic" is not one of'
  try fidelity.jsonl 's/"budget": [^,]*/"budget": 2/' 's/fidelity.jsonl:1: "budget" = 2 is outside'
  try fidelity.jsonl 's/"top1_agree": [a-z]*/"top1_agree": "yes"/' 's/fidelity.jsonl:1: "top1_agree" is not true or false'
  try fidelity.jsonl 's/"ttft_ms": [^,]*, //' 's/fidelity.jsonl:1: missing "ttft_ms"'
  try ablation.jsonl 's/"score_layer": [0-9]*/"score_layer": 1.5/' 's/ablation.jsonl:1: "score_layer" = 1.5 is not an integer'
  try needle.jsonl 's/"ratio": [^,]*/"ratio": -1/' 's/needle.jsonl:1: "ratio" = -1 is outside'
  try needle.jsonl 's/"depth": [^,]*, //' 's/needle.jsonl:1: missing "depth"'
  # the real files summarise
  rm -f s/*; cp out/*.jsonl s/
  "$BIN" eval --summarize s >/dev/null 2>err; rc=$?
  expect "well-formed results summarise (rc $rc: $(cat err))" test "$rc" -eq 0 -a -s s/summary.md
  ;;
plots)
  command -v gnuplot >/dev/null || { echo "gnuplot not installed"; exit 1; }
  { job full; needle 128 0,50 4; printf '[ablation]\nlayers = 2-2\nbudget = 0.15\n'; } > j1.ini
  eval_ j1.ini
  expect "a one-point job runs (rc $rc)" test "$rc" -eq 0
  expect "no gnuplot warnings forwarded ($(grep -i gnuplot err | head -3))" test -z "$(grep -i '^gnuplot' err)"
  expect "one line for each plot not drawn ($(cat err))" test "$(grep -c 'not drawn' err)" -eq 3
  expect "... and no such plot" test ! -e out/speed_accuracy.png -a ! -e out/needle.png -a ! -e out/ablation.png
  { job full,none,infoflow; needle 128,192 0,50 4; printf '[ablation]\nlayers = 0-1\nbudget = 0.15\n'; } > j2.ini
  eval_ j2.ini
  expect "a full grid draws every plot (rc $rc: $(cat err))" test "$rc" -eq 0 -a -s out/speed_accuracy.png -a -s out/needle.png -a -s out/ablation.png
  expect "... without a warning" test -z "$(grep -i 'gnuplot' err)"
  ;;
settings)
  { job; echo 'dev = source=v'; } > j1.ini; eval_ j1.ini
  refused "dev without infoflow-dev" "j1.ini:9: dev goes with infoflow-dev in methods"
  { job; echo 'seed = 5'; } > j2.ini; eval_ j2.ini
  refused "seed without random" "j2.ini:9: seed goes with random in methods"
  { job full,none; echo 'score_layers = 1-2'; } > j3.ini; eval_ j3.ini
  refused "score_layers without a scoring method" "j3.ini:9: score_layers goes with infoflow or infoflow-dev"
  # the seed random draws with: two seeds select differently, one seed again the same
  k=0
  for s in 1 2 1; do
    k=$((k + 1))
    { job full,random | sed 's/budgets = 0.15/budgets = 0.3/'; echo "seed = $s"; } > js.ini; eval_ js.ini
    grep '"method": "random"' out/fidelity.jsonl | sed 's/.*"kl"//; s/"ttft_ms".*//' > "sel.$k"
  done
  expect "[job] seed reaches random's runs ($(cat sel.1) / $(cat sel.2))" test -s sel.1 -a "$(cat sel.1)" = "$(cat sel.3)" -a "$(cat sel.1)" != "$(cat sel.2)"
  ;;
*) echo "unknown mode $MODE"; exit 2 ;;
esac
summary "eval_driver $MODE"
