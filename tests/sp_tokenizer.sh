#!/usr/bin/env bash
# sp_tokenizer.sh BIN MODEL_DIR DATA_DIR — the SentencePiece kind of tokenizer.json against the
# llama2.c tokenizer it is written from (tests/tok_bin_to_json.py on the bundled tok512.bin):
# the same ids for every line of the multilingual file and every corpus text ("Lily" is one id),
# the same story from an HF folder with either file; and a store is bound to its tokenizer
# (issue 13, items 1 and 6); and a SentencePiece tokenizer.model read through libsentencepiece
# agrees with the tokenizer.json written from it and with SentencePiece's own command-line tools;
# and BOS follows tokenizer_config.json's add_bos_token, a config without bos_token_id is refused by
# cache (issue 13, the BOS rule).
set -u
BIN=$1 MODEL=$2 DATA=$3
HERE=$(dirname "$(readlink -f "$0")")
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
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

# a SentencePiece tokenizer.model, read through libsentencepiece (--tokenizer X.model, or an HF
# folder's tokenizer.model): a BPE model with byte fallback trained here by spm_train on the corpus,
# and the tokenizer.json written from its vocabulary; both give spm_encode's ids, and decode to
# spm_decode's text, on the corpus and the multilingual lines (whose CJK, emoji... are bytes here)
python3 -c "import json,sys; [print(json.loads(l)['text']) for l in open(sys.argv[1])]" "$DATA/stories_corpus.jsonl" > "$W/train.txt"
spm_train --input="$W/train.txt" --model_prefix="$W/spm" --vocab_size=300 --model_type=bpe --byte_fallback=true \
  --normalization_rule_name=identity --remove_extra_whitespaces=false --character_coverage=1.0 \
  --hard_vocab_limit=false --minloglevel=2 > /dev/null 2>&1 || { echo "FAIL: spm_train"; exit 1; }
spm_export_vocab --model="$W/spm.model" --output="$W/spm.vocab" --output_format=vocab
python3 "$HERE/tok_bin_to_json.py" "$W/spm.vocab" "$W/spmjson" || { echo "FAIL: tok_bin_to_json.py on spm.vocab"; exit 1; }
ref=$(spm_encode --model="$W/spm.model" --output_format=id < "$W/texts.txt")
viamodel=$("$BIN" tokenize --tokenizer "$W/spm.model" --text-file "$W/texts.txt")
viajson=$("$BIN" tokenize --tokenizer "$W/spmjson/tokenizer.json" --text-file "$W/texts.txt")
sp() { python3 -c "import json,sys; [print(' '.join(map(str, json.loads(l)['ids']))) for l in sys.stdin]"; }
txt() { python3 -c "import json,sys; [print(json.loads(l)['text']) for l in sys.stdin]"; }
n=$(grep -c . <<<"$ref")
expect "tokenizer.model through libsentencepiece: spm_encode's ids on $n lines" test "$(sp <<<"$viamodel")" = "$ref" -a "$n" -gt 20
expect "its tokenizer.json: the same ids" test "$(sp <<<"$viajson")" = "$ref"
dref=$(spm_decode --model="$W/spm.model" --input_format=id <<<"$ref")
expect "both decode to spm_decode's text" test "$(txt <<<"$viamodel")" = "$dref" -a "$(txt <<<"$viajson")" = "$dref"
expect "... which is every line back" test "$dref" = "$(grep . "$W/texts.txt")"
# tokenizer_config.json's add_bos_token beside a tokenizer.model (transformers' slow LlamaTokenizer reads it too)
mkdir -p "$W/spmcfg" && cp "$W/spm.model" "$W/spmcfg/tokenizer.model"
echo '{"add_bos_token": false}' > "$W/spmcfg/tokenizer_config.json"
a=$("$BIN" tokenize --tokenizer "$W/spmcfg/tokenizer.model" --bos --text "Lily" | ids)
b=$("$BIN" tokenize --tokenizer "$W/spmcfg/tokenizer.model" --text "Lily" | ids)
echo '{"add_bos_token": true, "bos_token": "<s>"}' > "$W/spmcfg/tokenizer_config.json"
c=$("$BIN" tokenize --tokenizer "$W/spmcfg/tokenizer.model" --bos --text "Lily" | ids)
expect "tokenizer.model with add_bos_token false: no BOS ($a), true: <s> first ($c)" test "$a" = "$b" -a "$c" = "[1, ${b#[}"
mkdir -p "$W/hf2" && cp "$W/hf/config.json" "$W/hf/model.safetensors" "$W/spm.model" "$W/hf2/" && mv "$W/hf2/spm.model" "$W/hf2/tokenizer.model"
out=$("$BIN" query --model "$W/hf2" --store "$W/store" --docs lily --prompt "Lily" 2>&1); rc=$?
expect "an HF folder's tokenizer.model is read (and is another tokenizer to the store: $rc)" test "$rc" = 1 && grep -q "another model or tokenizer" <<<"$out"

