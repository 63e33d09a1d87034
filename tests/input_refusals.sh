#!/usr/bin/env bash
# input_refusals.sh KIND BIN MODEL_DIR DATA_DIR — bad input refused with one line naming the problem,
# exit 1, never a crash or a silent wrong number (the breaker report's findings, one KIND per ctest):
#   tokenizer   a model without a tokenizer (an HF folder without one): text refused, ids printed
set -u
KIND=$1 BIN=$2 MODEL=$3 DATA=$4
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
# refused WHAT PATTERN CMD...: exit 1 and one stderr line matching PATTERN (no crash, no empty output)
refused() {
  local what=$1 pat=$2; shift 2
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -eq 1 ] && grep -q -- "$pat" <<<"$out" && [ "$(wc -l <<<"$out")" -eq 1 ]; then ok; else bad "$what: rc $rc: $out"; fi
}
expect() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

case $KIND in
tokenizer)
  "$BIN" convert --model "$MODEL" --out hf >/dev/null && rm hf/tok512.bin
  printf '%s\n' '{"id":"a","tokens":[1,5,6,7]}' > tk.jsonl
  printf '%s\n' '{"id":"t","text":"Lily had a ball."}' > tx.jsonl
  printf '%s\n' '{"id":"q","prompt":"Once","docs":["a"]}' > q.jsonl
  refused "generate with a prompt" 'hf has no tokenizer (tokenizer.json' "$BIN" generate --model hf --prompt Once --steps 5
  refused "generate without a prompt" 'hf has no tokenizer' "$BIN" generate --model hf --steps 5
  expect "cache of token ids works" "$BIN" cache --model hf --corpus tk.jsonl --store s --quiet
  refused "cache of text" 'tx.jsonl:1: document has text but the model has no tokenizer (a random model, or an HF folder' \
    "$BIN" cache --model hf --corpus tx.jsonl --store s2 --quiet
  refused "query --prompt" 'query: hf has no tokenizer .*--prompt-ids' "$BIN" query --model hf --store s --docs a --prompt Once --steps 3
  refused "query --queries with a text prompt" 'q.jsonl:1: hf has no tokenizer .*"prompt_ids"' \
    "$BIN" query --model hf --store s --queries q.jsonl --out o.jsonl
  out=$("$BIN" query --model hf --store s --docs a --prompt-ids 5,6 --steps 3 2>/dev/null); rc=$?
  expect "query --prompt-ids prints the answer's ids ($rc: '$out')" grep -qE '^[0-9]+(,[0-9]+)*$' <<<"$out"
  js=$("$BIN" query --model hf --store s --docs a --prompt-ids 5,6 --steps 3 --json)
  expect "the ids are the JSON answer_ids" test "$out" = "$(python3 -c "import json,sys; print(','.join(map(str, json.loads(sys.argv[1])['answer_ids'])))" "$js")"
  printf '[job]\nmodel = %s/hf\nstore = %s/s\nqueries = %s/q.jsonl\nout = %s/ev\n' "$W" "$W" "$W" "$W" > j.ini
  refused "eval of text prompts" 'j.ini: .*hf has no tokenizer .*tokenizer = FILE' "$BIN" eval --job j.ini --quiet
  ;;
*) echo "unknown kind $KIND"; exit 2 ;;
esac
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
