#!/usr/bin/env bash
# input_refusals.sh KIND BIN MODEL_DIR DATA_DIR — bad input refused with one line naming the problem,
# exit 1, never a crash or a silent wrong number (the breaker report's findings, one KIND per ctest):
#   tokenizer   a model without a tokenizer (an HF folder without one): text refused, ids printed
#   nonfinite   NaN/inf weights (llama2.c, safetensors f32/bf16/f16) refused at load; f16 overflow
#   duplicates  a CLI flag, a job INI key, a JSON key, a --dev/shape key, a list value given twice
#   messages    error lines that name the real problem; exit codes
#   corpus      corpus and query-set lines: the same rules in every reader, checked before anything is
#               cached (a text --split paragraphs leaves nothing of, invalid UTF-8, lone surrogates)
set -u
KIND=$1 BIN=$2 MODEL=$3 DATA=$4
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
cd "$W" || exit 1
# refused WHAT PATTERN CMD...: exit 1 and one stderr line matching PATTERN (no crash, no empty output)
refused() {
  local what=$1 pat=$2; shift 2
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -eq 1 ] && grep -q -- "$pat" <<<"$out" && [ "$(wc -l <<<"$out")" -eq 1 ]; then ok; else bad "$what: rc $rc: $out"; fi
}

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
nonfinite)
  mkdir tn && cp "$MODEL"/tok512.bin "$MODEL"/stories260K.bin tn/
  python3 -c "import struct; f=open('tn/stories260K.bin','r+b'); f.seek(400); f.write(struct.pack('<f', float('nan'))*50)"
  refused "llama2.c NaN" 'tn/stories260K.bin: tensor tok_emb holds NaN or infinity' "$BIN" generate --model tn --prompt Once --steps 5
  refused "llama2.c NaN, cache" 'tensor tok_emb holds NaN' "$BIN" cache --model tn --corpus "$DATA/stories_corpus.jsonl" --store sn --quiet
  expect "nothing cached" test ! -e sn/manifest.json
  # a NaN in a later tensor: named with its layer
  python3 - "$MODEL/stories260K.bin" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
dim, hid, L, H, KV, V, S = struct.unpack('<7i', b[:28])
off = 28 + 4 * (abs(V) * dim + L * dim + L * dim * dim)  # tok_emb, rms_att, wq -> layers.0.wk
b[off + 8:off + 12] = struct.pack('<f', float('-inf'))
open('tk.bin', 'wb').write(b)
PY
  refused "llama2.c -inf in wk" 'tk.bin: tensor layers.0.wk holds NaN or infinity' "$BIN" generate --model tk.bin --tokenizer "$MODEL/tok512.bin" --prompt Once --steps 5
  # finite weights whose activations overflow: cache refuses the chunk's K/V before writing it, and
  # --compare-full refuses logits that are not finite (never "KL nan, top-1 agrees")
  printf '%s\n' '{"id":"lily","text":"Lily had a red ball."}' > c.jsonl
  python3 - "$MODEL/stories260K.bin" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
