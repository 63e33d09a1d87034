#!/usr/bin/env bash
# bench_grid.sh [stories|bench100m] — 2 ranks as 2 groups of 1 (--tp 1) against 1 group of 2
# (--tp 2), in one run: caching tokens/s, batch answering questions/s (`query --queries`), eval
# runs/s (stories260K only: eval prompts are text, a random model has no tokenizer), resident
# memory per rank during batch answering, and the ratios. Uses build/infoflow and
# models/stories260K; one BLAS thread per rank.
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH=${1:-stories}
BIN=$PWD/build/infoflow MODEL=$PWD/models/stories260K
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
if [ "$WHICH" = stories ]; then
  model=(--model "$MODEL"); corpus=jobs/data/demo_corpus.jsonl; chunk=128; steps=16
  python3 - "$W" <<'PY'
import json, sys
qs = [json.loads(l) for l in open("jobs/data/demo_queries.jsonl")]
with open(sys.argv[1] + "/q.jsonl", "w") as f:
    for r in range(4):
        for q in qs:
            f.write(json.dumps({"id": f"{q['id']}-{r}", "docs": q["docs"], "prompt": q["prompt"]}) + "\n")
PY
else
  model=(--random-model bench100m); corpus=$W/c.jsonl; chunk=128; steps=4
  python3 - "$W" <<'PY'
import json, sys
s = 11
with open(sys.argv[1] + "/c.jsonl", "w") as f:
    for i in range(8):
        t = []
        for _ in range(128):
            s = (s * 1103515245 + 12345) % 2147483648
            t.append(3 + s % 31000)
        f.write(json.dumps({"id": f"b{i}", "tokens": t}) + "\n")
with open(sys.argv[1] + "/q.jsonl", "w") as f:
    for i in range(8):
        f.write(json.dumps({"id": f"q{i}", "docs": [f"b{i}", f"b{(i + 3) % 8}"],
                            "prompt_ids": [5 + i, 17, 300, 4000, 9, 77, 1234, 21]}) + "\n")
PY
fi
declare -A tok qps rps mem
for tp in 1 2; do
  line=$(mpirun -n 2 "$BIN" cache "${model[@]}" --corpus "$corpus" --store "$W/s$tp" --chunk-tokens $chunk --tp $tp \
         --progress-seconds 1000 2>&1 | grep 'cache: cached')
  tok[$tp]=$(sed -E 's/.* s, ([0-9.]+) tok\/s.*/\1/' <<<"$line")
  out=$(mpirun -n 2 "$BIN" query "${model[@]}" --store "$W/s1" --queries "$W/q.jsonl" --out "$W/a$tp.jsonl" --tp $tp \
        --steps $steps 2>&1)
  qps[$tp]=$(grep -oE '[0-9.]+ questions/s' <<<"$out" | cut -d' ' -f1)
  mem[$tp]=$(grep -oE 'per rank \(now/peak\): .*' <<<"$out" | cut -d' ' -f4-)
  if [ "$WHICH" = stories ]; then
    printf '[job]\nmodel = %s\nstore = %s\nqueries = jobs/data/demo_queries.jsonl\nmethods = full,none,epic,cacheblend,infoflow\nbudgets = 0.15,0.5\nreorder = both\nsteps = 8\n[ablation]\nlayers = 0-4\n' \
      "$MODEL" "$W/s1" > "$W/job.ini"
    mpirun -n 2 "$BIN" eval --job "$W/job.ini" --out "$W/e$tp" --tp $tp --quiet
    rps[$tp]=$(grep -oE '[0-9]+ runs in [0-9.]+ s' "$W/e$tp/summary.md" | awk '{ printf "%.1f", $1 / $4 }')
  else
    rps[$tp]=-
  fi
done
cmp <(python3 -c "import json,sys; [print(json.loads(l)['answer_ids']) for l in open(sys.argv[1])]" "$W/a1.jsonl") \
    <(python3 -c "import json,sys; [print(json.loads(l)['answer_ids']) for l in open(sys.argv[1])]" "$W/a2.jsonl") \
  && same="identical" || same="DIFFERENT"
echo "$WHICH on 2 ranks (load average: $(cut -d' ' -f1-3 /proc/loadavg)); answers at --tp 1 and --tp 2: $same"
echo "| layout | caching tok/s | batch questions/s | eval runs/s | resident MiB per rank (now/peak) |"
echo "|---|---|---|---|---|"
echo "| --tp 1 (2 groups of 1) | ${tok[1]} | ${qps[1]} | ${rps[1]} | ${mem[1]} |"
echo "| --tp 2 (1 group of 2) | ${tok[2]} | ${qps[2]} | ${rps[2]} | ${mem[2]} |"
awk -v a="${tok[2]}" -v b="${tok[1]}" -v c="${qps[2]}" -v d="${qps[1]}" -v e="${rps[2]}" -v f="${rps[1]}" \
  'BEGIN { printf "| ratio --tp 2 / --tp 1 | %.2f | %.2f | %s |  |\n", a / b, c / d, (f == "-" ? "-" : sprintf("%.2f", e / f)) }'
