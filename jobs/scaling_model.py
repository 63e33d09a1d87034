#!/usr/bin/env python3
"""scaling_model.py — the communication and TTFT model of docs/scaling.md.

  python3 jobs/scaling_model.py check BIN MODEL_DIR DATA_DIR   # measured bytes vs the model: queries at P = 2, 4;
                                                                # caching groups at -n 2 and -n 4 with --tp 2
  python3 jobs/scaling_model.py project                         # TTFT vs P, Llama-3.1-8B at 32K, R = 0.15
  python3 jobs/scaling_model.py grid                            # a grid of nodes x ranks, TP groups: caching
                                                                # and evaluation throughput, memory per rank

Bytes are the payload each rank hands to MPI (float32 = 4 bytes), per phase, as `infoflow query
--json` reports them under "comm" and `infoflow cache --tp N` on its last line."""
import json, math, os, subprocess, sys, tempfile


def model_bytes(L, D, T, Pq, n, steps, lo, hi, method="infoflow"):
    """payload bytes per rank of one query, by phase"""
    b = {}
    # a forward without logits (BOS, the recompute, a cached chunk) stops its last layer at the K/V,
    # and scoring its layer hi at the attention probabilities: no all-reduce there
    b["load"] = 2 * 4 * D * (L - 1)                             # BOS forward: 2 all-reduces of D per layer
    score = 2 * 4 * Pq * D * hi                                 # prompt through layers 0..hi-1 whole
    score += 4 * Pq * (T + Pq) * (hi - lo + 1)                  # per-head attention sums into rank 0
    b["score"] = score + 4 * (1 + n)                            # the selection's broadcast
    b["recompute"] = 2 * 4 * n * D * (L - 1)                    # 2 all-reduces of n x D per layer
    b["prompt_prefill"] = 2 * 4 * Pq * D * L
    b["decode"] = steps * 4 + (steps - 1) * 2 * 4 * D * L       # a token broadcast each, a forward between
    return b


def cache_group_bytes(L, D, Hkv, Dh, tp, chunks, tokens):
    """payload bytes of one rank of a caching group: per chunk of n tokens, the [BOS] + n rows go
    through 2 all-reduces of (n + 1) x D per layer but the last (K/V only), the n + 1 token ids are
    broadcast, and every rank's K and V heads (L x Hkv/tp x n x Dh each) go to the group's rank 0"""
    return {"all-reduce": 2 * 4 * D * (L - 1) * (tokens + chunks), "gather": 2 * 4 * L * (Hkv // tp) * Dh * tokens,
            "tokens": 4 * (tokens + chunks)}


def check_cache(BIN, MODEL, DATA, env, W):
    import re
    L, D, Hkv, Dh = 5, 64, 4, 8
    ok = True
    print("\n| ranks x tp | phase | measured bytes (rank 0) | model bytes |\n|---|---|---|---|")
    for n in (2, 4):
        r = subprocess.run(["mpirun", "-n", str(n), BIN, "cache", "--model", MODEL, "--corpus",
                            f"{DATA}/stories_corpus.jsonl", "--store", f"{W}/g{n}", "--chunk-tokens", "32", "--tp", "2"],
                           capture_output=True, text=True, env=env, check=True)
        m = re.search(r"(\d+) chunks, (\d+) tokens; all-reduce (\d+) bytes, gather (\d+) bytes, tokens (\d+) bytes",
                      r.stderr)
        if not m:
            print("no communication line from cache --tp 2:", r.stderr[-300:])
            return False
        chunks, tokens = int(m.group(1)), int(m.group(2))
        got = {"all-reduce": int(m.group(3)), "gather": int(m.group(4)), "tokens": int(m.group(5))}
        for ph, w in cache_group_bytes(L, D, Hkv, Dh, 2, chunks, tokens).items():
            ok &= got[ph] == w
            print(f"| {n} x 2 ({chunks} chunks, {tokens} tokens) | {ph} | {got[ph]} | {w} |")
    return ok


def check(BIN, MODEL, DATA):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OPENBLAS_NUM_THREADS="1")
    W = tempfile.mkdtemp()
    subprocess.run([BIN, "cache", "--model", MODEL, "--corpus", f"{DATA}/stories_corpus.jsonl", "--store", f"{W}/s",
                    "--quiet"], check=True, env=env)
    L, D, lo, hi, steps = 5, 64, 2, 3, 8
    ok = True
    print("| P | phase | measured bytes | model bytes |\n|---|---|---|---|")
    for P in (2, 4):
        r = subprocess.run(["mpirun", "-n", str(P), BIN, "query", "--model", MODEL, "--store", f"{W}/s", "--docs",
                            "lily,tom,cat", "--prompt", "Lily was sad because the ball", "--json", "--steps",
                            str(steps)], capture_output=True, text=True, env=env, check=True)
        q = json.loads(r.stdout)
        # the answer may stop early at EOS: the decode phase ran len(answer) forwards at most
        n_ans = len(q["answer_ids"])
        want = model_bytes(L, D, q["n_context_tokens"], q["n_prompt_tokens"], q["n_selected"], steps, lo, hi)
        want["decode"] = (min(steps, n_ans + 1)) * 4 + max(0, min(steps, n_ans + 1) - 1) * 2 * 4 * D * L
        for ph, w in want.items():
            got = q["comm"][ph]["bytes"]
            ok &= abs(got - w) < 0.5
            print(f"| {P} | {ph} | {got:.0f} | {w:.0f} |")
    ok &= check_cache(BIN, MODEL, DATA, env, W)
    subprocess.run(["rm", "-rf", W])
    print("model matches the instrumented runs" if ok else "MISMATCH")
    return ok


