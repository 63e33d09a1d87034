#!/usr/bin/python3
"""config_table.py BIN MODEL_DIR MODELS_MD — walks the table "config.json and generation_config.json
fields" of docs/models.md: for each row, stories260K converted to an HF folder, the row's edit
applied, and the row's check (ref, same, refused, shape, limit, gen; see docs/models.md). Also: every
field that src/hf.c accepts has a row. Fails, never skips."""
import json, os, re, shutil, struct, subprocess, sys, tempfile
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_torch import reference, write_folder

BIN, MODEL, DOC = sys.argv[1:4]
SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "hf.c")


def table_rows():
    text = open(DOC).read()
    sec = text.split("## config.json and generation_config.json fields", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in sec.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[3].startswith("`"): continue
        rows.append((cells[0], cells[1], cells[2], json.loads(cells[3].strip("`")), cells[4]))
    return rows


def read_safetensors(path):
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    hdr = json.loads(blob[8:8 + n])
    out = {}
    for k, v in hdr.items():
        b, e = v["data_offsets"]
        out[k] = torch.frombuffer(bytearray(blob[8 + n + b:8 + n + e]), dtype=torch.float32).reshape(v["shape"]).clone()
    return out


def logits(d, ids):
    r = subprocess.run([BIN, "logits", "--model", d, "--ids", ",".join(map(str, ids))], capture_output=True, text=True)
    return r, (torch.tensor(json.loads(r.stdout), dtype=torch.float64) if r.returncode == 0 else None)


def generate(d, *flags):
    flags = flags or ("--steps", "64", "--temperature", "0")
    r = subprocess.run([BIN, "generate", "--model", d, "--prompt", "Once upon a time", "--quiet", *flags],
                       capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None


def tok512():
    # llama2.c's tokenizer.bin: max length, then per piece a float score, an int length, the bytes
    blob, out, at = open(f"{MODEL}/tok512.bin", "rb").read(), [], 4
    while at < len(blob):
        n = struct.unpack("<i", blob[at + 4:at + 8])[0]
        out.append(blob[at + 8:at + 8 + n].decode("utf-8", "replace"))
        at += 8 + n
    return out


def penalised_greedy(cfg, W, prompt, p, steps):
    # transformers' RepetitionPenaltyLogitsProcessor then argmax, over the float64 reference
    ids = list(prompt)
    while len(ids) <= steps:  # as llama2.c's run.c: the token chosen at the last position is printed too
        lg = reference(cfg, W, torch.tensor(ids))[-1].clone()
        seen = torch.tensor(sorted(set(ids)))
        lg[seen] = torch.where(lg[seen] > 0, lg[seen] / p, lg[seen] * p)
        nxt = int(lg.argmax())
        if nxt in (1, 2): break
        ids.append(nxt)
    pieces = tok512()
    text = "".join(pieces[i] for i in ids[1:])
    return text


tmp = tempfile.mkdtemp()
base = f"{tmp}/base"
subprocess.run([BIN, "convert", "--model", MODEL, "--out", base], check=True, capture_output=True)
W0 = read_safetensors(f"{base}/model.safetensors")
cfg0 = json.load(open(f"{base}/config.json"))
ids = [1] + [(i * 37) % 509 + 3 for i in range(39)]
_, base_logits = logits(base, ids)
base_text = generate(base)
torch.manual_seed(0)
passed = failed = 0
rows = table_rows()
for n, (fname, field, what, edit, check) in enumerate(rows):
    d = f"{tmp}/row{n}"
    shutil.copytree(base, d)
    cfg, W = dict(cfg0), dict(W0)
    if fname == "config.json":
        cfg.update(edit)
        json.dump(cfg, open(f"{d}/config.json", "w"), indent=1)
    else:
        json.dump(edit, open(f"{d}/{fname}", "w"), indent=1)
    # the tensors the edited config calls for
    arch, L = cfg["architectures"][0], cfg0["num_hidden_layers"]
    D, F, hd = cfg0["hidden_size"], cfg0["intermediate_size"], cfg0["head_dim"]
    q, kv = cfg0["num_attention_heads"] * hd, cfg0["num_key_value_heads"] * hd
    r = lambda *s: torch.randn(*s) * 0.2
    added = False
    for l in range(L):
        p = f"model.layers.{l}."
        if arch == "Qwen2ForCausalLM" or (cfg.get("attention_bias") is True and arch != "MistralForCausalLM"):
            W.update({p + "self_attn.q_proj.bias": r(q), p + "self_attn.k_proj.bias": r(kv), p + "self_attn.v_proj.bias": r(kv)})
            added = True
        if cfg.get("attention_bias") is True and arch in ("LlamaForCausalLM", "Qwen3ForCausalLM"):
            W[p + "self_attn.o_proj.bias"] = r(D)
        if cfg.get("mlp_bias") is True and arch == "LlamaForCausalLM":
            W.update({p + "mlp.gate_proj.bias": r(F), p + "mlp.up_proj.bias": r(F), p + "mlp.down_proj.bias": r(D)})
            added = True
        if arch == "Qwen3ForCausalLM":
            W.update({p + "self_attn.q_norm.weight": 1 + r(hd), p + "self_attn.k_norm.weight": 1 + r(hd)})
            added = True
    if cfg.get("tie_word_embeddings") is False:
        W["lm_head.weight"] = r(cfg0["vocab_size"], D)
        added = True
    if added:
        write_folder(d, cfg, W, "F32")
    res, ours = logits(d, ids)
    err1 = res.stderr.strip()
    label = f"{fname} {field} {json.dumps(edit)[:70]} [{check}]"
    if check == "ref":
        ref = reference(cfg, {k: v.to(torch.float64) for k, v in W.items()}, torch.tensor(ids)) if ours is not None else None
        err = (ours - ref).abs().max().item() / ref.abs().max().item() if ours is not None else float("inf")
        moved = (ours - base_logits).abs().max().item() if ours is not None else 0
        ok = err <= 1e-4 and moved > 1e-3
        detail = f"vs reference {err:.1e}, moved {moved:.2e}" if ours is not None else err1
    elif check == "same":
        ok = ours is not None and torch.equal(ours, base_logits)
        detail = "bit-identical" if ok else err1 or "logits differ"
    elif check == "refused":
        val = edit.get(field) if fname == "config.json" and field in edit else None
        scal = val is None or isinstance(val, (dict, list)) or json.dumps(val) in err1
        key = field if field != "any other field" else list(edit)[-1]
        ok = res.returncode == 1 and len(err1.splitlines()) == 1 and fname in err1 and f'"{key}"' in err1 and scal
        detail = err1[:160]
    elif check == "shape":
        ok = res.returncode == 1 and "has shape" in err1
        detail = err1[:160]
    elif check == "limit":
        ok = res.returncode == 1 and len(err1.splitlines()) == 1
        detail = err1[:160]
    elif check == "gen":
        text = generate(d, "--temperature", "0")
        ok = text is not None and len(text.strip()) < len(base_text.strip()) and base_text.startswith(text.strip())
        detail = f"{len((text or '').strip())} chars of {len(base_text.strip())}: {(text or '').strip()!r}"
    elif check == "greedy":
        text = generate(d, "--steps", "64", "--seed", "7")
        ok = text == base_text
        detail = f"{(text or '').strip()[:60]!r}"
    elif check == "sampled":
        texts = {generate(d, "--steps", "64", "--seed", str(k)) for k in (1, 2, 3)}
        ok = None not in texts and len(texts | {base_text}) > 1
        detail = f"{len(texts)} texts for 3 seeds"
    elif check == "penalty":
        text = generate(d, "--steps", "64", "--seed", "7")
        prompt = json.loads(subprocess.run([BIN, "tokenize", "--tokenizer", f"{MODEL}/tok512.bin", "--text",
                                            "Once upon a time", "--bos"], capture_output=True, text=True).stdout)["ids"]
        want = penalised_greedy(cfg, {k: v.to(torch.float64) for k, v in W.items()}, prompt, edit["repetition_penalty"], 64)
        ok = text is not None and text.strip() == want.strip() and text != base_text
        detail = f"{(text or '').strip()!r} vs reference {want.strip()!r}"
    else:
        ok, detail = False, f"unknown check {check}"
    print(f"{'ok  ' if ok else 'FAIL'} {label}: {detail}")
    passed += ok; failed += not ok

# query stops at any id of an eos_token_id list too (generation_config.json is outside the store's
# fingerprint, so both folders use one store)
data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "stories_corpus.jsonl")
subprocess.run([BIN, "cache", "--model", base, "--corpus", data, "--store", f"{tmp}/store", "--quiet"], check=True)
eos = f"{tmp}/eos"
shutil.copytree(base, eos)
json.dump({"eos_token_id": [2, 426]}, open(f"{eos}/generation_config.json", "w"))
q = lambda d: subprocess.run([BIN, "query", "--model", d, "--store", f"{tmp}/store", "--docs", "lily,tom,cat", "--prompt",
                              "Lily was sad because the ball", "--json", "--steps", "24"], capture_output=True, text=True)
a, b = q(base), q(eos)
ia = json.loads(a.stdout)["answer_ids"] if a.returncode == 0 else []
ib = json.loads(b.stdout)["answer_ids"] if b.returncode == 0 else None
ok = ib is not None and 426 in ia and ib == ia[:ia.index(426)]
print(f"{'ok  ' if ok else 'FAIL'} query stops at the second id of an eos_token_id list: {ib} vs {ia}")
passed += ok; failed += not ok

# tensor parallelism reads the new tensors and applies the window the same way: a Llama folder with
# attention_bias + mlp_bias and a Mistral folder with a window of 6 answer identically on 1 and 2 ranks
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OPENBLAS_NUM_THREADS="1")
for name, edit in [("biases", {"attention_bias": True, "mlp_bias": True}),
                   ("window", {"architectures": ["MistralForCausalLM"], "sliding_window": 6})]:
    d = f"{tmp}/tp-{name}"
    shutil.copytree(base, d)
    cfg, W = dict(cfg0, **edit), dict(W0)
    for l in range(cfg0["num_hidden_layers"]):
        p = f"model.layers.{l}."
        if cfg.get("attention_bias"):
            W.update({p + "self_attn.q_proj.bias": torch.randn(64) * .2, p + "self_attn.k_proj.bias": torch.randn(32) * .2,
                      p + "self_attn.v_proj.bias": torch.randn(32) * .2, p + "self_attn.o_proj.bias": torch.randn(64) * .2})
        if cfg.get("mlp_bias"):
            W.update({p + "mlp.gate_proj.bias": torch.randn(172) * .2, p + "mlp.up_proj.bias": torch.randn(172) * .2,
                      p + "mlp.down_proj.bias": torch.randn(64) * .2})
    write_folder(d, cfg, W, "F32")
    subprocess.run([BIN, "cache", "--model", d, "--corpus", data, "--store", f"{d}/store", "--quiet"], check=True)
    args = [BIN, "query", "--model", d, "--store", f"{d}/store", "--docs", "lily,tom,cat", "--prompt",
            "Lily was sad because the ball", "--json", "--steps", "8"]
    one = subprocess.run(args, capture_output=True, text=True, env=env)
    two = subprocess.run(["timeout", "300", "mpirun", "-n", "2", *args], capture_output=True, text=True, env=env)
    f = lambda r: (json.loads(r.stdout)["answer_ids"], json.loads(r.stdout)["selected"]) if r.returncode == 0 else r.stderr[-200:]
    ok = one.returncode == 0 and f(one) == f(two)
    print(f"{'ok  ' if ok else 'FAIL'} {name}: 1 rank and 2 ranks (slices read from the files) agree: {f(one)} / {f(two)}")
    passed += ok; failed += not ok

# every field src/hf.c knows has a row (and vice versa)
src = open(SRC).read()
known = set()
for arr in ("config_keys_", "generation_keys_"):
    body = src.split(f"static const char *const {arr}[] = {{", 1)[1].split("};", 1)[0]
    known |= {(arr, k) for k in re.findall(r'"([^"]+)"', body)}
doc = {("config_keys_" if f == "config.json" else "generation_keys_", fld) for f, fld, *_ in rows if fld != "any other field"}
missing, extra = known - doc, doc - known
ok = not missing and not extra
print(f"{'ok  ' if ok else 'FAIL'} table and src/hf.c list the same fields"
      + ("" if ok else f": no row for {sorted(missing)}, rows for unknown {sorted(extra)}"))
passed += ok; failed += not ok
shutil.rmtree(tmp)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
