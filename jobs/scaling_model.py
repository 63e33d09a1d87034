#!/usr/bin/env python3
"""scaling_model.py — the communication and TTFT model of docs/scaling.md.

  python3 jobs/scaling_model.py check BIN MODEL_DIR DATA_DIR   # measured bytes vs the model, P = 2, 4
  python3 jobs/scaling_model.py project                         # TTFT vs P, Llama-3.1-8B at 32K, R = 0.15

Bytes are the payload each rank hands to MPI (float32 = 4 bytes), per phase, as `infoflow query
--json` reports them under "comm"."""
import json, math, os, subprocess, sys, tempfile


def model_bytes(L, D, T, Pq, n, steps, lo, hi, method="infoflow"):
    """payload bytes per rank of one query, by phase"""
    b = {}
    b["load"] = 2 * 4 * D * L                                   # BOS forward: 2 all-reduces of D per layer
    score = 2 * 4 * Pq * D * (hi + 1)                           # prompt through layers 0..hi
    score += 4 * Pq * (T + Pq) * (hi - lo + 1)                  # per-head attention sums into rank 0
    b["score"] = score + 4 * (1 + n)                            # the selection's broadcast
    b["recompute"] = 2 * 4 * n * D * L                          # 2 all-reduces of n x D per layer
    b["prompt_prefill"] = 2 * 4 * Pq * D * L
    b["decode"] = steps * 4 + (steps - 1) * 2 * 4 * D * L       # a token broadcast each, a forward between
    return b


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


def proj_flops(rows):
    return 2 * rows * (D * H * DH + 2 * D * HKV * DH + H * DH * D + 3 * D * F)


def ttft_full(P):
    rows = T + PQ
    comp = proj_flops(rows) * L / (P * NODE_FLOPS) + 4 * H * DH * rows * rows / 2 * L / (P * NODE_FLOPS * NODE_ATTN)
    comm = 2 * L * allreduce(4 * rows * D, P)
    return comp + comm, comm


def ttft_infoflow(P, lo=17, hi=25):
    n = math.floor(R * T)
    load = T * L * (HKV / P) * DH * 2 * 2 / STORE_BW
    score = proj_flops(PQ) * (hi + 1) / (P * NODE_FLOPS) + 4 * H * DH * PQ * T * (hi + 1) / (P * NODE_FLOPS * NODE_ATTN)
    score_comm = 2 * (hi + 1) * allreduce(4 * PQ * D, P) + (hi - lo + 1) * (
        0 if P == 1 else (P - 1) / P * 4 * PQ * T / NET_BW + math.log2(P) * NET_LAT)
    rec = proj_flops(n) * L / (P * NODE_FLOPS) + 4 * H * DH * n * (T / 2) * L / (P * NODE_FLOPS * NODE_ATTN)
    rec_comm = 2 * L * allreduce(4 * n * D, P)
    prompt = proj_flops(PQ) * L / (P * NODE_FLOPS) + 4 * H * DH * PQ * T * L / (P * NODE_FLOPS * NODE_ATTN)
    prompt_comm = 2 * L * allreduce(4 * PQ * D, P)
    comm = score_comm + rec_comm + prompt_comm
    return load + score + rec + prompt + comm, comm, load


def project():
    print("| P (nodes) | full prefill TTFT | of which comm | InfoFlow TTFT | of which comm | of which load | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for P in (1, 2, 4, 8, 16, 32, 64):
        f, fc = ttft_full(P)
        i, ic, il = ttft_infoflow(P)
        print(f"| {P} | {f:.2f} s | {fc * 1e3:.0f} ms | {i:.3f} s | {ic * 1e3:.1f} ms | {il * 1e3:.1f} ms | {f / i:.1f}x |")


if __name__ == "__main__":
    if sys.argv[1] == "check":
        sys.exit(0 if check(*sys.argv[2:5]) else 1)
    project()
