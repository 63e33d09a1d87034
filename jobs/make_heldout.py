#!/usr/bin/env python3
"""make_heldout.py BIN MODEL_DIR OUT_DIR — the held-out query set of the infoflow-dev study
(docs/results.md): 24 stories sampled from the model with seeds 300-323 (the demo set used
100-123), and 16 queries of 3 stories each drawn with numpy seed 18; each prompt is the start of a
sentence of one of its stories cut before a word chosen at random, that word the gold answer.
Writes OUT_DIR/heldout_corpus.jsonl and OUT_DIR/heldout_queries.jsonl. Deterministic."""
import json, os, re, subprocess, sys
import numpy as np

BIN, MODEL, OUT = sys.argv[1:4]
starts = ["Once upon a time", "One day,", "Lily and Ben", "Tim had a"]
docs = []
for i, seed in enumerate(range(300, 324)):
    r = subprocess.run([BIN, "generate", "--model", MODEL, "--prompt", starts[i % 4], "--steps", "96",
                        "--temperature", "1.0", "--topp", "0.9", "--seed", str(seed), "--quiet"],
                       capture_output=True, text=True, check=True)
    text = " ".join(r.stdout.split())
    docs.append({"id": f"held{i:02d}", "text": text, "source": f"sampled from stories260K, seed {seed}"})
rng = np.random.default_rng(18)
queries = []
while len(queries) < 16:
    pick = [int(x) for x in rng.choice(len(docs), 3, replace=False)]
    src = docs[pick[int(rng.integers(3))]]["text"]
    sents = [s.split() for s in re.split(r"(?<=[.!?])\s+", src) if len(s.split()) >= 5]
    if not sents:
        continue
    words = sents[int(rng.integers(len(sents)))]
    cut = int(rng.integers(3, len(words)))
    answer = re.sub(r"[^\w']", "", words[cut])
    if not answer:
        continue
    queries.append({"id": f"h{len(queries):02d}", "docs": [docs[p]["id"] for p in pick],
                    "prompt": " ".join(words[:cut]), "answers": [answer]})
os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "heldout_corpus.jsonl"), "w") as f:
    for d in docs:
        f.write(json.dumps(d) + "\n")
with open(os.path.join(OUT, "heldout_queries.jsonl"), "w") as f:
    for q in queries:
        f.write(json.dumps(q) + "\n")
