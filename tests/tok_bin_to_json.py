#!/usr/bin/env python3
"""tok_bin_to_json.py TOKENIZER_BIN|SPM_VOCAB OUT_DIR [--style normalizer|metaspace]

Writes a llama2.c tokenizer.bin (or the vocabulary of a SentencePiece BPE model as
`spm_export_vocab --output_format=vocab` lists it: piece TAB score, a .vocab file) as a
SentencePiece-kind Hugging Face tokenizer.json (plus a
tokenizer_config.json), the way transformers' LlamaConverter writes Llama-2/TinyLlama/Mistral:
pieces with "▁" for the space, BPE with byte_fallback and unk_token "<unk>", and the merges of
SentencePieceExtractor (every split of a piece into two pieces, ordered by the piece's score,
highest first, then by the ids of the two halves).
  --style normalizer: Prepend("▁") + Replace(" " -> "▁") normalizer, no pre-tokenizer, decoder
                      Replace/ByteFallback/Fuse/Strip (Llama-2, TinyLlama; the default)
  --style metaspace:  no normalizer, a Metaspace pre-tokenizer with prepend_scheme "first", the same
                      decoder (LlamaConverter with legacy=False: Mistral's newer files)
Test data for tests/hf_tokenizer.sh and tests/sp_tokenizer.sh; standard library only."""
import json
import os
import struct
import sys

SP = "\u2581"


def read_bin(path):
    with open(path, "rb") as f:
        data = f.read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    off, pieces = 4, []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        pieces.append((data[off:off + n].decode("utf-8"), score))
        off += n
    return pieces


def read_vocab(path):
    with open(path, encoding="utf-8") as f:
        return [(p, float(sc)) for p, sc in (l.rstrip("\n").split("\t") for l in f if l.strip())]


def main():
    args = sys.argv[1:]
    style = "normalizer"
    if "--style" in args:
        i = args.index("--style")
        style = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2 or style not in ("normalizer", "metaspace"):
        sys.exit(__doc__)
    src, out = args
    pieces = read_vocab(src) if src.endswith(".vocab") else read_bin(src)
    special = {0: "<unk>", 1: "<s>", 2: "</s>"}  # llama2.c writes BOS/EOS as "\n<s>\n", "\n</s>\n"
    vocab, scores = {}, {}
    for i, (p, s) in enumerate(pieces):
        p = special.get(i, p.replace(" ", SP))
        if p in vocab:
            sys.exit(f"{src}: piece {i} repeats piece {vocab[p]}")
        vocab[p], scores[p] = i, s
    merges = []
    for piece in vocab:  # id order
        local = [(piece[:k], piece[k:], scores[piece]) for k in range(1, len(piece))
                 if piece[:k] in vocab and piece[k:] in vocab]
        merges += sorted(local, key=lambda x: (vocab[x[0]], vocab[x[1]]))
    merges = [[a, b] for a, b, _ in sorted(merges, key=lambda x: x[2], reverse=True)]
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, c in special.items()]
    if style == "normalizer":
        normalizer = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": SP},
                                                           {"type": "Replace", "pattern": {"String": " "}, "content": SP}]}
        pre = None
    else:
        normalizer = None
        pre = {"type": "Metaspace", "replacement": SP, "prepend_scheme": "first", "split": False}
    decoder = {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": SP}, "content": " "},
                                                {"type": "ByteFallback"}, {"type": "Fuse"},
                                                {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": normalizer,
          "pre_tokenizer": pre,
          "post_processor": {"type": "TemplateProcessing",
                             "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                             "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                             "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
          "decoder": decoder,
          "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                    "vocab": vocab, "merges": merges}}
    cfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
           "clean_up_tokenization_spaces": False, "legacy": style == "normalizer", "model_max_length": 512,
           "tokenizer_class": "LlamaTokenizer"}
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=1)
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=1)


if __name__ == "__main__":
    main()
