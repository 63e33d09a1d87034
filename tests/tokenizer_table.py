#!/usr/bin/env python3
"""tokenizer_table.py BIN MODEL_DIR MODELS_MD NPM_DIR TEXT... — walks the table "tokenizer.json
fields" of docs/models.md: for each row, tok512.bin written as a SentencePiece-kind tokenizer.json
(tok_bin_to_json.py), the row's edit merged into the row's file, and the row's check: ref (ids and
decoded text equal @huggingface/tokenizers' on every line of each TEXT; NPM_DIR holds it and enc.mjs,
from hf_tokenizer.sh), same (infoflow prints what it prints for the unedited files), refused (exit 1,
one line naming the file and the edited key), special (`tokenize --bos` gives the reference's ids
with add_special_tokens=true: the post_processor's BOS), bos-config (`tokenize --bos` gives the ids
without --bos, after the id of tokenizer_config.json's bos_token when its add_bos_token is true, as
transformers' update_post_processor builds the template). The base tokenizer_config.json leaves
add_bos_token out and names no Llama class, so that tokenizer.json's post_processor decides unless
a row says otherwise. Fails, never skips."""
import json, os, shutil, subprocess, sys, tempfile

BIN, MODEL, DOC, NPM = sys.argv[1:5]
TEXTS = sys.argv[5:]
HERE = os.path.dirname(os.path.abspath(__file__))


def rows():
    sec = open(DOC, encoding="utf-8").read().split("## tokenizer.json fields", 1)[1].split("\n## ", 1)[0]
    out = []
    for line in sec.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) != 5 or cells[0] in ("file", "---") or not line.startswith("|"): continue
        if cells[3] == "—": out.append((cells[0], cells[1], None, cells[4])); continue
        out.append((cells[0], cells[1], json.loads(cells[3].strip("`")), cells[4]))
    return out


def merge(base, edit):
    for k, v in edit.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict): merge(base[k], v)
        else: base[k] = v
    return base


def words(field):  # the names in the field cell: `added_tokens[].lstrip` -> added_tokens, lstrip
    return [w for part in field.split("`")[1::2] for w in part.replace("[]", "").split(".") if w]


def run(args):
    p = subprocess.run(args, capture_output=True, encoding="utf-8", errors="replace")  # TextDecoder's U+FFFD, as the reference
    return p.returncode, p.stdout, p.stderr


def ours(d, text, *extra):
    return run([BIN, "tokenize", "--tokenizer", os.path.join(d, "tokenizer.json"), "--text-file", text, *extra])


def ids_of(out):
    return [json.loads(l)["ids"] for l in out.splitlines() if l.strip()]


def bos_of(d):  # the BOS transformers' update_post_processor puts first, from tokenizer_config.json; None: none
    cfg = json.load(open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8"))
    if not cfg.get("add_bos_token"): return None
    tj = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))
    name = cfg["bos_token"]["content"] if isinstance(cfg["bos_token"], dict) else cfg["bos_token"]
    added = {a["content"]: a["id"] for a in tj["added_tokens"]}
    return added.get(name, tj["model"]["vocab"].get(name))


def reference(d, text, special=False):
    rc, out, err = run(["node", os.path.join(NPM, "enc.mjs"), os.path.join(d, "tokenizer.json"),
                        os.path.join(d, "tokenizer_config.json"), text] + (["special"] if special else []))
    if rc: raise RuntimeError("the reference did not run: " + err.strip().splitlines()[-1] if err.strip() else "")
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def main():
    w = tempfile.mkdtemp()
    try:
        base = os.path.join(w, "base")
        subprocess.run([sys.executable, os.path.join(HERE, "tok_bin_to_json.py"), os.path.join(MODEL, "tok512.bin"), base], check=True)
        cfg_path = os.path.join(base, "tokenizer_config.json")
        cfg = json.load(open(cfg_path, encoding="utf-8"))
        del cfg["add_bos_token"]
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        json.dump(cfg, open(cfg_path, "w", encoding="utf-8"))
        unedited = {t: ours(base, t) for t in TEXTS}
        bad, n = [], 0
        for i, (f, field, edit, check) in enumerate(rows()):
            if edit is None:
                if check != "sp_tokenizer.sh": bad.append(f"row {i} ({field}): no edit and check {check}")
                continue
            n += 1
            d = os.path.join(w, f"row{i}")
            shutil.copytree(base, d)
            path = os.path.join(d, f)
            with open(path, encoding="utf-8") as fh: obj = json.load(fh)
            with open(path, "w", encoding="utf-8") as fh: json.dump(merge(obj, edit), fh, ensure_ascii=False)
            what = f"row {i} ({f} {field} {json.dumps(edit, ensure_ascii=False)[:80]})"
            if check == "refused":
                rc, out, err = ours(d, TEXTS[0])
                msg = err.strip()
                keys = words(field)
                if rc != 1 or len(msg.splitlines()) != 1 or f not in msg or not any(k in msg for k in keys):
                    bad.append(f"{what}: want refused naming {f} and one of {keys}; got rc {rc}: {msg[:200]}")
            elif check == "same":
                for t in TEXTS:
                    if ours(d, t) != unedited[t]: bad.append(f"{what}: output differs from the unedited file's on {t}")
            elif check == "ref":
                for t in TEXTS:
                    rc, out, err = ours(d, t)
                    mine = [json.loads(l) for l in out.splitlines() if l.strip()]
                    ref = reference(d, t)
                    if rc or len(mine) != len(ref): bad.append(f"{what}: rc {rc} {err.strip()[:200]}"); continue
                    diff = [k for k, (a, b) in enumerate(zip(ref, mine)) if a["ids"] != b["ids"] or a["text"] != b["text"]]
                    if diff: bad.append(f"{what}: {len(diff)} of {len(ref)} lines of {os.path.basename(t)} differ from the reference (first: {diff[0]})")
            elif check == "special":
                for t in TEXTS:
                    rc, out, err = ours(d, t, "--bos")
                    ref = [r["ids"] for r in reference(d, t, special=True)]
                    if rc or ids_of(out) != ref: bad.append(f"{what}: rc {rc} {err.strip()[:200]}: --bos ids differ from the reference's with special tokens on {t}")
            elif check == "bos-config":
                bos = bos_of(d)
                for t in TEXTS:
                    rc, out, err = ours(d, t, "--bos")
                    rc2, plain, err2 = ours(d, t)
                    want = [([bos] if bos is not None else []) + ids for ids in ids_of(plain)]
                    if rc or rc2 or ids_of(out) != want: bad.append(f"{what}: rc {rc} {err.strip()[:200]}: --bos ids are not BOS {bos} + the ids on {t}")
            else:
                bad.append(f"{what}: unknown check {check}")
        for b in bad: print("FAIL:", b)
        print(f"{n} rows walked, {len(bad)} failed")
        return 1 if bad or n < 40 else 0
    finally:
        shutil.rmtree(w)


if __name__ == "__main__":
    sys.exit(main())