# ---- projection -------------------------------------------------------------------------------------
# Llama-3.1-8B shape
L, D, H, HKV, DH, F, V = 32, 4096, 32, 8, 128, 14336, 128256
T, R, PQ = 32768, 0.15, 32
# machine parameters (stated in docs/scaling.md)
NODE_FLOPS = 3.0e12      # sustained fp32 GEMM per node (a 2-socket, 128-core CPU node)
NODE_ATTN = 0.5          # attention runs at half the GEMM rate (small inner dimension, softmax)
NET_BW = 25e9            # bytes/s per node (200 Gb/s InfiniBand)
NET_LAT = 2e-6           # s per message step
STORE_BW = 5e9           # bytes/s per node reading KV (f16) from the store


def allreduce(bytes_, P):
    if P == 1:
        return 0.0
    return 2 * (P - 1) / P * bytes_ / NET_BW + 2 * (P - 1) * NET_LAT   # ring


def allreduce_on(bytes_, P, bw, lat):
    return 0.0 if P == 1 else 2 * (P - 1) / P * bytes_ / bw + 2 * (P - 1) * lat


def proj_flops(rows):
    return 2 * rows * (D * H * DH + 2 * D * HKV * DH + H * DH * D + 3 * D * F)


def kv_proj_flops(rows):
    """a last layer that stops at its K/V"""
    return 2 * rows * 2 * D * HKV * DH


def ttft_full(P):
    rows = T + PQ  # the context's last layer stops at its K/V; the prompt's runs whole
    comp = (proj_flops(rows) * (L - 1) + kv_proj_flops(T) + proj_flops(PQ)) / (P * NODE_FLOPS) + \
        4 * H * DH * (rows * rows / 2 * (L - 1) + PQ * rows) / (P * NODE_FLOPS * NODE_ATTN)
    comm = 2 * (L - 1) * allreduce(4 * rows * D, P) + 2 * allreduce(4 * PQ * D, P)
    return comp + comm, comm


def ttft_infoflow(P, lo=17, hi=25, flops=None, bw=NET_BW, lat=NET_LAT, store_bw=None):
    """P ranks; flops: their sustained rate together (default: P nodes); bw, lat: their links
    (default: the network); store_bw: their KV read rate together (default: P nodes')"""
    flops = flops or P * NODE_FLOPS
    store_bw = store_bw or P * STORE_BW
    n = math.floor(R * T)
    load = T * L * HKV * DH * 2 * 2 / store_bw
    score = (proj_flops(PQ) * hi + 2 * PQ * (D * H * DH + 2 * D * HKV * DH)) / flops + \
        4 * H * DH * PQ * T * (hi + 1) / (flops * NODE_ATTN)
    score_comm = 2 * hi * allreduce_on(4 * PQ * D, P, bw, lat) + (hi - lo + 1) * (
        0 if P == 1 else (P - 1) / P * 4 * PQ * T / bw + math.log2(P) * lat)
    rec = (proj_flops(n) * (L - 1) + kv_proj_flops(n)) / flops + 4 * H * DH * n * (T / 2) * (L - 1) / (flops * NODE_ATTN)
    rec_comm = 2 * (L - 1) * allreduce_on(4 * n * D, P, bw, lat)
    prompt = proj_flops(PQ) * L / flops + 4 * H * DH * PQ * T * L / (flops * NODE_ATTN)
    prompt_comm = 2 * L * allreduce_on(4 * PQ * D, P, bw, lat)
    comm = score_comm + rec_comm + prompt_comm
    return load + score + rec + prompt + comm, comm, load


