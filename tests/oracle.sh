#!/usr/bin/env bash
# oracle.sh BIN MODEL_DIR DATA_DIR REF — mean KL(full || method) of `infoflow query` against the
# NumPy oracle ../shared/reference/ref_infoflow.py on the same corpus, queries and budget.
# The oracle works in float64 on an exact (float32-cast) cache; we read an f32 store. Agreement:
# |ours - oracle| <= 2e-4 + 2% of the oracle's value, for none, epic, cacheblend and infoflow
# (random draws from another generator and is not compared).
set -u
BIN=$1 MODEL=$2 DATA=$3 REF=$4
[ -f "$REF" ] || { echo "FAIL: the oracle $REF is missing"; exit 1; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
"$BIN" cache --model "$MODEL" --corpus "$DATA/stories_corpus.jsonl" --store "$W/s" --dtype f32 --quiet || exit 1
python3 - "$BIN" "$MODEL" "$W/s" "$DATA" "$REF" <<'PY'
import json, subprocess, sys
bin_, model, store, data, ref = sys.argv[1:]
qs = [json.loads(l) for l in open(f"{data}/stories_queries.jsonl")]
methods = ["none", "epic", "cacheblend", "infoflow"]
passed = failed = 0
for budget in ("0.15", "0.3"):
    out = subprocess.run(["/usr/bin/python3", ref, "--corpus", f"{data}/stories_corpus.jsonl", "--queries",
                          f"{data}/stories_queries.jsonl", "--budget", budget, "--methods", ",".join(methods)],
                         capture_output=True, text=True)
    if out.returncode:
        print("FAIL: the oracle did not run:", out.stderr.strip()[-400:]); sys.exit(1)
    oracle = {l.split()[0]: float(l.split("meanKL=")[1].split()[0]) for l in out.stdout.splitlines() if "meanKL=" in l}
    for m in methods:
        kls = []
        for q in qs:
            r = subprocess.run([bin_, "query", "--model", model, "--store", store, "--docs", ",".join(q["docs"]),
                                "--prompt", q["prompt"], "--method", m, "--compare-full", "--json", "--steps", "2"]
                               + (["--budget", budget] if m != "none" else []), capture_output=True, text=True, check=True)
            kls.append(json.loads(r.stdout)["compare_full"]["kl"])
        ours = sum(kls) / len(kls)
        ok = abs(ours - oracle[m]) <= 2e-4 + 0.02 * oracle[m]
        print(f"{'ok  ' if ok else 'FAIL'} budget {budget} {m:10s} ours {ours:.5f}  oracle {oracle[m]:.4f}")
        passed += ok; failed += not ok
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
