#!/usr/bin/env bash
# bench_eval_mem.sh [SHAPE] — resident memory per rank of `infoflow eval` at -n 1 (the whole model
# on the one rank) and at -n 2 --tp 2 (each rank its slice), for a model of random weights of SHAPE
# (default: bench100m's shape with stories260K's 512-token vocabulary, since eval's prompts are text
# and `--random-model` has no tokenizer). The weights are written as an HF folder (jobs/random_ckpt.py,
# then `infoflow convert`), which every rank reads slice by slice; a --random-model would be
# generated whole on every rank before slicing. A small job: one LongBench item (its two passages
# cached by eval), full and InfoFlow at R = 0.5, one needle cell over two sampled stories of 24
# tokens. Prints eval's "resident MiB per rank (now/peak)" line of each run, wall seconds, and the
# peak ratio. Uses build/infoflow and models/stories260K; one BLAS thread per rank.
set -euo pipefail
cd "$(dirname "$0")/.."
SHAPE=${1:-dim=1024,layers=8,heads=16,kv_heads=4,hidden=2816,vocab=512,seq=8192}
BIN=$PWD/build/infoflow MODEL=$PWD/models/stories260K
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
/usr/bin/python3 jobs/random_ckpt.py "$W/r.bin" "$SHAPE"
"$BIN" convert --model "$W/r.bin" --tokenizer "$MODEL/tok512.bin" --out "$W/hf" > /dev/null
rm "$W/r.bin"
echo "model: $SHAPE, random weights, $(du -m "$W/hf/model.safetensors" | cut -f1) MiB of f32 weights (HF folder)"
echo '{"_id": "lb1", "input": "Sue ate the", "answers": ["cake"], "context": "Passage 1:\nMom made a cake for Sue.\nPassage 2:\nSue ate the cake."}' > "$W/q.jsonl"
declare -A peak
for layout in "1 1" "2 2"; do
  set -- $layout
  printf '[job]\nmodel = %s\nqueries = %s\nstore = %s\nout = %s\nmethods = full,infoflow\nbudgets = 0.5\nsteps = 2\n[needle]\nlengths = 96\ndepths = 50\nhaystack_docs = 2\nhaystack_tokens = 24\n' \
    "$W/hf" "$W/q.jsonl" "$W/s-$1" "$W/o-$1" > "$W/job-$1.ini"
  t0=$(date +%s.%N)
  line=$(mpirun -n "$1" "$BIN" eval --job "$W/job-$1.ini" --tp "$2" --threads 1 --quiet 2>&1 | grep "resident MiB")
  t1=$(date +%s.%N)
  echo "-n $1 --tp $2: $line ($(python3 -c "print(f'{$t1 - $t0:.1f}')") s)"
  peak[$1]=$(sed 's/.*://' <<<"$line" | tr ' ' '\n' | grep / | cut -d/ -f2 | sort -n | tail -1)
done
echo "largest peak per rank: -n 1 ${peak[1]} MiB, -n 2 --tp 2 ${peak[2]} MiB, ratio $(python3 -c "print(f'{${peak[2]} / ${peak[1]}:.2f}')")"
