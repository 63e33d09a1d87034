#!/usr/bin/env bash
# eval_e2e.sh BIN MODEL_DIR DATA_DIR RANKS [TP] — a small eval grid end to end (under mpirun -n RANKS,
# groups of TP ranks, default 1): result files exist and are well-formed, full has perfect fidelity
# against itself, the summary lists every (method, budget), plots are written; the documents eval
# caches (a LongBench item's passages, the needle haystack and needles) are in the store.
set -u
BIN=$1 MODEL=$2 DATA=$3 N=$4 TP=${5:-1}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
"$BIN" cache --model "$MODEL" --corpus "$DATA/stories_corpus.jsonl" --store "$W/store" --quiet || exit 1
head -n 3 "$DATA/stories_queries.jsonl" > "$W/q.jsonl"
echo '{"_id": "lb1", "input": "Sue ate the", "context": "Passage 1:\nMom made a cake for Sue.\nPassage 2:\nSue ate the cake.", "answers": ["cake"]}' >> "$W/q.jsonl"
cat > "$W/job.ini" <<INI
[job]
model = $MODEL
store = $W/store
queries = $W/q.jsonl
out = $W/out
methods = full,none,infoflow,epic,infoflow-dev
INI
cat "$DATA/eval_grid.ini" >> "$W/job.ini"
out=$(timeout 600 mpirun -n "$N" "$BIN" eval --job "$W/job.ini" --tp "$TP" --quiet 2>&1); rc=$?
expect "eval runs (rc $rc): $(tail -n 3 <<<"$out")" test "$rc" -eq 0
for f in fidelity.jsonl needle.jsonl ablation.jsonl summary.csv summary.md speed_accuracy.png needle.png ablation.png; do
  expect "$f written" test -s "$W/out/$f"
done
python3 - "$W/out" <<'PY'
import json, sys
d = sys.argv[1]
fid = [json.loads(l) for l in open(f"{d}/fidelity.jsonl")]
full = [r for r in fid if r["method"] == "full"]
ok = len(full) == 4 and all(r["kl"] == 0 and r["top1_agree"] and r["leading_agree"] == len(r.get("answer_ids", [])) or r["answer"] == r["full_answer"] for r in full)
# 4 items x (full + none + infoflow x 2 budgets x reorder off/on + epic, infoflow-dev x 2 budgets) = 4 x 10
n_expected = 4 * (1 + 1 + 4 + 2 + 2)
checks = [(ok, "full has perfect fidelity"), (len(fid) == n_expected, f"{len(fid)} fidelity lines, want {n_expected}"),
          (all(r["kl"] >= 0 for r in fid), "KL >= 0"),
          (any(r["item"] == "lb1" and "f1" in r for r in fid), "LongBench item cached and scored"),
          (len([json.loads(l) for l in open(f"{d}/needle.jsonl")]) == 2 * 2 * 5, "needle grid lines"),
          (len([json.loads(l) for l in open(f"{d}/ablation.jsonl")]) == 2 * 4, "ablation lines")]
md = open(f"{d}/summary.md").read()
checks.append(("| infoflow | 0.15 | on |" in md and "| epic | 0.50 | off |" in md, "summary rows"))
checks.append(("nan" not in md, "no nan in the summary: a column that does not apply reads '–'"))
checks.append(("| infoflow-dev | 0.50 | off |" in md and "### speed-accuracy frontier" in md, "infoflow-dev and frontier in the summary"))
# the frontier table against the result lines: the target is infoflow's mean KL at R = 0.15; each
# method's entry is its first budget whose mean KL reaches it, with that budget's mean TTFT
import csv, statistics
mean = lambda m, b, k: statistics.mean(r[k] for r in fid if r["method"] == m and not r["reorder"] and abs(r["budget"] - b) < 1e-9)
target = mean("infoflow", 0.15, "kl")
front = {r["method"]: r for r in csv.DictReader(open(f"{d}/frontier.csv"))}
good = abs(float(front["infoflow"]["target_kl"]) - target) <= 1e-6 * max(target, 1e-9)
for m in ("infoflow", "infoflow-dev", "epic"):
    hit = [b for b in (0.15, 0.5) if mean(m, b, "kl") <= target]
    if not hit:
        good &= front[m]["reached"] == "0"
    else:
        good &= front[m]["reached"] == "1" and abs(float(front[m]["budget"]) - hit[0]) < 1e-9
        good &= abs(float(front[m]["ttft_at_budget_ms"]) - mean(m, hit[0], "ttft_ms")) < 1e-3
checks.append((good, f"frontier.csv agrees with the result lines: {front}"))
gp = open(f"{d}/plots.gp").read()
checks.append((f"frontier target KL {target:.5f}" in gp, "the speed-accuracy plot marks the frontier target"))
for c, what in checks:
    print(("ok   " if c else "FAIL ") + what)
sys.exit(0 if all(c for c, _ in checks) else 1)
PY
expect "result files well-formed" test $? -eq 0
v=$("$BIN" verify --store "$W/store" 2>&1)
expect "the store verifies with the 14 documents eval added ($v)" grep -q ": $(($(grep -c . "$DATA/stories_corpus.jsonl") + 14)) documents" <<<"$v"
expect "... and no temporary corpus left in the output" test ! -e "$W/out/.eval-cache-corpus.jsonl"
# a broken job spec names file:line
printf '[job]\nmodel = %s\nstore = %s\nqueries = %s\nbudgets = 2\n' "$MODEL" "$W/store" "$W/q.jsonl" > "$W/bad.ini"
out=$(timeout 120 mpirun -n "$N" "$BIN" eval --job "$W/bad.ini" 2>&1); rc=$?
expect "bad job spec refused" test "$rc" -eq 1
expect "... naming file:line ($out)" grep -q "bad.ini:5: budgets" <<<"$out"
# a user error inside the run loop of a one-process job: the one-line message and exit 1, no MPI_Abort banner
if [ "$N" -eq 1 ]; then
  echo '{"id": "q1", "prompt": "Lily", "docs": ["no-such-doc"]}' > "$W/missing.jsonl"
  out=$(timeout 120 "$BIN" eval --job "$W/job.ini" --queries "$W/missing.jsonl" --out "$W/out2" --quiet 2>&1 >/dev/null); rc=$?
  expect "missing document refused (rc $rc)" test "$rc" -eq 1
  expect "... in one line naming it ($out)" test "$(grep -c . <<<"$out")" -eq 1 -a -n "$(grep 'no-such-doc' <<<"$out")"
fi
# an infoflow-dev variant the model cannot have is refused before any run, naming the key
printf '[job]\nmodel = %s\nstore = %s\nqueries = %s\nmethods = infoflow-dev\ndev = layer=7\n' "$MODEL" "$W/store" "$W/q.jsonl" > "$W/dev.ini"
out=$(timeout 120 mpirun -n "$N" "$BIN" eval --job "$W/dev.ini" --out "$W/devout" 2>&1); rc=$?
expect "bad [job] dev refused (rc $rc)" test "$rc" -eq 1
expect "... naming it ($out)" grep -q "dev.ini: \[job\] dev: --dev: layer '7'" <<<"$out"
expect "... before any run" test ! -e "$W/devout/fidelity.jsonl"
summary