# BOS as transformers adds it (issue 13): the same folder with tokenizer_config.json's add_bos_token
# false (Qwen2/3's rule) encodes a prompt without BOS, so its story is another one; with "<s>" written
# into the prompt it is exactly the BOS folder's story (the id the BOS folder puts first)
mkdir -p "$W/hfb" "$W/hfn"
for d in hfb hfn; do cp "$W/hf/config.json" "$W/hf/model.safetensors" "$W/sp/tokenizer.json" "$W/sp/tokenizer_config.json" "$W/$d/"; done
python3 -c "import json,sys; c=json.load(open(sys.argv[1])); c['add_bos_token']=False; json.dump(c, open(sys.argv[1], 'w'))" "$W/hfn/tokenizer_config.json"
nb=$("$BIN" tokenize --tokenizer "$W/hfn/tokenizer.json" --bos --text "Once upon a time" | ids)
wb=$("$BIN" tokenize --tokenizer "$W/hfb/tokenizer.json" --bos --text "Once upon a time" | ids)
expect "add_bos_token false: tokenize --bos adds no BOS ($nb; with BOS $wb)" test "[1, ${nb#[}" = "$wb"
gb=$("$BIN" generate --model "$W/hfb" --prompt "Once upon a time" --steps 40 --temperature 0 2>"$W/gb.err")
gn=$("$BIN" generate --model "$W/hfn" --prompt "Once upon a time" --steps 40 --temperature 0 2>"$W/gn.err")
gs=$("$BIN" generate --model "$W/hfn" --prompt "<s>Once upon a time" --steps 40 --temperature 0 --quiet)
expect "generate without BOS: the prompt is one token shorter ($(cut -d, -f1 "$W/gb.err") / $(cut -d, -f1 "$W/gn.err"))" \
  test "$(grep -c "^prompt 4 tokens" "$W/gn.err")$(grep -c "^prompt 5 tokens" "$W/gb.err")" = 11
expect "generate without BOS: it prints the prompt and another story than with BOS" test "${gn:0:16}" = "Once upon a time" -a "$gn" != "$gb"
expect "generate with \"<s>\" in the prompt of the folder without BOS: the BOS folder's story" test "$gs" = "<s>$gb"
# a config without a prefix token: cache and query refuse it, generate runs
cp -r "$W/hfb" "$W/hfnull"
python3 -c "import json,sys; c=json.load(open(sys.argv[1])); c['bos_token_id']=None; json.dump(c, open(sys.argv[1], 'w'))" "$W/hfnull/config.json"
out=$("$BIN" cache --model "$W/hfnull" --corpus "$DATA/stories_corpus.jsonl" --store "$W/store-null" --quiet 2>&1); rc=$?
expect "cache with bos_token_id null is refused in one line naming it ($rc: $out)" \
  test "$rc" = 1 -a "$(grep -c . <<<"$out")" = 1 -a "$(grep -c "config.json bos_token_id is null" <<<"$out")" = 1
# (query: a store cached with another config is refused by its fingerprint first; test_query checks
# the pipeline's own refusal)
gnull=$("$BIN" generate --model "$W/hfnull" --prompt "Once" --steps 8 --temperature 0 --quiet); rc=$?
expect "generate with bos_token_id null runs ($rc)" test "$rc" = 0 -a -n "$gnull"
summary
