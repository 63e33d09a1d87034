#!/usr/bin/env bash
# sp_tokenizer.sh BIN MODEL_DIR DATA_DIR — the SentencePiece kind of tokenizer.json against the
# llama2.c tokenizer it is written from (tests/tok_bin_to_json.py on the bundled tok512.bin):
# the same ids for every line of the multilingual file and every corpus text ("Lily" is one id),
# the same story from an HF folder with either file; and a store is bound to its tokenizer
# (issue 13, items 1 and 6).
set -u
BIN=$1 MODEL=$2 DATA=$3
HERE=$(dirname "$(readlink -f "$0")")
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
pass=0; fail=0
expect() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else echo "FAIL: $what"; fail=$((fail + 1)); fi; }
ids() { python3 -c "import json,sys; [print(json.loads(l)['ids']) for l in sys.stdin]"; }
python3 "$HERE/tok_bin_to_json.py" "$MODEL/tok512.bin" "$W/sp" || { echo "FAIL: tok_bin_to_json.py"; exit 1; }
TJ=$W/sp/tokenizer.json

a=$("$BIN" tokenize --tokenizer "$MODEL/tok512.bin" --text Lily | ids)
b=$("$BIN" tokenize --tokenizer "$TJ" --text Lily | ids)
expect "\"Lily\" is one id, the llama2.c tokenizer's ($a, $b)" test "$a" = "$b" -a "$(tr -cd , <<<"$a")" = ""
python3 -c "import json,sys; [print(json.loads(l)['text']) for l in open(sys.argv[1])]" "$DATA/stories_corpus.jsonl" > "$W/texts.txt"
cat "$DATA/multilingual.txt" >> "$W/texts.txt"
a=$("$BIN" tokenize --tokenizer "$MODEL/tok512.bin" --text-file "$W/texts.txt" | ids)
b=$("$BIN" tokenize --tokenizer "$TJ" --text-file "$W/texts.txt" | ids)
n=$(grep -c . <<<"$a")
expect "the corpus and the multilingual file: $n lines, the same ids as tok512.bin" test "$a" = "$b" -a "$n" -gt 20
rt=$("$BIN" tokenize --tokenizer "$TJ" --text-file "$W/texts.txt" | grep -c '"round_trip": true')
expect "every line decodes back ($rt of $n)" test "$rt" = "$n"
# decoding after BOS drops the leading space, as llama2.c does
g1=$("$BIN" tokenize --tokenizer "$MODEL/tok512.bin" --bos --text "Once upon a time" | grep -c '"round_trip": true')
g2=$("$BIN" tokenize --tokenizer "$TJ" --bos --text "Once upon a time" | grep -c '"round_trip": true')
expect "after BOS both decode the text back" test "$g1$g2" = 11

# an HF folder: its tok512.bin, then a tokenizer.json put beside it (read first): the same story
"$BIN" convert --model "$MODEL" --out "$W/hf" > /dev/null || { echo "FAIL: convert"; exit 1; }
s1=$("$BIN" generate --model "$W/hf" --prompt "Lily and Tom" --steps 48 --temperature 0 --quiet)
"$BIN" cache --model "$W/hf" --corpus "$DATA/stories_corpus.jsonl" --store "$W/store" --quiet
q1=$("$BIN" query --model "$W/hf" --store "$W/store" --docs lily,tom --prompt "Lily was sad because the ball" --json --steps 8)
cp "$TJ" "$W/hf/tokenizer.json"
s2=$("$BIN" generate --model "$W/hf" --prompt "Lily and Tom" --steps 48 --temperature 0 --quiet)
expect "generate with tokenizer.json: the same story as with tok512.bin" test -n "$s1" -a "$s1" = "$s2"

# the store was made with tok512.bin: with tokenizer.json in the folder it is refused, as for a model
out=$("$BIN" cache --model "$W/hf" --corpus "$DATA/stories_corpus.jsonl" --store "$W/store" --quiet 2>&1); rc=$?
expect "cache into a store of another tokenizer is refused ($rc: $out)" test "$rc" = 1
expect "... naming the tokenizer" grep -q "another model or tokenizer" <<<"$out"
out=$("$BIN" query --model "$W/hf" --store "$W/store" --docs lily,tom --prompt "Lily was sad because the ball" 2>&1); rc=$?
expect "query on a store of another tokenizer is refused ($rc)" test "$rc" = 1 && grep -q "another model or tokenizer" <<<"$out"
out=$("$BIN" cache --model "$W/hf" --corpus "$DATA/stories_corpus.jsonl" --store "$W/store" --quiet --force 2>&1); rc=$?
expect "--force rebuilds it, as for another model ($rc: $out)" test "$rc" = 0
q2=$("$BIN" query --model "$W/hf" --store "$W/store" --docs lily,tom --prompt "Lily was sad because the ball" --json --steps 8)
f() { python3 -c "import json,sys; r=json.loads(sys.argv[1]); print(r['answer_ids'], r['selected'])" "$1"; }
expect "... and queries give what they gave with tok512.bin (same ids)" test -n "$(f "$q1")" -a "$(f "$q1")" = "$(f "$q2")"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
