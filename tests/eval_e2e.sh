#!/usr/bin/env bash
# eval_e2e.sh BIN MODEL_DIR DATA_DIR RANKS — a small eval grid end to end (under mpirun -n RANKS):
# result files exist and are well-formed, full has perfect fidelity against itself, the summary
# lists every (method, budget), plots are written.
set -u
BIN=$1 MODEL=$2 DATA=$3 N=$4
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
expect() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
"$BIN" cache --model "$MODEL" --corpus "$DATA/stories_corpus.jsonl" --store "$W/store" --quiet || exit 1
head -n 3 "$DATA/stories_queries.jsonl" > "$W/q.jsonl"
echo '{"_id": "lb1", "input": "Sue ate the", "context": "Passage 1:\nMom made a cake for Sue.\nPassage 2:\nSue ate the cake.", "answers": ["cake"]}' >> "$W/q.jsonl"
cat > "$W/job.ini" <<INI
[job]
model = $MODEL
store = $W/store
queries = $W/q.jsonl
out = $W/out
methods = full,none,infoflow,epic
budgets = 0.15,0.5
reorder = both
steps = 4
[needle]
lengths = 128,200
depths = 0,100
haystack_docs = 4
haystack_tokens = 60
[ablation]
layers = 1-2
INI
out=$(timeout 600 mpirun -n "$N" "$BIN" eval --job "$W/job.ini" --quiet 2>&1); rc=$?
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
# 4 items x (full + none + infoflow x 2 budgets x reorder off/on + epic x 2 budgets) = 4 x 8
n_expected = 4 * (1 + 1 + 4 + 2)
checks = [(ok, "full has perfect fidelity"), (len(fid) == n_expected, f"{len(fid)} fidelity lines, want {n_expected}"),
          (all(r["kl"] >= 0 for r in fid), "KL >= 0"),
          (any(r["item"] == "lb1" and "f1" in r for r in fid), "LongBench item cached and scored"),
          (len([json.loads(l) for l in open(f"{d}/needle.jsonl")]) == 2 * 2 * 4, "needle grid lines"),
          (len([json.loads(l) for l in open(f"{d}/ablation.jsonl")]) == 2 * 4, "ablation lines")]
md = open(f"{d}/summary.md").read()
checks.append(("| infoflow | 0.15 | on |" in md and "| epic | 0.50 | off |" in md, "summary rows"))
checks.append(("nan" not in md, "no nan in the summary: a column that does not apply reads '–'"))
for c, what in checks:
    print(("ok   " if c else "FAIL ") + what)
sys.exit(0 if all(c for c, _ in checks) else 1)
PY
expect "result files well-formed" test $? -eq 0
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
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
