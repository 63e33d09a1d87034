#!/usr/bin/env python3
"""oracle_dev.py BIN MODEL_DIR DATA_DIR REF — `infoflow query --method infoflow-dev --dev alpha=1` (the
oracle's plain product; our default squares the deviation, docs/results.md) against the NumPy
oracle's infoflow-dev (REF = ../shared/reference/ref_infoflow.py) on the same corpus, queries and
budgets, at 1 and 2 ranks (tensor parallel: the V deviation summed over KV heads across ranks):
the selected slots are identical and each query's KL(full || method) agrees to 1e-4 (4 decimals;
the oracle is float64 on an exact cache, we read an f32 store). Also R = 1 equals full (KL < 1e-6,
same answer) and R = 0 equals none (same first logits to 1e-5), at both rank counts."""
import importlib.util, json, math, os, subprocess, sys, tempfile

BIN, MODEL, DATA, REF = sys.argv[1:5]
if not os.path.exists(REF):
    print(f"FAIL: the oracle {REF} is missing"); sys.exit(1)
spec = importlib.util.spec_from_file_location("ref_infoflow", REF)
R = importlib.util.module_from_spec(spec); spec.loader.exec_module(R)
import numpy as np  # noqa: E402  (the oracle needs it too)

env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OPENBLAS_NUM_THREADS="1")
passed = failed = 0


def check(cond, what):
    global passed, failed
    passed += bool(cond); failed += not cond
    if not cond: print("FAIL:", what, flush=True)


W = tempfile.mkdtemp()
store = os.path.join(W, "s")
subprocess.run([BIN, "cache", "--model", MODEL, "--corpus", f"{DATA}/stories_corpus.jsonl", "--store", store,
                "--dtype", "f32", "--quiet"], check=True, env=env)


def ours(ranks, q, method, budget):
    cmd = ([] if ranks == 1 else ["mpirun", "-n", str(ranks)]) + [
        BIN, "query", "--model", MODEL, "--store", store, "--docs", ",".join(q["docs"]), "--prompt", q["prompt"],
        "--method", method, "--compare-full", "--json", "--steps", "4"] + (
        ["--budget", str(budget)] if method != "none" else []) + (  # none takes no budget (refused)
        ["--dev", "alpha=1"] if method == "infoflow-dev" else [])
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode:
        check(False, f"{' '.join(cmd[-12:])}: exit {r.returncode}: {r.stderr[-300:]}")
        return None
    return json.loads(r.stdout)


m = R.Model(os.path.join(MODEL, "stories260K.bin")); tok = R.Tok(os.path.join(MODEL, "tok512.bin"))
docs = {json.loads(l)["id"]: json.loads(l)["text"] for l in open(f"{DATA}/stories_corpus.jsonl")}
qs = [json.loads(l) for l in open(f"{DATA}/stories_queries.jsonl")]
for budget in (0.15, 0.3):
    for q in qs:
        full, got, sel = R.run_query(m, tok, [docs[d] for d in q["docs"]], q["prompt"], "infoflow-dev", budget, [2, 3])
        pf, pg = R.softmax(full), R.softmax(got)
        kl = float((pf * (np.log(pf + 1e-30) - np.log(pg + 1e-30))).sum())
        for ranks in (1, 2):
            o = ours(ranks, q, "infoflow-dev", budget)
            if o is None: continue
            what = f"{q['id']} R={budget} ranks={ranks}"
            check(o["selected"] == [int(x) for x in sel], f"{what}: selection differs from the oracle's "
                  f"({len(o['selected'])} vs {len(sel)} slots; first differences "
                  f"{sorted(set(o['selected']) ^ set(int(x) for x in sel))[:8]})")
            k = o["compare_full"]["kl"]
            check(abs(k - kl) <= 1e-4, f"{what}: KL {k:.6f}, oracle {kl:.6f}")
            print(f"{'ok  ' if o['selected'] == [int(x) for x in sel] and abs(k - kl) <= 1e-4 else 'FAIL'} {what}: "
                  f"{len(sel)} slots, KL ours {k:.5f} oracle {kl:.5f}", flush=True)
# the budget's ends
for q in qs[:2]:
    for ranks in (1, 2):
        a = ours(ranks, q, "infoflow-dev", 1.0)
        if a:
            check(a["n_selected"] == a["n_context_tokens"], f"R=1 ranks={ranks}: every slot selected")
            check(a["compare_full"]["kl"] < 1e-6 and a["answer"] == a["compare_full"]["full_answer"],
                  f"R=1 ranks={ranks}: equals full (KL {a['compare_full']['kl']:g})")
        z, n = ours(ranks, q, "infoflow-dev", 0.0), ours(ranks, q, "none", 0.0)
        if z and n:
            d = max(abs(x[1] - y[1]) for x, y in zip(z["first_logits_top"], n["first_logits_top"]))
            check(z["n_selected"] == 0 and z["answer_ids"] == n["answer_ids"] and d < 1e-5,
                  f"R=0 ranks={ranks}: equals none (logit diff {d:g})")
subprocess.run(["rm", "-rf", W])
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