dim, hid, L, H, KV, V, S = struct.unpack('<7i', b[:28])
wk = 28 + 4 * (V * dim + L * dim + L * dim * dim)
big = bytearray(b); big[wk:wk + 4 * dim * KV * (dim // H)] = struct.pack('<f', 3e38) * (dim * KV * (dim // H))
open('bigk.bin', 'wb').write(big)
b[20:24] = struct.pack('<i', -V)  # a classifier of its own after the file's tensors: only the logits overflow
b += struct.pack('<f', 3e38) * (V * dim)
open('bigcls.bin', 'wb').write(b)
PY
  refused "cache: K/V not finite" "c.jsonl:1: chunk 0's K/V hold NaN or infinity" "$BIN" cache --model bigk.bin --tokenizer "$MODEL/tok512.bin" --corpus c.jsonl --store sk --quiet
  expect "bigcls.bin caches (its K/V are finite)" "$BIN" cache --model bigcls.bin --tokenizer "$MODEL/tok512.bin" --corpus c.jsonl --store sc --quiet
  refused "--compare-full: logits not finite" '--compare-full: the first-token logits .* hold NaN or infinity' \
    "$BIN" query --model bigcls.bin --tokenizer "$MODEL/tok512.bin" --store sc --docs lily --prompt Tom --steps 3 --compare-full
  # safetensors in each dtype: the file and the tensor are named
  "$BIN" convert --model "$MODEL" --out hf >/dev/null
  for dt in F32 BF16 F16; do
    python3 - hf "$dt" <<'PY'
import json, math, os, shutil, struct, sys
src, dt = sys.argv[1:3]
d = f"hf{dt}"; shutil.copytree(src, d)
blob = open(f"{src}/model.safetensors", "rb").read()
n = struct.unpack("<Q", blob[:8])[0]; hdr = json.loads(blob[8:8 + n]); data = blob[8 + n:]
def half(x):  # f32 -> f16 bits, for the few values of this model (round to nearest)
    return struct.unpack('<H', struct.pack('<e', x))[0]
out, at, nh = bytearray(), 0, {}
for k, v in hdr.items():
    if k == "__metadata__": nh[k] = v; continue
    b, e = v["data_offsets"]; fl = struct.unpack(f"<{(e - b) // 4}f", data[b:e])
    if dt == "F32": raw = bytes(data[b:e])
    elif dt == "BF16": raw = b"".join(struct.pack('<H', struct.unpack('<I', struct.pack('<f', x))[0] >> 16) for x in fl)
    else: raw = b"".join(struct.pack('<H', half(x)) for x in fl)
    raw = bytearray(raw)
    if k == "model.layers.2.mlp.up_proj.weight":
        es = 4 if dt == "F32" else 2; nan = {4: struct.pack('<f', math.nan), 2: b'\xc0\x7f' if dt == "BF16" else b'\x00\x7e'}[es]
        raw[10 * es:11 * es] = nan
    nh[k] = dict(v, dtype=dt, data_offsets=[len(out), len(out) + len(raw)]); out += raw
h = json.dumps(nh).encode(); h += b" " * (-len(h) % 8)
open(f"{d}/model.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + out)
PY
    refused "safetensors $dt NaN" "hf$dt/model.safetensors: tensor model.layers.2.mlp.up_proj.weight holds NaN or infinity" \
      "$BIN" generate --model "hf$dt" --prompt Once --steps 5
    refused "safetensors $dt NaN, --weights f32" "tensor model.layers.2.mlp.up_proj.weight holds NaN" \
      "$BIN" generate --model "hf$dt" --prompt Once --steps 5 --weights f32
  done
  # a finite f32 weight beyond f16's range becomes infinity in f16: refused, not kept
  python3 -c "import struct; f=open('hf/model.safetensors','r+b'); n=struct.unpack('<Q', f.read(8))[0]; f.seek(8 + n + 40); f.write(struct.pack('<f', 1e6))"
  refused "f16 overflow (safetensors)" 'overflows f16' "$BIN" generate --model hf --prompt Once --steps 5 --weights f16
  python3 -c "import struct; f=open('tk.bin','r+b'); f.seek(28 + 40); f.write(struct.pack('<f', 1e6)); f.seek(28 + 4 * (512 * 64 + 5 * 64 + 5 * 64 * 64) + 8); f.write(struct.pack('<f', 0.5))"
  refused "f16 overflow (llama2.c)" 'tk.bin: tensor tok_emb overflows f16' "$BIN" generate --model tk.bin --tokenizer "$MODEL/tok512.bin" --prompt Once --steps 5 --weights f16
  expect "the same file loads in f32" "$BIN" generate --model tk.bin --tokenizer "$MODEL/tok512.bin" --prompt Once --steps 5 --quiet
  ;;
duplicates)
  C=$DATA/stories_corpus.jsonl
  "$BIN" cache --model "$MODEL" --corpus "$C" --store s --quiet || { echo "FAIL: cache"; exit 1; }
  # every subcommand parses its options with ifk_cli_parse: the same refusal for each (last flag twice)
  for cmd in "generate --model $MODEL --prompt Hi --steps 10 --steps 20" "query --model $MODEL --store s --docs lily --prompt Hi --prompt Ho" \
             "cache --model $MODEL --corpus $C --store s --store t" "inspect --store s --store s" "verify --store=s --store s" \
             "tokenize --tokenizer $MODEL/tok512.bin --text a --text b" "bench prefill --random-model tiny --tokens 4 --tokens 8" \
             "logits --model $MODEL --ids 1 --ids 2" "convert --model $MODEL --out a --out b"; do
    flag=$(awk '{print $(NF-1)}' <<<"$cmd")
    # shellcheck disable=SC2086
    refused "$cmd" "$flag given twice" "$BIN" $cmd
  done
  refused "a flag given twice, = form" '--quiet given twice' "$BIN" generate --model "$MODEL" --quiet --quiet
  job() { printf '[job]\nmodel = %s\nstore = %s/s\nqueries = %s/stories_queries.jsonl\nout = %s/ev\nmethods = full,infoflow\nbudgets = 0.15\nsteps = 2\n' "$MODEL" "$W" "$DATA" "$W"; }
  { job; echo 'budgets = 0.2'; } > jd.ini
  refused "INI key twice" 'jd.ini:9: key .budgets. in \[job\] given twice' "$BIN" eval --job jd.ini --quiet
  { job; printf '[needle]\nlengths = 128\ndepths = 0\n[needle]\ndepths = 50\n'; } > jn.ini
  refused "INI key twice across a repeated section" "jn.ini:13: key 'depths' in \[needle\] given twice" "$BIN" eval --job jn.ini --quiet
  job | sed 's/budgets = 0.15/budgets = 0.15,0.15/' > jb.ini
  refused "budgets value twice" "jb.ini:7: budgets: '0.15,0.15' gives 0.15 twice" "$BIN" eval --job jb.ini --quiet
  job | sed 's/methods = full,infoflow/methods = full,infoflow,full/' > jm.ini
  refused "methods value twice" "jm.ini:6: methods: .* gives full twice" "$BIN" eval --job jm.ini --quiet
  { job; printf '[needle]\nlengths = 128,128\ndepths = 0\n'; } > jl.ini
  refused "needle lengths value twice" "jl.ini:10: lengths: '128,128' gives 128 twice" "$BIN" eval --job jl.ini --quiet
  printf '%s\n' '{"id":"a","text":"x"}' '{"id":"b","text":"x","id":"c"}' > d.jsonl
  refused "corpus JSON key twice" 'd.jsonl:2: key "id" is defined twice' "$BIN" cache --model "$MODEL" --corpus d.jsonl --store sd
  printf '%s\n' '{"id":"q1","prompt":"x","docs":["lily"],"id":"q2"}' > dq.jsonl
  refused "query set JSON key twice (query)" 'dq.jsonl:1: key "id" is defined twice' "$BIN" query --model "$MODEL" --store s --queries dq.jsonl --out o.jsonl
  job | sed "s|$DATA/stories_queries.jsonl|$W/dq.jsonl|" > je.ini
  refused "query set JSON key twice (eval)" 'dq.jsonl:1: key "id" is defined twice' "$BIN" eval --job je.ini --quiet
  printf '%s\n' '{"id":"q1","prompt":"x","docs":["lily"],"meta":{"a":1,"a":2}}' > dn.jsonl
  refused "a nested JSON key twice" 'dn.jsonl:1: key "a" is defined twice' "$BIN" query --model "$MODEL" --store s --queries dn.jsonl --out o2.jsonl
  refused "--dev key twice" "--dev: 'alpha=1,alpha=2' gives alpha twice" "$BIN" query --model "$MODEL" --store s --docs lily --prompt Hi --method infoflow-dev --dev alpha=1,alpha=2
  refused "shape key twice" 'dim given twice' "$BIN" bench prefill --random-model dim=64,layers=1,heads=4,kv_heads=2,hidden=8,vocab=16,seq=16,dim=32 --tokens 16
  ;;
messages)
  "$BIN" cache --model "$MODEL" --corpus "$DATA/stories_corpus.jsonl" --store s --quiet || { echo "FAIL: cache"; exit 1; }
  refused "--score-layers reversed" '--score-layers 3-1 is reversed' "$BIN" query --model "$MODEL" --store s --docs lily --prompt Hi --score-layers 3-1
  refused "query --weights bf16: no cache option suggested" 'load it with --weights f32, or use another --store)' \
    "$BIN" query --model "$MODEL" --store s --docs lily --prompt Hi --weights bf16
  out=$("$BIN" query --model "$MODEL" --store s --docs lily --prompt Hi --weights bf16 2>&1)
  expect "no --force for query ($out)" test -z "$(grep -- --force <<<"$out")"
  refused "logits --ids empty" '--ids: the list is empty' "$BIN" logits --model "$MODEL" --ids ""
  # sizes too small to measure anything are refused naming the option and the minimum (breaker s3 #11)
  refused "bench ttft context < chunks" '--context 3 leaves 2 tokens after BOS for --chunks 4, fewer than 16 per chunk: --context is at least 65' \
    "$BIN" bench ttft --random-model tiny --context 3 --chunks 4
  refused "bench ttft: 3 tokens in 2 chunks" '--context is at least 33 here' "$BIN" bench ttft --random-model tiny --context 3 --chunks 2
  refused "bench ttft: a budget that recomputes nothing" '--budget 0.001 of --context 129 recomputes no token: --context is at least 1001' \
    "$BIN" bench ttft --random-model tiny --context 129 --chunks 8 --budget 0.001
  # breaker s4 #7: a second model source, or a budget a method does not use, was silently ignored
  refused "bench ttft: --model and --random-model" 'give one of --random-model SHAPE or --model PATH, not both' \
    "$BIN" bench ttft --model "$MODEL" --random-model bogus --context 129 --chunks 2
  refused "bench ttft: --budget with --method none" '--budget does not apply to --method none' \
    "$BIN" bench ttft --random-model tiny --method none --budget 0.2 --context 129 --chunks 2
  refused "bench prefill --tokens 1" "--tokens '1' is not an integer in \[16," "$BIN" bench prefill --random-model tiny --tokens 1
  refused "bench prefill --tokens 15" "--tokens '15' is not an integer in \[16," "$BIN" bench prefill --random-model tiny --tokens 15
  out=$("$BIN" bench ttft --help 2>&1); expect "bench ttft --help says why" has "$out" 'chunks of at least 16 tokens'
  out=$("$BIN" bench prefill --help 2>&1); expect "bench prefill --help says why" has "$out" '--tokens is at least 16: '
  refused "bench foo exits 1" "unknown benchmark 'foo'" "$BIN" bench foo
  out=$("$BIN" nosuchcommand 2>/dev/null); rc=$?
  expect "an unknown command exits 1 ($rc)" test "$rc" -eq 1
  refused "tokenize --text-file a directory" 'is a directory' "$BIN" tokenize --tokenizer "$MODEL/tok512.bin" --text-file "$W"
  head -c 2998 "$MODEL/tok512.bin" > tok512.bin   # cut between two pieces: fewer than its name says
  refused "tokenize: a shortened tok512.bin" 'tok512.bin: tokenizer holds 214 pieces but .* 512' "$BIN" tokenize --tokenizer tok512.bin --text "Once upon a time"
  head -c 3000 "$MODEL/tok512.bin" > tok512.bin   # cut inside a piece's score
  refused "tokenize: a truncated tok512.bin" 'tok512.bin: bad tokenizer file: piece 214: truncated' "$BIN" tokenize --tokenizer tok512.bin --text "Once upon a time"
  # config.json and generation_config.json: the field is named with the real problem
  "$BIN" convert --model "$MODEL" --out hf >/dev/null
  edit() { rm -rf hx; cp -a hf hx; python3 -c "
import json, sys
p = 'hx/' + sys.argv[1]
try: d = json.load(open(p))
except OSError: d = {}
for k, v in json.loads(sys.argv[2]).items():
    if v == '__DEL__': d.pop(k, None)
    else: d[k] = v
json.dump(d, open(p, 'w'))" "$1" "$2"; }
  edit config.json '{"architectures": "__DEL__"}'
  refused "architectures missing" 'hx/config.json: field "architectures" is missing' "$BIN" logits --model hx --ids 1,2
  edit config.json '{"max_position_embeddings": 100000000}'
  refused "max_position_embeddings 1e8" 'field "max_position_embeddings" = 100000000 is not a positive integer up to' "$BIN" logits --model hx --ids 1,2
  edit generation_config.json '{"temperature": "1"}'
  refused "temperature a string" 'field "temperature" = "1" is not a number' "$BIN" logits --model hx --ids 1,2
  ;;
corpus)
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  # a text of only blank lines gives no tokens under --split paragraphs (breaker s3 #2): the check
  # refuses it before anything is cached, or --skip-bad skips and lists it; --split tokens caches it
  printf '%s\n' '{"id":"a","text":"Lily had a red ball."}' '{"id":"ws","text":"\n\n\n"}' '{"id":"b","text":"Tom saw a dog."}' \
    '{"id":"c","text":"\n\nThe sun.\n\n"}' > pw.jsonl
  refused "--split paragraphs: a text of blank lines" 'pw.jsonl:2: "text" holds no paragraph' \
    "$BIN" cache --model "$MODEL" --corpus pw.jsonl --store spw --split paragraphs --quiet
  expect "... no store folder left" test ! -e spw
  out=$(timeout 300 mpirun -n 2 "$BIN" cache --model "$MODEL" --corpus pw.jsonl --store spw --split paragraphs --skip-bad \
    --commit-docs 1 2>&1); rc=$?
  expect "--skip-bad under 2 ranks completes ($rc: $out)" test "$rc" -eq 0
  expect "... listing the line" has "$out" 'skipped bad line: pw.jsonl:2: "text" holds no paragraph'
  expect "... caching the 3 others" sh -c "'$BIN' inspect --store spw --json | grep -q '\"documents\": 3,'"
  expect "--split tokens caches it" "$BIN" cache --model "$MODEL" --corpus pw.jsonl --store stw --quiet
  # a failed first cache leaves no store folder it made (parents included); nothing cacheable is an
  # error naming the corpus, also under --skip-bad; an existing store keeps what it held (breaker s3 #10)
  printf 'junk\n{"id":"x"}\n' > bad.jsonl
  refused "a bad corpus" 'bad.jsonl:1: invalid JSON' "$BIN" cache --model "$MODEL" --corpus bad.jsonl --store snew
  expect "... leaves no store folder" test ! -e snew
  refused "a bad corpus, nested store" 'bad.jsonl:1: invalid JSON' "$BIN" cache --model "$MODEL" --corpus bad.jsonl --store p/q/s
  expect "... leaves no parent folder it made" test ! -e p
  mkdir -p keep
  refused "a bad corpus, store in an existing folder" 'bad.jsonl:1' "$BIN" cache --model "$MODEL" --corpus bad.jsonl --store keep/s
  expect "... the existing folder stays" test -d keep -a ! -e keep/s
  refused "--skip-bad with every line bad" '^infoflow: error: bad.jsonl: no document to cache: all its lines are bad (--skip-bad); the first: bad.jsonl:1: invalid JSON' \
    "$BIN" cache --model "$MODEL" --corpus bad.jsonl --store snew --skip-bad
  expect "... leaves no store folder" test ! -e snew
  out=$(timeout 300 mpirun -n 2 "$BIN" cache --model "$MODEL" --corpus bad.jsonl --store snew --skip-bad 2>&1); rc=$?
  expect "... under 2 ranks too ($rc: $out)" test "$rc" -ne 0 -a ! -e snew
  printf '\n  \n' > blank.jsonl
  refused "a corpus of blank lines" 'blank.jsonl: no document to cache: the file holds only blank lines' \
    "$BIN" cache --model "$MODEL" --corpus blank.jsonl --store snew
  refused "an all-bad corpus into an existing store" 'no document to cache' \
    "$BIN" cache --model "$MODEL" --corpus bad.jsonl --store stw --skip-bad
  expect "... which keeps its documents and verifies" sh -c "'$BIN' inspect --store stw --json | grep -q '\"documents\": 4,' && '$BIN' verify --store stw >/dev/null"
  # counts in messages: "1 document", never "1 documents"; no "ETA -0 s" (breaker s3 #12)
  printf '{"id":"one","text":"Lily"}\n' > one.jsonl
  out=$("$BIN" cache --model "$MODEL" --corpus one.jsonl --store sone --progress-seconds 0.001 2>&1)
  expect "cache: 1 document ($out)" has "$out" '^cache: 1 document in one.jsonl, 0 already in the store, 1 to cache on 1 rank$'
  expect "... cached 1 document, holds 1 document, 1 chunk" has "$out" '^cache: cached 1 document (1 token) in .*; the store holds 1 document, 1 chunk, 1 token$'
  expect "... no negative ETA, no '1 tokens'" test "$(count "$out" 'ETA -\|1 tokens')" -eq 0
  out=$("$BIN" verify --store sone); expect "verify: 1 document, 1 chunk ($out)" has "$out" 'sone: 1 document, 1 chunk: '
  printf '{"id":"q","prompt":"Lily","docs":["one"]}\n' > q1.jsonl
  out=$("$BIN" query --model "$MODEL" --store sone --queries q1.jsonl --out o1.jsonl --steps 2 2>&1)
  expect "query: 1 question ($out)" has "$out" '^query: 1 question to answer, '
  expect "... answered 1 question" has "$out" '^query: answered 1 question in '
  # every line reader (corpus, query --queries, eval) refuses invalid UTF-8 naming FILE:LINE and the
  # field, and a lone surrogate escape as such (breaker s3 #9: query answered \xff, "not a JSON object")
  printf '{"id":"q","prompt":"%s Lily","docs":["a"]}\n' "$(printf '\xff\xfe')" > q.jsonl
  refused "query --queries: invalid UTF-8 in a prompt" 'q.jsonl:1: invalid UTF-8 in "prompt"$' \
    "$BIN" query --model "$MODEL" --store stw --queries q.jsonl --out o.jsonl --steps 4
  expect "... nothing written" test ! -s o.jsonl
  printf '{"id":"q","prompt":"Lily","docs":["a"]}\n{"id":"s","prompt":"Lily \\udcff","docs":["a"]}\n' > q2.jsonl
  refused "query --queries: a lone surrogate" 'q2.jsonl:2: invalid JSON: lone surrogate \\udcff at column 26' \
    "$BIN" query --model "$MODEL" --store stw --queries q2.jsonl --out o2.jsonl --steps 4
  printf '[job]\nmodel = %s\nstore = %s/stw\nqueries = %s/q.jsonl\nout = %s/ev\n' "$MODEL" "$W" "$W" "$W" > j.ini
  refused "eval: invalid UTF-8 in a prompt" 'q.jsonl:1: invalid UTF-8 in "prompt"$' "$BIN" eval --job j.ini --quiet
  printf '{"id":"d","text":"Lily","meta":"%s"}\n' "$(printf '\xff')" > cu.jsonl
  refused "cache: invalid UTF-8 in metadata" 'cu.jsonl:1: invalid UTF-8 in "meta"$' \
    "$BIN" cache --model "$MODEL" --corpus cu.jsonl --store scu --quiet
  ;;
*) echo "unknown kind $KIND"; exit 2 ;;
esac
summary
