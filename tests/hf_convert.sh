#!/usr/bin/env bash
# hf_convert.sh BIN MODEL_DIR DATA_DIR — stories260K converted to a Hugging Face folder (rotate_half
# RoPE through the row permutation) generates and answers queries exactly as the llama2.c file.
set -u
BIN=$1 MODEL=$2 DATA=$3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
"$BIN" convert --model "$MODEL" --out "$W/hf" > /dev/null || { echo "FAIL: convert"; exit 1; }
expect "config.json says rotate_half's architecture" grep -q LlamaForCausalLM "$W/hf/config.json"
a=$("$BIN" generate --model "$MODEL" --prompt "Once upon a time" --steps 64 --temperature 0 --quiet)
b=$("$BIN" generate --model "$W/hf" --prompt "Once upon a time" --steps 64 --temperature 0 --quiet)
expect "generate: same story" test "$a" = "$b"
"$BIN" cache --model "$MODEL" --corpus "$DATA/stories_corpus.jsonl" --store "$W/s1" --quiet
"$BIN" cache --model "$W/hf" --corpus "$DATA/stories_corpus.jsonl" --store "$W/s2" --quiet
for m in infoflow cacheblend none; do
  q1=$("$BIN" query --model "$MODEL" --store "$W/s1" --docs lily,tom,cat --prompt "Lily was sad because the ball" --method $m --json --steps 12)
  q2=$("$BIN" query --model "$W/hf" --store "$W/s2" --docs lily,tom,cat --prompt "Lily was sad because the ball" --method $m --json --steps 12)
  f() { python3 -c "import json,sys; r=json.loads(sys.argv[1]); print(r['answer_ids'], r['selected'])" "$1"; }
  expect "query $m: same selection and answer" test "$(f "$q1")" = "$(f "$q2")"
done
# tensor parallelism over the HF folder: each rank reads only its slice of the files; same result
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
one=$("$BIN" query --model "$W/hf" --store "$W/s2" --docs lily,tom,cat --prompt "Lily was sad because the ball" --json --steps 8)
for n in 2 4; do
  tp=$(timeout 300 mpirun -n $n "$BIN" query --model "$W/hf" --store "$W/s2" --docs lily,tom,cat --prompt "Lily was sad because the ball" --json --steps 8)
  f() { python3 -c "import json,sys; r=json.loads(sys.argv[1]); print(r['answer_ids'], r['selected'])" "$1"; }
  expect "HF folder at $n ranks (slices read from the files): same selection and answer" test "$(f "$one")" = "$(f "$tp")"
done
# the two folders are different models to a store: their fingerprints and RoPE styles differ
out=$("$BIN" query --model "$W/hf" --store "$W/s1" --docs lily --prompt "x" 2>&1)
expect "a llama2.c store is refused for the HF folder ($out)" grep -q "another model" <<<"$out"
summary
