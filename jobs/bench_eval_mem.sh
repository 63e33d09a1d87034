#!/usr/bin/env bash
# bench_eval_mem.sh [mem|runs] [SHAPE] — `infoflow eval` on 2 ranks for a model of random weights of
# SHAPE (default: bench100m's shape with stories260K's 512-token vocabulary, since eval's prompts are
# text and `--random-model` has no tokenizer), written as a llama2.c checkpoint (jobs/random_ckpt.py)
# and as an HF folder (`infoflow convert`):
#   mem   resident memory per rank at -n 1 (the whole model on the one rank) and at -n 2 --tp 2 (each
#         rank its slice), for the checkpoint and for the folder. A small job: one LongBench item (its
#         two passages cached by eval), full and InfoFlow at R = 0.5, one needle cell over two sampled
#         stories of 24 tokens. Prints eval's "resident MiB per rank (now/peak)" line of each run, wall
#         seconds, and the peak ratios.
#   runs  eval runs/s of the HF folder at -n 2 --tp 1 (2 groups of 1) against -n 2 --tp 2 (1 group of
#         2): the first 4 demo queries over the demo corpus (cached first at --tp 1, not timed),
#         methods full, none, cacheblend and InfoFlow at R = 0.15 and 0.5, 4 answer tokens; eval's
#         own "N runs in S s"; checks the two layouts' results agree (selections, answers, KL within
#         1e-4).
# BIN (default build/infoflow) is the binary measured; models/stories260K gives the tokenizer. One
# BLAS thread per rank, every rank under nice.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-mem}
SHAPE=${2:-dim=1024,layers=8,heads=16,kv_heads=4,hidden=2816,vocab=512,seq=8192}
BIN=${BIN:-$PWD/build/infoflow} MODEL=$PWD/models/stories260K
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
/usr/bin/python3 jobs/random_ckpt.py "$W/r.bin" "$SHAPE"
"$BIN" convert --model "$W/r.bin" --tokenizer "$MODEL/tok512.bin" --out "$W/hf" > /dev/null
echo "binary: $BIN; model: $SHAPE, random weights, $(du -m "$W/r.bin" | cut -f1) MiB of f32 weights" \
     "(llama2.c checkpoint and HF folder); load average $(cut -d' ' -f1-3 /proc/loadavg)"
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$@"; }

if [ "$MODE" = mem ]; then
  echo '{"_id": "lb1", "input": "Sue ate the", "answers": ["cake"], "context": "Passage 1:\nMom made a cake for Sue.\nPassage 2:\nSue ate the cake."}' > "$W/q.jsonl"
  declare -A peak
  for kind in llama2c hf; do
    m=$W/r.bin; [ $kind = hf ] && m=$W/hf
    for layout in "1 1" "2 2"; do
      set -- $layout
      printf '[job]\nmodel = %s\ntokenizer = %s\nqueries = %s\nstore = %s\nout = %s\nmethods = full,infoflow\nbudgets = 0.5\nsteps = 2\n[needle]\nlengths = 64\ndepths = 50\nhaystack_docs = 2\nhaystack_tokens = 24\n' \
        "$m" "$MODEL/tok512.bin" "$W/q.jsonl" "$W/s-$kind-$1" "$W/o-$kind-$1" > "$W/job.ini"
      t0=$(date +%s.%N)
      line=$(mpirun -n "$1" nice "$BIN" eval --job "$W/job.ini" --tp "$2" --threads 1 --quiet 2>&1 | grep "resident MiB")
      echo "$kind -n $1 --tp $2: $line ($(secs "$t0" "$(date +%s.%N)") s)"
      peak[$kind$1]=$(sed 's/.*://' <<<"$line" | tr ' ' '\n' | grep / | cut -d/ -f2 | sort -n | tail -1)
    done
    echo "$kind: largest peak per rank: -n 1 ${peak[${kind}1]} MiB, -n 2 --tp 2 ${peak[${kind}2]} MiB, ratio" \
         "$(python3 -c "print(f'{${peak[${kind}2]} / ${peak[${kind}1]}:.2f}')")"
  done
  exit 0
fi

[ "$MODE" = runs ] || { echo "usage: bench_eval_mem.sh [mem|runs] [SHAPE]" >&2; exit 2; }
head -4 jobs/data/demo_queries.jsonl > "$W/q.jsonl"
mpirun -n 2 nice "$BIN" cache --model "$W/hf" --corpus jobs/data/demo_corpus.jsonl --store "$W/s" --tp 1 --quiet
declare -A rps
for tp in 1 2; do
  printf '[job]\nmodel = %s\nstore = %s\nqueries = %s\nout = %s\nmethods = full,none,cacheblend,infoflow\nbudgets = 0.15,0.5\nsteps = 4\n' \
    "$W/hf" "$W/s" "$W/q.jsonl" "$W/e$tp" > "$W/job.ini"
  mpirun -n 2 nice "$BIN" eval --job "$W/job.ini" --tp $tp --threads 1 --quiet > /dev/null
  runs=$(grep -oE '[0-9]+ runs in [0-9.]+ s' "$W/e$tp/summary.md")
  rps[$tp]=$(awk '{ printf "%.3f", $1 / $4 }' <<<"$runs")
  echo "-n 2 --tp $tp: $runs, ${rps[$tp]} runs/s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
done
/usr/bin/python3 - "$W/e1/fidelity.jsonl" "$W/e2/fidelity.jsonl" <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(p, errors="replace")] for p in sys.argv[1:3])
key = lambda r: json.dumps({k: v for k, v in r.items() if k not in ("kl", "ttft_ms", "ttft_full_ms") and "ms" not in k and
                            not isinstance(v, float)}, sort_keys=True)
same = len(a) == len(b) and all(key(x) == key(y) and abs(x.get("kl", 0) - y.get("kl", 0)) < 1e-4 for x, y in zip(a, b))
print(f"results at --tp 1 and --tp 2 ({len(a)} lines): {'the same' if same else 'DIFFERENT'}")
PY
echo "runs/s ratio --tp 2 / --tp 1: $(python3 -c "print(f'{${rps[2]} / ${rps[1]}:.2f}')")"