def project():
    print("| P (nodes) | full prefill TTFT | of which comm | InfoFlow TTFT | of which comm | of which load | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for P in (1, 2, 4, 8, 16, 32, 64):
        f, fc = ttft_full(P)
        i, ic, il = ttft_infoflow(P)
        print(f"| {P} | {f:.2f} s | {fc * 1e3:.0f} ms | {i:.3f} s | {ic * 1e3:.1f} ms | {il * 1e3:.1f} ms | {f / i:.1f}x |")


# ---- the grid: nodes x ranks per node, groups of TP consecutive ranks (one node each) ----------------
NODES, RANKS_PER_NODE = 64, 8
NODE_BW = 20e9           # bytes/s between ranks of a node (shared memory), stated
NODE_LAT = 1e-6          # s per message step inside a node, stated
STORE_WRITE_BW = 2e9     # bytes/s per node writing f16 KV to the store, stated
CHUNK = 128              # tokens per chunk when caching
STEPS = 32               # answer tokens per eval run
PARAMS_SLICED = L * (D * H * DH + 2 * D * HKV * DH + H * DH * D + 3 * D * F)  # split by TP
PARAMS_REPL = 2 * V * D + (2 * L + 1) * D                                   # embedding, classifier, norms


def cache_chunk_seconds(tp):
    """one chunk of CHUNK tokens on a group of tp ranks of one node (each rank 1/RANKS_PER_NODE of it)"""
    rows = CHUNK + 1
    flops = NODE_FLOPS * tp / RANKS_PER_NODE
    comp = (proj_flops(rows) * (L - 1) + kv_proj_flops(rows)) / flops + \
        4 * H * DH * rows * rows / 2 * (L - 1) / (flops * NODE_ATTN)
    kv = 2 * 4 * L * HKV * DH * CHUNK                           # f32 K and V of the chunk, gathered
    comm = 2 * (L - 1) * allreduce_on(4 * rows * D, tp, NODE_BW, NODE_LAT) + (
        0 if tp == 1 else (tp - 1) / tp * kv / NODE_BW + math.log2(tp) * NODE_LAT)
    return comp + comm, comm


def run_seconds(tp):
    """one eval run (InfoFlow at T, R, then STEPS answer tokens) on a group of tp ranks of one node"""
    flops = NODE_FLOPS * tp / RANKS_PER_NODE
    ttft, comm, load = ttft_infoflow(tp, flops=flops, bw=NODE_BW, lat=NODE_LAT, store_bw=STORE_BW * tp / RANKS_PER_NODE)
    dec = STEPS * (proj_flops(1) * L / flops + 2 * V * D / flops + 4 * H * DH * T * L / (flops * NODE_ATTN))
    dec_comm = STEPS * 2 * L * allreduce_on(4 * D, tp, NODE_BW, NODE_LAT)
    return ttft + dec + dec_comm, comm + dec_comm


def grid():
    print(f"{NODES} nodes x {RANKS_PER_NODE} ranks, Llama-3.1-8B shape, f32 weights; caching in chunks of {CHUNK} "
          f"tokens; eval runs: InfoFlow at T = {T}, R = {R}, {STEPS} answer tokens\n")
    print("| TP | groups | weights per rank | weights per node | caching tokens/s | of which comm | eval runs/s | "
          "of which comm |")
    print("|---|---|---|---|---|---|---|---|")
    for tp in (1, 2, 4, 8):
        g = NODES * RANKS_PER_NODE // tp
        w = 4 * (PARAMS_SLICED / tp + PARAMS_REPL)
        c, cc = cache_chunk_seconds(tp)
        kv_tok = 2 * 2 * L * HKV * DH                              # f16 bytes per cached token
        tok_s = min(g * CHUNK / c, NODES * STORE_WRITE_BW / kv_tok)
        r, rc = run_seconds(tp)
        print(f"| {tp} | {g} | {w / 2**30:.1f} GiB | {w * RANKS_PER_NODE / 2**30:.0f} GiB | {tok_s:,.0f} | "
              f"{cc / c * 100:.2f}% | {g / r:.2f} | {rc / r * 100:.2f}% |")


if __name__ == "__main__":
    if sys.argv[1] == "check":
        sys.exit(0 if check(*sys.argv[2:5]) else 1)
    grid() if sys.argv[1] == "grid" else project()
