#!/usr/bin/env python3
"""random_ckpt.py OUT SHAPE [SEED] — writes a llama2.c checkpoint (legacy version 0, shared
classifier) of random weights of SHAPE ("dim=512,layers=8,heads=8,kv_heads=4,hidden=1536,vocab=512,
seq=512"), for `infoflow convert` to turn into a Hugging Face folder: a model whose files a test or
benchmark can read slice by slice (a --random-model is generated whole in every rank's memory).
Weights are N(0, 0.02), the RMSNorm gains 1."""
import sys
import numpy as np

out, shape = sys.argv[1], dict(kv.split("=") for kv in sys.argv[2].split(","))
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
D, L, H, F, V, S = (int(shape[k]) for k in ("dim", "layers", "heads", "hidden", "vocab", "seq"))
Hkv = int(shape.get("kv_heads", H))
Dh, kv = D // H, D // H * Hkv
rng = np.random.default_rng(seed)
w = lambda *n: (rng.standard_normal(n, dtype=np.float32) * 0.02)
with open(out, "wb") as f:
    np.array([D, F, L, H, Hkv, V, S], dtype=np.int32).tofile(f)  # vocab > 0: shared classifier
    for t in (w(V, D), np.ones((L, D), np.float32), w(L, D, D), w(L, kv, D), w(L, kv, D), w(L, D, D),
              np.ones((L, D), np.float32), w(L, F, D), w(L, D, F), w(L, F, D), np.ones(D, np.float32),
              np.zeros((S, Dh), np.float32)):  # the last: llama2.c's two unused RoPE tables
        t.astype(np.float32).tofile(f)
